//! The cached-queries test's store: every World row in memory, read from the database once, then
//! served with no statement per row (TFB's `cached_query_url`; the rules left the cache's design
//! to the implementation).

use tokio::sync::OnceCell;

use crate::{
    db::{DbError, PooledDatabase},
    model::World,
};

/// The World table in memory, filled by the first read that succeeds.
pub struct WorldCache {
    rows: OnceCell<Box<[World]>>,
    database: PooledDatabase,
}

impl WorldCache {
    /// An empty cache that fills itself from `database`.
    pub fn new(database: PooledDatabase) -> Self {
        Self {
            rows: OnceCell::new(),
            database,
        }
    }

    /// Reads the table now, at start-up, so requests find it in memory. If the database is not
    /// there yet, the cache stays empty and the next request tries again.
    pub async fn fill(&self) -> Result<(), DbError> {
        self.rows().await.map(drop)
    }

    /// `count` rows drawn uniformly from the cached table, each draw fresh.
    pub async fn worlds(&self, count: usize) -> Result<Vec<World>, DbError> {
        let rows = self.rows().await?;
        Ok((0..count)
            .map(|_| rows[fastrand::usize(..rows.len())])
            .collect())
    }

    async fn rows(&self) -> Result<&[World], DbError> {
        let rows = self
            .rows
            .get_or_try_init(|| async {
                let rows = self.database.all_worlds().await?;
                if rows.is_empty() {
                    return Err(DbError::Unavailable("the world table is empty".to_owned()));
                }
                Ok(rows.into_boxed_slice())
            })
            .await?;
        Ok(rows)
    }
}
