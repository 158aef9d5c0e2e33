//! A blocking HTTP/1.1 client for the end-to-end tests: exact bytes out (pipelined batches,
//! malformed request lines), and responses exactly as the server framed them, read by the
//! conformance crate's raw response reader.

use std::{future::Future, io, net::SocketAddr, sync::OnceLock, time::Duration};

use conformance::{
    client::{FetchError, ResponseReader},
    types::ACCEPT_JSON,
};
use tokio::{io::AsyncWriteExt, net::TcpStream, runtime::Runtime};

use crate::tcp_table;

pub use conformance::client::Response;

/// No test waits longer than this for a server; a hang becomes an error.
pub const TIMEOUT: Duration = Duration::from_secs(10);

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

/// The runtime every connection's I/O runs on. Each call blocks its own thread on it, so the
/// tests stay blocking and run in parallel without a runtime per connection.
fn runtime() -> io::Result<&'static Runtime> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("harness-http")
        .enable_all()
        .build()?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// One keep-alive connection.
pub struct Connection {
    runtime: &'static Runtime,
    reader: ResponseReader,
}

impl Connection {
    pub fn open(address: SocketAddr) -> io::Result<Self> {
        let runtime = runtime()?;
        let stream = runtime.block_on(within_timeout(async {
            let stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        }))?;
        Ok(Self {
            runtime,
            reader: ResponseReader::new(stream),
        })
    }

    /// This end's address, by which the server's side of the connection can be found.
    pub fn local_address(&mut self) -> io::Result<SocketAddr> {
        self.reader.stream().local_addr()
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.reader.stream();
        self.runtime
            .block_on(within_timeout(stream.write_all(bytes)))
    }

    /// Shuts this end's write side, as a client does that has sent all it will send and
    /// waits for the answers (a half-close).
    pub fn finish_sending(&mut self) -> io::Result<()> {
        let stream = self.reader.stream();
        self.runtime.block_on(within_timeout(stream.shutdown()))
    }

    /// Sends `bytes` and half-closes in one TCP segment (corked until the shutdown), so the
    /// server sees the request and the end of its input in the same read, whatever the timing.
    pub fn send_and_finish(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.reader.stream();
        socket2::SockRef::from(&*stream).set_tcp_cork(true)?;
        self.runtime.block_on(within_timeout(async {
            stream.write_all(bytes).await?;
            stream.shutdown().await
        }))
    }

    /// Whether the server keeps the connection open, sending nothing, for `wait`: false once it
    /// closes (or resets) it. A byte it sends is an error: nothing was asked.
    pub fn still_open_after(&mut self, wait: Duration) -> io::Result<bool> {
        let reader = &mut self.reader;
        self.runtime.block_on(async {
            match tokio::time::timeout(wait, reader.read_until_closed()).await {
                Err(_) => Ok(true),
                Ok(Ok(rest)) if rest.is_empty() => Ok(false),
                Ok(Ok(rest)) => Err(io::Error::other(format!(
                    "the server sent {:?} unasked",
                    String::from_utf8_lossy(&rest[..rest.len().min(60)])
                ))),
                Ok(Err(error)) => Err(to_io(error)),
            }
        })
    }

    pub fn get(&mut self, path: &str) -> io::Result<Response> {
        self.send(&get_request(path))?;
        self.read_response()
    }

    /// Reads one response framed by `Content-Length` or chunked encoding (or, lacking both, by
    /// the connection closing).
    pub fn read_response(&mut self) -> io::Result<Response> {
        let reader = &mut self.reader;
        self.runtime.block_on(within_timeout(async {
            reader.read_response().await.map_err(to_io)
        }))
    }

    /// Everything the server sends until it closes the connection.
    pub fn read_until_closed(&mut self) -> io::Result<Vec<u8>> {
        let reader = &mut self.reader;
        self.runtime.block_on(within_timeout(async {
            reader.read_until_closed().await.map_err(to_io)
        }))
    }
}

/// How many bytes the server has not yet read on the loopback connection from `client` to
/// `server`, from the kernel's table: zero once the server has taken the request off the socket.
/// `None` when the connection is not in the table.
pub fn unread_by_server(server: SocketAddr, client: SocketAddr) -> io::Result<Option<u64>> {
    Ok(tcp_table::sockets()?
        .into_iter()
        .find(|socket| socket.local_port == server.port() && socket.remote_port == client.port())
        .map(|socket| socket.unread))
}

async fn within_timeout<T>(work: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(TIMEOUT, work).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {TIMEOUT:?}"),
        )
    })?
}

fn to_io(error: FetchError) -> io::Error {
    io::Error::other(error.to_string())
}
