//! The machine and software a run measured, captured at its start and kept in results.json, and
//! the warning a run measured with autogroup scheduling on carries in every report.

use std::{fs, path::Path, process::Command};

use serde::{Deserialize, Serialize};

/// The machine and software a run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    /// What the user called this environment (`--label`, e.g. "aws m5.xlarge"), heading its
    /// column in comparisons; absent when none was given and in results written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub cpu_model: String,
    pub logical_cpus: usize,
    pub kernel: String,
    pub postgres_version: String,
    pub wrk_version: String,
    pub git_commit: String,
    pub runner_version: String,
    /// Linux's `kernel.sched_autogroup_enabled` during the run (absent where the kernel has no
    /// such setting, and in results written before it was recorded).
    #[serde(default)]
    pub sched_autogroup: Option<bool>,
    /// How the servers were built, when this run built them (absent in client mode and in
    /// results written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
}

/// The build a run measured: the same source built for another CPU is another binary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    pub cargo_profile: String,
    /// As rustc resolved it: `native (znver4)`, or the name given.
    pub target_cpu: String,
    /// Everything rustc was given, the caller's own RUSTFLAGS included.
    pub rustflags: String,
}

impl Build {
    pub fn of(settings: &tfb_harness::build::BuildSettings) -> Self {
        Self {
            cargo_profile: settings.profile.clone(),
            target_cpu: settings.resolved_target_cpu(),
            rustflags: settings.rustflags(),
        }
    }

    /// One line for reports: "release profile, target CPU native (znver4), RUSTFLAGS `-C
    /// target-cpu=native`".
    pub fn describe(&self) -> String {
        format!(
            "{} profile, target CPU {}, RUSTFLAGS `{}`",
            self.cargo_profile, self.target_cpu, self.rustflags
        )
    }
}

impl Environment {
    pub fn capture(
        label: Option<String>,
        postgres_version: String,
        workspace: &Path,
        build: Option<Build>,
    ) -> Self {
        let cpu_model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_default();
        let command_line = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .current_dir(workspace)
                .output()
                .ok()
                .map(|output| {
                    let text = String::from_utf8_lossy(&output.stdout).into_owned()
                        + &String::from_utf8_lossy(&output.stderr);
                    text.lines().next().unwrap_or_default().trim().to_owned()
                })
                .unwrap_or_default()
        };
        Self {
            label,
            cpu_model,
            logical_cpus: std::thread::available_parallelism().map_or(1, usize::from),
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            postgres_version,
            wrk_version: command_line("wrk", &["-v"]),
            git_commit: command_line("git", &["rev-parse", "HEAD"]),
            runner_version: env!("CARGO_PKG_VERSION").to_owned(),
            sched_autogroup: fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled")
                .ok()
                .map(|setting| setting.trim() != "0"),
            build,
        }
    }

    /// A warning for runs measured with autogroup scheduling on, which distorts the figures
    /// (measured on a 2-core machine: /db at 256 connections 1.7× faster with it off, all
    /// processes in the same session) and makes them incomparable with runs that had it off.
    pub fn scheduler_note(&self) -> Option<&'static str> {
        (self.sched_autogroup == Some(true)).then_some(
            "Linux's autogroup scheduling was on (kernel.sched_autogroup_enabled=1): on a \
             2-core machine it cost the database types up to 1.7×, and it makes a run \
             incomparable with one that had it off. `sysctl kernel.sched_autogroup_enabled=0` \
             before benchmarking (needs root).",
        )
    }
}
