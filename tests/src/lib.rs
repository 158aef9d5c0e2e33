//! The harness the end-to-end tests (and later the benchmark runner) use to find, build, start
//! and talk to the implementations under `implementations/`.

pub mod assertions;
pub mod build;
pub mod discover;
pub mod http;
pub mod server;

use std::path::{Path, PathBuf};

/// The workspace root: the folder holding `implementations/`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf()
}
