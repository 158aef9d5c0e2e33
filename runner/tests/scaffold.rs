//! `tfb new` end to end, on a copy of the workspace so the real one is never touched (other tests
//! build it meanwhile): a throwaway implementation is scaffolded from an existing one, is found by
//! `tfb list`, builds in its own target folder and passes TFB's verification on every type its
//! source serves; refused names change nothing. The copy, new implementation included, is removed
//! with the test's temporary folder.

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use tfb_harness::{discover, workspace_root};

const NAME: &str = "scaffolded-demo";

/// Copies the workspace's sources (not build output, results or git's store) into `to`.
fn copy_workspace(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if ["target", ".git", "results"].contains(&name.to_str().unwrap_or_default()) {
            continue;
        }
        let (source, destination) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_workspace(&source, &destination);
        } else if entry.file_type().unwrap().is_file() {
            std::fs::copy(&source, &destination).unwrap();
        }
    }
}

/// What `tfb` printed: stdout alone, and stdout then stderr.
struct Printed {
    success: bool,
    stdout: String,
    all: String,
}

/// `tfb` run against the copy at `root`, with the copy's own target folder: builds of the copy
/// must never land in the real workspace's, whose artifacts would then carry the copy's paths.
fn tfb_in(root: &Path, arguments: &[&str]) -> Printed {
    let output = Command::new(env!("CARGO_BIN_EXE_tfb"))
        .args(arguments)
        .env("TFB_ROOT", root)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .output()
        .expect("running tfb");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let all = stdout.clone() + &String::from_utf8_lossy(&output.stderr);
    Printed {
        success: output.status.success(),
        stdout,
        all,
    }
}

/// The source: discovered, not named, so no implementation is written into this test; one that
/// keeps the whole contract, since a scaffold does not inherit contract exceptions.
fn source(root: &Path) -> discover::Implementation {
    discover::implementations(root)
        .unwrap()
        .into_iter()
        .find(|implementation| implementation.exceptions.is_empty())
        .expect("an implementation with no contract exceptions")
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn a_scaffolded_implementation_builds_and_passes_verification() {
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path();
    copy_workspace(&workspace_root(), root);
    let source = source(root);
    let printed = tfb_in(root, &["new", NAME, "--from", &source.name]);
    let output = printed.all;
    assert!(printed.success, "tfb new failed:\n{output}");
    assert!(
        output.contains(&format!("created implementations/{NAME}"))
            && output.contains("changed Cargo.lock"),
        "{output}"
    );

    // The files, under the new names, with nothing left naming the source's package.
    let package = format!("tfb-{NAME}");
    let manifest = read(root.join("implementations").join(NAME).join("Cargo.toml"));
    assert!(
        manifest.contains(&format!("name = \"{package}\"")),
        "{manifest}"
    );
    let config: Value = serde_json::from_str(&read(
        root.join("implementations")
            .join(NAME)
            .join("benchmark_config.json"),
    ))
    .unwrap();
    assert_eq!(config["framework"], NAME);
    assert_eq!(
        config["tests"][0]["default"]["dockerfile"],
        format!("{NAME}.dockerfile")
    );
    assert!(
        !root
            .join("implementations")
            .join(NAME)
            .join("contract-exceptions.json")
            .exists()
    );
    let source_config: Value =
        serde_json::from_str(&read(source.dir.join("benchmark_config.json"))).unwrap();
    let source_dockerfile = source_config["tests"][0]["default"]["dockerfile"]
        .as_str()
        .unwrap();
    let dockerfile = read(root.join("dockerfiles").join(format!("{NAME}.dockerfile")));
    assert!(
        dockerfile.contains(&format!("-p {package}"))
            && dockerfile.contains(&format!("dockerfiles/{NAME}.dockerfile"))
            && !dockerfile.contains(&source.package)
            && !dockerfile.contains(source_dockerfile),
        "{dockerfile}"
    );
    let overlay_path = root.join("deploy/k8s/overlays").join(NAME);
    if root.join("deploy/k8s/overlays").join(&source.name).is_dir() {
        let overlay = read(overlay_path.join("kustomization.yaml"));
        assert!(
            overlay.contains(&format!("test={NAME}")) && overlay.contains(&package),
            "{overlay}"
        );
    }
    assert!(read(root.join("Cargo.toml")).contains(&format!("\"implementations/{NAME}\",")));
    assert!(read(root.join("Cargo.lock")).contains(&format!("name = \"{package}\"")));
    assert!(read(root.join("implementations/README.md")).contains(&format!("| `{NAME}/` |")));

    // Found like any other: listed, built, started and verified on every type its source serves.
    let printed = tfb_in(root, &["list", "--format", "json"]);
    assert!(printed.success, "{}", printed.all);
    let listing: Value = serde_json::from_str(&printed.stdout).unwrap();
    let listed = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|test| test["name"] == NAME)
        .unwrap_or_else(|| panic!("{NAME} is not listed: {listing}"));
    assert_eq!(listed["package"], package.as_str());
    // The dev profile: the quickest build, and verification does not measure speed.
    let printed = tfb_in(
        root,
        &[
            "verify",
            "--test",
            NAME,
            "--build-profile",
            "dev",
            "--quiet",
            "--format",
            "json",
        ],
    );
    assert!(
        printed.success,
        "tfb verify of the scaffold failed:\n{}",
        printed.all
    );
    let reports: Value = serde_json::from_str(&printed.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", printed.all));
    let types = reports[NAME]["types"].as_array().expect("its report");
    assert_eq!(
        types.len(),
        source
            .config
            .test("default")
            .expect("a default test")
            .paths()
            .len()
    );
    for report in types {
        assert_eq!(report["verdict"], "pass", "{report}");
    }
    assert!(
        root.join("target/debug").join(&package).is_file(),
        "built in the copy's own target folder"
    );
}

#[test]
fn refused_names_change_nothing() {
    let workspace = tempfile::tempdir().unwrap();
    let root = workspace.path();
    copy_workspace(&workspace_root(), root);
    let source = source(root);
    let before = read(root.join("Cargo.toml"));
    for (name, from, why) in [
        (
            "Bad_Name",
            source.name.as_str(),
            "lowercase letters, digits",
        ),
        (
            source.name.as_str(),
            source.name.as_str(),
            "already has that name",
        ),
        (
            "fresh-name",
            "no-such-implementation",
            "the implementations are:",
        ),
    ] {
        let printed = tfb_in(root, &["new", name, "--from", from]);
        assert!(
            !printed.success,
            "tfb new {name} --from {from} was accepted:\n{}",
            printed.all
        );
        assert!(
            printed.all.contains(why),
            "{name} --from {from}: {}",
            printed.all
        );
    }
    assert_eq!(read(root.join("Cargo.toml")), before);
    assert!(!root.join("implementations/fresh-name").exists());
    let (_, listing) = support::run_tfb(&["list"]);
    assert!(
        !listing.contains("fresh-name"),
        "the real workspace is untouched"
    );
}
