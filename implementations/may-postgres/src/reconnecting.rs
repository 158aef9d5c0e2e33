//! A connection that replaces itself when it breaks, with its prepared statements.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::{Config, Connection, Error};

/// A live connection and what was prepared on it.
pub struct Session<S> {
    pub connection: Connection,
    pub statements: S,
}

type Setup<S> = Box<dyn Fn(&Connection) -> Result<S, Error> + Send + Sync>;

/// Hands out the current [`Session`], opening a new one when the last has broken.
///
/// One coroutine reconnects at a time; the others wait for it and use what it made. After a
/// failed attempt, callers get [`Error::Unavailable`] at once until `backoff` has passed, so a
/// database that is away costs one connection attempt per interval instead of one per request.
pub struct Reconnecting<S> {
    config: Config,
    connect_timeout: Duration,
    backoff: Duration,
    setup: Setup<S>,
    current: Mutex<Option<Arc<Session<S>>>>,
    /// Held while reconnecting; holds when the last attempt failed.
    reconnecting: may::sync::Mutex<Option<Instant>>,
}

impl<S> Reconnecting<S> {
    /// Connects lazily: the first [`Self::session`] call opens the connection and runs `setup`
    /// (typically preparing statements) on it.
    pub fn new(
        config: Config,
        connect_timeout: Duration,
        backoff: Duration,
        setup: impl Fn(&Connection) -> Result<S, Error> + Send + Sync + 'static,
    ) -> Self {
        Self {
            config,
            connect_timeout,
            backoff,
            setup: Box::new(setup),
            current: Mutex::new(None),
            reconnecting: may::sync::Mutex::new(None),
        }
    }

    fn live(&self) -> Option<Arc<Session<S>>> {
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|session| !session.connection.is_closed())
            .cloned()
    }

    /// The live session, reconnecting first if it broke.
    pub fn session(&self) -> Result<Arc<Session<S>>, Error> {
        if let Some(session) = self.live() {
            return Ok(session);
        }
        let mut last_failure = self
            .reconnecting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(session) = self.live() {
            return Ok(session);
        }
        if let Some(failed_at) = *last_failure
            && failed_at.elapsed() < self.backoff
        {
            return Err(Error::Unavailable(
                "the last connection attempt failed moments ago".to_owned(),
            ));
        }
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let opened =
            Connection::connect(&self.config, self.connect_timeout).and_then(|connection| {
                let statements = (self.setup)(&connection)?;
                Ok(Arc::new(Session {
                    connection,
                    statements,
                }))
            });
        match opened {
            Ok(session) => {
                *last_failure = None;
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
}
