//! A raw HTTP/1.1 client over `TcpStream`: exact bytes out, exact bytes in. Tests need what a
//! friendly client hides: pipelined requests, malformed request lines, and the headers and
//! framing exactly as the server wrote them.

use std::{
    io::{self, Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

/// No test waits longer than this for a server; a hang becomes an error.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The Accept header TFB sends for the JSON and database test types.
pub const ACCEPT_JSON: &str =
    "application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
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

/// A GET with the headers wrk sends during TFB's load phase.
pub fn get_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: tfb-server\r\nAccept: {ACCEPT_JSON}\r\nConnection: keep-alive\r\n\r\n"
    )
    .into_bytes()
}

/// One GET on a fresh connection.
pub fn get(address: SocketAddr, path: &str) -> io::Result<Response> {
    Connection::open(address)?.get(path)
}

/// One keep-alive connection, with whatever the server sent beyond the last response kept for
/// the next.
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    pub fn open(address: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&address, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn get(&mut self, path: &str) -> io::Result<Response> {
        self.send(&get_request(path))?;
        self.read_response()
    }

    /// Reads one response framed by `Content-Length` or chunked encoding (or, lacking both, by
    /// the connection closing).
    pub fn read_response(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(position) = find(&self.buffer, b"\r\n\r\n") {
                break position;
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed after {} bytes of a response head",
                        self.buffer.len()
                    ),
                ));
            }
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        self.buffer.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line
                    .split_once(':')
                    .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
                Ok((name.trim().to_owned(), value.trim().to_owned()))
            })
            .collect::<io::Result<_>>()?;
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if let Some(length) = response.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length {length:?}")))?;
            response.body = self.take(length)?;
        } else if response
            .header("transfer-encoding")
            .is_some_and(|encoding| encoding.eq_ignore_ascii_case("chunked"))
        {
            response.body = self.read_chunked()?;
        } else {
            while self.fill()? > 0 {}
            response.body = std::mem::take(&mut self.buffer);
        }
        Ok(response)
    }

    /// Everything the server sends until it closes the connection or goes quiet.
    pub fn read_until_closed(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match self.fill() {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => break,
                Err(error) => return Err(error),
            }
        }
        Ok(std::mem::take(&mut self.buffer))
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        let read = self.stream.read(&mut chunk)?;
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(read)
    }

    fn take(&mut self, length: usize) -> io::Result<Vec<u8>> {
        while self.buffer.len() < length {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("body ended after {} of {length} bytes", self.buffer.len()),
                ));
            }
        }
        Ok(self.buffer.drain(..length).collect())
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(position) = find(&self.buffer, b"\r\n") {
                    break position;
                }
                if self.fill()? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "chunk size missing",
                    ));
                }
            };
            let size_text = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
            self.buffer.drain(..line_end + 2);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
            let chunk = self.take(size + 2)?;
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
