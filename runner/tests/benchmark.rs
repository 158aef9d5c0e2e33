//! The runner end to end: `tfb benchmark` with a tiny profile against a real implementation and a
//! real throwaway PostgreSQL, checking results.json and summary.md; and a verification failure
//! that must skip that type's load and say why.

use std::{path::Path, process::Command};

use serde_json::Value;
use tfb_database::Cluster;
use tfb_harness::{build, server::ServerProcess};

/// One 1-second level per type, no warmup: enough to exercise every path quickly.
const TINY: [&str; 14] = [
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
    "--query-concurrency",
    "8",
];

fn run_tfb(arguments: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tfb"))
        .args(arguments)
        .output()
        .expect("running tfb");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
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
    let results = tempfile::tempdir().unwrap();
    let directory = results.path().to_str().unwrap();
    let mut arguments = vec![
        "benchmark",
        "--test",
        "axum",
        "--quiet",
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
    for test_type in ["db", "json", "query", "update", "fortune", "plaintext"] {
        assert_eq!(
            json["verify"]["axum"][test_type], "pass",
            "{test_type} verification"
        );
        let entries = json["rawData"][test_type]["axum"]
            .as_array()
            .unwrap_or_else(|| panic!("rawData.{test_type}.axum"));
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
        assert!(run.join("axum").join(test_type).join("raw.txt").is_file());
    }
    assert_eq!(json["rawData"]["query"]["axum"][0]["queries"], 2);
    assert_eq!(json["rawData"]["plaintext"]["axum"][0]["pipeline"], 16);
    assert!(
        json["rawData"]["db"]["axum"][0]["databaseCpuSeconds"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(
        json["verification"]["axum"]["types"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert!(json["environment"]["gitCommit"].as_str().unwrap().len() == 40);
    assert!(json["runnerCpuSeconds"].as_f64().unwrap() > 0.0);
    let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(summary.contains("the runner itself used"), "{summary}");
    for test_type in ["db", "json", "query", "update", "fortune", "plaintext"] {
        assert!(
            summary.contains(&format!("| axum | {test_type} | pass |")),
            "{summary}"
        );
    }
}

/// The server uses one database and the verifier counts statements in another: every statement
/// count is zero, so TFB's db check fails, and db must not be loaded while json still is.
#[test]
fn failed_verification_skips_the_load_and_says_why() {
    let binary = build::build(&["tfb-axum"], "ci")
        .unwrap()
        .remove("tfb-axum")
        .unwrap();
    let servers_database = Cluster::start().unwrap();
    let other_database = Cluster::start().unwrap();
    let server = ServerProcess::start(&binary, &servers_database.url(), "/json").unwrap();
    let results = tempfile::tempdir().unwrap();
    let (server_url, database_url) = (format!("http://{}", server.address()), other_database.url());
    let mut arguments = vec![
        "benchmark",
        "--test",
        "axum",
        "--type",
        "db,json",
        "--quiet",
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
    let run = run_directory(results.path());
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["verify"]["axum"]["db"], "fail");
    let reason = json["skipped"]["axum"]["db"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("verification failed: Only 0 executed queries in the database"),
        "{reason:?}"
    );
    assert!(json["rawData"]["db"].is_null(), "db must not be loaded");
    assert_eq!(
        json["rawData"]["json"]["axum"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(json["failed"]["db"][0], "axum");
    let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(
        summary.contains("| axum | db | fail | — | verification failed: Only 0 executed queries"),
        "{summary}"
    );
}
