//! The may_minihttp reference implementation of TFB's six test types.
//!
//! Serves `/json`, `/plaintext`, `/db`, `/queries?queries=N`, `/fortunes` and
//! `/updates?queries=N` with the `may_minihttp` crate: one coroutine per connection, every
//! request already read answered before one write; per worker a reads and an updates PostgreSQL
//! connection (tfb-may-postgres) shared by the connections on that worker, picked by the
//! service factory's id; JSON and the yarte fortunes page written straight into the
//! framework's body buffer.
//!
//! Where may_minihttp 0.1.11 cannot meet the implementation contract (its `contract.json` lists
//! each clause), it behaves as the framework does, and the tests assert that behaviour.
//!
//! Run it against a database loaded with `db-schema/`:
//!
//! ```sh
//! DATABASE_URL=postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1:5432/hello_world \
//!     PORT=8080 cargo run --release -p tfb-may-minihttp
//! ```

mod db;
mod fortunes;

use std::{io, process::ExitCode};

use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};
use nix::sys::signal::{SigSet, Signal};
use tfb_common::{
    config::{MAX_REQUEST_HEAD, ServerConfig},
    json,
    queries::queries_from_query_string,
    reply::{Content, HELLO_WORLD, Reply},
};
use tfb_may_postgres::Worker;

use crate::db::{Database, DbError};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Coroutine stacks, in machine words (64 KiB): ample for the deepest handler (updates with 500
/// rows keeps its rows on the heap), and only touched pages cost memory.
const STACK_WORDS: usize = 0x2000;

fn main() -> ExitCode {
    let config = match ServerConfig::from_env() {
        Ok(config) => config,
        Err(error) => return exit_with(&error),
    };
    // may binds with SO_REUSEPORT, which would let a second instance share the port.
    if let Err(error) = config.ensure_port_free() {
        return exit_with(&error);
    }
    // Blocked before may starts its threads, so they inherit the mask and only `wait` below
    // receives these signals.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    if let Err(error) = signals.thread_block() {
        return exit_with(&format!("blocking signals: {error}"));
    }
    may::config()
        .set_workers(config.workers)
        .set_stack_size(STACK_WORDS);

    let databases = match (0..config.workers)
        .map(|index| {
            let worker = Worker {
                index,
                count: config.workers,
            };
            Database::new(&config.database_url, worker)
        })
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(databases) => databases,
        Err(error) => return exit_with(&error),
    };
    // The accept loop runs until the process exits.
    let services = Services { databases };
    let _server = match services.start(config.listen) {
        Ok(server) => server,
        Err(error) => return exit_with(&format!("listening on {}: {error}", config.listen)),
    };
    println!(
        "tfb-may-minihttp: listening on http://{} with {} workers",
        config.listen, config.workers
    );
    // may_minihttp cannot stop accepting or drain its connections: a stop ends the process,
    // and requests in flight are dropped with their connections.
    let _ = signals.wait();
    ExitCode::SUCCESS
}

impl HttpService for App {
    fn call(&mut self, request: Request, response: &mut Response) -> io::Result<()> {
        let body = match request_body(&request) {
            Ok(body) => body,
            Err(status) => {
                send(response, Reply::refused(status));
                return Ok(());
            }
        };
        if request.method() != "GET" {
            send(response, Reply::refused(405));
        } else {
            let (path, query) = split_target(request.path());
            match path {
                "/json" => json_body(response, &json::hello_message()),
                "/plaintext" => {
                    response
                        .header(content_type(Content::Plain))
                        .body(HELLO_WORLD);
                }
                "/db" => json_or_error(response, self.database.world()),
                "/queries" => json_or_error(
                    response,
                    self.database.worlds(queries_from_query_string(query)),
                ),
                "/fortunes" => match self.database.fortunes_page(response.body_mut()) {
                    Ok(()) => {
                        response.header(content_type(Content::Html));
                    }
                    Err(error) => send(response, Reply::html(Err(error))),
                },
                "/updates" => json_or_error(
                    response,
                    self.database
                        .update_worlds(queries_from_query_string(query)),
                ),
                _ => send(response, Reply::not_found()),
            }
        }
        // may_minihttp leaves a body it was not asked for in its input, to be read as the
        // next request; reading it keeps the connection in step.
        if body > 0 {
            io::copy(&mut request.body(), &mut io::sink())?;
        }
        Ok(())
    }
}

/// The length of the request's body, or the status that refuses its framing: anything but one
/// plain decimal `Content-Length` (`+5`, `0x5`, `0, 32`, a second header, a
/// `Transfer-Encoding`) frames the body differently for different parsers, the shape of request
/// smuggling (400); routes take no body, so a large one is refused unread (413). may_minihttp's
/// own reader would panic on a length that does not parse.
fn request_body(request: &Request) -> Result<usize, u16> {
    let mut length = None;
    for header in request.headers() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(400);
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = header.value;
            if length.is_some() || value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(400);
            }
            length = Some(
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|digits| digits.parse::<usize>().ok())
                    .ok_or(413u16)?,
            );
        }
    }
    match length.unwrap_or(0) {
        length if length > MAX_REQUEST_HEAD => Err(413),
        length => Ok(length),
    }
}

/// The path and the query of a request target; RFC 9112 3.2.2 has servers accept the absolute
/// form (`http://host/path?query`) as well.
fn split_target(target: &str) -> (&str, Option<&str>) {
    let origin_form = match target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        Some(rest) => rest.find(['/', '?']).map_or("/", |start| &rest[start..]),
        None => target,
    };
    match origin_form.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (origin_form, None),
    }
}

fn json_or_error<T: json::Serialize>(response: &mut Response, result: Result<T, DbError>) {
    match result {
        Ok(value) => json_body(response, &value),
        Err(error) => send(response, Reply::json::<()>(Err(error))),
    }
}

/// Serializes `value` into the framework's body buffer, with no body of its own.
fn json_body<T: json::Serialize + ?Sized>(response: &mut Response, value: &T) {
    response.header(content_type(Content::Json));
    json::write_into(value, response.body_mut());
}

/// A shared [`Reply`] (errors, 404) as may_minihttp's response.
fn send(response: &mut Response, reply: Reply) {
    response
        .status_code(usize::from(reply.status), reason(reply.status))
        .header(content_type(reply.content));
    if reply.status == 405 {
        response.header("Allow: GET");
    }
    response.body_mut().extend_from_slice(&reply.body);
}

/// may_minihttp takes each header as one whole `'static` line.
fn content_type(content: Content) -> &'static str {
    match content {
        Content::Json => "Content-Type: application/json",
        Content::Html => "Content-Type: text/html; charset=utf-8",
        Content::Plain => "Content-Type: text/plain",
    }
}

/// may_minihttp writes its own `Ok` for 200 and takes the phrase for any other status.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

fn exit_with(error: &str) -> ExitCode {
    eprintln!("tfb-may-minihttp: {error}");
    ExitCode::FAILURE
}

/// Makes each connection's service. may_minihttp passes the connection's socket descriptor,
/// which also decides the worker the connection runs on (`fd % workers`, may's rule): the
/// service gets that worker's database connections, whose sockets that worker polls too.
struct Services {
    databases: Vec<Database>,
}

impl HttpServiceFactory for Services {
    type Service = App;

    fn new_service(&self, socket: usize) -> App {
        App {
            database: self.databases[socket % self.databases.len()].clone(),
        }
    }
}

/// One HTTP connection's service.
struct App {
    database: Database,
}
