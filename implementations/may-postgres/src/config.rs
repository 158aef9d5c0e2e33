//! Connection settings, read from a `postgres://user:password@host:port/database` URL.

use std::time::Duration;

use crate::Error;

/// Where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
    /// Run-time parameters (`statement_timeout`, ...) sent in the startup message, so they hold
    /// for the whole session without a statement of their own.
    pub settings: Vec<(String, String)>,
    /// How long a waiting caller tolerates a connection delivering no answer at all before it is
    /// given up as stalled; `None` waits for as long as the server takes.
    pub answer_timeout: Option<Duration>,
    /// The may worker whose event loop should poll the connection's socket, so its answers wake
    /// the coroutines of that worker's HTTP connections on their own core; `None` takes
    /// whichever worker the socket's descriptor falls on.
    pub worker: Option<Worker>,
}

/// One of may's worker threads. may polls descriptor `fd` on worker `fd % count`: a socket
/// belongs to a worker by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    pub index: usize,
    /// How many workers may runs (`may::config().set_workers`).
    pub count: usize,
}

impl Config {
    /// Parses `postgres://` or `postgresql://` URLs with a user, an optional password, a host,
    /// an optional port (default 5432) and a database (default: the user's name). Percent-escapes
    /// in the user, password and database are decoded; query parameters are refused rather than
    /// silently ignored, since this client honours none of them.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::Config(format!("{url:?}: {reason}"));
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| invalid("must start with postgres://"))?;
        if rest.contains('?') {
            return Err(invalid("query parameters are not supported"));
        }
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, address) = authority
            .rsplit_once('@')
            .ok_or_else(|| invalid("must name a user (user@host)"))?;
        let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
        let (host, port) = match address.strip_prefix('[') {
            // An IPv6 literal: [::1]:5432
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| invalid("unclosed '[' in the host"))?;
                (host, after.strip_prefix(':'))
            }
            None => match address.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (address, None),
            },
        };
        let port = match port {
            Some(port) => port
                .parse()
                .map_err(|_| invalid(&format!("port {port:?} is not a port number")))?,
            None => 5432,
        };
        if host.is_empty() {
            return Err(invalid("must name a host"));
        }
        let user = percent_decode(user).ok_or_else(|| invalid("bad %-escape in the user"))?;
        if user.is_empty() {
            return Err(invalid("must name a user (user@host)"));
        }
        let database = match percent_decode(database) {
            Some(database) if database.is_empty() => user.clone(),
            Some(database) => database,
            None => return Err(invalid("bad %-escape in the database")),
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            password: percent_decode(password)
                .ok_or_else(|| invalid("bad %-escape in the password"))?,
            user,
            database,
            settings: Vec::new(),
            answer_timeout: None,
            worker: None,
        })
    }

    /// Adds a run-time parameter for every session opened with this configuration.
    pub fn with_setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tfb_urls() {
        let config =
            Config::from_url("postgres://benchmarkdbuser:benchmarkdbpass@tfb-database/hello_world")
                .unwrap();
        assert_eq!(
            config,
            Config {
                host: "tfb-database".into(),
                port: 5432,
                user: "benchmarkdbuser".into(),
                password: "benchmarkdbpass".into(),
                database: "hello_world".into(),
                settings: Vec::new(),
                answer_timeout: None,
                worker: None,
            }
        );
        let config = Config::from_url("postgresql://u:p%40ss@[::1]:6543/").unwrap();
        assert_eq!(
            (config.host.as_str(), config.port, config.password.as_str()),
            ("::1", 6543, "p@ss")
        );
        assert_eq!(config.database, "u");
    }

    #[test]
    fn explains_what_is_wrong() {
        for (url, expected) in [
            ("mysql://u@h/d", "must start with postgres://"),
            ("postgres://h/d", "must name a user"),
            ("postgres://u@h:99999/d", "is not a port number"),
            ("postgres://u@h/d?sslmode=require", "query parameters"),
            ("postgres://u:%zz@h/d", "bad %-escape in the password"),
        ] {
            let error = Config::from_url(url).unwrap_err().to_string();
            assert!(error.contains(expected), "{url}: {error}");
        }
    }
}
