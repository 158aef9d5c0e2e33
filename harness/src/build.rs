//! Building implementations with cargo, and finding the binaries it made.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use serde::Deserialize;

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
    let mut executables = HashMap::new();
    for target in targets {
        executables.extend(build_together(std::slice::from_ref(target), profile)?);
    }
    Ok(executables)
}

fn build_together(
    targets: &[(&str, &str)],
    profile: &str,
) -> anyhow::Result<HashMap<String, PathBuf>> {
    let packages: Vec<&str> = targets.iter().map(|(package, _)| *package).collect();
    let binaries: Vec<&str> = targets.iter().map(|(_, binary)| *binary).collect();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args([
            "build",
            "--locked",
            "--bins",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--profile", profile]);
    for package in &packages {
        command.args(["-p", package]);
    }
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !output.status.success() {
        bail!(
            "cargo build --profile {profile} of {} failed (its errors are above)",
            packages.join(", ")
        );
    }
    #[derive(Deserialize)]
    struct Message {
        reason: String,
        package_id: Option<String>,
        target: Option<Target>,
        executable: Option<PathBuf>,
    }
    #[derive(Deserialize)]
    struct Target {
        name: String,
    }
    let mut executables = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Message>(line) else {
            continue;
        };
        if message.reason != "compiler-artifact" || message.package_id.is_none() {
            continue;
        }
        if let (Some(target), Some(executable)) = (message.target, message.executable)
            && binaries.contains(&target.name.as_str())
        {
            executables.insert(target.name, executable);
        }
    }
    for (package, binary) in targets {
        if !executables.contains_key(*binary) {
            bail!("cargo built no binary named {binary} for package {package}");
        }
    }
    Ok(executables)
}
