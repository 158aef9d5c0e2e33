//! The xitca-web reference implementation of TFB's six test types.
//!
//! Serves `/json`, `/plaintext`, `/db`, `/queries?queries=N`, `/fortunes` and
//! `/updates?queries=N` with xitca-web's router and handlers on its own server (a thread-per-core
//! runtime per worker), the database tests on a reads and an updates connection per worker, built
//! as the worker's application state and shared by all of that worker's requests. Every response,
//! the router's 404 and 405 included, carries the `Server` header, added by one middleware, which
//! also refuses a `Content-Length` that is not plain digits (xitca-http reads `+5` as 5). The
//! HTTP/1 service is built here rather than by xitca-web's `serve()`, so that xitca-http reads
//! from a connection whose reads stop at a short read (`short_reads`).
//!
//! xitca-server keeps its listening socket open until every connection has drained, so a stopped
//! server would leave new clients waiting in the kernel's backlog; the stop signal is handled
//! here instead: the listener is shut (new clients are refused at once), then xitca-server is
//! told to stop gracefully.
//!
//! Run it against a database loaded with `db-schema/`:
//!
//! ```sh
//! DATABASE_URL=postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1:5432/hello_world \
//!     PORT=8080 cargo run --release -p tfb-xitca-web
//! ```

use std::{
    convert::Infallible,
    io,
    net::{Shutdown, SocketAddr, TcpListener},
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
    thread,
};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tfb_common::{
    config::{CLIENT_HEAD_TIMEOUT, MAX_REQUEST_HEAD, ServerConfig},
    db::{Database, SharedConnection},
    queries::queries_from_query_string,
    reply::{Content, Reply},
    signals::StopSignals,
};
use xitca_http::{HttpServiceBuilder, config::HttpServiceConfig};
use xitca_web::{
    App, WebContext,
    body::ResponseBody,
    error::Error,
    handler::{handler_service, state::StateRef, uri::UriRef},
    http::{
        StatusCode, WebResponse,
        header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, SERVER},
    },
    route::get,
    service::{Service, ServiceExt},
};

use crate::short_reads::ShortReadAcceptor;

mod short_reads;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = match ServerConfig::from_env() {
        Ok(config) => config,
        Err(error) => return exit_with(&error),
    };
    if let Err(error) = config.ensure_port_free() {
        return exit_with(&error);
    }
    let listener = match listener(config.listen) {
        Ok(listener) => listener,
        Err(error) => return exit_with(&format!("listening on {}: {error}", config.listen)),
    };
    // The same socket, kept to shut it when a stop signal comes.
    let stopper = match listener.try_clone() {
        Ok(stopper) => stopper,
        Err(error) => return exit_with(&error.to_string()),
    };
    // Installed before the ready line, so a stop signal can never find the default handler.
    let signals = match StopSignals::install() {
        Ok(signals) => signals,
        Err(error) => return exit_with(&format!("installing signal handlers: {error}")),
    };
    let database_url = config.database_url.clone();
    let app = App::new()
        // Built once per worker, on its runtime: each worker owns its connections.
        .with_async_state(move || {
            let database_url = database_url.clone();
            async move {
                let shared = SharedConnection::new(&database_url)?;
                // Connect before serving; a database that is away now is not fatal: requests
                // get 503 until it is back.
                let _ = shared.connect().await;
                Ok::<_, String>(shared)
            }
        })
        .at("/json", get(handler_service(json)))
        .at("/plaintext", get(handler_service(plaintext)))
        .at("/db", get(handler_service(db)))
        .at("/queries", get(handler_service(queries)))
        .at("/fortunes", get(handler_service(fortunes)))
        .at("/updates", get(handler_service(updates)))
        .enclosed_fn(server_header)
        .finish();
    // xitca-web's own `serve()` would build the same HTTP/1 service on xitca-http's stream,
    // which asks the kernel once more per request; ours comes from the acceptor.
    let http = HttpServiceBuilder::h1()
        .config(
            HttpServiceConfig::new()
                .max_read_buf_size::<{ 4 * MAX_REQUEST_HEAD }>()
                .request_head_timeout(CLIENT_HEAD_TIMEOUT)
                .keep_alive_timeout(CLIENT_HEAD_TIMEOUT),
        )
        .with_tls(ShortReadAcceptor);
    let mut server = xitca_server::Builder::new()
        .worker_threads(config.workers)
        .disable_signal()
        .listen("tfb-xitca-web", listener, app.enclosed(http))
        .build();
    let handle = match server.handle() {
        Ok(handle) => handle,
        Err(error) => return exit_with(&format!("serving on {}: {error}", config.listen)),
    };
    println!(
        "tfb-xitca-web: listening on http://{} with {} workers",
        config.listen, config.workers
    );
    thread::spawn(move || {
        let mut signals = signals;
        signals.wait();
        STOPPING.store(true, Ordering::Relaxed);
        // Shut, not just stop accepting: the kernel refuses new clients from now on.
        let _ = SockRef::from(&stopper).shutdown(Shutdown::Both);
        handle.stop(true);
    });
    match server.wait() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit_with(&error.to_string()),
    }
}

async fn json() -> WebResponse {
    respond(Reply::hello_json())
}

async fn plaintext() -> WebResponse {
    respond(Reply::hello_plaintext())
}

async fn db(StateRef(database): StateRef<'_, SharedConnection>) -> WebResponse {
    respond(Reply::json(database.world().await))
}

async fn queries(
    StateRef(database): StateRef<'_, SharedConnection>,
    UriRef(uri): UriRef<'_>,
) -> WebResponse {
    let count = queries_from_query_string(uri.query());
    respond(Reply::json(database.worlds(count).await))
}

async fn fortunes(StateRef(database): StateRef<'_, SharedConnection>) -> WebResponse {
    respond(Reply::html(database.fortunes_page().await))
}

async fn updates(
    StateRef(database): StateRef<'_, SharedConnection>,
    UriRef(uri): UriRef<'_>,
) -> WebResponse {
    let count = queries_from_query_string(uri.query());
    respond(Reply::json(database.update_worlds(count).await))
}

/// Every response with the `Server` header: the handlers' and the router's own (404, 405), which
/// come back as errors and are rendered here; `Connection: close` on each once stopping; and a
/// request whose `Content-Length` is not plain digits refused with 400.
async fn server_header<S>(
    next: &S,
    mut context: WebContext<'_, SharedConnection>,
) -> Result<WebResponse, Infallible>
where
    S: for<'r> Service<WebContext<'r, SharedConnection>, Response = WebResponse, Error = Error>,
{
    let plain_length = context
        .req()
        .headers()
        .get_all(CONTENT_LENGTH)
        .iter()
        .all(|value| !value.is_empty() && value.as_bytes().iter().all(u8::is_ascii_digit));
    let mut response = if !plain_length {
        let mut refused = WebResponse::new(ResponseBody::none());
        *refused.status_mut() = StatusCode::BAD_REQUEST;
        refused.headers_mut().insert(CONNECTION, CLOSE);
        refused
    } else {
        match next.call(context.reborrow()).await {
            Ok(response) => response,
            Err(error) => error.call(context).await?,
        }
    };
    let headers = response.headers_mut();
    headers.insert(SERVER, SERVER_NAME);
    if STOPPING.load(Ordering::Relaxed) {
        // The answers still in flight at a stop tell their clients not to send more.
        headers.insert(CONNECTION, CLOSE);
    }
    Ok(response)
}

/// The reply as a response; xitca-web adds `Date` and `Content-Length`.
fn respond(reply: Reply) -> WebResponse {
    let mut response = WebResponse::new(ResponseBody::bytes(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, content_type(reply.content));
    response
}

/// The listening socket: backlog as deep as the kernel allows, so a burst of connections is not
/// dropped while the workers catch up.
fn listener(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

const fn content_type(content: Content) -> HeaderValue {
    match content {
        Content::Json => JSON,
        Content::Html => HTML,
        Content::Plain => PLAIN,
    }
}

fn exit_with(error: &str) -> ExitCode {
    eprintln!("tfb-xitca-web: {error}");
    ExitCode::FAILURE
}

/// Set once a stop signal came: every answer from then on closes its connection.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Pending connections; the kernel caps it at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;
const SERVER_NAME: HeaderValue = HeaderValue::from_static("xitca-web");
const CLOSE: HeaderValue = HeaderValue::from_static("close");
const JSON: HeaderValue = HeaderValue::from_static(Content::Json.mime());
const HTML: HeaderValue = HeaderValue::from_static(Content::Html.mime());
const PLAIN: HeaderValue = HeaderValue::from_static(Content::Plain.mime());
