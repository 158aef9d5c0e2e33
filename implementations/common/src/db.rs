//! The database layer: the SQL, the statements prepared on each connection, and the two
//! connection layouts the implementations offer.
//!
//! - [`SharedConnection`] is the fast layout: one long-lived connection per worker thread, shared
//!   by every request in flight on that worker, with statements prepared once. tokio-postgres
//!   pipelines the requests' statements on the wire; each still carries its own Sync, as TFB's
//!   rules require. When the connection breaks (say, PostgreSQL restarts), the next request
//!   replaces it, and requests fail fast with [`DbError`] while the database is away.
//! - [`PooledDatabase`] is the idiomatic layout: a deadpool pool with one exclusive checkout per
//!   request and `prepare_cached` statements, so users can see what a typical setup costs.
//!
//! Both use deadpool-postgres for connection lifecycle: creating connections with our timeouts and
//! discarding closed ones when they are recycled.

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use bytes::Bytes;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use futures_util::future::{try_join, try_join_all, try_join3};
use tokio_postgres::{Client, NoTls, Statement};

use crate::{
    config::{DATABASE_CONNECT_TIMEOUT, DATABASE_RECONNECT_BACKOFF},
    fortunes,
    model::{Fortune, World},
    random::random_id,
    reply::FailureStatus,
    sql::{SELECT_FORTUNES, SELECT_WORLD, UPDATE_WORLDS, assign_new_numbers},
};

/// A request that could not be answered from the database.
#[derive(Debug)]
pub enum DbError {
    /// No connection could be had: the database is down, unreachable or restarting.
    Unavailable(String),
    /// The connection broke or a statement failed.
    Query(tokio_postgres::Error),
}

impl FailureStatus for DbError {
    fn status(&self) -> u16 {
        match self {
            DbError::Unavailable(_) => 503,
            DbError::Query(error) if error.is_closed() => 503,
            DbError::Query(_) => 500,
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Unavailable(reason) => write!(f, "database unavailable: {reason}"),
            DbError::Query(error) => write!(f, "database query failed: {error}"),
        }
    }
}

impl std::error::Error for DbError {}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        DbError::Query(error)
    }
}

impl From<PoolError> for DbError {
    fn from(error: PoolError) -> Self {
        match error {
            PoolError::Backend(error) => DbError::Query(error),
            other => DbError::Unavailable(other.to_string()),
        }
    }
}

/// Parses a `postgres://` URL into a deadpool manager with our connect timeout.
fn manager(database_url: &str) -> Result<Manager, String> {
    let mut config: tokio_postgres::Config = database_url
        .parse()
        .map_err(|error| format!("DATABASE_URL {database_url:?} is not a valid URL: {error}"))?;
    config.connect_timeout(DATABASE_CONNECT_TIMEOUT);
    Ok(Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    ))
}

/// The statements every fast-layout connection prepares once, right after connecting.
struct Statements {
    world: Statement,
    fortunes: Statement,
    update: Statement,
}

impl Statements {
    async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        let (world, fortunes, update) = try_join3(
            client.prepare(SELECT_WORLD),
            client.prepare(SELECT_FORTUNES),
            client.prepare(UPDATE_WORLDS),
        )
        .await?;
        Ok(Self {
            world,
            fortunes,
            update,
        })
    }
}

/// A live connection with its prepared statements, shared by the requests that use it.
struct Session {
    client: Object,
    statements: Statements,
}

/// The fast layout: one connection per worker, shared by all of that worker's requests.
///
/// Create one per worker thread, on that worker's runtime, so the connection's I/O task runs
/// beside the requests that use it.
pub struct SharedConnection {
    // Two slots: the live connection, and room to open its replacement while requests that still
    // hold the broken one finish failing.
    pool: Pool,
    current: Mutex<Option<Arc<Session>>>,
    reconnecting: tokio::sync::Mutex<Option<Instant>>,
}

impl SharedConnection {
    /// Prepares the layout without connecting; the first request (or [`Self::connect`]) connects.
    pub fn new(database_url: &str) -> Result<Self, String> {
        let pool = Pool::builder(manager(database_url)?)
            .max_size(2)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(DATABASE_CONNECT_TIMEOUT))
            .create_timeout(Some(DATABASE_CONNECT_TIMEOUT))
            .build()
            .map_err(|error| error.to_string())?;
        Ok(Self {
            pool,
            current: Mutex::new(None),
            reconnecting: tokio::sync::Mutex::new(None),
        })
    }

    /// Connects now, so a worker is ready before its first request arrives.
    pub async fn connect(&self) -> Result<(), DbError> {
        self.session().await.map(drop)
    }

    fn live_session(&self) -> Option<Arc<Session>> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|session| !session.client.is_closed())
            .cloned()
    }

    async fn session(&self) -> Result<Arc<Session>, DbError> {
        if let Some(session) = self.live_session() {
            return Ok(session);
        }
        // One request reconnects; the others wait for it instead of opening connections of
        // their own, then use what it made (or fail fast if it failed just now).
        let mut last_failure = self.reconnecting.lock().await;
        if let Some(session) = self.live_session() {
            return Ok(session);
        }
        if last_failure.is_some_and(|failed_at| failed_at.elapsed() < DATABASE_RECONNECT_BACKOFF) {
            return Err(DbError::Unavailable("reconnecting".to_owned()));
        }
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
        match self.open_session().await {
            Ok(session) => {
                *last_failure = None;
                let session = Arc::new(session);
                *self.current.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(Arc::clone(&session));
                Ok(session)
            }
            Err(error) => {
                *last_failure = Some(Instant::now());
                Err(error)
            }
        }
    }

    async fn open_session(&self) -> Result<Session, DbError> {
        let client = self.pool.get().await?;
        let statements = Statements::prepare(&client).await?;
        Ok(Session { client, statements })
    }

    /// One random World row.
    pub async fn world(&self) -> Result<World, DbError> {
        let session = self.session().await?;
        Ok(select_world(&session.client, &session.statements.world).await?)
    }

    /// `count` random World rows, one SELECT each, all in flight together.
    pub async fn worlds(&self, count: usize) -> Result<Vec<World>, DbError> {
        let session = self.session().await?;
        Ok(select_worlds(&session.client, &session.statements.world, count).await?)
    }

    /// The rendered fortunes page.
    pub async fn fortunes_page(&self) -> Result<Bytes, DbError> {
        let session = self.session().await?;
        Ok(fortunes_page(&session.client, &session.statements.fortunes).await?)
    }

    /// `count` random World rows, each given a new random number, written with one UPDATE.
    pub async fn update_worlds(&self, count: usize) -> Result<Vec<World>, DbError> {
        let session = self.session().await?;
        let statements = &session.statements;
        Ok(update_worlds(
            &session.client,
            &statements.world,
            &statements.update,
            count,
        )
        .await?)
    }
}

/// The idiomatic layout: one pool for the process and an exclusive checkout per request.
#[derive(Clone)]
pub struct PooledDatabase {
    pool: Pool,
}

impl PooledDatabase {
    /// A pool of deadpool's default size (four connections per CPU), opened lazily.
    pub fn new(database_url: &str) -> Result<Self, String> {
        let pool = Pool::builder(manager(database_url)?)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(DATABASE_CONNECT_TIMEOUT))
            .create_timeout(Some(DATABASE_CONNECT_TIMEOUT))
            .build()
            .map_err(|error| error.to_string())?;
        Ok(Self { pool })
    }

    pub async fn world(&self) -> Result<World, DbError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(SELECT_WORLD).await?;
        Ok(select_world(&client, &statement).await?)
    }

    pub async fn worlds(&self, count: usize) -> Result<Vec<World>, DbError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(SELECT_WORLD).await?;
        Ok(select_worlds(&client, &statement, count).await?)
    }

    pub async fn fortunes_page(&self) -> Result<Bytes, DbError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(SELECT_FORTUNES).await?;
        Ok(fortunes_page(&client, &statement).await?)
    }

    pub async fn update_worlds(&self, count: usize) -> Result<Vec<World>, DbError> {
        let client = self.pool.get().await?;
        let (select, update) = try_join(
            client.prepare_cached(SELECT_WORLD),
            client.prepare_cached(UPDATE_WORLDS),
        )
        .await?;
        Ok(update_worlds(&client, &select, &update, count).await?)
    }
}

async fn select_world(
    client: &Client,
    statement: &Statement,
) -> Result<World, tokio_postgres::Error> {
    let row = client.query_one(statement, &[&random_id()]).await?;
    Ok(World {
        id: row.try_get(0)?,
        random_number: row.try_get(1)?,
    })
}

/// Polls every SELECT together, so all of them are written to the connection before the first
/// answer is awaited: one round trip for the whole request instead of `count`.
async fn select_worlds(
    client: &Client,
    statement: &Statement,
    count: usize,
) -> Result<Vec<World>, tokio_postgres::Error> {
    try_join_all((0..count).map(|_| select_world(client, statement))).await
}

async fn fortunes_page(
    client: &Client,
    statement: &Statement,
) -> Result<Bytes, tokio_postgres::Error> {
    let rows = client.query(statement, &[]).await?;
    let fortunes = rows
        .iter()
        .map(|row| {
            Ok(Fortune {
                id: row.try_get(0)?,
                message: row.try_get(1)?,
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
    Ok(fortunes::render_page(fortunes))
}

async fn update_worlds(
    client: &Client,
    select: &Statement,
    update: &Statement,
    count: usize,
) -> Result<Vec<World>, tokio_postgres::Error> {
    let mut worlds = select_worlds(client, select, count).await?;
    let (ids, numbers) = assign_new_numbers(&mut worlds);
    client.execute(update, &[&ids, &numbers]).await?;
    Ok(worlds)
}
