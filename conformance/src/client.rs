//! The HTTP client, behaving like the Python `requests.get` TFB used: a new connection per
//! request, `Accept` as given plus `requests`' own defaults (`Accept-Encoding: gzip, deflate`,
//! `Connection: keep-alive`), `Host` with the port, redirects followed, compressed bodies
//! decoded, 15 s timeout. It is written on raw sockets so that the checks see the headers exactly
//! as the server sent them, and can send pipelined and malformed requests.

use std::{io::Read, net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, lookup_host},
    time::timeout,
};

/// TFB's request timeout.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// `requests` gives up after this many redirects.
const MAX_REDIRECTS: usize = 30;

/// Limits TFB's verifier did not have (it read whatever came): a hostile or broken server gets a
/// finding instead of exhausting the verifier's memory. TFB's largest legitimate response (500
/// worlds) is about 20 KB.
pub const MAX_HEAD: usize = 64 * 1024;
/// The largest body accepted, on the wire and again after decoding.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body after undoing any `Content-Encoding`.
    pub body: Vec<u8>,
    /// The body's length on the wire, before decoding.
    pub wire_length: usize,
}

impl Response {
    /// The first header of that name, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A response body as read off the wire and as decoded.
struct Body {
    decoded: Vec<u8>,
    wire_length: usize,
}

/// Why no response came, in TFB's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// `requests.ConnectionError`: refused, reset, or not HTTP.
    Connection(String),
    /// `requests.Timeout`.
    Timeout,
    /// Past one of this verifier's limits ([`MAX_HEAD`], [`MAX_BODY`]); stricter than TFB.
    TooLarge(String),
    /// The status line and headers arrived, the body did not (cut short, undecodable): still
    /// no response for `requests`, but siege counted such a transaction by its status alone.
    BodyLost { status: u16, detail: String },
}

impl FetchError {
    /// The message TFB records as a fail.
    pub fn tfb_message(&self) -> &'static str {
        match self {
            FetchError::Connection(_) | FetchError::BodyLost { .. } => {
                "Server did not respond to request"
            }
            FetchError::Timeout => "Connection to server timed out",
            FetchError::TooLarge(_) => {
                "Response exceeds the verifier's size limits (stricter than TFB)"
            }
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Connection(detail) | FetchError::TooLarge(detail) => {
                write!(f, "{} ({detail})", self.tfb_message())
            }
            FetchError::Timeout => f.write_str(self.tfb_message()),
            FetchError::BodyLost { status, detail } => write!(
                f,
                "{} (a {status} response head, then {detail})",
                self.tfb_message()
            ),
        }
    }
}

/// An `http://` URL as a request needs it, read by the url crate.
#[derive(Debug, Clone)]
pub(crate) struct HttpUrl {
    url: url::Url,
    /// `host:port` to connect to (port 80 when the URL names none).
    pub(crate) address: String,
    /// The `Host` header: the host, and the port when the URL names one.
    pub(crate) authority: String,
    /// The request target: path and query.
    pub(crate) target: String,
}

pub(crate) fn parse_url(url: &str) -> Result<HttpUrl, FetchError> {
    let parsed = url::Url::parse(url)
        .map_err(|error| FetchError::Connection(format!("{url:?} is not a URL: {error}")))?;
    from_url(parsed)
}

fn from_url(url: url::Url) -> Result<HttpUrl, FetchError> {
    let host = match url.host_str() {
        Some(host) if url.scheme() == "http" => host.to_owned(),
        _ => {
            return Err(FetchError::Connection(format!(
                "only http:// URLs are supported, got {:?}",
                url.as_str()
            )));
        }
    };
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    };
    Ok(HttpUrl {
        address: format!("{host}:{}", url.port_or_known_default().unwrap_or(80)),
        authority,
        target: url[url::Position::BeforePath..url::Position::AfterQuery].to_owned(),
        url,
    })
}

/// GET `url` the way TFB's verifier did.
pub async fn get(url: &str, accept: &str) -> Result<Response, FetchError> {
    get_at(url, accept, None).await
}

/// Like [`get`], but connects to `address` (from [`resolve`]) instead of looking the URL's host
/// up again, for as long as no redirect leads to another host. A burst resolves once: Docker's
/// embedded name server fails some of 512 simultaneous lookups ("Temporary failure in name
/// resolution"), which says nothing about the server under test.
pub async fn get_at(
    url: &str,
    accept: &str,
    address: Option<SocketAddr>,
) -> Result<Response, FetchError> {
    get_within(url, accept, address, TIMEOUT).await
}

/// Like [`get_at`], with `limit` in place of `requests`' 15 s timeout: siege, which TFB's
/// bursts ran, waited for as long as the whole burst was given.
pub async fn get_within(
    url: &str,
    accept: &str,
    address: Option<SocketAddr>,
    limit: Duration,
) -> Result<Response, FetchError> {
    match timeout(limit, get_following_redirects(url, accept, address)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout),
    }
}

/// The address `url`'s host and port resolve to first, as a connection to it would use.
pub async fn resolve(url: &str) -> Result<SocketAddr, FetchError> {
    let address = parse_url(url)?.address;
    let mut addresses = lookup_host(&address)
        .await
        .map_err(|error| FetchError::Connection(error.to_string()))?;
    addresses
        .next()
        .ok_or_else(|| FetchError::Connection(format!("{address} has no address")))
}

async fn get_following_redirects(
    url: &str,
    accept: &str,
    address: Option<SocketAddr>,
) -> Result<Response, FetchError> {
    let mut current = parse_url(url)?;
    let resolved = current.address.clone();
    for _ in 0..=MAX_REDIRECTS {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tfb-conformance\r\nAccept-Encoding: gzip, deflate\r\n\
             Accept: {accept}\r\nConnection: keep-alive\r\n\r\n",
            current.target, current.authority
        );
        let connecting = match address {
            Some(address) if current.address == resolved => TcpStream::connect(address).await,
            _ => TcpStream::connect(&current.address).await,
        };
        let mut stream = connecting.map_err(|error| FetchError::Connection(error.to_string()))?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|error| FetchError::Connection(error.to_string()))?;
        let mut reader = ResponseReader::new(stream);
        let response = reader.read_response().await?;
        let location = response.header("location").map(str::to_owned);
        match (response.status, location) {
            (301 | 302 | 303 | 307 | 308, Some(location)) => {
                let next = current.url.join(&location).map_err(|error| {
                    FetchError::Connection(format!("redirected to {location:?}: {error}"))
                })?;
                current = from_url(next)?;
            }
            _ => return Ok(response),
        }
    }
    Err(FetchError::Connection(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// Reads responses from one connection, keeping what follows a response for the next one.
pub struct ResponseReader {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl ResponseReader {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Everything the server sends until it closes the connection (a reset counts as closing).
    pub async fn read_until_closed(&mut self) -> Result<Vec<u8>, FetchError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk).await {
                Ok(0) => break,
                Ok(read) => {
                    self.buffer.extend_from_slice(&chunk[..read]);
                    if self.buffer.len() > MAX_HEAD + MAX_BODY {
                        return Err(too_large(
                            "the server sent",
                            self.buffer.len(),
                            MAX_HEAD + MAX_BODY,
                        ));
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(error) => return Err(FetchError::Connection(error.to_string())),
            }
        }
        Ok(std::mem::take(&mut self.buffer))
    }

    pub async fn read_response(&mut self) -> Result<Response, FetchError> {
        let mut searched = 0;
        let head_end = loop {
            // Only the new bytes (and the three before them) are searched: linear in the head.
            if let Some(position) = find(&self.buffer[searched..], b"\r\n\r\n") {
                break searched + position;
            }
            searched = self.buffer.len().saturating_sub(3);
            if self.buffer.len() > MAX_HEAD {
                return Err(too_large(
                    "the response head is at least",
                    self.buffer.len(),
                    MAX_HEAD,
                ));
            }
            if self.fill().await? == 0 {
                return Err(FetchError::Connection(if self.buffer.is_empty() {
                    "the connection closed without a response".to_owned()
                } else {
                    "the connection closed in the middle of the response head".to_owned()
                }));
            }
        };
        let (status, headers) = parse_head(&self.buffer[..head_end + 4])?;
        self.buffer.drain(..head_end + 4);
        let body = self
            .read_body(status, &headers)
            .await
            .map_err(|error| match error {
                FetchError::Connection(detail) => FetchError::BodyLost { status, detail },
                other => other,
            })?;
        Ok(Response {
            status,
            headers,
            body: body.decoded,
            wire_length: body.wire_length,
        })
    }

    /// The body that follows a response head, framed as its headers say, then decoded.
    async fn read_body(
        &mut self,
        status: u16,
        headers: &[(String, String)],
    ) -> Result<Body, FetchError> {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        let chunked = header("transfer-encoding")
            .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
        let wire_body = if chunked {
            self.read_chunked().await?
        } else if let Some(length) = header("content-length") {
            let length: usize = length.parse().map_err(|_| {
                FetchError::Connection(format!("invalid Content-Length {length:?}"))
            })?;
            if length > MAX_BODY {
                return Err(too_large("Content-Length announces", length, MAX_BODY));
            }
            self.take(length).await?
        } else if status == 204 || status == 304 || (100..200).contains(&status) {
            Vec::new()
        } else {
            while self.fill().await? > 0 {
                if self.buffer.len() > MAX_BODY {
                    return Err(too_large(
                        "the body is at least",
                        self.buffer.len(),
                        MAX_BODY,
                    ));
                }
            }
            std::mem::take(&mut self.buffer)
        };
        let wire_length = wire_body.len();
        let decoded = decode(header("content-encoding").as_deref(), wire_body)?;
        Ok(Body {
            decoded,
            wire_length,
        })
    }

    async fn fill(&mut self) -> Result<usize, FetchError> {
        let mut chunk = [0u8; 16 * 1024];
        let read = self
            .stream
            .read(&mut chunk)
            .await
            .map_err(|error| FetchError::Connection(error.to_string()))?;
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(read)
    }

    async fn take(&mut self, length: usize) -> Result<Vec<u8>, FetchError> {
        while self.buffer.len() < length {
            if self.fill().await? == 0 {
                return Err(FetchError::Connection(format!(
                    "the body ended after {} of its {length} bytes",
                    self.buffer.len()
                )));
            }
        }
        Ok(self.buffer.drain(..length).collect())
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>, FetchError> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(position) = find(&self.buffer, b"\r\n") {
                    break position;
                }
                if self.buffer.len() > MAX_HEAD {
                    return Err(too_large(
                        "a chunk-size line is at least",
                        self.buffer.len(),
                        MAX_HEAD,
                    ));
                }
                if self.fill().await? == 0 {
                    return Err(FetchError::Connection("a chunk size is missing".to_owned()));
                }
            };
            let line = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
            self.buffer.drain(..line_end + 2);
            let size = usize::from_str_radix(line.split(';').next().unwrap_or_default().trim(), 16)
                .map_err(|_| FetchError::Connection(format!("invalid chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                loop {
                    let end = loop {
                        if let Some(position) = find(&self.buffer, b"\r\n") {
                            break position;
                        }
                        if self.fill().await? == 0 {
                            return Ok(body);
                        }
                    };
                    self.buffer.drain(..end + 2);
                    if end == 0 {
                        return Ok(body);
                    }
                }
            }
            let total = body.len().saturating_add(size);
            if total > MAX_BODY {
                return Err(too_large("the chunked body is at least", total, MAX_BODY));
            }
            let chunk = self.take(size + 2).await?;
            body.extend_from_slice(&chunk[..size]);
        }
    }
}

/// Headers a response head may have; more is a malformed head.
const MAX_HEADERS: usize = 128;

/// The status and headers of a complete response head (ending in its blank line), parsed by
/// httparse; values lose surrounding whitespace and bytes that are not UTF-8.
fn parse_head(head: &[u8]) -> Result<(u16, Vec<(String, String)>), FetchError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let first_line = || {
        String::from_utf8_lossy(head.split(|byte| *byte == b'\r').next().unwrap_or(head))
            .into_owned()
    };
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(FetchError::Connection(
                "the response head ended early".to_owned(),
            ));
        }
        Err(httparse::Error::Status | httparse::Error::Version) => {
            return Err(FetchError::Connection(format!(
                "not an HTTP/1.x status line: {:?}",
                first_line()
            )));
        }
        Err(error) => {
            return Err(FetchError::Connection(format!(
                "a malformed response head ({error}) after {:?}",
                first_line()
            )));
        }
    }
    let status = response.code.unwrap_or_default();
    let headers = response
        .headers
        .iter()
        .map(|header| {
            (
                header.name.to_owned(),
                String::from_utf8_lossy(header.value).trim().to_owned(),
            )
        })
        .collect();
    Ok((status, headers))
}

fn too_large(what: &str, size: usize, limit: usize) -> FetchError {
    FetchError::TooLarge(format!(
        "{what} {size} bytes, more than the {} KiB accepted",
        limit / 1024
    ))
}

fn decode(encoding: Option<&str>, body: Vec<u8>) -> Result<Vec<u8>, FetchError> {
    // One byte past the limit is enough to know a body is too large; a gzip bomb is never
    // inflated further than that.
    let limit = MAX_BODY as u64 + 1;
    let mut decoded = Vec::new();
    let result = match encoding.map(|encoding| encoding.trim().to_ascii_lowercase()) {
        Some(encoding) if encoding == "gzip" => flate2::read::GzDecoder::new(&body[..])
            .take(limit)
            .read_to_end(&mut decoded),
        Some(encoding) if encoding == "deflate" => flate2::read::ZlibDecoder::new(&body[..])
            .take(limit)
            .read_to_end(&mut decoded),
        _ => return Ok(body),
    };
    match result {
        Ok(_) if decoded.len() > MAX_BODY => Err(FetchError::TooLarge(format!(
            "the decoded body is larger than the {} KiB accepted",
            MAX_BODY / 1024
        ))),
        Ok(_) => Ok(decoded),
        Err(error) => Err(FetchError::Connection(format!("undecodable body: {error}"))),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn a_head_gives_its_status_and_trimmed_headers() {
        let (status, headers) =
            parse_head(b"HTTP/1.1 404 Not Found\r\nServer:  x \r\nContent-Length: 0\r\n\r\n")
                .unwrap();
        assert_eq!(status, 404);
        assert_eq!(
            headers,
            [
                ("Server".to_owned(), "x".to_owned()),
                ("Content-Length".to_owned(), "0".to_owned())
            ]
        );
    }

    #[test]
    fn a_malformed_head_is_named() {
        let error = parse_head(b"HTP/1.1 200 OK\r\n\r\n").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("not an HTTP/1.x status line: \"HTP/1.1 200 OK\""),
            "{error}"
        );
        let error = parse_head(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n").unwrap_err();
        assert!(
            error.to_string().contains("a malformed response head"),
            "{error}"
        );
    }

    /// Answers one request with 200 and hands back the request head it read.
    async fn answer_once(listener: TcpListener) -> String {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await
            .unwrap();
        String::from_utf8(head).unwrap()
    }

    #[tokio::test]
    async fn a_resolved_address_is_used_instead_of_the_host_name() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(answer_once(listener));
        // `.invalid` never resolves (RFC 6761), so only the given address can be reached.
        let url = format!("http://tfb-server.invalid:{}/db", address.port());
        let response = get_at(&url, "*/*", Some(address)).await.unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"ok"[..])
        );
        let head = server.await.unwrap();
        assert!(
            head.contains(&format!("Host: tfb-server.invalid:{}\r\n", address.port())),
            "{head}"
        );
        assert!(matches!(
            get(&url, "*/*").await,
            Err(FetchError::Connection(_))
        ));
        assert!(resolve(&url).await.is_err());
    }

    #[tokio::test]
    async fn resolve_gives_the_address_a_connection_uses() {
        let address = resolve("http://127.0.0.1:8080/json").await.unwrap();
        assert_eq!(address, "127.0.0.1:8080".parse().unwrap());
    }
}
