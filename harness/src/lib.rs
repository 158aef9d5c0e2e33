//! What the end-to-end tests and the benchmark runner share: finding the implementations under
//! `implementations/`, building them, running one as a process, and talking to it.

pub mod build;
pub mod discover;
pub mod http;
pub mod proxy;
pub mod server;
pub mod tcp_table;

use std::path::{Path, PathBuf};

/// The workspace root: the folder holding `implementations/`, or `TFB_ROOT` when set.
pub fn workspace_root() -> PathBuf {
    // The client image has no sources: it keeps the implementations' configs under TFB_ROOT.
    if let Some(root) = std::env::var_os("TFB_ROOT") {
        return PathBuf::from(root);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness/ lives in the workspace root")
        .to_path_buf()
}
