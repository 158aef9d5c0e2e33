//! Server settings every implementation reads from its environment, as the implementation
//! contract (implementations/README.md) specifies.

use std::{net::SocketAddr, num::NonZeroUsize, time::Duration};

/// Where TFB's database container lives; used when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str =
    "postgres://benchmarkdbuser:benchmarkdbpass@tfb-database/hello_world";

/// The port TFB's `benchmark_config.json` files name; used when `PORT` is not set.
pub const DEFAULT_PORT: u16 = 8080;

/// How long establishing a database connection may take before requests get a 503 instead.
pub const DATABASE_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a waiting database request tolerates silence: once no answer at all (for it or any
/// other request on its connection or pool) has arrived for this long, it gets a 503 and the
/// connection is given up as stalled (the network or the server stopped answering). Requests
/// queued behind a busy database wait as long as answers keep coming, so load is never turned
/// into errors; the connect timeout still answers an unreachable database within a second.
pub const DATABASE_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection that has not sent a complete request head for this long (idle, or sending it
/// slowly) is closed, so idle and slow clients cannot hold every descriptor.
pub const CLIENT_HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request head (request line and headers) a server reads; a larger one gets 431.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// After a failed reconnection, requests fail at once for this long instead of each trying again,
/// so a database that is away costs one connection attempt per worker per interval.
pub const DATABASE_RECONNECT_BACKOFF: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub database_url: String,
    pub listen: SocketAddr,
    /// One per logical CPU unless `TFB_WORKERS` says otherwise.
    pub workers: usize,
}

impl ServerConfig {
    /// Fails, naming the port, when another process already listens on it. Servers that bind one
    /// `SO_REUSEPORT` listener per worker call it first: the kernel would otherwise let them
    /// share the port with any other such listener, and a second instance would silently take
    /// part of the traffic.
    pub fn ensure_port_free(&self) -> Result<(), String> {
        // A plain listener (no SO_REUSEPORT) cannot share a port with anyone; it closes at once.
        std::net::TcpListener::bind(self.listen)
            .map(drop)
            .map_err(|error| {
                format!(
                    "cannot listen on {}: {error} (is another server on port {}?)",
                    self.listen,
                    self.listen.port()
                )
            })
    }

    /// Reads `DATABASE_URL`, `PORT` and `TFB_WORKERS`, explaining any value it cannot use.
    pub fn from_env() -> Result<Self, String> {
        let database_url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let port = match std::env::var("PORT") {
            Ok(port) => port
                .parse()
                .map_err(|_| format!("PORT must be a port number, got {port:?}"))?,
            Err(_) => DEFAULT_PORT,
        };
        let workers = match std::env::var("TFB_WORKERS") {
            Ok(workers) => workers
                .parse::<NonZeroUsize>()
                .map_err(|_| format!("TFB_WORKERS must be a positive integer, got {workers:?}"))?
                .get(),
            Err(_) => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        };
        Ok(Self {
            database_url,
            listen: SocketAddr::from(([0, 0, 0, 0], port)),
            workers,
        })
    }
}
