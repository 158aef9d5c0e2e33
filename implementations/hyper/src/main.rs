//! The hyper reference implementation of TFB's six test types, with no framework on top: one
//! `service_fn` that routes on the path. What it costs is what every framework built on hyper
//! (axum among them) pays before its own routing, extraction and middleware.
//!
//! Serves `/json`, `/plaintext`, `/db`, `/queries?queries=N`, `/fortunes` and
//! `/updates?queries=N`, the database tests on a reads and an updates connection per worker
//! thread, shared by all of that worker's requests; every other path is 404, every method but GET
//! and HEAD is 405.
//!
//! Run it against a database loaded with `db-schema/`:
//!
//! ```sh
//! DATABASE_URL=postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1:5432/hello_world \
//!     PORT=8080 cargo run --release -p tfb-hyper
//! ```

use std::{convert::Infallible, process::ExitCode, sync::Arc};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::Incoming,
    header::{self, HeaderValue},
    service::service_fn,
};
use tfb_common::{
    config::ServerConfig,
    db::{Database, SharedConnection},
    queries::queries_from_query_string,
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
    let make_service = |database: Arc<SharedConnection>| {
        service_fn(move |request| route(Arc::clone(&database), request))
    };
    match tfb_hyper_serve::run("tfb-hyper", &config, make_service) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit_with(&error.to_string()),
    }
}

/// The whole router: a match on the path.
async fn route(
    database: Arc<SharedConnection>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return Ok(method_not_allowed());
    }
    let query = request.uri().query();
    let reply = match request.uri().path() {
        "/json" => Reply::hello_json(),
        "/plaintext" => Reply::hello_plaintext(),
        "/db" => Reply::json(database.world().await),
        "/queries" => Reply::json(database.worlds(queries_from_query_string(query)).await),
        "/fortunes" => Reply::html(database.fortunes_page().await),
        "/updates" => Reply::json(
            database
                .update_worlds(queries_from_query_string(query))
                .await,
        ),
        _ => Reply::not_found(),
    };
    Ok(respond(reply))
}

/// The reply as a hyper response, with the `Server` header every response carries; hyper adds
/// `Date` and `Content-Length`.
fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(header::SERVER, SERVER);
    headers.insert(header::CONTENT_TYPE, content_type(reply.content));
    response
}

fn method_not_allowed() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    let headers = response.headers_mut();
    headers.insert(header::SERVER, SERVER);
    headers.insert(header::ALLOW, ALLOWED);
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
    eprintln!("tfb-hyper: {error}");
    ExitCode::FAILURE
}

const SERVER: HeaderValue = HeaderValue::from_static("hyper");
const ALLOWED: HeaderValue = HeaderValue::from_static("GET, HEAD");
const JSON: HeaderValue = HeaderValue::from_static(Content::Json.mime());
const HTML: HeaderValue = HeaderValue::from_static(Content::Html.mime());
const PLAIN: HeaderValue = HeaderValue::from_static(Content::Plain.mime());
