//! Runs the load client's command line from `deploy/compose.yaml` and from the Kubernetes Job
//! exactly as written, with the runner built here standing in for the tfb-client image: only the
//! service addresses (`tfb-server:8080`, `tfb-database:5432`) point at a local server and a
//! throwaway PostgreSQL, and the Job's `$(VARIABLES)` take the values its ConfigMap and Secret
//! give them. Both must verify and load the default test and write their results where the
//! container's working directory (the mounted results folder) is.

#[path = "support/compose.rs"]
mod support;

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
};

use serde_json::Value;
use tfb_database::Cluster;
use tfb_harness::{build, server::ServerProcess, workspace_root};

const SERVER_ADDRESS: &str = "tfb-server:8080";
const DATABASE_ADDRESS: &str = "tfb-database:5432";

/// The client command of deploy/compose.yaml with Compose's defaults.
fn compose_command() -> Vec<String> {
    let output = Command::new(support::docker_compose())
        .args([
            "-f",
            "deploy/compose.yaml",
            "--profile",
            "all",
            "config",
            "--format",
            "json",
        ])
        .current_dir(workspace_root())
        .env_remove("TFB_TEST")
        .env_remove("TFB_PROFILE")
        .env_remove("TFB_DATABASE_PASSWORD")
        .env_remove("TFB_DATABASE_HOST")
        .env_remove("TFB_SERVER_HOST")
        .output()
        .expect("docker-compose runs: run scripts/install-deps.sh, which installs it");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config: Value = serde_json::from_slice(&output.stdout).unwrap();
    strings(&config["services"]["tfb-client"]["command"])
}

/// The Job's benchmark arguments, with `$(VAR)` expanded the way Kubernetes does from the values
/// the base kustomization generates.
fn job_command() -> Vec<String> {
    let k8s = workspace_root().join("deploy/k8s");
    let job: Value = yaml(&k8s.join("client.yaml"));
    let kustomization: Value = yaml(&k8s.join("kustomization.yaml"));
    let literal = |generator: &str, key: &str| -> String {
        kustomization[generator][0]["literals"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|literal| literal.as_str()?.split_once('='))
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.to_owned())
            .unwrap_or_else(|| panic!("{generator} has no {key}"))
    };
    let container = &job["spec"]["template"]["spec"]["initContainers"][0];
    let mut values = Vec::new();
    for variable in container["env"].as_array().unwrap() {
        let source = &variable["valueFrom"];
        let value = if let Some(key) = source["configMapKeyRef"]["key"].as_str() {
            literal("configMapGenerator", key)
        } else {
            literal(
                "secretGenerator",
                source["secretKeyRef"]["key"].as_str().unwrap(),
            )
        };
        values.push((format!("$({})", variable["name"].as_str().unwrap()), value));
    }
    strings(&container["args"])
        .into_iter()
        .map(|mut argument| {
            for (reference, value) in &values {
                argument = argument.replace(reference, value);
            }
            argument
        })
        .collect()
}

fn yaml(path: &Path) -> Value {
    serde_yaml_ng::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("a list of words")
        .iter()
        .map(|word| word.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_compose_and_job_client_commands_verify_and_load_a_server() {
    let commands = [("compose", compose_command()), ("job", job_command())];
    let test = {
        let words = &commands[0].1;
        words[words.iter().position(|word| word == "--test").unwrap() + 1].clone()
    };
    for (origin, words) in &commands {
        assert_eq!(
            words[0], "benchmark",
            "{origin}: the runner's benchmark command"
        );
        assert!(
            words.iter().any(|word| word.contains(SERVER_ADDRESS))
                && words.iter().any(|word| word.contains(DATABASE_ADDRESS)),
            "{origin}: the command names both services: {words:?}"
        );
    }

    let implementation = tfb_harness::discover::implementations(&workspace_root())
        .unwrap()
        .into_iter()
        .find(|implementation| implementation.test_name("default") == test)
        .unwrap_or_else(|| panic!("the commands load test {test}, which no implementation has"));
    let package = implementation.package.as_str();
    let binaries = build::build_binaries(
        &[("tfb-runner", "tfb"), (package, package)],
        &build::BuildSettings::for_tests(),
    )
    .expect("building the runner and the server");

    // Every flag the deployment files use is one the runner has.
    let help = Command::new(&binaries["tfb"])
        .args(["benchmark", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for (origin, words) in &commands {
        for flag in words.iter().filter(|word| word.starts_with("--")) {
            assert!(
                help.contains(flag.as_str()),
                "{origin}: tfb benchmark has no {flag}"
            );
        }
    }

    let cluster = Cluster::start().expect("a throwaway PostgreSQL");
    let server = ServerProcess::start(&binaries[package], &cluster.url(), "/plaintext")
        .expect("starting the server");
    let server_address = server.address().to_string();
    let database_address = format!("127.0.0.1:{}", cluster.port());

    for (origin, words) in commands {
        let results = tempfile::tempdir().unwrap();
        let arguments: Vec<String> = words
            .iter()
            .map(|word| {
                word.replace(SERVER_ADDRESS, &server_address)
                    .replace(DATABASE_ADDRESS, &database_address)
            })
            .collect();
        let status = Command::new(&binaries["tfb"])
            .args(&arguments)
            .current_dir(results.path())
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{origin}: tfb {} exited with {status}",
            arguments.join(" ")
        );

        let runs: Vec<_> = fs::read_dir(results.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.join("results.json").is_file())
            .collect();
        assert_eq!(
            runs.len(),
            1,
            "{origin}: one run folder in the working directory"
        );
        let report: Value =
            serde_json::from_str(&fs::read_to_string(runs[0].join("results.json")).unwrap())
                .unwrap();
        let loaded = report["rawData"].as_object().unwrap();
        for test_type in ["json", "db", "query", "fortune", "update", "plaintext"] {
            assert!(
                loaded[test_type][&test]
                    .as_array()
                    .is_some_and(|levels| !levels.is_empty()),
                "{origin}: {test_type} was not loaded: {:?}",
                report["skipped"]
            );
        }
        assert!(runs[0].join("summary.md").is_file() && runs[0].join("report.html").is_file());
    }
}
