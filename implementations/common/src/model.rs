//! The rows and messages the test types send, with the exact JSON key names TFB expects.

use serde::Serialize;

/// The JSON test's object, created and serialized per request as the rules require.
#[derive(Debug, Serialize)]
pub struct Message {
    pub message: &'static str,
}

/// One row of the `world` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct World {
    pub id: i32,
    #[serde(rename = "randomNumber")]
    pub random_number: i32,
}

/// One row of the `fortune` table, its message borrowed from the database row it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fortune<'a> {
    pub id: i32,
    pub message: &'a str,
}
