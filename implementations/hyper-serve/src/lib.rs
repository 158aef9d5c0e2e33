//! Thread-per-core HTTP/1 serving on hyper, for every implementation built on it (axum's router
//! and a bare hyper service alike): one current-thread Tokio runtime per worker, each accepting
//! on its own `SO_REUSEPORT` listener and owning its own database connection, so a request never
//! leaves the thread that accepted it. hyper serves HTTP/1 with `TCP_NODELAY`; the responses to
//! pipelined requests go out in one write per batch ([`BatchedWrites`]). SIGTERM or SIGINT stops
//! accepting, lets in-flight requests finish, then returns.

mod batched_writes;

use std::{error::Error, io, net::SocketAddr, sync::Arc, thread, time::Duration};

use hyper::{
    Request, Response,
    body::{Body, Incoming},
    server::conn::http1,
    service::Service,
};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use socket2::{Domain, Protocol, Socket, Type};
use tfb_common::{
    config::{CLIENT_HEAD_TIMEOUT, MAX_REQUEST_HEAD, ServerConfig},
    db::SharedConnection,
};
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
    sync::watch,
};

use crate::batched_writes::BatchedWrites;

/// How long in-flight requests get to finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a connection buffers: room for a full head and a deep pipeline of small requests.
const READ_BUFFER_LIMIT: usize = 4 * MAX_REQUEST_HEAD;
/// Pending connections per listener; the kernel caps it at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;

/// Serves until SIGTERM or SIGINT; `name` (the binary's) starts the ready line. `make_service`
/// builds each worker's service around that worker's own database connection, on the worker's
/// runtime; each connection gets a clone of it.
pub fn run<F, S, B>(name: &str, config: &ServerConfig, make_service: F) -> io::Result<()>
where
    F: Fn(Arc<SharedConnection>) -> S + Send + Sync + 'static,
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Installed before the ready line, so a stop signal can never find the default handler.
    let (mut terminate, mut interrupt) = signals.block_on(async {
        Ok::<_, io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    config.ensure_port_free().map_err(io::Error::other)?;
    let make_service = Arc::new(make_service);
    let (stop, stopped) = watch::channel(false);
    let mut workers = Vec::with_capacity(config.workers);
    for index in 0..config.workers {
        let listener = reuseport_listener(config.listen)?;
        let database_url = config.database_url.clone();
        let make_service = Arc::clone(&make_service);
        let stopped = stopped.clone();
        let worker = thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || serve_worker(listener, &database_url, &*make_service, stopped))?;
        workers.push(worker);
    }
    println!(
        "{name}: listening on http://{} with {} workers",
        config.listen, config.workers
    );
    signals.block_on(async {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    });
    let _ = stop.send(true);
    for worker in workers {
        match worker.join() {
            Ok(result) => result?,
            Err(_) => return Err(io::Error::other("a worker thread panicked")),
        }
    }
    Ok(())
}

fn serve_worker<S, B>(
    listener: std::net::TcpListener,
    database_url: &str,
    make_service: &(dyn Fn(Arc<SharedConnection>) -> S + Send + Sync),
    mut stopped: watch::Receiver<bool>,
) -> io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn Error + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shared = Arc::new(SharedConnection::new(database_url).map_err(io::Error::other)?);
        // Connect before accepting, so the first requests do not queue behind the handshake. A
        // database that is away now is not fatal: requests get 503 until it is back.
        let _ = shared.connect().await;
        let service = make_service(shared);
        let listener = TcpListener::from_std(listener)?;
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .half_close(true)
            .header_read_timeout(CLIENT_HEAD_TIMEOUT)
            .max_header_size(MAX_REQUEST_HEAD)
            // hyper's default (~400 KB) lets every slow client park that much memory.
            .max_buf_size(READ_BUFFER_LIMIT);
        let graceful = GracefulShutdown::new();
        loop {
            tokio::select! {
                biased;
                _ = stopped.changed() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        // Out of file descriptors, most likely: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let io = TokioIo::new(BatchedWrites::new(stream));
                    let connection = graceful.watch(http.serve_connection(io, service.clone()));
                    tokio::spawn(async move {
                        // A client that vanishes or sends garbage ends only its own connection.
                        let _ = connection.await;
                    });
                }
            }
        }
        drop(listener);
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
        Ok(())
    })
}

fn reuseport_listener(address: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
