//! What can go wrong talking to PostgreSQL, split by what the caller should do about it.

use std::fmt;

/// Every failure of this client. Cloneable, because one broken connection fails every statement
/// that was waiting on it with the same reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `DATABASE_URL` (or another connection string) could not be understood.
    Config(String),
    /// No connection: the server is unreachable, refused, or did not answer in time.
    Connect(String),
    /// The server rejected our credentials or asked for a method we do not speak.
    Authentication(String),
    /// The connection broke; the statement's outcome is unknown. Reconnecting may help.
    Closed(String),
    /// A failed reconnection was too recent to try again; the database is probably down.
    Unavailable(String),
    /// The server answered the statement with an error (SQLSTATE `code`).
    Database { code: String, message: String },
    /// A parameter or column did not have the type or form the caller asked for.
    Type(String),
    /// The server sent something this client did not expect.
    Protocol(String),
}

impl Error {
    /// True when the database itself is away, the connection is gone, or the server cancelled
    /// the statement (`statement_timeout`, SQLSTATE 57014: it waited too long, typically on a
    /// lock): a web server answers 503 and tries again later, rather than 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Connect(_) | Error::Closed(_) | Error::Unavailable(_) => true,
            Error::Database { code, .. } => code == QUERY_CANCELED,
            _ => false,
        }
    }
}

/// SQLSTATE of a statement the server cancelled.
const QUERY_CANCELED: &str = "57014";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(reason) => write!(f, "invalid connection settings: {reason}"),
            Error::Connect(reason) => write!(f, "cannot connect to PostgreSQL: {reason}"),
            Error::Authentication(reason) => write!(f, "authentication failed: {reason}"),
            Error::Closed(reason) => write!(f, "connection to PostgreSQL lost: {reason}"),
            Error::Unavailable(reason) => write!(f, "PostgreSQL unavailable: {reason}"),
            Error::Database { code, message } => write!(f, "PostgreSQL error {code}: {message}"),
            Error::Type(reason) => write!(f, "type mismatch: {reason}"),
            Error::Protocol(reason) => write!(f, "protocol error: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
