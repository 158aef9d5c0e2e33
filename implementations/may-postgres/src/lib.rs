//! A PostgreSQL client for code running on `may` coroutines, built on `postgres-protocol` (the
//! message codec tokio-postgres uses). Database I/O never blocks a `may` worker thread: a
//! coroutine waiting for rows is parked, and the thread runs other coroutines.
//!
//! - [`Connection`]: one socket shared by any number of coroutines. Each statement is sent as
//!   Bind/Execute/Sync (one Sync per statement, as TFB's rules require), statements from many
//!   coroutines are pipelined on the wire, and one I/O coroutine per connection sends all that
//!   were queued in one scheduling round in one write and hands each caller its responses in
//!   order, a whole batch at once. With an answer timeout, a watchdog thread gives up a
//!   connection whose answers have stopped coming. Startup authenticates with SCRAM-SHA-256, md5
//!   or a cleartext password.
//! - [`Reconnecting`]: a connection that is replaced when it breaks, one attempt at a time, with
//!   a back-off while the database is away so requests fail fast instead of piling up.
//! - [`Rows`]: the rows of one statement, decoded lazily from the bytes the server sent.
//! - [`Worker`] in a [`Config`]: the may worker whose event loop polls the socket, so answers
//!   wake callers on their own core.
//!
//! Only what the reference implementations need is here: binary `int4`, `int4[]` parameters and
//! binary `int4`/`text` results, no TLS, no transactions, no COPY.

mod config;
mod connection;
mod error;
mod reconnecting;
mod rows;
mod startup;
mod watchdog;

pub use config::{Config, Worker};
pub use connection::{Connection, Statement, Submitted};
pub use error::Error;
pub use reconnecting::{Reconnecting, Session};
pub use rows::{Param, Row, Rows};
