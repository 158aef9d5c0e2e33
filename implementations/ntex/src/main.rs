//! The ntex reference implementation of TFB's six test types.
//!
//! Serves `/json`, `/plaintext`, `/db`, `/queries?queries=N`, `/fortunes` and
//! `/updates?queries=N` with ntex's web framework on its Tokio runtime, one worker per CPU, the
//! database tests on a reads and an updates connection per worker, built as the worker's
//! application state and shared by all of that worker's requests. Every response, ntex's own
//! 404 and 405 included, carries the `Server` header.
//!
//! The stop signal is handled here rather than by ntex, so that the answers still in flight when
//! it comes say `Connection: close` before ntex stops gracefully: ntex would keep those
//! connections open for requests it no longer serves.
//!
//! The bodies come from `tfb-common` as `bytes::Bytes`; ntex has its own buffer type, so each
//! body is handed over as a `Vec<u8>` (without a copy when the buffer is not shared).
//!
//! Run it against a database loaded with `db-schema/`:
//!
//! ```sh
//! DATABASE_URL=postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1:5432/hello_world \
//!     PORT=8080 cargo run --release -p tfb-ntex
//! ```

use std::{
    io,
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
    thread,
};

use ntex::{
    SharedCfg,
    http::{
        HttpServiceConfig, StatusCode,
        header::{CONTENT_TYPE, HeaderValue, SERVER},
    },
    time::Seconds,
    web::{self, App, HttpRequest, HttpResponse, middleware::DefaultHeaders, types::State},
};
use tfb_common::{
    config::{CLIENT_HEAD_TIMEOUT, MAX_REQUEST_HEAD, ServerConfig},
    db::{Database, SharedConnection},
    queries::queries_from_query_string,
    reply::{Content, Reply},
    signals::StopSignals,
};

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
    // Installed before the ready line, so a stop signal can never find the default handler.
    let signals = match StopSignals::install() {
        Ok(signals) => signals,
        Err(error) => return exit_with(&format!("installing signal handlers: {error}")),
    };
    match serve(config, signals) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit_with(&error.to_string()),
    }
}

/// Runs ntex's system until a stop signal, then lets the requests in flight finish.
#[ntex::main]
async fn serve(config: ServerConfig, mut signals: StopSignals) -> io::Result<()> {
    let database_url = config.database_url.clone();
    let server = web::server(async move || {
        let database_url = database_url.clone();
        App::new()
            // Built once per worker, on its runtime: each worker owns its connections.
            .state_factory(async move || {
                let shared = SharedConnection::new(&database_url)?;
                // A database that is away now is not fatal: requests get 503 until it is back.
                let _ = shared.connect().await;
                Ok::<_, String>(shared)
            })
            .middleware(DefaultHeaders::new().header(SERVER, SERVER_NAME))
            .route("/json", web::get().to(json))
            .route("/plaintext", web::get().to(plaintext))
            .route("/db", web::get().to(db))
            .route("/queries", web::get().to(queries))
            .route("/fortunes", web::get().to(fortunes))
            .route("/updates", web::get().to(updates))
    })
    .workers(config.workers)
    .backlog(BACKLOG)
    .disable_signals()
    .config(
        SharedCfg::new("tfb-ntex").add(
            HttpServiceConfig::new()
                .set_keepalive_timeout(Seconds(CLIENT_HEAD_TIMEOUT.as_secs() as u16))
                .set_client_timeout(Seconds(CLIENT_HEAD_TIMEOUT.as_secs() as u16))
                .set_max_buf_size(4 * MAX_REQUEST_HEAD),
        ),
    )
    .bind(config.listen)?
    .run();
    println!(
        "tfb-ntex: listening on http://{} with {} workers",
        config.listen, config.workers
    );
    let stopper = server.clone();
    thread::spawn(move || {
        signals.wait();
        STOPPING.store(true, Ordering::Relaxed);
        signals.block_on(stopper.stop(true));
    });
    server.await
}

async fn json() -> HttpResponse {
    respond(Reply::hello_json())
}

async fn plaintext() -> HttpResponse {
    respond(Reply::hello_plaintext())
}

async fn db(database: State<SharedConnection>) -> HttpResponse {
    respond(Reply::json(database.world().await))
}

async fn queries(database: State<SharedConnection>, request: HttpRequest) -> HttpResponse {
    let count = queries_from_query_string(request.uri().query());
    respond(Reply::json(database.worlds(count).await))
}

async fn fortunes(database: State<SharedConnection>) -> HttpResponse {
    respond(Reply::html(database.fortunes_page().await))
}

async fn updates(database: State<SharedConnection>, request: HttpRequest) -> HttpResponse {
    let count = queries_from_query_string(request.uri().query());
    respond(Reply::json(database.update_worlds(count).await))
}

/// The reply as an ntex response; ntex adds `Date` and `Content-Length`.
fn respond(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    builder.header(CONTENT_TYPE, content_type(reply.content));
    if STOPPING.load(Ordering::Relaxed) {
        // The answers still in flight at a stop close their connections (ntex writes the
        // `Connection` header from this, never from the headers a response carries).
        builder.force_close();
    }
    builder.body(Vec::from(reply.body))
}

const fn content_type(content: Content) -> HeaderValue {
    match content {
        Content::Json => JSON,
        Content::Html => HTML,
        Content::Plain => PLAIN,
    }
}

fn exit_with(error: &str) -> ExitCode {
    eprintln!("tfb-ntex: {error}");
    ExitCode::FAILURE
}

/// Set once a stop signal came: every answer from then on closes its connection.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Pending connections; the kernel caps it at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;
const SERVER_NAME: HeaderValue = HeaderValue::from_static("ntex");
const JSON: HeaderValue = HeaderValue::from_static(Content::Json.mime());
const HTML: HeaderValue = HeaderValue::from_static(Content::Html.mime());
const PLAIN: HeaderValue = HeaderValue::from_static(Content::Plain.mime());
