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
pub mod reply;
