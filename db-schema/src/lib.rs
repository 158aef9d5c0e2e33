//! TFB's PostgreSQL schema and server settings, and the one piece of code every test and tool
//! uses to get a database loaded with them.
//!
//! [`Database::from_env`] uses the server `DATABASE_URL` names when it is set (its schema must be
//! loaded, see `create-database.sql`); otherwise it starts a [`Cluster`]: a throwaway server from
//! the system's PostgreSQL binaries, in a temporary directory, on a free loopback port, with TFB's
//! settings and data, removed again when dropped.

mod binaries;
mod cluster;

pub use binaries::PgBinaries;
pub use cluster::Cluster;

/// The creation script: role, database, then the tables (`create-postgres.sql`), for psql.
pub const CREATE_DATABASE_SQL: &str = include_str!("../create-database.sql");
/// The tables and data, loaded into `hello_world`.
pub const CREATE_TABLES_SQL: &str = include_str!("../create-postgres.sql");
/// TFB's server settings, appended to a cluster's `postgresql.conf`.
pub const POSTGRESQL_CONF: &str = include_str!("../postgresql.conf");

/// TFB's database credentials and name.
pub const USER: &str = "benchmarkdbuser";
pub const PASSWORD: &str = "benchmarkdbpass";
pub const DATABASE: &str = "hello_world";

/// The database a test or tool runs against.
pub enum Database {
    /// A server someone else runs, named by `DATABASE_URL`.
    External { url: String },
    /// A throwaway server this process started and owns.
    Throwaway(Cluster),
}

impl Database {
    /// `DATABASE_URL` when set, otherwise a freshly started throwaway [`Cluster`].
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => Ok(Database::External { url }),
            _ => Ok(Database::Throwaway(Cluster::start()?)),
        }
    }

    /// A `postgres://` URL for `benchmarkdbuser` on `hello_world`.
    pub fn url(&self) -> String {
        match self {
            Database::External { url } => url.clone(),
            Database::Throwaway(cluster) => cluster.url(),
        }
    }

    /// The throwaway cluster, if this is one.
    pub fn cluster(&self) -> Option<&Cluster> {
        match self {
            Database::External { .. } => None,
            Database::Throwaway(cluster) => Some(cluster),
        }
    }

    /// The throwaway cluster, for tests that stop and restart the server.
    pub fn cluster_mut(&mut self) -> Option<&mut Cluster> {
        match self {
            Database::External { .. } => None,
            Database::Throwaway(cluster) => Some(cluster),
        }
    }
}
