//! What every reference implementation shares, whatever its HTTP framework: the World and
//! Fortune models, the `queries` rule, random ids, the SQL and the database layer, the fortunes
//! template and JSON serialization. An implementation adds only routing, response building and
//! server start-up on top of this crate.

pub mod config;
pub mod db;
pub mod fortunes;
pub mod json;
pub mod model;
pub mod queries;
pub mod random;

/// `Content-Type` values, spelled exactly as TFB's verifier expects them.
pub mod content_type {
    pub const JSON: &str = "application/json";
    pub const HTML: &str = "text/html; charset=utf-8";
    pub const PLAIN: &str = "text/plain";
}

/// The plaintext test's body: exactly 13 bytes, no trailing newline.
pub const HELLO_WORLD: &[u8] = b"Hello, World!";

/// The short body sent with a 503 while the database cannot be reached.
pub const DATABASE_UNAVAILABLE: &[u8] = b"database unavailable";
