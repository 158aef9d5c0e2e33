//! What the end-to-end tests and the benchmark runner share: finding the implementations under
//! `implementations/`, building them, running one as a process, and talking to it.

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
        .expect("harness/ lives in the workspace root")
        .to_path_buf()
}
