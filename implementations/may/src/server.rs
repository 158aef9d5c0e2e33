//! The HTTP/1.1 server on `may` coroutines, in may_minihttp's design: one coroutine per
//! connection, every request already in the read buffer decoded and answered before one write
//! sends all the responses, and coroutines that park (not threads that block) while the database
//! answers.
//!
//! Unlike may_minihttp 0.1.11 it bounds the request head, answers malformed requests with a
//! status before closing, prints nothing per request, and can stop gracefully: stop accepting,
//! let the requests in flight finish, then return.

use std::{
    cell::RefCell,
    io::{self, Read, Write},
    net::{Shutdown, SocketAddr},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use bytes::BytesMut;
use may::{
    coroutine::JoinHandle,
    net::{TcpListener, TcpStream},
};
use tfb_common::{
    config::{CLIENT_HEAD_TIMEOUT, MAX_REQUEST_HEAD},
    reply::{Content, Reply},
};

/// Headers parsed per request; more is answered with 431.
const MAX_REQUEST_HEADERS: usize = 32;

/// Room beyond `MAX_REQUEST_HEAD` the input buffer may grow to; 16 pipelined TFB requests take ~2.7 KiB.
const READ_WINDOW: usize = 16 * 1024;

/// How long a stop waits for requests in flight before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a stop keeps waiting for idle keep-alive connections once nothing is answered.
const IDLE_AFTER_STOP: Duration = Duration::from_millis(500);

/// The pause after a failed accept (typically EMFILE: out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// What a handler answers: a [`Reply`], or content it already rendered into the body buffer.
pub enum Answer {
    Reply(Reply),
    Rendered(Content),
}

/// The per-connection request handler, made by the factory for each accepted connection.
pub trait Handler: Send + 'static {
    /// Answers `GET path?query`. `body` is the connection's reusable buffer, empty on entry, for
    /// answers rendered in place.
    fn get(&mut self, path: &str, query: Option<&str>, body: &mut BytesMut) -> Answer;
}

/// A running server: its accept loop and what its connections are doing.
pub struct Server {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    activity: Arc<Activity>,
    accept: JoinHandle<()>,
}

/// Counts a stop waits on.
#[derive(Default)]
struct Activity {
    /// Connections answering a batch: counted from decoding its first request until the write.
    in_flight: AtomicUsize,
    /// Connections open.
    open: AtomicUsize,
}

/// Counts one open connection for as long as it lives.
struct OpenConnection<'a>(&'a Activity);

impl<'a> OpenConnection<'a> {
    fn new(activity: &'a Activity) -> Self {
        activity.open.fetch_add(1, Ordering::AcqRel);
        Self(activity)
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Server {
    /// Binds `address` (with `SO_REUSEPORT`, as may does) and serves each accepted connection
    /// with a handler from `new_handler`, given the connection's socket descriptor (which decides
    /// the worker the connection runs on).
    pub fn start<H: Handler>(
        address: SocketAddr,
        new_handler: impl Fn(usize) -> H + Send + 'static,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(address)?;
        let address = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let activity = Arc::new(Activity::default());
        let accept = {
            let stopping = Arc::clone(&stopping);
            let activity = Arc::clone(&activity);
            may::go!(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::Acquire) {
                        break;
                    }
                    // Accept errors (EMFILE, ECONNABORTED) concern one connection, not the server;
                    // out of descriptors, retrying at once would spin a core until one frees.
                    let Ok(stream) = stream else {
                        may::coroutine::sleep(ACCEPT_BACKOFF);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let handler = new_handler(stream.as_raw_fd() as usize);
                    let activity = Arc::clone(&activity);
                    let stopping = Arc::clone(&stopping);
                    // may wakes a coroutine on the worker that polls its socket (fd modulo the
                    // worker count); starting it there too keeps the connection on one thread.
                    let on_its_worker =
                        may::coroutine::Builder::new().id(stream.as_raw_fd() as usize);
                    let _ = may::go!(on_its_worker, move || {
                        let _open = OpenConnection::new(&activity);
                        serve_connection(stream, handler, &activity.in_flight, &stopping);
                    });
                }
                // Dropping the listener here closes the port.
            })
        };
        Ok(Self {
            address,
            stopping,
            activity,
            accept,
        })
    }

    /// Stops accepting, then waits until no request is being answered and the keep-alive
    /// connections have closed: each is answered with `Connection: close` from now on, so under
    /// load they close within one round trip. A connection with no request for
    /// [`IDLE_AFTER_STOP`] is left to the exit.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let mut wake_address = self.address;
        if wake_address.ip().is_unspecified() {
            wake_address.set_ip([127, 0, 0, 1].into());
        }
        let _ = std::net::TcpStream::connect_timeout(&wake_address, Duration::from_secs(1));
        let _ = self.accept.join();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut quiet_since = Instant::now();
        while Instant::now() < deadline {
            if self.activity.in_flight.load(Ordering::Acquire) > 0 {
                quiet_since = Instant::now();
            } else if self.activity.open.load(Ordering::Acquire) == 0
                || quiet_since.elapsed() >= IDLE_AFTER_STOP
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// One connection: read, answer every complete request, write, until the peer leaves or a
/// request says to close.
fn serve_connection(
    mut stream: TcpStream,
    mut handler: impl Handler,
    in_flight: &AtomicUsize,
    stopping: &AtomicBool,
) {
    // Every read waits at most this long: an idle or slow client is cut, not kept forever.
    if stream.set_read_timeout(Some(CLIENT_HEAD_TIMEOUT)).is_err() {
        return;
    }
    let mut input = ReadBuffer::default();
    let mut output = BytesMut::with_capacity(4096);
    let mut body = BytesMut::with_capacity(4096);
    loop {
        if input.read_from(&mut stream).is_err() {
            return;
        }
        let mut answering = false;
        let mut close = false;
        while !close {
            match decode(input.filled()) {
                Decoded::Partial if input.filled().len() > MAX_REQUEST_HEAD => {
                    write_error(&mut output, 431);
                    close = true;
                }
                Decoded::Partial => break,
                Decoded::Invalid(status) => {
                    write_error(&mut output, status);
                    close = true;
                }
                Decoded::Request(request) => {
                    if !answering {
                        // Counted per batch, not per request: one shared atomic per write.
                        in_flight.fetch_add(1, Ordering::AcqRel);
                        answering = true;
                    }
                    let head_len = request.head_len;
                    close = answer(&request, &mut handler, stopping, &mut body, &mut output);
                    input.consume(head_len);
                }
            }
        }
        let written = stream.write_all(&output);
        output.clear();
        if answering {
            in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        if close || written.is_err() {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// A connection's input: bytes at `start..end` of `data` are read and not yet decoded. The
/// buffer is zeroed only when it grows, never per read, and starts small so that idle connections
/// (TFB opens up to 16,384) cost little.
#[derive(Default)]
struct ReadBuffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuffer {
    const INITIAL: usize = 4096;

    fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn consume(&mut self, count: usize) {
        self.start += count;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads what has arrived (parking the coroutine until something has), or fails at end of
    /// stream. A head larger than the buffer grows it up to `MAX_REQUEST_HEAD` and a little more, so the
    /// caller can tell an oversized head from a partial one.
    fn read_from(&mut self, stream: &mut TcpStream) -> io::Result<()> {
        if self.end == self.data.len() {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let grown =
                    (self.data.len() * 2).clamp(Self::INITIAL, MAX_REQUEST_HEAD + READ_WINDOW);
                if grown == self.data.len() {
                    return Err(io::ErrorKind::OutOfMemory.into());
                }
                self.data.resize(grown, 0);
            }
        }
        match stream.read(&mut self.data[self.end..]) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(read) => {
                self.end += read;
                Ok(())
            }
            Err(error) => Err(error),
        }
    }
}

/// A decoded request head.
struct Request<'input> {
    head_len: usize,
    method_is_get: bool,
    /// The path and query, borrowed from the input buffer.
    target: &'input str,
    close: bool,
}

enum Decoded<'input> {
    Request(Request<'input>),
    Partial,
    Invalid(u16),
}

fn decode(input: &[u8]) -> Decoded<'_> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Decoded::Partial,
        Err(httparse::Error::TooManyHeaders) => return Decoded::Invalid(431),
        Err(httparse::Error::Version) => return Decoded::Invalid(505),
        Err(_) => return Decoded::Invalid(400),
    };
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Decoded::Invalid(400);
    };
    // HTTP/1.0 closes after each response unless asked to keep alive; 1.1 the other way round.
    let mut close = version == 0;
    let mut content_length = false;
    let mut transfer_encoding = false;
    for header in parsed.headers.iter() {
        if header.name.eq_ignore_ascii_case("connection") {
            if header.value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if header.value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            // No route takes a body; answering and closing is simpler and safer than skipping
            // one we do not want.
            close = true;
        } else if header.name.eq_ignore_ascii_case("content-length") {
            // Anything but one plain decimal (`+5`, `0x5`, `0, 32`, a second header) frames the
            // body differently for different parsers: the shape of request smuggling.
            if content_length
                || header.value.is_empty()
                || !header.value.iter().all(u8::is_ascii_digit)
            {
                return Decoded::Invalid(400);
            }
            content_length = true;
            close |= header.value.iter().any(|digit| *digit != b'0');
        }
    }
    if content_length && transfer_encoding {
        return Decoded::Invalid(400);
    }
    Decoded::Request(Request {
        head_len,
        method_is_get: method == "GET",
        target: origin_form(target),
        close,
    })
}

/// The path and query of a request target; RFC 9112 3.2.2 has servers accept the absolute form
/// (`http://host/path?query`) as well.
fn origin_form(target: &str) -> &str {
    let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    else {
        return target;
    };
    rest.find(['/', '?']).map_or("/", |start| &rest[start..])
}

/// Writes the response to `request` into `out`; true when the connection closes after it.
fn answer(
    request: &Request<'_>,
    handler: &mut impl Handler,
    stopping: &AtomicBool,
    body: &mut BytesMut,
    out: &mut BytesMut,
) -> bool {
    if !request.method_is_get {
        write_response(
            out,
            405,
            Content::Plain,
            b"method not allowed",
            request.close,
        );
        return request.close;
    }
    let (path, query) = match request.target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (request.target, None),
    };
    body.clear();
    let answer = handler.get(path, query, body);
    // Read after the handler, which may have waited on the database through the stop: once
    // stopping, every answer says `Connection: close`, so a keep-alive client sends nothing
    // more into a connection that is about to go away.
    let close = request.close || stopping.load(Ordering::Relaxed);
    match answer {
        Answer::Reply(reply) => {
            write_response(out, reply.status, reply.content, &reply.body, close);
        }
        Answer::Rendered(content) => write_response(out, 200, content, body, close),
    }
    close
}

fn write_error(out: &mut BytesMut, status: u16) {
    write_response(out, status, Content::Plain, reason(status).as_bytes(), true);
}

fn write_response(out: &mut BytesMut, status: u16, content: Content, body: &[u8], close: bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: may\r\nContent-Type: ");
    out.extend_from_slice(content.mime().as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    append_date(out);
    if status == 405 {
        out.extend_from_slice(b"\r\nAllow: GET");
    }
    if close {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

thread_local! {
    /// This thread's Date value and the second it shows; each worker formats it once a second.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

fn append_date(out: &mut BytesMut) {
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    DATE.with_borrow_mut(|(shown, value)| {
        if *shown != second {
            value.copy_from_slice(httpdate::fmt_http_date(now).as_bytes());
            *shown = second;
        }
        out.extend_from_slice(value);
    });
}
