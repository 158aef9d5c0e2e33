//! Thread-per-core serving for axum: one current-thread Tokio runtime per worker, each accepting
//! on its own `SO_REUSEPORT` listener and owning its own database connection, so a request never
//! leaves the thread that accepted it. hyper serves HTTP/1 with `TCP_NODELAY`; the responses to
//! pipelined requests go out in one write per batch ([`BatchedWrites`]). SIGTERM or SIGINT stops
//! accepting, lets in-flight requests finish, then returns.

use std::{io, net::SocketAddr, sync::Arc, thread, time::Duration};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
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

/// Serves until SIGTERM or SIGINT. `make_app` builds each worker's router around that worker's
/// own database connection.
pub fn run<F>(config: &ServerConfig, make_app: F) -> io::Result<()>
where
    F: Fn(Arc<SharedConnection>) -> Router + Send + Sync + 'static,
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
    let make_app = Arc::new(make_app);
    let (stop, stopped) = watch::channel(false);
    let mut workers = Vec::with_capacity(config.workers);
    for index in 0..config.workers {
        let listener = reuseport_listener(config.listen)?;
        let database_url = config.database_url.clone();
        let make_app = Arc::clone(&make_app);
        let stopped = stopped.clone();
        let worker = thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || serve_worker(listener, &database_url, &*make_app, stopped))?;
        workers.push(worker);
    }
    println!(
        "tfb-axum: listening on http://{} with {} workers",
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

fn serve_worker(
    listener: std::net::TcpListener,
    database_url: &str,
    make_app: &(dyn Fn(Arc<SharedConnection>) -> Router + Send + Sync),
    mut stopped: watch::Receiver<bool>,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shared = Arc::new(SharedConnection::new(database_url).map_err(io::Error::other)?);
        // Connect before accepting, so the first requests do not queue behind the handshake. A
        // database that is away now is not fatal: requests get 503 until it is back.
        let _ = shared.connect().await;
        let app = make_app(shared);
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
                    let service = TowerToHyperService::new(app.clone());
                    let connection = graceful.watch(http.serve_connection(TokioIo::new(BatchedWrites::new(stream)), service));
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
