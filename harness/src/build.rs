//! Building implementations with cargo, and finding the binaries it made.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use cargo_metadata::Message;

use crate::workspace_root;

/// The CPU servers are compiled for unless told otherwise: the building machine's own
/// (`-C target-cpu=native`), as TFB's Dockerfiles and ours build, so a local run measures the code
/// the images run.
pub const DEFAULT_TARGET_CPU: &str = "native";

/// How servers are built: a cargo profile and the CPU rustc compiles for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSettings {
    pub profile: String,
    /// A name `rustc --print target-cpus` lists: `native`, `x86-64-v3`, `znver4`, ...
    pub target_cpu: String,
}

impl BuildSettings {
    /// What tests build servers with: the profile `TFB_TEST_PROFILE` or `ci` (release without
    /// LTO, see the workspace Cargo.toml), for the CPU `TFB_TARGET_CPU` or [`DEFAULT_TARGET_CPU`].
    /// Benchmarks use `release`.
    pub fn for_tests() -> Self {
        Self {
            profile: std::env::var("TFB_TEST_PROFILE").unwrap_or_else(|_| "ci".to_owned()),
            target_cpu: std::env::var("TFB_TARGET_CPU")
                .unwrap_or_else(|_| DEFAULT_TARGET_CPU.to_owned()),
        }
    }

    /// The flags rustc gets: the caller's `RUSTFLAGS`, then the target CPU.
    pub fn rustflags(&self) -> String {
        let own = std::env::var("RUSTFLAGS").unwrap_or_default();
        format!("{own} -C target-cpu={}", self.target_cpu)
            .trim()
            .to_owned()
    }

    /// The target CPU as rustc resolves it here: `native (znver4)`; other names as given.
    pub fn resolved_target_cpu(&self) -> String {
        if self.target_cpu != "native" {
            return self.target_cpu.clone();
        }
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
        let listing = Command::new(rustc)
            .current_dir(workspace_root())
            .args(["--print", "target-cpus"])
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
            .unwrap_or_default();
        // rustc says: "native - Select the CPU of the current host (currently znver4)."
        listing
            .lines()
            .find(|line| line.trim_start().starts_with("native "))
            .and_then(|line| line.split_once("(currently "))
            .and_then(|(_, rest)| rest.split_once(')'))
            .map_or_else(|| "native".to_owned(), |(cpu, _)| format!("native ({cpu})"))
    }
}

/// Builds the packages' binaries, each package on its own, and returns each one's executable.
/// Cargo's own progress goes to this process's stderr.
pub fn build(
    packages: &[&str],
    settings: &BuildSettings,
) -> anyhow::Result<HashMap<String, PathBuf>> {
    let targets: Vec<(&str, &str)> = packages
        .iter()
        .map(|package| (*package, *package))
        .collect();
    build_binaries(&targets, settings)
}

/// Like [`build`] for `(package, binary)` pairs whose binary is named otherwise (the runner's is
/// `tfb`); the map is keyed by binary name.
pub fn build_binaries(
    targets: &[(&str, &str)],
    settings: &BuildSettings,
) -> anyhow::Result<HashMap<String, PathBuf>> {
    // One cargo call per package: cargo unifies features over the packages it builds together,
    // so building a package beside others would make another binary than building it alone,
    // and a one-test benchmark would measure something else than a full run.
    targets
        .iter()
        .map(|(package, binary)| Ok(((*binary).to_owned(), build_one(package, binary, settings)?)))
        .collect()
}

fn build_one(package: &str, binary: &str, settings: &BuildSettings) -> anyhow::Result<PathBuf> {
    let profile = &settings.profile;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        // Cargo prefers these to RUSTFLAGS; the flags above already include the caller's.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", settings.rustflags())
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
        bail!(
            "cargo build --profile {profile} (RUSTFLAGS {:?}) of {package} failed (its errors are above)",
            settings.rustflags()
        );
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
