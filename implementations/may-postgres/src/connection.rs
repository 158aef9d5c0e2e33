//! One connection to PostgreSQL shared by many coroutines: prepared statements, and the pipeline
//! that matches each response to the coroutine that asked for it (startup and authentication are
//! [`crate::startup`]'s).
//!
//! Callers append their messages to the connection's output buffer and queue one reply slot per
//! Sync in the same critical section, so slots and statements are queued in the same order. A
//! writer coroutine sends whatever has accumulated by the time it runs: the statements of every
//! coroutine that became ready in one scheduling round go out in one write (as tokio-postgres'
//! connection task does), instead of one system call per statement. The reader coroutine counts
//! ReadyForQuery messages and hands the oldest slot all of its responses at once. When the socket
//! fails, the reader fails every queued slot with [`Error::Closed`] and marks the connection
//! closed, so no caller ever waits on a dead connection.

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

use bytes::{Bytes, BytesMut};
use may::{
    net::TcpStream,
    sync::mpsc::{self, Receiver, Sender},
};
use postgres_protocol::message::{backend, frontend};

use crate::{
    Config, Error,
    rows::{Messages, Param, Rows, database_error, error_in_response},
    startup::{open_socket, startup},
};

/// The longest a waiting caller sleeps before checking whether its answer is overdue.
const WAIT_SLICE: Duration = Duration::from_millis(200);

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
struct Pending {
    /// Set once, when the connection broke; nothing is queued after that.
    closed: Option<String>,
    /// Each caller's slot and how many responses (Syncs) it still waits for: a batch is answered
    /// with one wake-up, not one per statement.
    waiting: VecDeque<(Sender<Reply>, usize)>,
    output: BytesMut,
    /// False from the moment a caller wakes the writer until the writer takes the output.
    writer_idle: bool,
    /// When the reader last saw a response end: a connection whose answers keep coming is busy,
    /// one whose answers have stopped is stalled.
    last_answer: Instant,
}

/// A connection usable from any number of coroutines at once.
pub struct Connection {
    pending: Arc<Mutex<Pending>>,
    /// The socket the reader and writer use, kept to cut it when an answer is overdue.
    socket: TcpStream,
    answer_timeout: Option<Duration>,
    /// Wakes the writer; dropping it tells the writer to send Terminate and close.
    wake_writer: Sender<()>,
    next_statement: AtomicUsize,
}

impl Connection {
    /// Connects, authenticates and starts the reader and writer coroutines; gives up after
    /// `timeout`.
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
            writer_idle: true,
            last_answer: Instant::now(),
        }));
        let reader = stream.try_clone().map_err(io_error)?;
        let socket = stream.try_clone().map_err(io_error)?;
        let reader_pending = Arc::clone(&pending);
        may::go!(move || read_responses(reader, &reader_pending));
        let (wake_writer, wakeups) = mpsc::channel();
        let writer_pending = Arc::clone(&pending);
        may::go!(move || write_requests(stream, &writer_pending, &wakeups));
        Ok(Self {
            pending,
            socket,
            answer_timeout: config.answer_timeout,
            wake_writer,
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
        let response = self.receive(&replies)?;
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
    ) -> Result<Submitted<'_>, Error>
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
            connection: self,
            columns: Arc::clone(&statement.columns),
            replies,
        })
    }

    /// Encodes messages into the output (`encode` answers how many Syncs they hold) and queues
    /// one reply slot for them, in one critical section so queue order is wire order; then wakes
    /// the writer. `None` when nothing was sent.
    fn send(
        &self,
        encode: impl FnOnce(&mut BytesMut) -> Result<usize, Error>,
    ) -> Result<Option<Receiver<Reply>>, Error> {
        let (sender, replies) = mpsc::channel();
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
            pending.waiting.push_back((sender, syncs));
            std::mem::replace(&mut pending.writer_idle, false)
        };
        if wake {
            // Fails only once the writer has stopped, after a write error; the reader then fails
            // the slot just queued.
            let _ = self.wake_writer.send(());
        }
        Ok(Some(replies))
    }

    /// Waits for a slot's answer for as long as the connection's answers keep coming. Once none
    /// at all has arrived for the answer timeout, the server or the network stalled: the
    /// connection is closed, which fails every other waiter at once and makes
    /// [`Self::is_closed`] true, so a [`crate::Reconnecting`] opens a fresh one.
    fn receive(&self, replies: &Receiver<Reply>) -> Reply {
        let stopped = || Err(Error::Closed("the reader stopped".to_owned()));
        let Some(timeout) = self.answer_timeout else {
            return replies.recv().unwrap_or_else(|_| stopped());
        };
        let started = Instant::now();
        loop {
            let quiet = self
                .lock_pending()
                .last_answer
                .elapsed()
                .min(started.elapsed());
            let patience = timeout.saturating_sub(quiet);
            if patience.is_zero() {
                let reason = format!("no answer from the server for {timeout:?}");
                self.lock_pending()
                    .closed
                    .get_or_insert_with(|| reason.clone());
                let _ = self.socket.shutdown(Shutdown::Both);
                return Err(Error::Closed(reason));
            }
            // may's `recv_timeout` waits its whole timeout again after any early wake-up (its
            // timer may fire a little before the deadline), so a 5 s wait could last 10 s:
            // short slices keep that overshoot to one slice, and the loop checks the clock.
            match replies.recv_timeout(patience.min(WAIT_SLICE)) {
                Ok(reply) => return reply,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return stopped(),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Executions sent on a connection whose answers have not been read yet.
pub struct Submitted<'c> {
    connection: &'c Connection,
    columns: Arc<[u32]>,
    /// `None` when there was nothing to send.
    replies: Option<Receiver<Reply>>,
}

impl Submitted<'_> {
    /// Waits for the answers (as [`Connection::query`] does), one [`Rows`] per execution, in
    /// order. Dropping it instead discards them when they arrive.
    pub fn wait(self) -> Result<Vec<Rows>, Error> {
        let Some(replies) = self.replies else {
            return Ok(Vec::new());
        };
        let responses = self.connection.receive(&replies)?;
        split_responses(&responses)
            .map(|response| Rows::new(Arc::clone(&self.columns), response))
            .collect()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The writer sends this, then sees `wake_writer` dropped and closes the socket, which
        // ends the reader too.
        frontend::terminate(&mut self.lock_pending().output);
    }
}

/// The writer coroutine: each time it is woken, sends everything queued so far in one write.
fn write_requests(mut stream: TcpStream, pending: &Mutex<Pending>, wakeups: &Receiver<()>) {
    let mut sending = BytesMut::with_capacity(4096);
    loop {
        let connection_dropped = wakeups.recv().is_err();
        {
            let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut pending.output, &mut sending);
            pending.writer_idle = true;
        }
        if !sending.is_empty() {
            if stream.write_all(&sending).is_err() {
                // Wakes the reader, which fails every queued slot with the reason it sees.
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            sending.clear();
        }
        if connection_dropped {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
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
pub(crate) fn read_more(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    scratch: &mut [u8],
) -> io::Result<()> {
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
            Ok(())
        }
    }
}

/// The reader coroutine: splits the input at each ReadyForQuery and answers the oldest slot.
fn read_responses(mut stream: TcpStream, pending: &Mutex<Pending>) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut scratch = vec![0; READ_WINDOW];
    // Bytes at the front of `buf` that are whole messages of the response being received.
    let mut scanned = 0;
    let reason = 'read: loop {
        while let Some(header) = buf.get(scanned..scanned + 5) {
            let len = u32::from_be_bytes(header[1..5].try_into().expect("four bytes")) as usize;
            if len < 4 {
                break 'read "malformed message length from the server".to_owned();
            }
            if buf.len() < scanned + 1 + len {
                break;
            }
            scanned += 1 + len;
            if header[0] == b'Z' {
                let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
                pending.last_answer = Instant::now();
                let Some((_, remaining)) = pending.waiting.front_mut() else {
                    break 'read "the server sent a response nobody asked for".to_owned();
                };
                *remaining -= 1;
                if *remaining == 0 {
                    let (slot, _) = pending.waiting.pop_front().expect("front exists");
                    drop(pending);
                    let responses = buf.split_to(scanned).freeze();
                    scanned = 0;
                    // A caller that gave up has dropped its receiver; nothing to do.
                    let _ = slot.send(Ok(responses));
                }
            }
        }
        if let Err(error) = read_more(&mut stream, &mut buf, &mut scratch) {
            // A server that shuts down says why in an ErrorResponse before closing.
            let fatal = Messages::new(&buf[..scanned])
                .find(|(tag, _)| *tag == b'E')
                .map(|(_, payload)| error_in_response(payload));
            break match fatal {
                Some(Error::Database { message, .. }) => message,
                _ => error.to_string(),
            };
        }
    };
    let _ = stream.shutdown(Shutdown::Both);
    let (reason, waiting) = {
        let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
        // A caller that timed out has named the cause already; the reader only sees the cut.
        let reason = pending.closed.get_or_insert(reason).clone();
        (reason, std::mem::take(&mut pending.waiting))
    };
    for (slot, _) in waiting {
        let _ = slot.send(Err(Error::Closed(reason.clone())));
    }
}
