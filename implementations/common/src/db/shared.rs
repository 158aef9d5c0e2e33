//! The fast layout on xitca-postgres: per worker thread, one long-lived connection for reads and
//! one for updates, each shared by every request in flight on that worker, with statements
//! prepared once.
//!
//! xitca-postgres rather than tokio-postgres because it costs half as much per statement: 4.4K
//! instructions per pipelined SELECT against 8.6K (callgrind, 20 SELECTs in flight on one
//! connection), as it needs no channel per statement and decodes rows in place; it reads
//! through [`super::socket`], which spares it a `recvfrom` per wake-up. Updates have a
//! connection of their own because PostgreSQL runs a connection's statements one after another:
//! an UPDATE waiting for a row lock would otherwise hold every read queued behind it. When a
//! connection breaks (say, PostgreSQL restarts) or stops answering, the next request replaces
//! it, and requests fail fast with [`DbError`] while the database is away.

use std::{
    future::{Future, IntoFuture},
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use bytes::Bytes;
use futures_util::future::{try_join, try_join_all};
use xitca_postgres::{
    Client, Execute, Postgres, Statement, iter::AsyncLendingIterator, types::Type,
};
use xitca_unsafe_collection::bytes::BytesStr;

use super::{Database, DbError, Progress, no_answer, parse_url, session_options, socket::Socket};
use crate::{
    config::{DATABASE_CONNECT_TIMEOUT, DATABASE_RECONNECT_BACKOFF},
    fortunes,
    model::{Fortune, World},
    random::random_id,
    sql::{SELECT_FORTUNES, SELECT_WORLD, UPDATE_WORLDS, WorldUpdate},
};

/// Parses a `postgres://` URL and adds our session settings to it. The connect timeout is
/// [`Slot::open_session`]'s: xitca-postgres has none of its own.
fn connection_config(database_url: &str) -> Result<xitca_postgres::Config, String> {
    let mut config = xitca_postgres::Config::try_from(database_url)
        .map_err(|error| format!("DATABASE_URL {database_url:?} is not a valid URL: {error}"))?;
    let options = session_options(config.get_options());
    config.options(&options);
    Ok(config)
}

/// The host and port to connect to.
fn tcp_address(database_url: &str) -> Result<(String, u16), String> {
    let config = parse_url(database_url)?;
    let host = config
        .get_hosts()
        .iter()
        .find_map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => Some(name.clone()),
            _ => None,
        })
        .ok_or_else(|| format!("DATABASE_URL {database_url:?} names no TCP host"))?;
    Ok((host, config.get_ports().first().copied().unwrap_or(5432)))
}

/// Prepares one statement for good: it lives as long as its connection.
async fn prepare(
    client: &Client,
    sql: &str,
    parameters: &[Type],
) -> Result<Statement, xitca_postgres::Error> {
    Ok(Statement::named(sql, parameters)
        .execute(client)
        .await?
        .leak())
}

/// What a connection prepares once, right after connecting.
trait Prepared: Sized {
    async fn prepare(client: &Client) -> Result<Self, xitca_postgres::Error>;
}

/// The reads connection's statements. It never prepares the UPDATE: preparing takes the table
/// lock the statement would, so a connection opened while another session locks `world`
/// against writes could not serve reads either.
struct ReadStatements {
    world: Statement,
    fortunes: Statement,
}

impl Prepared for ReadStatements {
    async fn prepare(client: &Client) -> Result<Self, xitca_postgres::Error> {
        let (world, fortunes) = try_join(
            prepare(client, SELECT_WORLD, &[Type::INT4]),
            prepare(client, SELECT_FORTUNES, &[]),
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
    async fn prepare(client: &Client) -> Result<Self, xitca_postgres::Error> {
        let (world, update) = try_join(
            prepare(client, SELECT_WORLD, &[Type::INT4]),
            prepare(client, UPDATE_WORLDS, &[Type::INT4_ARRAY, Type::INT4_ARRAY]),
        )
        .await?;
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
    config: xitca_postgres::Config,
    address: (String, u16),
    current: Mutex<Option<Arc<Session<S>>>>,
    reconnecting: tokio::sync::Mutex<Option<Instant>>,
}

impl<S: Prepared> Slot<S> {
    fn new(config: xitca_postgres::Config, address: (String, u16)) -> Self {
        Self {
            config,
            address,
            current: Mutex::new(None),
            reconnecting: tokio::sync::Mutex::new(None),
        }
    }

    fn live_session(&self) -> Option<Arc<Session<S>>> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|session| !session.client.closed())
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

    /// Connects and prepares within the connect timeout, which covers a server that accepts
    /// and then says nothing as well as one that does not accept.
    async fn open_session(&self) -> Result<Session<S>, DbError> {
        let opening = async {
            let socket = Socket::connect(&self.address)
                .await
                .map_err(|error| DbError::Unavailable(format!("cannot connect: {error}")))?;
            let (client, driver) = Postgres::new(self.config.clone())
                .connect_io(socket)
                .await?;
            tokio::spawn(driver.into_future());
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
        Fut: Future<Output = Result<T, DbError>>,
    {
        let session = self.session().await?;
        match session
            .progress
            .unless_stalled(work(Arc::clone(&session)))
            .await
        {
            Some(result) => result,
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
        let address = tcp_address(database_url)?;
        Ok(Self {
            reads: Slot::new(config.clone(), address.clone()),
            updates: Slot::new(config, address),
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
                select_world(&session.client, &session.statements.world, random_id()).await
            })
            .await
    }

    /// `count` random World rows, one SELECT each, all in flight together.
    async fn worlds(&self, count: usize) -> Result<Vec<World>, DbError> {
        self.reads
            .run(|session| async move {
                let (client, world) = (&session.client, &session.statements.world);
                try_join_all((0..count).map(|_| select_world(client, world, random_id()))).await
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

/// Sends the SELECT when first polled, so the futures of one request, polled together, put all
/// of its statements on the wire before the first answer is awaited.
async fn select_world(client: &Client, statement: &Statement, id: i32) -> Result<World, DbError> {
    let mut rows = statement.bind([id]).query(client).await?;
    let row = rows
        .try_next()
        .await?
        .ok_or_else(|| DbError::Unexpected(format!("no World row with id {id}")))?;
    Ok(World {
        id: row.try_get(0)?,
        random_number: row.try_get(1)?,
    })
}

async fn fortunes_page(client: &Client, statement: &Statement) -> Result<Bytes, DbError> {
    let mut rows = statement.bind_none().query(client).await?;
    // The messages stay slices of the buffer the rows arrived in; room for the extra fortune.
    let mut stored: Vec<(i32, BytesStr)> = Vec::with_capacity(16);
    while let Some(row) = rows.try_next().await? {
        stored.push((row.try_get(0)?, row.try_get_zc(1)?));
    }
    let mut page = Vec::with_capacity(stored.len() + 1);
    page.extend(stored.iter().map(|(id, message)| Fortune {
        id: *id,
        message: message.as_str(),
    }));
    Ok(fortunes::render_page(page))
}

/// Sends the SELECTs and then the UPDATE before awaiting any answer: one round trip, every row
/// read (each SELECT fails unless it finds its row) before it is written. xitca-postgres sends a
/// statement when it is bound and executed, so the UPDATE waits in an async block until the
/// reads, polled first, are on the wire.
async fn update_worlds(
    client: &Client,
    select: &Statement,
    update: &Statement,
    count: usize,
) -> Result<Vec<World>, DbError> {
    let WorldUpdate {
        worlds,
        ids,
        numbers,
    } = WorldUpdate::draw(count);
    let reads = try_join_all(
        worlds
            .iter()
            .map(|world| select_world(client, select, world.id)),
    );
    let write = async { Ok(update.bind([&ids, &numbers]).execute(client).await?) };
    try_join(reads, write).await?;
    Ok(worlds)
}
