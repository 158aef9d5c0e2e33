//! The server under test: a process this run started (whose CPU and memory it can read and
//! which it stops), or in client mode one someone else runs, waited for until it accepts.

use std::{path::Path, thread, time::Duration};

use anyhow::{Context, bail};
use tfb_harness::server::ServerProcess;

use crate::plan::SelectedTest;

/// Client mode: waits until the server at `url` (`http://host:port`) accepts a connection, trying
/// every half second for up to `patience`; with no patience, one try.
pub fn wait_for_server(url: &str, patience: Duration) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).with_context(|| format!("--server-url {url:?}"))?;
    let host = match parsed.host_str() {
        Some(host) if parsed.scheme() == "http" => host,
        _ => bail!("--server-url {url:?} must start with http://"),
    };
    let authority = format!("{host}:{}", parsed.port_or_known_default().unwrap_or(80));
    let deadline = std::time::Instant::now() + patience;
    loop {
        // Resolved on every try: in a fresh container network the name may not exist yet.
        let attempt = std::net::ToSocketAddrs::to_socket_addrs(authority.as_str())
            .map_err(anyhow::Error::from)
            .and_then(|mut addresses| {
                let address = addresses
                    .next()
                    .with_context(|| format!("{authority} resolves to no address"))?;
                std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
                Ok(())
            });
        match attempt {
            Ok(()) => return Ok(()),
            Err(error) if std::time::Instant::now() >= deadline => {
                bail!(
                    "the server at {url} did not accept a connection within {} s: {error:#}",
                    patience.as_secs()
                )
            }
            Err(_) => thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// How much of a crashed server's output its error keeps.
const LAST_OUTPUT_LINES: usize = 3;

/// Where the server under test runs.
pub enum Server {
    /// A process we started, whose CPU and memory we can read.
    Local(ServerProcess),
    /// Client mode: a server someone else runs.
    Remote(String),
}

impl Server {
    pub fn start(test: &SelectedTest, binary: &Path, database_url: &str) -> anyhow::Result<Self> {
        Ok(Server::Local(ServerProcess::start(
            binary,
            database_url,
            test.config.ready_path(),
        )?))
    }

    pub fn base_url(&self) -> String {
        match self {
            Server::Local(process) => format!("http://{}", process.address()),
            Server::Remote(url) => url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match self {
            Server::Local(process) => Some(process.pid().as_raw() as u32),
            Server::Remote(_) => None,
        }
    }

    /// How a local server ended when it exited on its own, with its last lines of output (a
    /// panic message, an out-of-memory kill). `None` while it runs, and always for a remote
    /// server, whose process is out of sight (a dead one shows as wrk's connect errors).
    pub fn exited(&self) -> Option<String> {
        let Server::Local(process) = self else {
            return None;
        };
        let status = process.exited()?;
        let output = process.output();
        let last: Vec<&str> = output
            .iter()
            .rev()
            .take(LAST_OUTPUT_LINES)
            .rev()
            .map(String::as_str)
            .collect();
        Some(if last.is_empty() {
            format!("the server exited ({status})")
        } else {
            format!(
                "the server exited ({status}); its last output: {}",
                last.join(" | ")
            )
        })
    }

    /// Stops a local server with SIGTERM; a remote one is left alone. A server that already
    /// exited on its own is reported by [`Self::exited`], not here.
    pub fn stop(self) -> anyhow::Result<()> {
        if let Server::Local(mut process) = self {
            if process.exited().is_some() {
                return Ok(());
            }
            let status = process.terminate()?;
            if !status.success() {
                bail!("the server exited with {status} after SIGTERM");
            }
        }
        Ok(())
    }
}
