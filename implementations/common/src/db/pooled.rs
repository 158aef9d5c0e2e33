//! The idiomatic layout on tokio-postgres: a deadpool pool for the process, one exclusive checkout
//! per request, and `prepare_cached` statements, so users can see what a typical setup costs
//! beside the fast one ([`super::SharedConnection`]).

use std::sync::Arc;

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::future::{try_join, try_join_all};
use tokio_postgres::{Client, NoTls, Statement};

use super::{Database, DbError, Progress, no_answer, parse_url, session_options};
use crate::{
    config::DATABASE_CONNECT_TIMEOUT,
    fortunes,
    model::{Fortune, World},
    random::random_id,
    sql::{SELECT_ALL_WORLDS, SELECT_FORTUNES, SELECT_WORLD, UPDATE_WORLDS, WorldUpdate},
};

/// Parses a `postgres://` URL and adds our connect timeout and session settings to it.
fn connection_config(database_url: &str) -> Result<tokio_postgres::Config, String> {
    let mut config = parse_url(database_url)?;
    config.connect_timeout(DATABASE_CONNECT_TIMEOUT);
    let options = session_options(config.get_options());
    config.options(&options);
    Ok(config)
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
