//! The actix-web reference implementation of TFB's six test types.
//!
//! Serves `/json`, `/plaintext`, `/db`, `/queries?queries=N`, `/fortunes` and
//! `/updates?queries=N`, the database tests on a reads and an updates connection per worker (built
//! in actix's per-worker app factory) shared by all of that worker's requests. The same database tests under
//! `/pool/...` use a deadpool pool with one checkout per request: the idiomatic setup, for
//! comparison (`benchmark_config.json` test `pool`). One worker per logical CPU, where actix's
//! default is one per physical core.
//!
//! Run it against a database loaded with `db-schema/`:
//!
//! ```sh
//! DATABASE_URL=postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1:5432/hello_world \
//!     PORT=8080 cargo run --release -p tfb-actix
//! ```

use std::process::ExitCode;

use actix_web::{
    App, HttpRequest, HttpResponse, HttpServer,
    body::BoxBody,
    http::{
        KeepAlive, StatusCode,
        header::{self, HeaderValue},
    },
    web::{self, Data},
};
use tfb_common::{
    config::{CLIENT_HEAD_TIMEOUT, ServerConfig},
    db::{Database, PooledDatabase, SharedConnection},
    queries::queries_from_query_string,
    reply::{Content, Reply},
};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long in-flight requests get to finish after a stop signal, in seconds.
const DRAIN_TIMEOUT_SECS: u64 = 10;
/// Pending connections per listener; the kernel caps it at `net.core.somaxconn`.
const BACKLOG: u32 = 4096;

fn main() -> ExitCode {
    let config = match ServerConfig::from_env() {
        Ok(config) => config,
        Err(error) => return exit_with(&error),
    };
    let pooled = match PooledDatabase::new(&config.database_url) {
        Ok(pooled) => pooled,
        Err(error) => return exit_with(&error),
    };
    // actix refuses a port in use by itself, but without naming it.
    if let Err(error) = config.ensure_port_free() {
        return exit_with(&error);
    }
    match actix_web::rt::System::new().block_on(serve(config, pooled)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit_with(&error.to_string()),
    }
}

async fn serve(config: ServerConfig, pooled: PooledDatabase) -> std::io::Result<()> {
    let database_url = config.database_url.clone();
    let server = HttpServer::new(move || {
        // Runs once on each worker, so every worker gets a connection of its own.
        let shared = Data::new(
            SharedConnection::new(&database_url).expect("DATABASE_URL was validated at start-up"),
        );
        let connecting = Data::clone(&shared);
        // Connect before the first request arrives; if the database is away, requests get 503
        // until it is back.
        actix_web::rt::spawn(async move { connecting.connect().await });
        App::new()
            .app_data(shared)
            .app_data(Data::new(pooled.clone()))
            .route("/json", web::get().to(json))
            .route("/plaintext", web::get().to(plaintext))
            .configure(database_routes::<SharedConnection>)
            .service(web::scope("/pool").configure(database_routes::<PooledDatabase>))
            .default_service(web::to(not_found))
    })
    .workers(config.workers)
    .backlog(BACKLOG)
    .keep_alive(KeepAlive::Timeout(CLIENT_HEAD_TIMEOUT))
    .client_request_timeout(CLIENT_HEAD_TIMEOUT)
    .shutdown_timeout(DRAIN_TIMEOUT_SECS)
    .bind(config.listen)?
    .run();
    println!(
        "tfb-actix: listening on http://{} with {} workers",
        config.listen, config.workers
    );
    server.await
}

/// The four database types on one layout: at the root on the worker's shared connection, under
/// `/pool` on the pool.
fn database_routes<D: Database>(config: &mut web::ServiceConfig) {
    config
        .route("/db", web::get().to(db::<D>))
        .route("/queries", web::get().to(queries::<D>))
        .route("/fortunes", web::get().to(fortunes::<D>))
        .route("/updates", web::get().to(updates::<D>));
}

async fn json() -> HttpResponse {
    respond(Reply::hello_json())
}

async fn plaintext() -> HttpResponse {
    respond(Reply::hello_plaintext())
}

async fn db<D: Database>(database: Data<D>) -> HttpResponse {
    respond(Reply::json(database.world().await))
}

async fn queries<D: Database>(request: HttpRequest, database: Data<D>) -> HttpResponse {
    let count = queries_from_query_string(Some(request.query_string()));
    respond(Reply::json(database.worlds(count).await))
}

async fn fortunes<D: Database>(database: Data<D>) -> HttpResponse {
    respond(Reply::html(database.fortunes_page().await))
}

async fn updates<D: Database>(request: HttpRequest, database: Data<D>) -> HttpResponse {
    let count = queries_from_query_string(Some(request.query_string()));
    respond(Reply::json(database.update_worlds(count).await))
}

async fn not_found() -> HttpResponse {
    respond(Reply::not_found())
}

/// The reply as an actix response, with the `Server` header every response carries; actix adds
/// `Date` and `Content-Length`.
fn respond(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::with_body(status, BoxBody::new(reply.body));
    let headers = response.headers_mut();
    headers.insert(header::SERVER, SERVER);
    headers.insert(header::CONTENT_TYPE, content_type(reply.content));
    response
}

const fn content_type(content: Content) -> HeaderValue {
    match content {
        Content::Json => JSON,
        Content::Html => HTML,
        Content::Plain => PLAIN,
    }
}

fn exit_with(error: &str) -> ExitCode {
    eprintln!("tfb-actix: {error}");
    ExitCode::FAILURE
}

const SERVER: HeaderValue = HeaderValue::from_static("actix");
const JSON: HeaderValue = HeaderValue::from_static(Content::Json.mime());
const HTML: HeaderValue = HeaderValue::from_static(Content::Html.mime());
const PLAIN: HeaderValue = HeaderValue::from_static(Content::Plain.mime());
