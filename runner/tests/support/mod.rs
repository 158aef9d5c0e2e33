//! What the runner's test files share: running the `tfb` binary cargo built for them.

use std::process::Command;

/// Runs `tfb` with `arguments`: whether it succeeded, and what it printed (stdout, then stderr).
pub fn run_tfb(arguments: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tfb"))
        .args(arguments)
        .output()
        .expect("running tfb");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}
