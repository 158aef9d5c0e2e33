//! The runner end to end: `tfb benchmark` with a tiny profile against a real implementation and a
//! real throwaway PostgreSQL, checking results.json and summary.md; and a verification failure
//! that must skip that type's load and say why.

mod support;

use std::{path::Path, process::Command};

use serde_json::Value;
use support::run_tfb;
use tfb_database::Cluster;
use tfb_harness::{build, discover, server::ServerProcess, workspace_root};

/// One 1-second level per type, no warmup: enough to exercise every path quickly.
const TINY: [&str; 16] = [
    "--build-profile",
    "ci",
    "--duration",
    "1",
    "--warmup",
    "0",
    "--concurrency-levels",
    "8",
    "--pipeline-concurrency-levels",
    "8",
    "--query-levels",
    "2",
    "--cached-query-levels",
    "2",
    "--query-concurrency",
    "8",
];

/// An implementation's default test as these tests drive it. Found by discovery, so nothing
/// here names an implementation.
struct Subject {
    /// TFB's test name.
    name: String,
    package: String,
    ready_path: String,
    /// The types it configures, in TFB's run order.
    types: Vec<String>,
}

/// Every implementation's default test, in discovery order (the order the runner runs them).
fn subjects() -> Vec<Subject> {
    discover::implementations(&workspace_root())
        .expect("implementations to discover")
        .into_iter()
        .filter_map(|implementation| {
            let test = implementation.config.test("default")?;
            Some(Subject {
                name: implementation.test_name("default"),
                package: implementation.package.clone(),
                ready_path: test.ready_path().to_owned(),
                types: test
                    .paths()
                    .iter()
                    .map(|(test_type, _)| test_type.to_string())
                    .collect(),
            })
        })
        .collect()
}

/// The default test that configures the most types, so one run touches every path it can.
fn widest_subject() -> Subject {
    subjects()
        .into_iter()
        .rev()
        .max_by_key(|subject| subject.types.len())
        .expect("at least one implementation")
}

/// The one run directory under `results`.
fn run_directory(results: &Path) -> std::path::PathBuf {
    let mut runs: Vec<_> = std::fs::read_dir(results)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "one run directory in {}", results.display());
    runs.pop().unwrap()
}

#[test]
fn tiny_profile_against_one_implementation() {
    let subject = widest_subject();
    let name = subject.name.as_str();
    let results = tempfile::tempdir().unwrap();
    let directory = results.path().to_str().unwrap();
    let mut arguments = vec![
        "benchmark",
        "--test",
        name,
        "--quiet",
        "--repeat",
        "2",
        "--latency-rates",
        "0.5",
        "--label",
        "ci machine",
        "--results-dir",
        directory,
    ];
    arguments.extend(TINY);
    let (success, output) = run_tfb(&arguments);
    assert!(success, "tfb benchmark failed:\n{output}");
    let run = run_directory(results.path());
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["formatVersion"], 1);
    assert_eq!(json["duration"], 1);
    for test_type in &subject.types {
        assert_eq!(
            json["verify"][name][test_type], "pass",
            "{test_type} verification"
        );
        let entries = json["rawData"][test_type][name]
            .as_array()
            .unwrap_or_else(|| panic!("rawData.{test_type}.{name}"));
        assert_eq!(entries.len(), 1, "{test_type}: one level");
        let entry = &entries[0];
        assert!(entry["error"].is_null(), "{test_type}: {}", entry["error"]);
        assert!(
            entry["totalRequests"].as_u64().unwrap() > 0,
            "{test_type} requests"
        );
        assert!(entry["requestsPerSecond"].as_f64().unwrap() > 0.0);
        assert!(
            entry["latencyAvg"].as_str().unwrap().ends_with('s'),
            "TFB's latency string"
        );
        assert!(entry["latencyMs"]["p50"].as_f64().unwrap() >= 0.0);
        assert!(
            entry["serverCpuSeconds"].as_f64().unwrap() > 0.0,
            "{test_type} server CPU"
        );
        assert!(entry["serverPeakMemoryBytes"].as_u64().unwrap() > 0);
        assert!(entry["endTime"].as_u64() >= entry["startTime"].as_u64());
        assert!(run.join(name).join(test_type).join("raw.txt").is_file());
    }
    assert_eq!(json["rawData"]["query"][name][0]["queries"], 2);
    let runs = json["rawData"]["db"][name][0]["requestsPerSecondRuns"]
        .as_array()
        .expect("two repeats");
    assert_eq!(runs.len(), 2);
    let median = json["rawData"]["db"][name][0]["requestsPerSecond"]
        .as_f64()
        .unwrap();
    assert!(
        runs.iter().any(|run| run.as_f64() == Some(median)),
        "the entry is one of its repeats"
    );
    assert_eq!(json["rawData"]["plaintext"][name][0]["pipeline"], 16);
    assert!(
        json["rawData"]["db"][name][0]["databaseCpuSeconds"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(
        json["verification"][name]["types"]
            .as_array()
            .unwrap()
            .len(),
        subject.types.len()
    );
    assert!(json["environment"]["gitCommit"].as_str().unwrap().len() == 40);
    assert!(json["runnerCpuSeconds"].as_f64().unwrap() > 0.0);
    let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(summary.contains("the runner itself used"), "{summary}");
    let autogroup = std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled")
        .map(|setting| setting.trim() != "0")
        .ok();
    assert_eq!(
        json["environment"]["schedAutogroup"].as_bool(),
        autogroup,
        "the scheduler setting is recorded"
    );
    assert_eq!(
        summary.contains("autogroup scheduling was on"),
        autogroup == Some(true),
        "the summary warns exactly when autogroup was on: {summary}"
    );
    let build = &json["environment"]["build"];
    let target_cpu = build::BuildSettings::for_tests().target_cpu;
    assert_eq!(build["cargoProfile"], "ci", "{build}");
    assert!(
        build["targetCpu"]
            .as_str()
            .unwrap()
            .starts_with(target_cpu.as_str())
            && build["rustflags"]
                .as_str()
                .unwrap()
                .ends_with(&format!("-C target-cpu={target_cpu}")),
        "the build is recorded: {build}"
    );
    assert!(
        summary.contains("Servers built with the ci profile, target CPU"),
        "{summary}"
    );
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    let fixed_rate_types = subject
        .types
        .iter()
        .filter(|test_type| *test_type != "plaintext")
        .count();
    assert_eq!(
        page.matches("<svg").count(),
        2 * subject.types.len() + fixed_rate_types,
        "two charts per type, and one of the fixed-rate runs where there are some"
    );
    for test_type in &subject.types {
        assert!(
            page.contains(&format!(
                "<div class=\"type\" data-type=\"{test_type}\"><h3>{test_type}</h3>"
            )),
            "{test_type} section"
        );
    }
    // The label names the environment; the fixed-rate runs, at half the headline, are recorded
    // for every type but plaintext (pipelined) and shown in the latency tab.
    assert_eq!(json["environment"]["label"], "ci machine");
    assert!(
        page.contains("<h1>Benchmark ci machine ("),
        "the label heads the page"
    );
    for test_type in &subject.types {
        let fixed = &json["fixedRate"][test_type][name];
        if test_type == "plaintext" {
            assert!(fixed.is_null(), "plaintext has no fixed-rate run: {fixed}");
            continue;
        }
        let fixed = fixed
            .as_array()
            .unwrap_or_else(|| panic!("fixedRate.{test_type}.{name}"));
        assert_eq!(fixed.len(), 1, "{test_type}: one rate");
        let headline = json["rawData"][test_type][name][0]["requestsPerSecond"]
            .as_f64()
            .unwrap();
        let run = &fixed[0];
        assert!(run["error"].is_null(), "{test_type}: {}", run["error"]);
        assert_eq!(run["fraction"], 0.5);
        assert!(
            (run["targetRate"].as_f64().unwrap() - headline / 2.0).abs() < 1.0,
            "{test_type}: half the headline {headline}: {run}"
        );
        assert!(
            run["totalRequests"].as_u64().unwrap() > 0,
            "{test_type}: {run}"
        );
        assert!(
            run["latencyMs"]["p99"].as_f64().unwrap() > 0.0,
            "{test_type}: {run}"
        );
        assert!(
            run["latencyMs"]["max"].as_f64().unwrap() >= run["latencyMs"]["p50"].as_f64().unwrap()
        );
        assert!(run["serverCpuSeconds"].as_f64().unwrap() > 0.0);
    }
    assert!(
        page.contains("class=\"fixed-rate\""),
        "the latency tab shows them"
    );
    assert!(
        !page.contains("src=") && !page.contains("href="),
        "the page loads nothing from elsewhere"
    );
    // `tfb report` writes both reports again from results.json alone.
    std::fs::remove_file(run.join("report.html")).unwrap();
    std::fs::remove_file(run.join("summary.md")).unwrap();
    let (success, output) = run_tfb(&["report", run.to_str().unwrap()]);
    assert!(success, "tfb report failed:\n{output}");
    assert_eq!(
        std::fs::read_to_string(run.join("summary.md")).unwrap(),
        summary
    );
    assert_eq!(
        std::fs::read_to_string(run.join("report.html")).unwrap(),
        page
    );
    for test_type in &subject.types {
        assert!(
            summary.contains(&format!("| {name} | {test_type} | pass |")),
            "{summary}"
        );
    }
}

/// The server uses one database and the verifier counts statements in another: every statement
/// count is zero, so TFB's db check fails, and db must not be loaded while json still is.
#[test]
fn failed_verification_skips_the_load_and_says_why() {
    let subject = widest_subject();
    let name = subject.name.as_str();
    let binary = build::build(&[&subject.package], &build::BuildSettings::for_tests())
        .unwrap()
        .remove(&subject.package)
        .unwrap();
    let servers_database = Cluster::start().unwrap();
    let other_database = Cluster::start().unwrap();
    let server =
        ServerProcess::start(&binary, &servers_database.url(), &subject.ready_path).unwrap();
    let results = tempfile::tempdir().unwrap();
    let (server_url, database_url) = (format!("http://{}", server.address()), other_database.url());
    let mut arguments = vec![
        "benchmark",
        "--test",
        name,
        "--type",
        "db,json",
        "--quiet",
        "--format",
        "json",
        "--server-url",
        &server_url,
        "--database-url",
        &database_url,
        "--results-dir",
        results.path().to_str().unwrap(),
    ];
    arguments.extend(TINY);
    let (success, output) = run_tfb(&arguments);
    assert!(success, "tfb benchmark failed:\n{output}");
    assert!(
        output.contains("\"formatVersion\": 1"),
        "--format json prints the results:\n{output}"
    );
    let run = run_directory(results.path());
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["verify"][name]["db"], "fail");
    let reason = json["skipped"][name]["db"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("verification failed: Only 0 executed queries in the database"),
        "{reason:?}"
    );
    assert!(json["rawData"]["db"].is_null(), "db must not be loaded");
    assert_eq!(
        json["rawData"]["json"][name].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(json["failed"]["db"][0], name);
    let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(
        summary.contains(&format!(
            "| {name} | db | fail | — | verification failed: Only 0 executed queries"
        )),
        "{summary}"
    );
}

/// A server described by a `benchmark_config.json` of its own (a TFB entry run beside ours): its
/// tests are named as TFB names them, its paths are the file's, and one is verified and loaded
/// in client mode.
#[test]
fn an_outside_benchmark_config_is_verified_and_loaded_in_client_mode() {
    let subject = widest_subject();
    let binary = build::build(&[&subject.package], &build::BuildSettings::for_tests())
        .unwrap()
        .remove(&subject.package)
        .unwrap();
    let database = Cluster::start().unwrap();
    let server = ServerProcess::start(&binary, &database.url(), &subject.ready_path).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("benchmark_config.json");
    // Paths no implementation's config names, so a pass proves these were the ones loaded.
    std::fs::write(
        &config,
        r#"{"framework": "outside-entry", "tests": [
            {"default": {"json_url": "/json?from=outside", "db_url": "/db?from=outside", "port": 8080}},
            {"raw": {"plaintext_url": "/plaintext?from=outside", "port": 8080}}]}"#,
    )
    .unwrap();
    let (server_url, database_url) = (format!("http://{}", server.address()), database.url());
    let client_mode = [
        "--server-url",
        server_url.as_str(),
        "--config",
        config.to_str().unwrap(),
        "--database-url",
        database_url.as_str(),
    ];

    let (success, output) = run_tfb(&[&["verify"][..], &client_mode].concat());
    assert!(!success, "two tests and no --test was accepted:\n{output}");
    assert!(
        output.contains("select exactly one test")
            && output.contains("the tests are: outside-entry, outside-entry-raw"),
        "{output}"
    );

    let (success, output) =
        run_tfb(&[&["verify", "--test", "outside-entry"][..], &client_mode].concat());
    assert!(success, "tfb verify failed:\n{output}");
    assert!(output.contains("== outside-entry\n"), "{output}");
    for (test_type, path) in [("json", "/json?from=outside"), ("db", "/db?from=outside")] {
        assert!(
            output.contains(&format!("{test_type:<9} pass  {server_url}{path}")),
            "{test_type} at {path}:\n{output}"
        );
    }

    let results = tempfile::tempdir().unwrap();
    let mut arguments = vec![
        "benchmark",
        "--test",
        "outside-entry-raw",
        "--quiet",
        "--results-dir",
        results.path().to_str().unwrap(),
    ];
    arguments.extend(client_mode);
    arguments.extend(TINY);
    let (success, output) = run_tfb(&arguments);
    assert!(success, "tfb benchmark failed:\n{output}");
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(run_directory(results.path()).join("results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["verify"]["outside-entry-raw"]["plaintext"], "pass");
    assert_eq!(
        json["rawData"]["plaintext"]["outside-entry-raw"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert!(
        json["rawData"]["json"].is_null(),
        "only the selected test's types"
    );
}

/// `--config` names a server someone else runs: without `--server-url` there is nothing to build.
#[test]
fn an_outside_config_without_a_server_url_is_refused() {
    let (ok, output) = run_tfb(&["benchmark", "--config", "benchmark_config.json"]);
    assert!(!ok, "--config without --server-url was accepted:\n{output}");
    assert!(output.contains("--server-url"), "{output}");
    assert!(!output.contains("Compiling"), "nothing is built: {output}");
}

/// SIGINT in the middle of a run: the runner finishes the level under way, stops the server,
/// keeps what it measured, prints the summary and exits 130.
#[test]
fn interrupt_keeps_partial_results() {
    let name = widest_subject().name;
    let results = tempfile::tempdir().unwrap();
    // TINY, with 2-second levels and three of them for json, db and fortune.
    let mut tiny = TINY.to_vec();
    tiny[3] = "2";
    tiny[7] = "8,16,32";
    let mut runner = Command::new(env!("CARGO_BIN_EXE_tfb"))
        .args(["benchmark", "--test", &name, "--quiet", "--results-dir"])
        .arg(results.path())
        .args(tiny)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first type's results are on disk, then interrupt.
    let loaded_types = |json: &Value| json["rawData"].as_object().map_or(0, |types| types.len());
    let mut loaded_at_signal = 0;
    let written = wait_for_results(&mut runner, results.path(), |json| {
        loaded_at_signal = loaded_types(json);
        loaded_at_signal > 0
    });
    let pid = nix::unistd::Pid::from_raw(runner.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let output = runner.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&written).unwrap()).unwrap();
    // However slowly the machine let it get there: at most the type under way at the signal
    // was added, with the levels it had measured.
    let loaded = loaded_types(&json);
    assert!(
        (loaded_at_signal..=loaded_at_signal + 1).contains(&loaded),
        "{loaded_at_signal} types were loaded at the signal, {loaded} at the end"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&format!("| {name} |")),
        "the summary is printed"
    );
}

/// A results.json with one db level per test, at the given requests/s of each repeat.
fn synthetic_run(directory: &Path, name: &str, figures: &[(&str, &[f64])]) {
    let mut tests = serde_json::Map::new();
    for (test, runs) in figures {
        let mut sorted = runs.to_vec();
        sorted.sort_by(f64::total_cmp);
        let entry = serde_json::json!({
            "concurrency": 256, "totalRequests": 1000, "latencyAvg": "1.00ms", "latencyStdev": "0.10ms",
            "latencyMax": "5.00ms", "startTime": 0, "endTime": 5, "connect": 0, "read": 0, "write": 0,
            "timeout": 0, "5xx": 0, "requestsPerSecond": sorted[sorted.len() / 2],
            "requestsPerSecondRuns": runs,
            "latencyMs": {"avg": 1.0, "max": 5.0, "p50": 1.0, "p75": 1.0, "p90": 2.0, "p99": 3.0}
        });
        tests.insert((*test).to_owned(), serde_json::json!([entry]));
    }
    let results = serde_json::json!({
        "formatVersion": 1, "name": name, "startTime": 0, "endTime": 60,
        "environment": {"cpuModel": "test", "logicalCpus": 2, "kernel": "6", "postgresVersion": "15",
                        "wrkVersion": "wrk", "gitCommit": "0", "runnerVersion": "0"},
        "profile": {"name": "quick", "primer_seconds": 1, "warmup_seconds": 2, "duration_seconds": 5,
                    "concurrency_levels": [256], "pipeline_concurrency_levels": [256], "pipeline_depth": 16,
                    "query_levels": [20], "query_concurrency": 256, "pause_after_warmup_seconds": 0,
                    "pause_between_levels_seconds": 1, "repeat": 3},
        "concurrencyLevels": [256], "pipelineConcurrencyLevels": [256], "queryIntervals": [20], "duration": 5,
        "verify": {}, "verification": {}, "rawData": {"db": tests}, "skipped": {}, "succeeded": {}, "failed": {}
    });
    let run = directory.join(name);
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("results.json"), results.to_string()).unwrap();
}

#[test]
fn compare_flags_a_real_change_and_ignores_noise() {
    let runs = tempfile::tempdir().unwrap();
    synthetic_run(
        runs.path(),
        "before",
        &[
            ("faster-test", &[95.0, 100.0, 104.0]),
            ("steady-test", &[95.0, 100.0, 104.0]),
        ],
    );
    // faster-test: 20 % faster, ranges apart. steady-test: 10 % higher median, but the ranges overlap.
    synthetic_run(
        runs.path(),
        "after",
        &[
            ("faster-test", &[115.0, 120.0, 126.0]),
            ("steady-test", &[103.0, 110.0, 118.0]),
        ],
    );
    let (before, after) = (runs.path().join("before"), runs.path().join("after"));
    let (success, output) =
        run_tfb(&["compare", before.to_str().unwrap(), after.to_str().unwrap()]);
    assert!(success, "tfb compare failed:\n{output}");
    assert!(
        output.contains("| db | faster-test | c=256 | 100 | 120 | +20.0 % | faster |"),
        "{output}"
    );
    assert!(
        output.contains("| db | steady-test | c=256 | 100 | 110 | +10.0 % | within noise |"),
        "{output}"
    );
    // The files: the headline of each test in every run, with the ratio to the first, beside the
    // first run unless told otherwise.
    let written: Vec<_> = std::fs::read_dir(runs.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("compare-"))
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    let markdown =
        std::fs::read_to_string(runs.path().join(&written[0]).join("compare.md")).unwrap();
    assert_eq!(
        output,
        format!(
            "{markdown}comparison: {}\n",
            runs.path().join(&written[0]).join("compare.html").display()
        )
    );
    assert!(
        markdown
            .contains("| faster-test | 100 | 3.00 | c=256 | 120 | 3.00 | c=256 | 1.20× | faster |"),
        "{markdown}"
    );
    // Three runs: one column per run, each ratio and verdict against the first.
    synthetic_run(
        runs.path(),
        "third",
        &[
            ("faster-test", &[45.0, 50.0, 52.0]),
            ("new-test", &[10.0, 11.0, 12.0]),
        ],
    );
    let third = runs.path().join("third");
    let output_dir = runs.path().join("three");
    let (success, output) = run_tfb(&[
        "compare",
        before.to_str().unwrap(),
        after.to_str().unwrap(),
        third.to_str().unwrap(),
        "--output-dir",
        output_dir.to_str().unwrap(),
    ]);
    assert!(success, "tfb compare failed:\n{output}");
    assert!(
        output.contains(
            "| faster-test | 100 | 3.00 | c=256 | 120 | 3.00 | c=256 | 1.20× | faster | 50 | 3.00 | c=256 | 0.50× | slower |"
        ),
        "{output}"
    );
    assert!(
        output.contains("| new-test | — | — | — | — | — | — | — | — | 11 | 3.00 | c=256 | — | — |"),
        "a test only a later run measured: {output}"
    );
    let page = std::fs::read_to_string(output_dir.join("compare.html")).unwrap();
    for name in ["before", "after", "third"] {
        assert!(
            page.contains(&format!("<td class=\"name\">{name}</td>")),
            "{name}: {page}"
        );
    }
    let (success, output) = run_tfb(&["compare", before.to_str().unwrap()]);
    assert!(!success, "one run is not a comparison: {output}");
}

/// Sets `environment.schedAutogroup` in a synthetic run's results.json.
fn record_autogroup(run: &Path, enabled: bool) {
    let path = run.join("results.json");
    let mut results: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    results["environment"]["schedAutogroup"] = Value::Bool(enabled);
    std::fs::write(&path, results.to_string()).unwrap();
}

/// A run recorded by an earlier runner (format version 1, with its verification reports): `tfb
/// report` and `tfb compare` read it and draw the same figures.
#[test]
fn a_run_recorded_by_an_earlier_version_still_renders() {
    let recorded = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/runs/format-1");
    let runs = tempfile::tempdir().unwrap();
    let run = runs.path().join("format-1");
    std::fs::create_dir(&run).unwrap();
    std::fs::copy(recorded.join("results.json"), run.join("results.json")).unwrap();
    let (success, output) = run_tfb(&["report", run.to_str().unwrap()]);
    assert!(success, "tfb report failed:\n{output}");
    let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
    let recorded_json: Value =
        serde_json::from_str(&std::fs::read_to_string(recorded.join("results.json")).unwrap())
            .unwrap();
    for test_type in ["db", "json"] {
        let level = &recorded_json["rawData"][test_type]["axum"][0];
        let line = format!(
            "| axum | {test_type} | pass | {:.0} | c={} |",
            level["requestsPerSecond"].as_f64().unwrap(),
            level["concurrency"]
        );
        assert!(summary.contains(&line), "no {line:?} in:\n{summary}");
    }
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        page.contains("data-type=\"db\"><h3>db</h3>") && page.contains("<svg"),
        "{page}"
    );
    let (success, output) = run_tfb(&["compare", run.to_str().unwrap(), run.to_str().unwrap()]);
    assert!(success, "tfb compare failed:\n{output}");
    assert!(output.contains("| db | axum | c=8 |"), "{output}");
}

#[test]
fn autogroup_scheduling_is_named_in_reports_and_comparisons() {
    let runs = tempfile::tempdir().unwrap();
    synthetic_run(runs.path(), "tuned", &[("some-test", &[100.0])]);
    synthetic_run(runs.path(), "untuned", &[("some-test", &[60.0])]);
    let (tuned, untuned) = (runs.path().join("tuned"), runs.path().join("untuned"));
    record_autogroup(&tuned, false);
    record_autogroup(&untuned, true);
    for (run, warned) in [(&tuned, false), (&untuned, true)] {
        let (success, output) = run_tfb(&["report", run.to_str().unwrap()]);
        assert!(success, "tfb report failed:\n{output}");
        let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
        let page = std::fs::read_to_string(run.join("report.html")).unwrap();
        for (name, text) in [("summary.md", &summary), ("report.html", &page)] {
            assert_eq!(
                text.contains("autogroup scheduling was on"),
                warned,
                "{name} of {}: {text}",
                run.display()
            );
        }
    }
    let (success, output) = run_tfb(&[
        "compare",
        tuned.to_str().unwrap(),
        untuned.to_str().unwrap(),
    ]);
    assert!(success, "tfb compare failed:\n{output}");
    assert!(
        output.contains("autogroup scheduling differs (tuned: off, untuned: on)"),
        "{output}"
    );
    record_autogroup(&tuned, true);
    let (success, output) = run_tfb(&[
        "compare",
        tuned.to_str().unwrap(),
        untuned.to_str().unwrap(),
    ]);
    assert!(success, "tfb compare failed:\n{output}");
    assert!(!output.contains("autogroup scheduling differs"), "{output}");
}

/// Sets `environment.build` in a synthetic run's results.json.
fn record_build(run: &Path, target_cpu: &str) {
    let path = run.join("results.json");
    let mut results: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    results["environment"]["build"] = serde_json::json!({
        "cargoProfile": "release",
        "targetCpu": target_cpu,
        "rustflags": format!("-C target-cpu={target_cpu}"),
    });
    std::fs::write(&path, results.to_string()).unwrap();
}

#[test]
fn a_different_build_is_named_in_reports_and_comparisons() {
    let runs = tempfile::tempdir().unwrap();
    synthetic_run(runs.path(), "native", &[("some-test", &[100.0])]);
    synthetic_run(runs.path(), "portable", &[("some-test", &[90.0])]);
    let (native, portable) = (runs.path().join("native"), runs.path().join("portable"));
    record_build(&native, "native (znver4)");
    record_build(&portable, "x86-64-v2");
    let (success, output) = run_tfb(&["report", portable.to_str().unwrap()]);
    assert!(success, "tfb report failed:\n{output}");
    let summary = std::fs::read_to_string(portable.join("summary.md")).unwrap();
    assert!(
        summary.contains("Servers built with the release profile, target CPU x86-64-v2,"),
        "{summary}"
    );
    let compare = |later: &Path| {
        let (success, output) =
            run_tfb(&["compare", native.to_str().unwrap(), later.to_str().unwrap()]);
        assert!(success, "tfb compare failed:\n{output}");
        output
    };
    let output = compare(&portable);
    assert!(
        output.contains("the servers were built differently (native: release profile, target CPU native (znver4)")
            && output.contains("portable: release profile, target CPU x86-64-v2"),
        "{output}"
    );
    record_build(&portable, "native (znver4)");
    let output = compare(&portable);
    assert!(!output.contains("built differently"), "{output}");
}

#[test]
fn list_prints_every_test_as_json() {
    let output = Command::new(env!("CARGO_BIN_EXE_tfb"))
        .args(["list", "--format", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let listing: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let implementations = discover::implementations(&workspace_root()).unwrap();
    let configured: Vec<_> = implementations
        .iter()
        .flat_map(|implementation| {
            implementation
                .config
                .tests()
                .map(move |(key, test)| (implementation, key, test))
        })
        .collect();
    let listed = listing.as_array().unwrap();
    assert_eq!(listed.len(), configured.len(), "{listing:#}");
    for (implementation, key, test) in configured {
        let name = implementation.test_name(key);
        let entry = listed
            .iter()
            .find(|entry| entry["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not listed"));
        assert_eq!(entry["package"], implementation.package.as_str());
        let paths = test.paths();
        assert_eq!(entry["types"].as_object().unwrap().len(), paths.len());
        for (test_type, path) in paths {
            assert_eq!(
                entry["types"][test_type.to_string()],
                path,
                "{name} {test_type}"
            );
        }
    }
}

#[test]
fn zero_durations_and_levels_are_refused() {
    for (flag, value) in [
        ("--duration", "0"),
        ("--concurrency-levels", "16,0"),
        ("--pipeline-concurrency-levels", "0"),
        ("--query-levels", "0"),
        ("--query-concurrency", "0"),
        ("--repeat", "0"),
    ] {
        let (ok, output) = run_tfb(&["benchmark", flag, value]);
        assert!(!ok, "{flag} {value} was accepted:\n{output}");
        assert!(
            output.contains(flag) && output.contains("not in 1.."),
            "{flag} {value}: the refusal does not say why:\n{output}"
        );
    }
}

#[test]
fn bad_latency_rates_and_blank_labels_are_refused() {
    for (flag, value, why) in [
        ("--latency-rates", "1.5", "not a fraction of the peak"),
        ("--latency-rates", "0.5,0", "not a fraction of the peak"),
        ("--latency-rates", "half", "not a fraction of the peak"),
        ("--label", " ", "must not be blank"),
    ] {
        let (ok, output) = run_tfb(&["benchmark", flag, value]);
        assert!(!ok, "{flag} {value:?} was accepted:\n{output}");
        assert!(
            output.contains(flag) && output.contains(why),
            "{flag} {value:?}: the refusal does not say why:\n{output}"
        );
    }
}

/// Fixed-rate latency needs oha: without it the run stops before building anything, and says
/// how to get it or do without.
#[test]
fn latency_rates_without_oha_are_refused_before_building() {
    let results = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tfb"))
        .args(["benchmark", "--latency-rates", "0.5", "--results-dir"])
        .arg(results.path())
        .env("TFB_OHA", "/nonexistent/oha")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("needs oha")
            && text.contains("scripts/install-deps.sh")
            && text.contains("--latency-rates off"),
        "{text}"
    );
    assert!(!text.contains("Compiling"), "nothing is built: {text}");
}

#[test]
fn an_unwritable_results_dir_is_refused_before_building() {
    // A regular file where the folder should be: unwritable even for root.
    let scratch = tempfile::tempdir().unwrap();
    let blocker = scratch.path().join("not-a-folder");
    std::fs::write(&blocker, b"").unwrap();
    let results = blocker.join("results");
    let (ok, output) = run_tfb(&["benchmark", "--results-dir", results.to_str().unwrap()]);
    assert!(!ok, "an unwritable --results-dir was accepted:\n{output}");
    assert!(output.contains("--results-dir"), "{output}");
    assert!(
        !output.contains("Compiling") && !output.contains("Finished"),
        "it built before refusing:\n{output}"
    );
}

/// The server of the first test is killed in the middle of its load: the runner stops loading
/// it, says how it died in results.json and summary.md, still runs the next test, and exits 1.
#[test]
fn a_server_that_dies_is_reported_and_the_next_test_runs() {
    let mut subjects = subjects().into_iter();
    let (dying, next) = (
        subjects.next().expect("an implementation"),
        subjects.next().expect("a second implementation"),
    );
    let results = tempfile::tempdir().unwrap();
    let mut runner = Command::new(env!("CARGO_BIN_EXE_tfb"))
        .args([
            "benchmark",
            "--test",
            &format!("{},{}", dying.name, next.name),
            "--quiet",
            "--results-dir",
        ])
        .arg(results.path())
        .args(TINY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let runner_pid = runner.id();
    // Once the first test's first type is on disk, its server is mid-run: kill it the hard way.
    let mut killed = None;
    wait_for_results(&mut runner, results.path(), |json| {
        let first_type_written = json["rawData"]
            .as_object()
            .is_some_and(|types| !types.is_empty());
        killed = first_type_written
            .then(|| child_named(runner_pid, &dying.package))
            .flatten();
        killed.is_some()
    });
    let killed = killed.expect("the condition holds only with the server found");
    nix::sys::signal::kill(killed, nix::sys::signal::Signal::SIGKILL).unwrap();
    let output = runner.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: the server exited (signal: 9 (SIGKILL))",
            dying.name
        )),
        "the runner names the death, not a failed SIGTERM (pid {killed}):\n{stderr}"
    );
    let run = run_directory(results.path());
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    let mut reported = 0;
    for test_type in &dying.types {
        let skipped = json["skipped"][&dying.name][test_type]
            .as_str()
            .unwrap_or_default();
        let errors: Vec<&str> = json["rawData"][test_type][&dying.name]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["error"].as_str())
            .collect();
        if skipped.starts_with("the server exited (signal: 9 (SIGKILL))")
            || errors
                .iter()
                .any(|error| error.contains("the server exited (signal: 9"))
        {
            reported += 1;
        }
    }
    for test_type in &next.types {
        assert!(
            !json["rawData"][test_type][&next.name].is_null(),
            "{}'s {test_type} was not loaded after {} died",
            next.name,
            dying.name
        );
    }
    assert!(
        reported >= 1,
        "no {} type says the server exited: {json:#}",
        dying.name
    );
    let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(summary.contains("the server exited"), "{summary}");
}

/// Waits until the run's results.json exists and `ready` holds for it, and returns its path.
/// No deadline: the build before it takes what a busy machine makes it take, and a runner that
/// exits first fails the test.
fn wait_for_results(
    runner: &mut std::process::Child,
    results: &Path,
    mut ready: impl FnMut(&Value) -> bool,
) -> std::path::PathBuf {
    loop {
        let written = std::fs::read_dir(results)
            .ok()
            .and_then(|mut runs| runs.next())
            .map(|run| run.unwrap().path().join("results.json"))
            .filter(|path| path.is_file());
        let parsed = written.as_ref().and_then(|path| {
            serde_json::from_str::<Value>(&std::fs::read_to_string(path).ok()?).ok()
        });
        if let (Some(path), Some(json)) = (written, parsed)
            && ready(&json)
        {
            return path;
        }
        if runner.try_wait().unwrap().is_some() {
            let mut stderr = String::new();
            if let Some(mut pipe) = runner.stderr.take() {
                std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
            }
            panic!("tfb exited early:\n{stderr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The child process of `parent` whose command name is `name`.
fn child_named(parent: u32, name: &str) -> Option<nix::unistd::Pid> {
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // pid (comm) state ppid ...: comm may hold spaces, so split after its closing paren.
        let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
        let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (comm == name && ppid == parent).then(|| nix::unistd::Pid::from_raw(pid))
    })
}
