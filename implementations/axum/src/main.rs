//! The axum reference implementation of TFB's six test types, and its seventh, cached queries.
//!
//! Serves `/json`, `/plaintext`, `/db`, `/queries?queries=N`, `/fortunes`, `/updates?queries=N`
//! and `/cached-queries?count=N` (World rows from a process-wide cache that reads the table once,
//! at start-up), the database tests on a reads and an updates connection per worker thread,
//! shared by all of that worker's requests. The same database tests under `/pool/...` use a deadpool pool with one
//! checkout per request: the idiomatic setup, for comparison (`benchmark_config.json` test `pool`).
//!
//! Run it against a database loaded with `db-schema/`:
//!
//! ```sh
//! DATABASE_URL=postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1:5432/hello_world \
//!     PORT=8080 cargo run --release -p tfb-axum
//! ```

use std::{process::ExitCode, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::{FromRef, RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::Response,
    routing::get,
};
use hyper_util::service::TowerToHyperService;
use tfb_common::{
    cache::WorldCache,
    config::ServerConfig,
    db::{Database, PooledDatabase, SharedConnection},
    queries::{count_from_query_string, queries_from_query_string},
    reply::{Content, Reply},
};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = match ServerConfig::from_env() {
        Ok(config) => config,
        Err(error) => return exit_with(&error),
    };
    let pooled = match PooledDatabase::new(&config.database_url) {
        Ok(pooled) => pooled,
        Err(error) => return exit_with(&error),
    };
    let cache = Arc::new(WorldCache::new(pooled.clone()));
    let make_app = move |shared| {
        // Every worker asks; the first read fills the cache and the others wait for it. A database
        // that is not up yet leaves it empty for the first request to fill.
        let filling = Arc::clone(&cache);
        tokio::spawn(async move { filling.fill().await });
        app(AppState {
            shared,
            pooled: pooled.clone(),
            cache: Arc::clone(&cache),
        })
    };
    let make_service = move |shared| TowerToHyperService::new(make_app(shared));
    match tfb_hyper_serve::run("tfb-axum", &config, make_service) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit_with(&error.to_string()),
    }
}

fn app(state: AppState) -> Router {
    Router::new()
        .route("/json", get(json))
        .route("/plaintext", get(plaintext))
        .merge(database_routes::<Arc<SharedConnection>>())
        .route("/cached-queries", get(cached_queries))
        .nest("/pool", database_routes::<PooledDatabase>())
        .fallback(not_found)
        .with_state(state)
}

/// The four database types on one layout: at the root on the shared connections, under `/pool`
/// on the pool.
fn database_routes<D>() -> Router<AppState>
where
    D: Database + Clone + FromRef<AppState>,
{
    Router::new()
        .route("/db", get(db::<D>))
        .route("/queries", get(queries::<D>))
        .route("/fortunes", get(fortunes::<D>))
        .route("/updates", get(updates::<D>))
}

async fn json() -> Response {
    respond(Reply::hello_json())
}

async fn plaintext() -> Response {
    respond(Reply::hello_plaintext())
}

async fn db<D: Database>(State(database): State<D>) -> Response {
    respond(Reply::json(database.world().await))
}

async fn queries<D: Database>(State(database): State<D>, RawQuery(query): RawQuery) -> Response {
    let count = queries_from_query_string(query.as_deref());
    respond(Reply::json(database.worlds(count).await))
}

async fn fortunes<D: Database>(State(database): State<D>) -> Response {
    respond(Reply::html(database.fortunes_page().await))
}

async fn updates<D: Database>(State(database): State<D>, RawQuery(query): RawQuery) -> Response {
    let count = queries_from_query_string(query.as_deref());
    respond(Reply::json(database.update_worlds(count).await))
}

async fn cached_queries(
    State(cache): State<Arc<WorldCache>>,
    RawQuery(query): RawQuery,
) -> Response {
    let count = count_from_query_string(query.as_deref());
    respond(Reply::json(cache.worlds(count).await))
}

async fn not_found() -> Response {
    respond(Reply::not_found())
}

/// The reply as an axum response, with the `Server` header every response carries; hyper adds
/// `Date` and `Content-Length`.
fn respond(reply: Reply) -> Response {
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
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
    eprintln!("tfb-axum: {error}");
    ExitCode::FAILURE
}

/// One per worker: the worker's own shared connection, the process-wide pool and World cache.
/// Each handler takes only the part it uses.
#[derive(Clone)]
struct AppState {
    shared: Arc<SharedConnection>,
    pooled: PooledDatabase,
    cache: Arc<WorldCache>,
}

impl FromRef<AppState> for Arc<SharedConnection> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.shared)
    }
}

impl FromRef<AppState> for PooledDatabase {
    fn from_ref(state: &AppState) -> Self {
        state.pooled.clone()
    }
}

impl FromRef<AppState> for Arc<WorldCache> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.cache)
    }
}

const SERVER: HeaderValue = HeaderValue::from_static("axum");
const JSON: HeaderValue = HeaderValue::from_static(Content::Json.mime());
const HTML: HeaderValue = HeaderValue::from_static(Content::Html.mime());
const PLAIN: HeaderValue = HeaderValue::from_static(Content::Plain.mime());
