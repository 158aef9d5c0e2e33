//! Carrying out a plan: `tfb verify` (each test's server started and verified in turn) and
//! `tfb benchmark` (each verified type loaded level by level, the results written after every
//! type so an interrupted or failed run keeps what it measured). A server that does not start,
//! dies or does not stop cleanly costs only its own test: the run goes on with the others.

use std::{collections::BTreeMap, fs, path::PathBuf};

use anyhow::Context;
use conformance::{Level, Report, TestType};

use crate::{
    environment::{Build, Environment},
    load::{self, Load},
    output,
    plan::{BenchmarkPlan, Plan, Servers},
    procstat,
    results::Results,
    session::Session,
};

/// What `tfb verify` found.
pub struct Verified {
    pub reports: BTreeMap<String, Report>,
    /// Some test failed verification, or its server did not start or stop cleanly.
    pub failed: bool,
}

/// Verifies every test of the plan; `show` gets each report as it is made.
pub fn verify(plan: &Plan, session: &Session, show: impl Fn(&str, &Report)) -> Verified {
    let mut verified = Verified {
        reports: BTreeMap::new(),
        failed: false,
    };
    for test in &plan.tests {
        let (server, report) = match session.start_and_verify(plan, test) {
            Ok(started) => started,
            Err(error) => {
                // One implementation that does not start must not cost the others their check.
                eprintln!("tfb: {}: {error:#}", test.name);
                verified.failed = true;
                continue;
            }
        };
        show(&test.name, &report);
        verified.failed |= report.verdict() == Level::Fail;
        verified.reports.insert(test.name.clone(), report);
        if let Err(error) = server.stop() {
            eprintln!("tfb: {}: {error:#}", test.name);
            verified.failed = true;
        }
    }
    verified
}

/// How `tfb benchmark` ended.
pub struct Benchmarked {
    pub results: Results,
    /// `results/<timestamp>`, holding results.json and the reports.
    pub directory: PathBuf,
    /// A server did not start, died on its own or did not stop cleanly.
    pub servers_failed: bool,
}

/// Verifies and loads every test of the plan, writing the run's files as it goes.
pub fn benchmark(
    benchmark: &BenchmarkPlan,
    session: &Session,
    progress: &indicatif::ProgressBar,
    show: impl Fn(&str, &Report),
) -> anyhow::Result<Benchmarked> {
    let plan = &benchmark.plan;
    let profile = &benchmark.profile;
    let started = load::unix_now();
    let name = timestamp()?;
    let directory = benchmark.results_dir.join(&name);
    fs::create_dir_all(&directory).with_context(|| format!("creating {}", directory.display()))?;
    let pipeline_script = directory.join("pipeline.lua");
    fs::write(&pipeline_script, include_str!("../pipeline.lua"))?;
    let build = match &plan.servers {
        Servers::Build { settings } => Some(Build::of(settings)),
        Servers::Remote { .. } => None,
    };
    let environment = Environment::capture(
        benchmark.label.clone(),
        session.postgres_version(),
        &tfb_harness::workspace_root(),
        build,
    );
    let mut results = Results::new(name, started, environment, profile);
    if let Some(note) = results.environment.scheduler_note() {
        eprintln!("tfb: note: {note}");
    }
    let mut servers_failed = false;
    let database_pid = session.database_pid();
    for test in &plan.tests {
        let paths = plan.paths_of(test);
        let (server, report) = match session.start_and_verify(plan, test) {
            Ok(started) => started,
            Err(error) => {
                servers_failed = true;
                let reason = format!("the server did not start: {}", first_line(&error));
                eprintln!("tfb: {}: {error:#}", test.name);
                for (test_type, _) in &paths {
                    progress.inc(load::planned_seconds(profile, *test_type));
                    results.record_verdict(&test.name, *test_type, Level::Fail);
                    results.skip(&test.name, *test_type, reason.clone());
                }
                output::write_run(&results, &directory)?;
                continue;
            }
        };
        show(&test.name, &report);
        let load = Load {
            profile,
            server: &server,
            database_pid,
            pipeline_script: &pipeline_script,
            progress,
            interrupted: &session.interrupted,
        };
        for (test_type, path) in paths {
            if session.interrupted() {
                break;
            }
            let verdict = report
                .get(test_type)
                .map_or(Level::Fail, |type_report| type_report.verdict);
            results.record_verdict(&test.name, test_type, verdict);
            if let Some(reason) = skip_reason(&report, test_type).or_else(|| server.exited()) {
                if !plan.quiet {
                    progress.suspend(|| {
                        eprintln!("tfb: {} {test_type} is not loaded: {reason}", test.name)
                    });
                }
                progress.inc(load::planned_seconds(profile, test_type));
                results.skip(&test.name, test_type, reason);
                continue;
            }
            let mut raw = String::new();
            let measured = load.run(&test.name, test_type, path, &mut raw);
            let raw_dir = directory.join(&test.name).join(test_type.to_string());
            fs::create_dir_all(&raw_dir)?;
            fs::write(raw_dir.join("raw.txt"), raw)?;
            results.record_load(&test.name, test_type, measured.levels);
            results.record_fixed_rate(&test.name, test_type, measured.fixed_rate);
            results.end_time = load::unix_now();
            results.runner_cpu_seconds = procstat::own_cpu_seconds();
            output::write_run(&results, &directory)?;
        }
        results.verification.insert(test.name.clone(), report);
        if let Some(exit) = server.exited() {
            servers_failed = true;
            eprintln!("tfb: {}: {exit}", test.name);
        } else if let Err(error) = server.stop() {
            servers_failed = true;
            eprintln!("tfb: {}: {error:#}", test.name);
        }
        results.end_time = load::unix_now();
        results.runner_cpu_seconds = procstat::own_cpu_seconds();
        output::write_run(&results, &directory)?;
        if session.interrupted() {
            break;
        }
    }
    Ok(Benchmarked {
        results,
        directory,
        servers_failed,
    })
}

/// Now in UTC as runs are named: 20261205-061000.
pub fn timestamp() -> anyhow::Result<String> {
    Ok(
        time::OffsetDateTime::now_utc().format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))?,
    )
}

/// Why a type is not loaded, or `None` when verification let it through (pass or warn).
fn skip_reason(report: &Report, test_type: TestType) -> Option<String> {
    let type_report = report.get(test_type)?;
    (type_report.verdict == Level::Fail).then(|| {
        let first = type_report
            .findings
            .iter()
            .find(|finding| finding.level == Level::Fail && !finding.strict)
            .map(|finding| {
                finding
                    .message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default();
        format!("verification failed: {first}")
    })
}

fn first_line(error: &anyhow::Error) -> String {
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}
