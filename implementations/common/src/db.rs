//! The database layer: the SQL, the statements prepared on each connection, and the two
//! connection layouts the implementations offer, both serving the [`Database`] trait.
//!
//! - [`SharedConnection`] is the fast layout: per worker thread, one long-lived connection for
//!   reads and one for updates, each shared by every request in flight on that worker, with
//!   statements prepared once. tokio-postgres pipelines the requests' statements on the wire;
//!   each still carries its own Sync, as TFB's rules require. Updates have a connection of their
//!   own because PostgreSQL runs a connection's statements one after another: an UPDATE waiting
//!   for a row lock would otherwise hold every read queued behind it. When a connection breaks
//!   (say, PostgreSQL restarts) or stops answering, the next request replaces it, and requests
//!   fail fast with [`DbError`] while the database is away.
//! - [`PooledDatabase`] is the idiomatic layout: a deadpool pool with one exclusive checkout per
//!   request and `prepare_cached` statements, so users can see what a typical setup costs.
//!
//! Every connection sets [`SESSION_SETTINGS`] (a statement timeout). A request waits for its
//! answers for as long as answers keep arriving (a busy database is queueing, not failing), and
//! gives up with a 503 once none at all has arrived for [`DATABASE_ANSWER_TIMEOUT`]: the network
//! or the server stalled.

use std::{
    fmt,
    future::Future,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use futures_util::future::{try_join, try_join_all};
use tokio_postgres::{Client, NoTls, Statement, error::SqlState};

use crate::{
    config::{DATABASE_ANSWER_TIMEOUT, DATABASE_CONNECT_TIMEOUT, DATABASE_RECONNECT_BACKOFF},
    fortunes,
    model::{Fortune, World},
    random::random_id,
    reply::FailureStatus,
    sql::{
        SELECT_ALL_WORLDS, SELECT_FORTUNES, SELECT_WORLD, SESSION_SETTINGS, UPDATE_WORLDS,
        WorldUpdate,
    },
};

/// A request that could not be answered from the database.
#[derive(Debug)]
pub enum DbError {
    /// No connection could be had, or no answer came in time: the database is down,
    /// unreachable, restarting or stalled.
    Unavailable(String),
    /// The connection broke or a statement failed.
    Query(tokio_postgres::Error),
}

impl FailureStatus for DbError {
    fn status(&self) -> u16 {
        match self {
            DbError::Unavailable(_) => 503,
            DbError::Query(error) if error.is_closed() => 503,
            // The statement timeout fired: it waited on a lock another session holds.
            DbError::Query(error) if error.code() == Some(&SqlState::QUERY_CANCELED) => 503,
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

/// Parses a `postgres://` URL and adds our connect timeout and session settings to it.
fn connection_config(database_url: &str) -> Result<tokio_postgres::Config, String> {
    let mut config: tokio_postgres::Config = database_url
        .parse()
        .map_err(|error| format!("DATABASE_URL {database_url:?} is not a valid URL: {error}"))?;
    config.connect_timeout(DATABASE_CONNECT_TIMEOUT);
    let mut options = config.get_options().unwrap_or_default().to_owned();
    for (name, value) in SESSION_SETTINGS {
        options.push_str(&format!(" -c {name}={value}"));
    }
    config.options(options.trim_start());
    Ok(config)
}

/// What a fast-layout connection prepares once, right after connecting.
trait Prepared: Sized {
    async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error>;
}

/// The reads connection's statements. It never prepares the UPDATE: preparing takes the table
/// lock the statement would, so a connection opened while another session locks `world`
/// against writes could not serve reads either.
struct ReadStatements {
    world: Statement,
    fortunes: Statement,
}

impl Prepared for ReadStatements {
    async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        let (world, fortunes) = try_join(
            client.prepare(SELECT_WORLD),
            client.prepare(SELECT_FORTUNES),
        )
        .await?;
        Ok(Self { world, fortunes })
    }
}

struct UpdateStatements {
    world: Statement,
    update: Statement,
}

impl Prepared for UpdateStatements {
    async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        let (world, update) =
            try_join(client.prepare(SELECT_WORLD), client.prepare(UPDATE_WORLDS)).await?;
        Ok(Self { world, update })
    }
}

/// A live connection with its prepared statements, shared by the requests that use it. The
/// connection closes when the last request holding it lets go.
struct Session<S> {
    client: Client,
    statements: S,
    progress: Progress,
}

/// One shared connection, replaced when it breaks or stalls.
struct Slot<S> {
    config: tokio_postgres::Config,
    current: Mutex<Option<Arc<Session<S>>>>,
    reconnecting: tokio::sync::Mutex<Option<Instant>>,
}

impl<S: Prepared> Slot<S> {
    fn new(config: tokio_postgres::Config) -> Self {
        Self {
            config,
            current: Mutex::new(None),
            reconnecting: tokio::sync::Mutex::new(None),
        }
    }

    fn live_session(&self) -> Option<Arc<Session<S>>> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|session| !session.client.is_closed())
            .cloned()
    }

    async fn session(&self) -> Result<Arc<Session<S>>, DbError> {
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

    /// Connects and prepares within the connect timeout: tokio-postgres's own timeout covers
    /// only the TCP connect, not a server that accepts and then says nothing.
    async fn open_session(&self) -> Result<Session<S>, DbError> {
        let opening = async {
            let (client, connection) = self.config.connect(NoTls).await?;
            tokio::spawn(connection);
            let statements = S::prepare(&client).await?;
            Ok::<_, DbError>(Session {
                client,
                statements,
                progress: Progress::new(),
            })
        };
        tokio::time::timeout(DATABASE_CONNECT_TIMEOUT, opening)
            .await
            .map_err(|_| {
                DbError::Unavailable(format!(
                    "no connection within {} s",
                    DATABASE_CONNECT_TIMEOUT.as_secs()
                ))
            })?
    }

    /// Runs `work` on the live session. When the session stalls it is given up, so the next
    /// request opens a fresh connection instead of queueing behind a dead one.
    async fn run<T, F, Fut>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(Arc<Session<S>>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let session = self.session().await?;
        match session
            .progress
            .unless_stalled(work(Arc::clone(&session)))
            .await
        {
            Some(result) => Ok(result?),
            None => {
                let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
                if current
                    .as_ref()
                    .is_some_and(|live| Arc::ptr_eq(live, &session))
                {
                    *current = None;
                }
                Err(no_answer())
            }
        }
    }
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

/// The fast layout: per worker, one connection for reads and one for updates, each shared by
/// all of that worker's requests.
///
/// Create one per worker thread, on that worker's runtime, so the connections' I/O tasks run
/// beside the requests that use them.
pub struct SharedConnection {
    reads: Slot<ReadStatements>,
    updates: Slot<UpdateStatements>,
}

impl SharedConnection {
    /// Prepares the layout without connecting; the first request (or [`Self::connect`]) connects.
    pub fn new(database_url: &str) -> Result<Self, String> {
        let config = connection_config(database_url)?;
        Ok(Self {
            reads: Slot::new(config.clone()),
            updates: Slot::new(config),
        })
    }

    /// Connects now, so a worker is ready before its first request arrives.
    pub async fn connect(&self) -> Result<(), DbError> {
        try_join(self.reads.session(), self.updates.session())
            .await
            .map(drop)
    }
}

impl Database for SharedConnection {
    /// One random World row.
    async fn world(&self) -> Result<World, DbError> {
        self.reads
            .run(|session| async move {
                select_world(&session.client, &session.statements.world).await
            })
            .await
    }

    /// `count` random World rows, one SELECT each, all in flight together.
    async fn worlds(&self, count: usize) -> Result<Vec<World>, DbError> {
        self.reads
            .run(|session| async move {
                select_worlds(&session.client, &session.statements.world, count).await
            })
            .await
    }

    /// The rendered fortunes page.
    async fn fortunes_page(&self) -> Result<Bytes, DbError> {
        self.reads
            .run(|session| async move {
                fortunes_page(&session.client, &session.statements.fortunes).await
            })
            .await
    }

    /// `count` random World rows, each given a new random number, written with one UPDATE.
    async fn update_worlds(&self, count: usize) -> Result<Vec<World>, DbError> {
        self.updates
            .run(|session| async move {
                let statements = &session.statements;
                update_worlds(
                    &session.client,
                    &statements.world,
                    &statements.update,
                    count,
                )
                .await
            })
            .await
    }
}

/// The idiomatic layout: one pool for the process and an exclusive checkout per request.
#[derive(Clone)]
pub struct PooledDatabase {
    pool: Pool,
    progress: Arc<Progress>,
}

impl PooledDatabase {
    /// A pool of deadpool's default size (four connections per CPU), opened lazily.
    pub fn new(database_url: &str) -> Result<Self, String> {
        let manager = Manager::from_config(
            connection_config(database_url)?,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .runtime(Runtime::Tokio1)
            // Waiting for a free connection is load, not an outage: it is bounded only by the
            // pool's answers stopping (`Progress`). Opening one has the short connect timeout.
            .wait_timeout(None)
            .create_timeout(Some(DATABASE_CONNECT_TIMEOUT))
            .build()
            .map_err(|error| error.to_string())?;
        Ok(Self {
            pool,
            progress: Arc::new(Progress::new()),
        })
    }

    /// Every World row, for a cache.
    pub async fn all_worlds(&self) -> Result<Vec<World>, DbError> {
        self.run(async |client| {
            let rows = client.query(SELECT_ALL_WORLDS, &[]).await?;
            rows.iter()
                .map(|row| {
                    Ok(World {
                        id: row.try_get(0)?,
                        random_number: row.try_get(1)?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Runs `work` on a checked-out connection, waiting for as long as the pool's answers keep
    /// coming.
    async fn run<T>(
        &self,
        work: impl AsyncFnOnce(&Object) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, DbError> {
        let checkout = async {
            let checkout = Checkout(Some(self.pool.get().await?));
            let result = work(checkout.client()).await;
            checkout.finish();
            Ok(result?)
        };
        self.progress
            .unless_stalled(checkout)
            .await
            .ok_or_else(no_answer)?
    }
}

impl Database for PooledDatabase {
    async fn world(&self) -> Result<World, DbError> {
        self.run(async |client| {
            let statement = client.prepare_cached(SELECT_WORLD).await?;
            select_world(client, &statement).await
        })
        .await
    }

    async fn worlds(&self, count: usize) -> Result<Vec<World>, DbError> {
        self.run(async |client| {
            let statement = client.prepare_cached(SELECT_WORLD).await?;
            select_worlds(client, &statement, count).await
        })
        .await
    }

    async fn fortunes_page(&self) -> Result<Bytes, DbError> {
        self.run(async |client| {
            let statement = client.prepare_cached(SELECT_FORTUNES).await?;
            fortunes_page(client, &statement).await
        })
        .await
    }

    async fn update_worlds(&self, count: usize) -> Result<Vec<World>, DbError> {
        self.run(async |client| {
            let (select, update) = try_join(
                client.prepare_cached(SELECT_WORLD),
                client.prepare_cached(UPDATE_WORLDS),
            )
            .await?;
            update_worlds(client, &select, &update, count).await
        })
        .await
    }
}

/// A pooled connection that leaves the pool for good unless its request finished with it: one cut
/// off by the answer timeout may be stalled, or still busy with the statement it was sent.
struct Checkout(Option<Object>);

impl Checkout {
    fn client(&self) -> &Object {
        self.0
            .as_ref()
            .expect("a checkout holds its connection until dropped")
    }

    /// Back to the pool, whose recycling drops it if it has closed.
    fn finish(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            drop(Object::take(object));
        }
    }
}

async fn select_world(
    client: &Client,
    statement: &Statement,
) -> Result<World, tokio_postgres::Error> {
    select_world_by_id(client, statement, random_id()).await
}

async fn select_world_by_id(
    client: &Client,
    statement: &Statement,
    id: i32,
) -> Result<World, tokio_postgres::Error> {
    let row = client.query_one(statement, &[&id]).await?;
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

/// Sends the SELECTs and then the UPDATE before awaiting any answer (each request is written when
/// its future is first polled, in polling order): one round trip, every row read (each SELECT
/// fails unless it finds its row) before it is written.
async fn update_worlds(
    client: &Client,
    select: &Statement,
    update: &Statement,
    count: usize,
) -> Result<Vec<World>, tokio_postgres::Error> {
    let WorldUpdate {
        worlds,
        ids,
        numbers,
    } = WorldUpdate::draw(count);
    let reads = try_join_all(
        worlds
            .iter()
            .map(|world| select_world_by_id(client, select, world.id)),
    );
    try_join(reads, client.execute(update, &[&ids, &numbers])).await?;
    Ok(worlds)
}
