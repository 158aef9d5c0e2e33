//! The database tests on tfb-may-postgres: per worker, one connection for reads and one for
//! updates, each shared by the coroutines of every HTTP connection assigned to the worker and
//! polled by that worker's own event loop (so an answer wakes its caller on the same core), with
//! the three statements prepared once per connection. Updates have their own connection because
//! PostgreSQL runs a connection's statements in order: an UPDATE waiting for a row lock would
//! otherwise hold every read queued behind it.

use std::{fmt, sync::Arc};

use bytes::BytesMut;
use tfb_common::{
    config::{DATABASE_ANSWER_TIMEOUT, DATABASE_CONNECT_TIMEOUT, DATABASE_RECONNECT_BACKOFF},
    fortunes::add_and_sort,
    model::{Fortune, World},
    random::random_id,
    reply::FailureStatus,
    sql::{SELECT_FORTUNES, SELECT_WORLD, SESSION_SETTINGS, UPDATE_WORLDS, WorldUpdate},
};
use tfb_may_postgres::{Config, Connection, Param, Reconnecting, Rows, Statement, Worker};

use crate::fortunes;

/// A database failure, answered with 503 while the database is away and 500 otherwise.
#[derive(Debug)]
pub struct DbError(tfb_may_postgres::Error);

impl FailureStatus for DbError {
    fn status(&self) -> u16 {
        if self.0.is_unavailable() { 503 } else { 500 }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<tfb_may_postgres::Error> for DbError {
    fn from(error: tfb_may_postgres::Error) -> Self {
        Self(error)
    }
}

/// The reads connection's statements. It never prepares the UPDATE: preparing takes the table
/// lock the statement would, so a connection opened while another session locks `world`
/// against writes could not serve reads either.
struct ReadStatements {
    world: Statement,
    fortunes: Statement,
}

impl ReadStatements {
    fn prepare(connection: &Connection) -> Result<Self, tfb_may_postgres::Error> {
        Ok(Self {
            world: connection.prepare(SELECT_WORLD)?,
            fortunes: connection.prepare(SELECT_FORTUNES)?,
        })
    }
}

struct UpdateStatements {
    world: Statement,
    update: Statement,
}

impl UpdateStatements {
    fn prepare(connection: &Connection) -> Result<Self, tfb_may_postgres::Error> {
        Ok(Self {
            world: connection.prepare(SELECT_WORLD)?,
            update: connection.prepare(UPDATE_WORLDS)?,
        })
    }
}

/// One worker's connections; cheap to clone into every HTTP connection the worker serves.
#[derive(Clone)]
pub struct Database {
    reads: Arc<Reconnecting<ReadStatements>>,
    updates: Arc<Reconnecting<UpdateStatements>>,
}

impl Database {
    /// The connections of `worker`; checks the URL now, connects on first use.
    pub fn new(database_url: &str, worker: Worker) -> Result<Self, String> {
        let mut config = SESSION_SETTINGS.iter().fold(
            Config::from_url(database_url).map_err(|error| error.to_string())?,
            |config, (name, value)| config.with_setting(name, value),
        );
        config.answer_timeout = Some(DATABASE_ANSWER_TIMEOUT);
        config.worker = Some(worker);
        Ok(Self {
            reads: Arc::new(Reconnecting::new(
                config.clone(),
                DATABASE_CONNECT_TIMEOUT,
                DATABASE_RECONNECT_BACKOFF,
                ReadStatements::prepare,
            )),
            updates: Arc::new(Reconnecting::new(
                config,
                DATABASE_CONNECT_TIMEOUT,
                DATABASE_RECONNECT_BACKOFF,
                UpdateStatements::prepare,
            )),
        })
    }

    /// One random World row.
    pub fn world(&self) -> Result<World, DbError> {
        let session = self.reads.session()?;
        let rows = session
            .connection
            .query(&session.statements.world, &[Param::Int4(random_id())])?;
        Ok(world_from(&rows)?)
    }

    /// `count` random World rows, one SELECT each, all sent in one write.
    pub fn worlds(&self, count: usize) -> Result<Vec<World>, DbError> {
        let session = self.reads.session()?;
        select_worlds(&session.connection, &session.statements.world, count)
    }

    /// Renders the fortunes page into `body`.
    pub fn fortunes_page(&self, body: &mut BytesMut) -> Result<(), DbError> {
        let session = self.reads.session()?;
        let rows = session
            .connection
            .query(&session.statements.fortunes, &[])?;
        let mut fortunes = Vec::with_capacity(rows.len() + 1);
        for row in rows.iter() {
            fortunes.push(Fortune {
                id: row.get_i32(0)?,
                message: row.get_str(1)?,
            });
        }
        add_and_sort(&mut fortunes);
        fortunes::render_into(&fortunes, body);
        Ok(())
    }

    /// `count` random World rows, each given a new random number, written with one UPDATE.
    pub fn update_worlds(&self, count: usize) -> Result<Vec<World>, DbError> {
        let session = self.updates.session()?;
        let statements = &session.statements;
        let WorldUpdate {
            worlds,
            ids,
            numbers,
        } = WorldUpdate::draw(count);
        // Both submitted before either is awaited: one round trip, the rows read first.
        let reads = session.connection.submit(
            &statements.world,
            worlds.iter().map(|world| [Param::Int4(world.id)]),
        )?;
        let write = session.connection.submit(
            &statements.update,
            [[Param::Int4Array(&ids), Param::Int4Array(&numbers)]],
        )?;
        // Every SELECT must find its row, as `world_from` checks.
        for rows in reads.wait()? {
            world_from(&rows)?;
        }
        write.wait()?;
        Ok(worlds)
    }
}

fn select_worlds(
    connection: &Connection,
    statement: &Statement,
    count: usize,
) -> Result<Vec<World>, DbError> {
    let results =
        connection.query_pipelined(statement, (0..count).map(|_| [Param::Int4(random_id())]))?;
    results.iter().map(|rows| Ok(world_from(rows)?)).collect()
}

fn world_from(rows: &Rows) -> Result<World, tfb_may_postgres::Error> {
    let row = rows.one()?;
    Ok(World {
        id: row.get_i32(0)?,
        random_number: row.get_i32(1)?,
    })
}
