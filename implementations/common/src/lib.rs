//! What every reference implementation shares, whatever its HTTP framework: the World and
//! Fortune models, the `queries` rule, random ids, the SQL and the database layer, the fortunes
//! template and JSON serialization. An implementation adds only routing, response building and
//! server start-up on top of this crate.
//!
//! The `tokio-db` feature (on by default) adds [`db`], the database layer for Tokio-based
//! frameworks, and [`signals`], the stop signals caught for glue that must stop its server itself; an implementation on another runtime turns it off and brings its own driver, sending
//! the same [`sql`].

#[cfg(feature = "tokio-db")]
pub mod cache;
pub mod config;
#[cfg(feature = "tokio-db")]
pub mod db;
pub mod fortunes;
pub mod json;
pub mod model;
pub mod queries;
pub mod random;
pub mod reply;
#[cfg(feature = "tokio-db")]
pub mod signals;
pub mod sql;
