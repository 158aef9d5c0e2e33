//! Building implementations with cargo, and finding the binaries it made.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use cargo_metadata::Message;

use crate::workspace_root;

/// The profile servers are built with in tests: `TFB_TEST_PROFILE`, or `ci` (release without
/// LTO, see the workspace Cargo.toml). Benchmarks use `release`.
pub fn test_profile() -> String {
    std::env::var("TFB_TEST_PROFILE").unwrap_or_else(|_| "ci".to_owned())
}

/// Builds the packages' binaries, each package on its own, and returns each one's executable.
/// Cargo's own progress goes to this process's stderr.
pub fn build(packages: &[&str], profile: &str) -> anyhow::Result<HashMap<String, PathBuf>> {
    let targets: Vec<(&str, &str)> = packages
        .iter()
        .map(|package| (*package, *package))
        .collect();
    build_binaries(&targets, profile)
}

/// Like [`build`] for `(package, binary)` pairs whose binary is named otherwise (the runner's is
/// `tfb`); the map is keyed by binary name.
pub fn build_binaries(
    targets: &[(&str, &str)],
    profile: &str,
) -> anyhow::Result<HashMap<String, PathBuf>> {
    // One cargo call per package: cargo unifies features over the packages it builds together,
    // so building a package beside others would make another binary than building it alone,
    // and a one-test benchmark would measure something else than a full run.
    targets
        .iter()
        .map(|(package, binary)| Ok(((*binary).to_owned(), build_one(package, binary, profile)?)))
        .collect()
}

fn build_one(package: &str, binary: &str, profile: &str) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--locked",
            "--bins",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--profile", profile, "-p", package])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!("cargo build --profile {profile} of {package} failed (its errors are above)");
    }
    for message in Message::parse_stream(output.stdout.as_slice()) {
        if let Message::CompilerArtifact(artifact) = message.context("reading cargo's messages")?
            && artifact.target.name == binary
            && let Some(executable) = artifact.executable
        {
            return Ok(executable.into_std_path_buf());
        }
    }
    bail!("cargo built no binary named {binary} for package {package}")
}
