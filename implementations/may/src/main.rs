//! The may reference implementation of TFB's six test types.
//!
//! Serves `/json`, `/plaintext`, `/db`, `/queries?queries=N`, `/fortunes` and
//! `/updates?queries=N` from stackful coroutines on the `may` runtime: one coroutine per
//! connection, may_minihttp's read-all, answer-all, write-once loop (`server.rs`), per worker a
//! reads and an updates PostgreSQL connection shared by the connections assigned to it
//! (tfb-may-postgres), and the
//! fortunes page rendered by yarte into the connection's buffer.
//!
//! Run it against a database loaded with `db-schema/`:
//!
//! ```sh
//! DATABASE_URL=postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1:5432/hello_world \
//!     PORT=8080 cargo run --release -p tfb-may
//! ```

mod db;
mod fortunes;
mod server;

use std::process::ExitCode;

use bytes::{Bytes, BytesMut};
use nix::sys::signal::{SigSet, Signal};
use tfb_common::{
    config::ServerConfig,
    queries::queries_from_query_string,
    reply::{Content, Reply},
};

use crate::{
    db::Database,
    server::{Answer, Handler, Server},
};

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
        .map(|_| Database::new(&config.database_url))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(databases) => databases,
        Err(error) => return exit_with(&error),
    };
    let server = match Server::start(config.listen, move |socket| App {
        database: databases[socket % databases.len()].clone(),
    }) {
        Ok(server) => server,
        Err(error) => return exit_with(&format!("listening on {}: {error}", config.listen)),
    };
    println!(
        "tfb-may: listening on http://{} with {} workers",
        config.listen, config.workers
    );
    // Whatever the outcome of `wait`, stopping gracefully is the right thing to do.
    let _ = signals.wait();
    server.stop();
    ExitCode::SUCCESS
}

/// One HTTP connection's handler: the database of the worker it was assigned to.
struct App {
    database: Database,
}

impl Handler for App {
    fn get(&mut self, path: &str, query: Option<&str>, body: &mut BytesMut) -> Answer {
        Answer::Reply(match path {
            "/json" => Reply::hello_json(),
            "/plaintext" => Reply::hello_plaintext(),
            "/db" => Reply::json(self.database.world()),
            "/queries" => Reply::json(self.database.worlds(queries_from_query_string(query))),
            "/fortunes" => match self.database.fortunes_page(body) {
                Ok(()) => return Answer::Rendered(Content::Html),
                Err(error) => Reply::html(Err::<Bytes, _>(error)),
            },
            "/updates" => Reply::json(
                self.database
                    .update_worlds(queries_from_query_string(query)),
            ),
            _ => Reply::not_found(),
        })
    }
}

fn exit_with(error: &str) -> ExitCode {
    eprintln!("tfb-may: {error}");
    ExitCode::FAILURE
}
