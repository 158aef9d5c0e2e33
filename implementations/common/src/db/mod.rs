//! The database layer for Tokio-based frameworks: the two connection layouts the implementations
//! offer, both serving the [`Database`] trait, and what they share (errors, stall detection, the
//! session settings).
//!
//! - [`SharedConnection`] is the fast layout, on xitca-postgres (`shared`): per worker thread,
//!   one long-lived connection for reads and one for updates, each shared by every request in
//!   flight on that worker, with statements prepared once. The requests' statements are
//!   pipelined on the wire; each still carries its own Sync, as TFB's rules require.
//! - [`PooledDatabase`] is the idiomatic layout, on deadpool and tokio-postgres (`pooled`): one
//!   exclusive checkout per request and `prepare_cached` statements, so users can see what a
//!   typical setup costs.
//!
//! Every connection sets [`SESSION_SETTINGS`] (a statement timeout). A request waits for its
//! answers for as long as answers keep arriving (a busy database is queueing, not failing), and
//! gives up with a 503 once none at all has arrived for [`DATABASE_ANSWER_TIMEOUT`]: the network
//! or the server stalled.

mod pooled;
mod shared;
mod socket;

use std::{
    fmt,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use deadpool_postgres::PoolError;

pub use self::{pooled::PooledDatabase, shared::SharedConnection};
use crate::{
    config::DATABASE_ANSWER_TIMEOUT, model::World, reply::FailureStatus, sql::SESSION_SETTINGS,
};

/// A request that could not be answered from the database.
#[derive(Debug)]
pub enum DbError {
    /// No connection could be had, or no answer came in time: the database is down,
    /// unreachable, restarting or stalled.
    Unavailable(String),
    /// The database answered what it should not have: a row the request needs is missing.
    Unexpected(String),
    /// A shared connection broke or one of its statements failed.
    Shared(xitca_postgres::Error),
    /// A pooled connection broke or one of its statements failed.
    Pooled(tokio_postgres::Error),
}

impl FailureStatus for DbError {
    fn status(&self) -> u16 {
        // Closed connections are the database going away; a canceled statement is the statement
        // timeout, fired while it waited on a lock another session holds.
        let unavailable = match self {
            DbError::Unavailable(_) => true,
            DbError::Unexpected(_) => false,
            DbError::Shared(error) => {
                error.is_driver_down()
                    || error
                        .downcast_ref::<xitca_postgres::error::DbError>()
                        .is_some_and(|error| {
                            *error.code() == xitca_postgres::error::SqlState::QUERY_CANCELED
                        })
            }
            DbError::Pooled(error) => {
                error.is_closed()
                    || error.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
            }
        };
        if unavailable { 503 } else { 500 }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Unavailable(reason) => write!(f, "database unavailable: {reason}"),
            DbError::Unexpected(what) => write!(f, "unexpected database answer: {what}"),
            DbError::Shared(error) => write!(f, "database query failed: {error}"),
            DbError::Pooled(error) => write!(f, "database query failed: {error}"),
        }
    }
}

impl std::error::Error for DbError {}

impl From<xitca_postgres::Error> for DbError {
    fn from(error: xitca_postgres::Error) -> Self {
        DbError::Shared(error)
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        DbError::Pooled(error)
    }
}

impl From<PoolError> for DbError {
    fn from(error: PoolError) -> Self {
        match error {
            PoolError::Backend(error) => DbError::Pooled(error),
            other => DbError::Unavailable(other.to_string()),
        }
    }
}

/// When a connection (or a pool) last delivered an answer, so a waiting request can tell a busy
/// database, whose answers keep coming, from a stalled one, whose answers have stopped.
struct Progress {
    origin: Instant,
    last_answer_ms: AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_answer_ms: AtomicU64::new(0),
        }
    }

    fn answered(&self) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_answer_ms.fetch_max(now, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        self.origin.elapsed().saturating_sub(Duration::from_millis(
            self.last_answer_ms.load(Ordering::Relaxed),
        ))
    }

    /// Runs `work` until it finishes, or until no answer has arrived, for this request or any
    /// other, for the whole answer timeout (`None`).
    async fn unless_stalled<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let started = Instant::now();
        let mut work = std::pin::pin!(work);
        loop {
            let quiet = self.quiet_for().min(started.elapsed());
            let patience = DATABASE_ANSWER_TIMEOUT.saturating_sub(quiet);
            if patience.is_zero() {
                return None;
            }
            if let Ok(value) = tokio::time::timeout(patience, &mut work).await {
                self.answered();
                return Some(value);
            }
        }
    }
}

fn no_answer() -> DbError {
    DbError::Unavailable(format!(
        "no answer from the database for {} s",
        DATABASE_ANSWER_TIMEOUT.as_secs()
    ))
}

/// Parses a `postgres://` URL with tokio-postgres' parser: the pool's configuration, and where
/// the shared connections find their host (xitca-postgres keeps its parsed hosts to itself).
fn parse_url(database_url: &str) -> Result<tokio_postgres::Config, String> {
    database_url
        .parse()
        .map_err(|error| format!("DATABASE_URL {database_url:?} is not a valid URL: {error}"))
}

/// The libpq `options` a connection starts with: the URL's own, then [`SESSION_SETTINGS`].
fn session_options(from_url: Option<&str>) -> String {
    let mut options = from_url.unwrap_or_default().to_owned();
    for (name, value) in SESSION_SETTINGS {
        options.push_str(&format!(" -c {name}={value}"));
    }
    options.trim_start().to_owned()
}

/// The four database test types, as both layouts serve them, so that a framework routes them
/// once, generic over the layout (`/db` and so on on the fast one, `/pool/db` on the pool).
pub trait Database: Send + Sync + 'static {
    /// One random World row.
    fn world(&self) -> impl Future<Output = Result<World, DbError>> + Send;
    /// `count` random World rows, one SELECT each, all in flight together.
    fn worlds(&self, count: usize) -> impl Future<Output = Result<Vec<World>, DbError>> + Send;
    /// The rendered fortunes page.
    fn fortunes_page(&self) -> impl Future<Output = Result<Bytes, DbError>> + Send;
    /// `count` random World rows, each given a new random number, written with one UPDATE.
    fn update_worlds(
        &self,
        count: usize,
    ) -> impl Future<Output = Result<Vec<World>, DbError>> + Send;
}

impl<D: Database> Database for Arc<D> {
    fn world(&self) -> impl Future<Output = Result<World, DbError>> + Send {
        D::world(self)
    }

    fn worlds(&self, count: usize) -> impl Future<Output = Result<Vec<World>, DbError>> + Send {
        D::worlds(self, count)
    }

    fn fortunes_page(&self) -> impl Future<Output = Result<Bytes, DbError>> + Send {
        D::fortunes_page(self)
    }

    fn update_worlds(
        &self,
        count: usize,
    ) -> impl Future<Output = Result<Vec<World>, DbError>> + Send {
        D::update_worlds(self, count)
    }
}
