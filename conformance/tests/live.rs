//! `cargo test -p conformance` against a running server: one named test per check, so the output
//! reads like a checklist (`fortune::page`, `query::case_foo_returns_one_item`, ...).
//!
//! ```sh
//! TFB_URL=http://127.0.0.1:8080 DATABASE_URL=postgres://... cargo test -p conformance --test live
//! ```
//!
//! Optional: `TFB_CONFIG` (a benchmark_config.json) with `TFB_TEST` (its test key, default
//! `default`), `TFB_CONCURRENCY` (default 512). A check fails on a TFB fail or warn (TFB would
//! still benchmark a warned type, but a warn is worth fixing); strict checks are marked as such.
//! Without `TFB_URL` every check shows as ignored: none passes without having run.

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, OnceLock},
};

use conformance::{CheckId, Level, Report, Target, TestType, verify};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() -> ExitCode {
    let arguments = Arguments::from_args();
    let url = std::env::var("TFB_URL").ok().filter(|url| !url.is_empty());
    if url.is_none() {
        eprintln!(
            "conformance: set TFB_URL=http://HOST:PORT (and DATABASE_URL for the database checks) to verify a running \
             server; without it these checks are ignored."
        );
    }
    let target = match url.as_deref().map(target_from_env).transpose() {
        Ok(target) => target,
        Err(error) => {
            eprintln!("conformance: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let report: Arc<OnceLock<Report>> = Arc::new(OnceLock::new());
    let types: Vec<TestType> = match &target {
        Some(target) => target
            .paths
            .iter()
            .map(|(test_type, _)| *test_type)
            .collect(),
        None => TestType::ALL.to_vec(),
    };
    let mut trials = Vec::new();
    for test_type in types {
        // `None` is the type's `other` test: every finding under none of its own checks.
        let mut checks: Vec<(Option<CheckId>, bool)> = test_type
            .checks()
            .into_iter()
            .map(|(check, strict)| (Some(check), strict))
            .collect();
        checks.push((None, false));
        for (check, strict) in checks {
            let ignored = target.is_none();
            let (report, target) = (Arc::clone(&report), target.clone());
            let name =
                check.map_or_else(|| format!("{test_type}::other"), |check| check.to_string());
            let trial_name = if strict {
                format!("{name} (strict)")
            } else {
                name
            };
            let trial = Trial::test(trial_name, move || {
                let target = target.expect("ignored without TFB_URL");
                let report = report.get_or_init(|| run(&target));
                judge(report, test_type, check)
            });
            trials.push(trial.with_ignored_flag(ignored));
        }
    }
    libtest_mimic::run(&arguments, trials).exit_code()
}

fn target_from_env(url: &str) -> anyhow::Result<Target> {
    let mut target = Target::new(
        url,
        std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty()),
    );
    if let Ok(config) = std::env::var("TFB_CONFIG") {
        let test = std::env::var("TFB_TEST").unwrap_or_else(|_| "default".to_owned());
        target = target.with_config(&PathBuf::from(config), &test)?;
    }
    if let Ok(concurrency) = std::env::var("TFB_CONCURRENCY") {
        target.concurrency = concurrency.parse()?;
    }
    target.ci = std::env::var("CI").is_ok_and(|ci| !ci.is_empty());
    Ok(target)
}

fn run(target: &Target) -> Report {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
        .block_on(verify(target))
}

/// Fails with every warn and fail filed under `check` (or, for `None`, under none of the type's
/// own checks: it did not respond, its route is too short, TFB would have raised).
fn judge(report: &Report, test_type: TestType, check: Option<CheckId>) -> Result<(), Failed> {
    let Some(type_report) = report.get(test_type) else {
        return Err(format!("{test_type} was not verified").into());
    };
    let own = test_type.checks();
    let problems: Vec<String> = type_report
        .findings
        .iter()
        .filter(|finding| finding.level != Level::Pass)
        .filter(|finding| match check {
            Some(check) => finding.check == Some(check),
            None => !own.iter().any(|(own, _)| finding.check == Some(*own)),
        })
        .map(|finding| format!("{} {}: {}", finding.level, finding.url, finding.message))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}
