//! The thread that gives up connections whose answers are overdue.
//!
//! Callers wait for their answers without a timeout, and this one operating-system thread checks
//! every watched connection a few times per answer timeout instead. A timed wait per caller would
//! arm one of `may`'s timers per statement (measurable on every request), and under load `may`'s
//! timed park was seen to sleep through its deadline; a plain thread's sleep does not.

use std::{
    net::{Shutdown, TcpStream},
    sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak},
    thread,
    time::Duration,
};

use crate::{Error, connection::Pending};

/// How many times per answer timeout a connection is checked: an overdue answer is given up
/// after at most a quarter of the timeout more.
const CHECKS_PER_TIMEOUT: u32 = 4;

/// The longest the watchdog sleeps between rounds, so a connection with a long timeout that is
/// added later is not checked late by a whole round.
const LONGEST_TICK: Duration = Duration::from_secs(1);

struct Watched {
    pending: Weak<Mutex<Pending>>,
    /// A plain (not `may`) clone of the connection's socket, so may's event loop is not told of
    /// it twice: cutting it wakes the connection's coroutine, which fails every waiter.
    socket: TcpStream,
    timeout: Duration,
}

static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());
static ADDED: Condvar = Condvar::new();
static STARTED: OnceLock<Result<(), String>> = OnceLock::new();

/// Closes the connection behind `pending` once it has had waiters but no answer for `timeout`.
/// The watch ends when the connection is dropped or closed.
pub(crate) fn watch(
    pending: Weak<Mutex<Pending>>,
    socket: TcpStream,
    timeout: Duration,
) -> Result<(), Error> {
    STARTED
        .get_or_init(|| {
            thread::Builder::new()
                .name("may-postgres-watchdog".to_owned())
                .spawn(check_forever)
                .map(drop)
                .map_err(|error| error.to_string())
        })
        .clone()
        .map_err(|error| Error::Connect(format!("cannot start the watchdog thread: {error}")))?;
    lock_watched().push(Watched {
        pending,
        socket,
        timeout,
    });
    ADDED.notify_one();
    Ok(())
}

fn check_forever() {
    let mut watched = lock_watched();
    loop {
        let Some(shortest) = watched.iter().map(|watched| watched.timeout).min() else {
            watched = ADDED.wait(watched).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        let tick = (shortest / CHECKS_PER_TIMEOUT).clamp(Duration::from_millis(1), LONGEST_TICK);
        watched = ADDED
            .wait_timeout(watched, tick)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        watched.retain(still_watched);
    }
}

/// Checks one connection, closing it when its answer is overdue; false once it needs no watch.
fn still_watched(watched: &Watched) -> bool {
    let Some(pending) = watched.pending.upgrade() else {
        return false;
    };
    let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
    if pending.closed.is_some() {
        return false;
    }
    if !pending.is_overdue(watched.timeout) {
        return true;
    }
    pending.closed = Some(format!(
        "no answer from the server for {:?}",
        watched.timeout
    ));
    drop(pending);
    let _ = watched.socket.shutdown(Shutdown::Both);
    false
}

fn lock_watched() -> MutexGuard<'static, Vec<Watched>> {
    WATCHED.lock().unwrap_or_else(PoisonError::into_inner)
}
