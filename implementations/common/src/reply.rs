//! What each endpoint answers, decided once for every framework: status, content type and body.
//! An implementation turns a [`Reply`] into its framework's response type and adds the `Server`
//! header; the framework adds `Date` and `Content-Length`.

use bytes::Bytes;
use serde::Serialize;

use crate::json;

/// The three kinds of body the test types send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Json,
    Html,
    Plain,
}

impl Content {
    /// The `Content-Type` value, spelled exactly as TFB's verifier expects it (the fortunes
    /// page must name its charset).
    pub const fn mime(self) -> &'static str {
        match self {
            Content::Json => "application/json",
            Content::Html => "text/html; charset=utf-8",
            Content::Plain => "text/plain",
        }
    }
}

/// A database failure as HTTP sees it: 503 while the database is away (the connection is down or
/// being replaced), 500 for anything else. Each database driver's error type implements it.
pub trait FailureStatus {
    fn status(&self) -> u16;
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content: Content,
    pub body: Bytes,
}

/// The plaintext test's body (exactly 13 bytes, no trailing newline) and the JSON test's message.
pub const HELLO_WORLD: &str = "Hello, World!";

/// The short body sent while the database cannot be reached.
const DATABASE_UNAVAILABLE: &[u8] = b"database unavailable";

impl Reply {
    fn ok(content: Content, body: Bytes) -> Self {
        Self {
            status: 200,
            content,
            body,
        }
    }

    /// The JSON test: an object created and serialized for this request.
    pub fn hello_json() -> Self {
        Self::ok(Content::Json, json::hello_world())
    }

    /// The plaintext test.
    pub fn hello_plaintext() -> Self {
        Self::ok(Content::Plain, Bytes::from_static(HELLO_WORLD.as_bytes()))
    }

    pub fn not_found() -> Self {
        Self {
            status: 404,
            content: Content::Plain,
            body: Bytes::from_static(b"not found"),
        }
    }

    /// A request refused before routing, for the frameworks whose glue decides it: 400 (its
    /// framing), 405 (not a GET) or 413 (a body no route takes).
    pub fn refused(status: u16) -> Self {
        let body: &'static [u8] = match status {
            400 => b"bad request",
            405 => b"method not allowed",
            413 => b"content too large",
            _ => b"refused",
        };
        Self {
            status,
            content: Content::Plain,
            body: Bytes::from_static(body),
        }
    }

    /// Rows serialized as JSON, or the database error.
    pub fn json<T: Serialize>(result: Result<T, impl FailureStatus>) -> Self {
        match result {
            Ok(value) => Self::ok(Content::Json, json::to_body(&value)),
            Err(error) => Self::database_error(&error),
        }
    }

    /// A rendered page, or the database error.
    pub fn html(result: Result<Bytes, impl FailureStatus>) -> Self {
        match result {
            Ok(page) => Self::ok(Content::Html, page),
            Err(error) => Self::database_error(&error),
        }
    }

    /// 503 with a short body while the database is away (500 for other failures); never a hang.
    fn database_error(error: &impl FailureStatus) -> Self {
        Self {
            status: error.status(),
            content: Content::Plain,
            body: Bytes::from_static(DATABASE_UNAVAILABLE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Down;

    impl FailureStatus for Down {
        fn status(&self) -> u16 {
            503
        }
    }

    #[test]
    fn database_errors_are_short_503s() {
        let reply = Reply::json::<()>(Err(Down));
        assert_eq!((reply.status, reply.content), (503, Content::Plain));
        assert!(!reply.body.is_empty() && reply.body.len() < 64);
    }
}
