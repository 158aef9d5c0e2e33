//! One connection to PostgreSQL shared by many coroutines: prepared statements, and the pipeline
//! that matches each response to the coroutine that asked for it (startup and authentication are
//! [`crate::startup`]'s).
//!
//! Callers append their messages to the connection's output buffer and queue one reply slot per
//! Sync in the same critical section, so slots and statements are queued in the same order. One
//! I/O coroutine per connection owns the socket: each time it runs it sends whatever has
//! accumulated (the statements of every coroutine that became ready in one scheduling round go
//! out in one write, as tokio-postgres' connection task does), reads whatever has arrived, counts
//! ReadyForQuery messages and hands the oldest slot all of its responses at once, and only then
//! waits for the socket or a caller. One coroutine on one descriptor matters: may's event loop
//! wakes every registered descriptor of a socket on each segment the server sends, so a reader
//! and a writer on two clones would be woken twice as often, often on both cores. When the
//! socket fails, the coroutine fails every queued slot with [`Error::Closed`] and marks the
//! connection closed, so no caller ever waits on a dead connection; [`crate::watchdog`] cuts the
//! socket of a connection whose answers are overdue.

use std::{
    collections::VecDeque,
    io::{self, Read, Write},
    net::Shutdown,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::{Buf, Bytes, BytesMut};
use may::{
    coroutine::ParkError,
    io::{WaitIo, WaitIoWaker},
    net::TcpStream,
    sync::Blocker,
};
use postgres_protocol::message::{backend, frontend};

use crate::{
    Config, Error,
    rows::{Messages, Param, Rows, database_error, error_in_response},
    startup::{open_socket, startup},
    watchdog,
};

/// How much the buffer grows when it runs low.
const READ_CHUNK: usize = 64 * 1024;

/// The most one read asks for: a 500-row response arrives in two reads.
const READ_WINDOW: usize = 16 * 1024;

/// Binary, for every parameter and every result column.
const BINARY: i16 = 1;

/// A statement prepared on one [`Connection`], with the types the server inferred.
#[derive(Debug, Clone)]
pub struct Statement {
    name: Arc<str>,
    params: Arc<[u32]>,
    columns: Arc<[u32]>,
}

impl Statement {
    /// The number of result columns.
    pub fn columns(&self) -> usize {
        self.columns.len()
    }

    fn check_params(&self, params: &[Param<'_>]) -> Result<(), Error> {
        if params.len() != self.params.len() {
            return Err(Error::Type(format!(
                "statement takes {} parameters, got {}",
                self.params.len(),
                params.len()
            )));
        }
        for (index, (param, &expected)) in params.iter().zip(self.params.iter()).enumerate() {
            if param.type_oid() != expected {
                return Err(Error::Type(format!(
                    "parameter ${} is {}, got {}",
                    index + 1,
                    Param::type_name(expected),
                    Param::type_name(param.type_oid())
                )));
            }
        }
        Ok(())
    }
}

type Reply = Result<Bytes, Error>;

/// Messages not yet written, and the slots waiting for responses, in the order their statements
/// were queued.
pub(crate) struct Pending {
    /// Set once, when the connection broke; nothing is queued after that.
    pub(crate) closed: Option<String>,
    /// Each caller's slot and how many responses (Syncs) it still waits for: a batch is answered
    /// with one wake-up, not one per statement.
    waiting: VecDeque<(Arc<ReplySlot>, usize)>,
    output: BytesMut,
    /// False from the moment a caller wakes the I/O coroutine until it takes the output.
    io_idle: bool,
    /// Set when the [`Connection`] is dropped: the I/O coroutine sends Terminate and stops.
    dropped: bool,
    /// When the I/O coroutine last saw a response end, or a caller queued onto a connection
    /// nobody was waiting on: a connection whose answers keep coming is busy, one whose answers
    /// have stopped is stalled.
    last_progress: Instant,
}

impl Pending {
    /// True when someone waits and no answer has come for `timeout`.
    pub(crate) fn is_overdue(&self, timeout: Duration) -> bool {
        !self.waiting.is_empty() && self.last_progress.elapsed() >= timeout
    }
}

/// Where the reader leaves one submission's answer for the coroutine (or thread) waiting on it.
/// A may channel per submission would cost a zeroed queue block on every request (measured: half
/// of a `/db` request's instructions).
struct ReplySlot {
    reply: Mutex<Option<Reply>>,
    /// A coroutine's or a thread's parker, whichever created the slot; parks without a timeout
    /// because [`watchdog`] bounds the wait.
    waiter: Blocker,
}

impl ReplySlot {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            reply: Mutex::new(None),
            waiter: Blocker::new(false),
        })
    }

    /// Called once, by the I/O coroutine.
    fn fill(&self, reply: Reply) {
        *self.reply.lock().unwrap_or_else(PoisonError::into_inner) = Some(reply);
        self.waiter.unpark();
    }

    /// Waits until [`Self::fill`] (an unpark that came first makes the park return at once).
    fn wait(&self) -> Reply {
        loop {
            if let Some(reply) = self
                .reply
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                return reply;
            }
            if let Err(ParkError::Canceled) = self.waiter.park(None) {
                return Err(Error::Closed(
                    "the waiting coroutine was cancelled".to_owned(),
                ));
            }
        }
    }
}

/// A connection usable from any number of coroutines at once.
pub struct Connection {
    pending: Arc<Mutex<Pending>>,
    /// Wakes the I/O coroutine when there is output for it.
    wake_io: WaitIoWaker,
    next_statement: AtomicUsize,
}

impl Connection {
    /// Connects, authenticates and starts the I/O coroutine; gives up after `timeout`.
    pub fn connect(config: &Config, timeout: Duration) -> Result<Self, Error> {
        let deadline = Instant::now() + timeout;
        let io_error = |error: io::Error| Error::Connect(error.to_string());
        let mut stream = open_socket(config, timeout)?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        stream.set_read_timeout(Some(remaining)).map_err(io_error)?;
        stream
            .set_write_timeout(Some(remaining))
            .map_err(io_error)?;
        startup(&mut stream, config)?;
        stream.set_read_timeout(None).map_err(io_error)?;
        stream.set_write_timeout(None).map_err(io_error)?;

        let pending = Arc::new(Mutex::new(Pending {
            closed: None,
            waiting: VecDeque::new(),
            output: BytesMut::with_capacity(4096),
            io_idle: true,
            dropped: false,
            last_progress: Instant::now(),
        }));
        if let Some(timeout) = config.answer_timeout {
            let socket = stream.inner().try_clone().map_err(io_error)?;
            watchdog::watch(Arc::downgrade(&pending), socket, timeout)?;
        }
        let wake_io = stream.waker();
        let io_pending = Arc::clone(&pending);
        may::go!(move || {
            // Where panics unwind (tests), an I/O coroutine that panicked still answers every
            // waiter.
            let serve = std::panic::AssertUnwindSafe(|| serve_io(stream, &io_pending));
            if std::panic::catch_unwind(serve).is_err() {
                close_and_fail_waiting(
                    &io_pending,
                    "the connection's coroutine stopped".to_owned(),
                );
            }
        });
        Ok(Self {
            pending,
            wake_io,
            next_statement: AtomicUsize::new(0),
        })
    }

    /// True once the connection has broken; every later statement fails with [`Error::Closed`].
    pub fn is_closed(&self) -> bool {
        self.lock_pending().closed.is_some()
    }

    /// Prepares `sql` under a name of its own, letting the server infer parameter types.
    pub fn prepare(&self, sql: &str) -> Result<Statement, Error> {
        let name = format!("s{}", self.next_statement.fetch_add(1, Ordering::Relaxed));
        let replies = self
            .send(|buf| {
                frontend::parse(&name, sql, [], buf).map_err(encode_error)?;
                frontend::describe(b'S', &name, buf).map_err(encode_error)?;
                frontend::sync(buf);
                Ok(1)
            })?
            .expect("one Sync was sent");
        let response = replies.wait()?;
        let (params, columns) = describe_statement(&response)?;
        Ok(Statement {
            name: name.into(),
            params: params.into(),
            columns: columns.into(),
        })
    }

    /// Runs a prepared statement once.
    pub fn query(&self, statement: &Statement, params: &[Param<'_>]) -> Result<Rows, Error> {
        let mut all = self.query_pipelined(statement, [params])?;
        Ok(all.pop().expect("one set of parameters, one result"))
    }

    /// Runs a prepared statement once per set of parameters. Every execution is its own
    /// Bind/Execute/Sync, and all of them go out in one write, so the whole batch costs one round
    /// trip. Fails with the first error, after every execution has been sent.
    pub fn query_pipelined<'p, P>(
        &self,
        statement: &Statement,
        params: impl IntoIterator<Item = P>,
    ) -> Result<Vec<Rows>, Error>
    where
        P: AsRef<[Param<'p>]>,
    {
        self.submit(statement, params)?.wait()
    }

    /// Queues the executions of [`Self::query_pipelined`] without waiting for their answers, so
    /// that further statements go out in the same flight; [`Submitted::wait`] reads the answers.
    /// The server runs everything in the order it was submitted.
    pub fn submit<'p, P>(
        &self,
        statement: &Statement,
        params: impl IntoIterator<Item = P>,
    ) -> Result<Submitted, Error>
    where
        P: AsRef<[Param<'p>]>,
    {
        let replies = self.send(|buf| {
            let mut syncs = 0;
            for params in params {
                let params = params.as_ref();
                statement.check_params(params)?;
                bind(statement, params, buf)?;
                frontend::execute("", 0, buf).map_err(encode_error)?;
                frontend::sync(buf);
                syncs += 1;
            }
            Ok(syncs)
        })?;
        Ok(Submitted {
            columns: Arc::clone(&statement.columns),
            replies,
        })
    }

    /// Encodes messages into the output (`encode` answers how many Syncs they hold) and queues
    /// one reply slot for them, in one critical section so queue order is wire order; then wakes
    /// the I/O coroutine. `None` when nothing was sent.
    fn send(
        &self,
        encode: impl FnOnce(&mut BytesMut) -> Result<usize, Error>,
    ) -> Result<Option<Arc<ReplySlot>>, Error> {
        let slot = ReplySlot::new();
        let wake = {
            let mut pending = self.lock_pending();
            if let Some(reason) = &pending.closed {
                return Err(Error::Closed(reason.clone()));
            }
            let start = pending.output.len();
            let syncs = match encode(&mut pending.output) {
                Ok(0) => return Ok(None),
                Ok(syncs) => syncs,
                Err(error) => {
                    pending.output.truncate(start);
                    return Err(error);
                }
            };
            if pending.waiting.is_empty() {
                pending.last_progress = Instant::now();
            }
            pending.waiting.push_back((Arc::clone(&slot), syncs));
            std::mem::replace(&mut pending.io_idle, false)
        };
        if wake {
            self.wake_io.wakeup();
        }
        Ok(Some(slot))
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Executions sent on a connection whose answers have not been read yet.
pub struct Submitted {
    columns: Arc<[u32]>,
    /// `None` when there was nothing to send.
    replies: Option<Arc<ReplySlot>>,
}

impl Submitted {
    /// Waits for the answers (as [`Connection::query`] does), one [`Rows`] per execution, in
    /// order. Dropping it instead discards them when they arrive.
    pub fn wait(self) -> Result<Vec<Rows>, Error> {
        let Some(replies) = self.replies else {
            return Ok(Vec::new());
        };
        let responses = replies.wait()?;
        split_responses(&responses)
            .map(|response| Rows::new(Arc::clone(&self.columns), response))
            .collect()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        {
            let mut pending = self.lock_pending();
            frontend::terminate(&mut pending.output);
            pending.dropped = true;
        }
        // The I/O coroutine sends Terminate, then closes the socket and stops.
        self.wake_io.wakeup();
    }
}

/// Cuts a batch's bytes after each ReadyForQuery: one piece per statement.
fn split_responses(responses: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    let mut start = 0;
    let mut end = 0;
    Messages::new(responses).filter_map(move |(tag, payload)| {
        end += 5 + payload.len();
        (tag == b'Z').then(|| {
            let piece = responses.slice(start..end);
            start = end;
            piece
        })
    })
}

pub(crate) fn encode_error(error: io::Error) -> Error {
    Error::Type(error.to_string())
}

fn bind(statement: &Statement, params: &[Param<'_>], buf: &mut BytesMut) -> Result<(), Error> {
    frontend::bind(
        "",
        &statement.name,
        params.iter().map(|_| BINARY),
        params,
        |param, buf| {
            param
                .encode(buf)
                .map(|()| postgres_protocol::IsNull::No)
                .map_err(Into::into)
        },
        [BINARY],
        buf,
    )
    .map_err(|error| match error {
        frontend::BindError::Conversion(error) => Error::Type(error.to_string()),
        frontend::BindError::Serialization(error) => encode_error(error),
    })
}

/// The parameter and column types of a prepared statement, from the server's answer to
/// Parse/Describe/Sync.
fn describe_statement(response: &[u8]) -> Result<(Vec<u32>, Vec<u32>), Error> {
    use fallible_iterator::FallibleIterator;
    let protocol = |error: io::Error| Error::Protocol(error.to_string());
    let mut input = BytesMut::from(response);
    let (mut params, mut columns) = (Vec::new(), Vec::new());
    while let Some(message) = backend::Message::parse(&mut input).map_err(protocol)? {
        match message {
            backend::Message::ErrorResponse(body) => return Err(database_error(&body)),
            backend::Message::ParameterDescription(body) => {
                params = body.parameters().collect().map_err(protocol)?;
            }
            backend::Message::RowDescription(body) => {
                columns = body
                    .fields()
                    .map(|field| Ok(field.type_oid()))
                    .collect()
                    .map_err(protocol)?;
            }
            _ => {}
        }
    }
    Ok((params, columns))
}

/// Reads at least one byte more into `buf` through `scratch`, or fails at end of stream. The copy
/// from a scratch buffer zeroed once costs only the bytes read; zeroing `buf`'s spare capacity
/// for every read would cost its whole size.
/// Answers how many bytes it read.
pub(crate) fn read_more(
    stream: &mut impl Read,
    buf: &mut BytesMut,
    scratch: &mut [u8],
) -> io::Result<usize> {
    match stream.read(scratch)? {
        0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        )),
        read => {
            if buf.capacity() - buf.len() < read {
                buf.reserve(READ_CHUNK.max(read));
            }
            buf.extend_from_slice(&scratch[..read]);
            Ok(read)
        }
    }
}

/// The I/O coroutine: sends what callers queued, reads what the server sent and answers the
/// slots it completes, then waits until the socket or a caller has more; until the socket fails
/// or the [`Connection`] is dropped.
fn serve_io(mut stream: TcpStream, pending: &Mutex<Pending>) {
    let mut output = BytesMut::with_capacity(4096);
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut scratch = vec![0; READ_WINDOW];
    // Bytes at the front of `input` that are whole messages of the response being received.
    let mut scanned = 0;
    let reason = loop {
        let dropped = {
            let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
            if output.is_empty() {
                std::mem::swap(&mut pending.output, &mut output);
            } else {
                output.extend_from_slice(&pending.output);
                pending.output.clear();
            }
            pending.io_idle = true;
            pending.dropped
        };
        let written = match write_available(stream.inner_mut(), &mut output) {
            Ok(written) => written,
            Err(error) => break error.to_string(),
        };
        if dropped && output.is_empty() {
            break "the connection was dropped".to_owned();
        }
        let read = match read_available(stream.inner_mut(), &mut input, &mut scratch) {
            Ok(read) => read,
            Err(error) => {
                // A server that shuts down says why in an ErrorResponse before closing.
                let fatal = Messages::new(&input[..scanned])
                    .find(|(tag, _)| *tag == b'E')
                    .map(|(_, payload)| error_in_response(payload));
                break match fatal {
                    Some(Error::Database { message, .. }) => message,
                    _ => error.to_string(),
                };
            }
        };
        if let Err(reason) = answer_completed(&mut input, &mut scanned, pending) {
            break reason;
        }
        if read == 0 && (output.is_empty() || written == 0) {
            stream.wait_io();
        }
    };
    let _ = stream.shutdown(Shutdown::Both);
    close_and_fail_waiting(pending, reason);
}

/// Writes from the front of `output` until it is empty or the socket is full; how many bytes.
fn write_available(stream: &mut std::net::TcpStream, output: &mut BytesMut) -> io::Result<usize> {
    let mut written = 0;
    while !output.is_empty() {
        match stream.write(output) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the server stopped taking data",
                ));
            }
            Ok(sent) => {
                output.advance(sent);
                written += sent;
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(written)
}

/// Reads what has arrived into `input` with [`read_more`]; how many bytes. A short read means
/// the socket is drained, so it stops there rather than pay for a read that would block. The end
/// of the stream fails only once what came before it has been handed over.
fn read_available(
    stream: &mut std::net::TcpStream,
    input: &mut BytesMut,
    scratch: &mut [u8],
) -> io::Result<usize> {
    let mut read = 0;
    loop {
        match read_more(stream, input, scratch) {
            Ok(got) => {
                read += got;
                if got < scratch.len() {
                    break;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof && read > 0 => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(read)
}

/// Splits `input` after each ReadyForQuery and hands every completed submission its responses;
/// `scanned` carries how far the response being received has been walked.
fn answer_completed(
    input: &mut BytesMut,
    scanned: &mut usize,
    pending: &Mutex<Pending>,
) -> Result<(), String> {
    while let Some(header) = input.get(*scanned..*scanned + 5) {
        let len = u32::from_be_bytes(header[1..5].try_into().expect("four bytes")) as usize;
        if len < 4 {
            return Err("malformed message length from the server".to_owned());
        }
        if input.len() < *scanned + 1 + len {
            break;
        }
        let tag = header[0];
        *scanned += 1 + len;
        if tag == b'Z' {
            let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.last_progress = Instant::now();
            let Some((_, remaining)) = pending.waiting.front_mut() else {
                return Err("the server sent a response nobody asked for".to_owned());
            };
            *remaining -= 1;
            if *remaining == 0 {
                let (slot, _) = pending.waiting.pop_front().expect("front exists");
                drop(pending);
                let responses = input.split_to(*scanned).freeze();
                *scanned = 0;
                slot.fill(Ok(responses));
            }
        }
    }
    Ok(())
}

/// Marks the connection closed and fails every queued slot, so no caller waits on it.
fn close_and_fail_waiting(pending: &Mutex<Pending>, reason: String) {
    let (reason, waiting) = {
        let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
        // The watchdog has named the cause already; the I/O coroutine only sees the cut.
        let reason = pending.closed.get_or_insert(reason).clone();
        (reason, std::mem::take(&mut pending.waiting))
    };
    for (slot, _) in waiting {
        slot.fill(Err(Error::Closed(reason.clone())));
    }
}
