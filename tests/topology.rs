//! Checks the three-machine topology without a Docker engine or a cluster: the Compose file
//! against the Compose specification's schema and Compose's own loader (`docker-compose config`),
//! every Kubernetes manifest against Kubernetes' schemas (`kubernetes-validate`), the kustomize
//! overlays for completeness, and that images, Compose services and manifests agree with each
//! other and with the implementation contract. Each validator is also shown a broken file, so a
//! validator that accepts anything fails here.

#[path = "support/compose.rs"]
mod support;

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;
use support::docker_compose;
use tfb_harness::{
    discover::{self, Implementation},
    workspace_root,
};

/// The oldest Kubernetes release the manifests promise to fit, and the newest the validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

/// The implementation contract's environment (implementations/README.md).
const CONTRACT_ENV: [&str; 3] = ["DATABASE_URL", "PORT", "TFB_WORKERS"];

/// The variables compose.yaml reads; cleared so the defaults are what is checked.
const COMPOSE_VARIABLES: [&str; 11] = [
    "TFB_REGISTRY",
    "TFB_VERSION",
    "TFB_IMPLEMENTATION",
    "TFB_TEST",
    "TFB_PROFILE",
    "TFB_RESULTS",
    "TFB_USER",
    "TFB_DATABASE_PASSWORD",
    "TFB_DATABASE_HOST",
    "TFB_SERVER_HOST",
    "COMPOSE_PROFILES",
];

fn deploy() -> PathBuf {
    workspace_root().join("deploy")
}

fn implementations() -> Vec<Implementation> {
    discover::implementations(&workspace_root()).expect("implementations to discover")
}

/// Runs a checker installed by scripts/install-deps.sh, saying so when it is missing.
fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let program = if program == "docker-compose" {
        docker_compose()
    } else {
        PathBuf::from(program)
    };
    let mut command = Command::new(&program);
    command.args(args).current_dir(workspace_root());
    for variable in COMPOSE_VARIABLES {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    command.output().unwrap_or_else(|error| {
        panic!(
            "{} cannot run ({error}): run scripts/install-deps.sh, which installs it",
            program.display()
        )
    })
}

fn succeeded(output: &Output) -> bool {
    output.status.success()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const COMPOSE: &str = "deploy/compose.yaml";
const MULTI_HOST: &str = "deploy/compose.multi-host.yaml";

/// `docker-compose config` of the single-host layout with all services, as JSON.
fn compose_config(env: &[(&str, &str)]) -> Value {
    let output = run(
        "docker-compose",
        &[
            "-f",
            COMPOSE,
            "--profile",
            "all",
            "config",
            "--format",
            "json",
        ],
        env,
    );
    assert!(
        succeeded(&output),
        "docker-compose config:\n{}",
        text(&output)
    );
    serde_json::from_slice(&output.stdout).expect("docker-compose prints JSON")
}

/// Every YAML document in a file, as JSON values.
fn documents(path: &Path) -> Vec<Value> {
    let source = fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&source)
        .map(|document| {
            <Value as serde::Deserialize>::deserialize(document)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        })
        .collect()
}

/// The Kubernetes resources of the base (every YAML file but kustomize's own).
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(deploy().join("k8s"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
                && path
                    .file_name()
                    .is_some_and(|name| name != "kustomization.yaml")
        })
        .collect();
    files.sort();
    files
}

fn resources() -> Vec<Value> {
    manifest_files()
        .iter()
        .flat_map(|path| documents(path))
        .collect()
}

fn resource<'a>(resources: &'a [Value], kind: &str, name: &str) -> &'a Value {
    resources
        .iter()
        .find(|resource| resource["kind"] == kind && resource["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/k8s"))
}

fn pod_spec(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]
}

fn kubernetes_validate(files: &[PathBuf]) -> Output {
    let mut outputs = KUBERNETES_VERSIONS.iter().map(|version| {
        let mut args = vec!["--strict", "-k", version];
        args.extend(files.iter().map(|file| file.to_str().unwrap()));
        run("kubernetes-validate", &args, &[])
    });
    let first = outputs.next().unwrap();
    if !succeeded(&first) {
        return first;
    }
    outputs.next().unwrap()
}

#[test]
fn compose_follows_the_compose_specification() {
    let output = run(
        "check-jsonschema",
        &[
            "--builtin-schema",
            "vendor.compose-spec",
            COMPOSE,
            MULTI_HOST,
        ],
        &[],
    );
    assert!(succeeded(&output), "{}", text(&output));

    let (_folder, broken) = tempfile_with(
        "compose.yaml",
        &fs::read_to_string(workspace_root().join(COMPOSE))
            .unwrap()
            .replace("shm_size:", "shm_sise:"),
    );
    let output = run(
        "check-jsonschema",
        &[
            "--builtin-schema",
            "vendor.compose-spec",
            broken.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        !succeeded(&output) && text(&output).contains("shm_sise"),
        "the schema check accepted an unknown key:\n{}",
        text(&output)
    );
}

#[test]
fn compose_loads_in_every_layout_and_profile() {
    for files in [vec![COMPOSE], vec![COMPOSE, MULTI_HOST]] {
        for profile in ["all", "database", "server", "client"] {
            let mut args: Vec<&str> = files.iter().flat_map(|file| ["-f", *file]).collect();
            args.extend(["--profile", profile, "config", "--quiet"]);
            let output = run("docker-compose", &args, &[]);
            assert!(
                succeeded(&output),
                "docker-compose {}:\n{}",
                args.join(" "),
                text(&output)
            );
        }
    }
    // Compose's loader also refuses what the schema allows but Compose cannot run: here the
    // server depends on a database service that no longer exists.
    let (_folder, broken) = tempfile_with(
        "compose.yaml",
        &fs::read_to_string(workspace_root().join(COMPOSE))
            .unwrap()
            .replace("  tfb-database:\n    image", "  tfb-db:\n    image"),
    );
    let output = run(
        "docker-compose",
        &[
            "-f",
            broken.to_str().unwrap(),
            "--profile",
            "all",
            "config",
            "--quiet",
        ],
        &[],
    );
    assert!(
        !succeeded(&output) && text(&output).contains("undefined service"),
        "docker-compose accepted a dependency on a missing service:\n{}",
        text(&output)
    );
}

#[test]
fn kubernetes_manifests_follow_the_kubernetes_schemas() {
    let files = manifest_files();
    assert!(
        files.len() >= 4,
        "namespace, database, server and client manifests"
    );
    let output = kubernetes_validate(&files);
    assert!(succeeded(&output), "{}", text(&output));

    // The host-network component, applied to each workload it targets, still validates.
    let patch: Value = documents(&deploy().join("k8s/host-network/host-network.yaml"))
        .pop()
        .unwrap();
    let resources = resources();
    let kustomization = &documents(&deploy().join("k8s/host-network/kustomization.yaml"))[0];
    let mut patched_files = Vec::new();
    for target in kustomization["patches"].as_array().unwrap() {
        let target = &target["target"];
        let mut workload = resource(
            &resources,
            target["kind"].as_str().unwrap(),
            target["name"].as_str().unwrap(),
        )
        .clone();
        apply_json_patch(&mut workload, &patch);
        assert_eq!(pod_spec(&workload)["hostNetwork"], true);
        patched_files.push(tempfile_with(
            &format!("{}.json", target["name"].as_str().unwrap()),
            &workload.to_string(),
        ));
    }
    let paths: Vec<PathBuf> = patched_files.iter().map(|(_, path)| path.clone()).collect();
    let output = kubernetes_validate(&paths);
    assert!(
        succeeded(&output),
        "host-network variants:\n{}",
        text(&output)
    );

    let (_folder, broken) = tempfile_with(
        "server.yaml",
        &fs::read_to_string(deploy().join("k8s/server.yaml"))
            .unwrap()
            .replace("readinessProbe:", "readynessProbe:"),
    );
    let output = kubernetes_validate(&[broken]);
    assert!(
        !succeeded(&output),
        "kubernetes-validate accepted an unknown field:\n{}",
        text(&output)
    );
}

/// RFC 6902 `add` operations, the only kind the component uses.
fn apply_json_patch(target: &mut Value, patch: &Value) {
    for operation in patch.as_array().expect("a JSON patch is a list") {
        assert_eq!(operation["op"], "add", "only add operations are expected");
        let path = operation["path"].as_str().unwrap();
        let (parent, key) = path.rsplit_once('/').unwrap();
        let parent = target
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("{path}: the parent does not exist"));
        parent[key] = operation["value"].clone();
    }
}

#[test]
fn kustomizations_are_complete_and_overlays_match_the_implementations() {
    let k8s = deploy().join("k8s");
    let base = &documents(&k8s.join("kustomization.yaml"))[0];
    let listed: BTreeSet<PathBuf> = base["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| k8s.join(file.as_str().unwrap()))
        .collect();
    let on_disk: BTreeSet<PathBuf> = manifest_files().into_iter().collect();
    assert_eq!(
        listed, on_disk,
        "the base lists exactly the manifests in deploy/k8s"
    );

    // Every image a manifest names is set by the base, and only those.
    let resources = resources();
    let used: BTreeSet<String> = resources
        .iter()
        .filter_map(|resource| resource["spec"]["template"]["spec"].as_object())
        .flat_map(|spec| {
            ["containers", "initContainers"]
                .into_iter()
                .filter_map(|key| spec.get(key).and_then(Value::as_array))
                .flatten()
                .map(|container| container["image"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let set: BTreeSet<String> = base["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        used, set,
        "image placeholders in the manifests and the base's images"
    );

    // One overlay per implementation with a default test, naming its image and its test.
    let mut overlays: Vec<String> = fs::read_dir(k8s.join("overlays"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    overlays.sort();
    let mut expected: Vec<String> = implementations()
        .iter()
        .filter(|implementation| {
            implementation
                .config
                .tests()
                .any(|(key, _)| key == "default")
        })
        .map(|implementation| implementation.name.clone())
        .collect();
    expected.sort();
    assert_eq!(
        overlays, expected,
        "deploy/k8s/overlays/ has one folder per implementation"
    );
    for implementation in implementations() {
        let overlay = &documents(
            &k8s.join("overlays")
                .join(&implementation.name)
                .join("kustomization.yaml"),
        )[0];
        assert_eq!(overlay["resources"][0], "../..");
        let image = overlay["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|image| image["name"] == "tfb-server")
            .expect("the overlay sets the server image");
        assert_eq!(
            image["newName"],
            format!("tfb/{}", image_name(&implementation)),
            "{}: the image scripts/images.sh makes from its Dockerfile",
            implementation.name
        );
        let literals = overlay["configMapGenerator"][0]["literals"]
            .as_array()
            .unwrap();
        assert!(
            literals.contains(&Value::from(format!(
                "test={}",
                implementation.test_name("default")
            ))),
            "{}: the client loads this implementation's default test",
            implementation.name
        );
    }

    let component = &documents(&k8s.join("host-network/kustomization.yaml"))[0];
    for patch in component["patches"].as_array().unwrap() {
        assert!(
            k8s.join("host-network")
                .join(patch["path"].as_str().unwrap())
                .is_file()
        );
    }
}

/// The image scripts/images.sh builds from an implementation's Dockerfile.
fn image_name(implementation: &Implementation) -> String {
    let (_, test) = implementation
        .config
        .tests()
        .next()
        .expect("an implementation has a test");
    let dockerfile = test.dockerfile.as_deref().expect("a dockerfile key");
    format!("tfb-{}", dockerfile.trim_end_matches(".dockerfile"))
}

#[test]
fn images_compose_and_manifests_agree_with_the_contract() {
    let dockerfiles = workspace_root().join("dockerfiles");
    for implementation in implementations() {
        let config = compose_config(&[
            ("TFB_IMPLEMENTATION", implementation.name.as_str()),
            ("TFB_TEST", implementation.name.as_str()),
        ]);
        let server = &config["services"]["tfb-server"];
        assert_eq!(
            server["image"],
            format!("tfb/{}:latest", image_name(&implementation)),
            "TFB_IMPLEMENTATION={} runs the image of its Dockerfile",
            implementation.name
        );
        for (key, test) in implementation.config.tests() {
            assert_eq!(
                test.port,
                Some(8080),
                "{}/{key}: Compose and the manifests serve port 8080",
                implementation.name
            );
            let dockerfile =
                fs::read_to_string(dockerfiles.join(test.dockerfile.as_deref().unwrap())).unwrap();
            assert!(dockerfile.contains("EXPOSE 8080"));
            assert!(dockerfile.contains(
                "DATABASE_URL=postgres://benchmarkdbuser:benchmarkdbpass@tfb-database/hello_world"
            ));
        }
    }
    for image in ["tfb-database", "tfb-client"] {
        assert!(dockerfiles.join(format!("{image}.dockerfile")).is_file());
    }

    let config = compose_config(&[]);
    let services = &config["services"];
    assert_eq!(services["tfb-database"]["image"], "tfb/tfb-database:latest");
    assert_eq!(services["tfb-client"]["image"], "tfb/tfb-client:latest");
    let database_url = "postgres://benchmarkdbuser:benchmarkdbpass@tfb-database:5432/hello_world";
    let server_env = services["tfb-server"]["environment"].as_object().unwrap();
    assert!(
        server_env
            .keys()
            .all(|key| CONTRACT_ENV.contains(&key.as_str())),
        "the server gets only the contract's variables: {server_env:?}"
    );
    assert_eq!(server_env["DATABASE_URL"], database_url);
    assert_eq!(server_env["PORT"], "8080");
    let command: Vec<&str> = services["tfb-client"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|word| word.as_str().unwrap())
        .collect();
    assert_eq!(
        flag_value(&command, "--server-url"),
        "http://tfb-server:8080"
    );
    assert_eq!(flag_value(&command, "--database-url"), database_url);
    assert_eq!(
        services["tfb-client"]["volumes"][0]["target"], "/results",
        "results land in the mounted folder"
    );
    assert_eq!(services["tfb-client"]["working_dir"], "/results");

    let resources = resources();
    assert!(resource(&resources, "Service", "tfb-database")["spec"]["ports"][0]["port"] == 5432);
    assert!(resource(&resources, "Service", "tfb-server")["spec"]["ports"][0]["port"] == 8080);
    let server = &pod_spec(resource(&resources, "Deployment", "tfb-server"))["containers"][0];
    assert_eq!(server["ports"][0]["containerPort"], 8080);
    for variable in server["env"].as_array().unwrap() {
        let name = variable["name"].as_str().unwrap();
        // POSTGRES_PASSWORD only feeds $(POSTGRES_PASSWORD) in DATABASE_URL.
        assert!(
            CONTRACT_ENV.contains(&name) || name == "POSTGRES_PASSWORD",
            "the server gets {name}, which the contract does not define"
        );
    }
    let url = server["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|variable| variable["name"] == "DATABASE_URL")
        .unwrap()["value"]
        .as_str()
        .unwrap();
    assert_eq!(
        url,
        "postgres://benchmarkdbuser:$(POSTGRES_PASSWORD)@tfb-database:5432/hello_world"
    );
    let client = &pod_spec(resource(&resources, "Job", "tfb-client"))["initContainers"][0];
    let args: Vec<&str> = client["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|word| word.as_str().unwrap())
        .collect();
    assert_eq!(flag_value(&args, "--server-url"), "http://tfb-server:8080");
    assert_eq!(
        flag_value(&args, "--database-url"),
        url,
        "the client verifies against the server's database"
    );
    assert_eq!(client["workingDir"], "/results");
}

/// Each workload runs on its own role's node, away from the other two, without privileges.
#[test]
fn workloads_are_placed_apart_and_unprivileged() {
    let resources = resources();
    for (kind, name, role) in [
        ("StatefulSet", "tfb-database", "database"),
        ("Deployment", "tfb-server", "server"),
        ("Job", "tfb-client", "client"),
    ] {
        let spec = pod_spec(resource(&resources, kind, name));
        assert_eq!(spec["nodeSelector"]["tfb-role"], role, "{name}");
        let term = &spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            [0];
        assert_eq!(term["topologyKey"], "kubernetes.io/hostname", "{name}");
        assert!(
            spec["hostNetwork"].is_null(),
            "{name}: host networking is opt-in"
        );
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{name}");
        for key in ["containers", "initContainers"] {
            for container in spec[key].as_array().into_iter().flatten() {
                let context = &container["securityContext"];
                assert_ne!(context["privileged"], true, "{name}");
                assert_eq!(context["allowPrivilegeEscalation"], false, "{name}");
                assert!(
                    container["resources"]["requests"].is_object()
                        && container["resources"]["limits"].is_object(),
                    "{name}: requests and limits"
                );
            }
        }
        for volume in spec["volumes"].as_array().into_iter().flatten() {
            assert!(
                volume["hostPath"].is_null(),
                "{name}: no host paths (docker socket)"
            );
        }
    }
    for file in manifest_files().iter().chain([
        &deploy().join("compose.yaml"),
        &deploy().join("compose.multi-host.yaml"),
    ]) {
        let source = fs::read_to_string(file).unwrap();
        for line in source
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
        {
            for hole in ["docker.sock", "2375", "privileged: true"] {
                assert!(!line.contains(hole), "{}: {hole}", file.display());
            }
        }
    }
}

#[test]
fn images_script_tags_every_dockerfile_with_one_version() {
    let output = run(
        "bash",
        &[
            "scripts/images.sh",
            "--dry-run",
            "--registry",
            "ghcr.io/me/",
            "--version",
            "1.2.3",
            "--push",
            "--target-cpu",
            "x86-64-v3",
        ],
        &[],
    );
    assert!(succeeded(&output), "{}", text(&output));
    let printed = String::from_utf8_lossy(&output.stdout);
    let mut expected_images = vec!["tfb-database".to_owned(), "tfb-client".to_owned()];
    expected_images.extend(implementations().iter().map(image_name));
    for image in expected_images {
        let tag = format!("ghcr.io/me/{image}:1.2.3");
        assert!(
            printed.contains(&format!("--tag {tag}"))
                && printed.contains(&format!("docker push {tag}")),
            "images.sh does not build and push {tag}:\n{printed}"
        );
    }
    for argument in ["VERSION=1.2.3", "REVISION=", "SOURCE="] {
        assert!(printed.contains(argument), "images.sh passes {argument}");
    }
    // Every server is compiled for the CPU asked for; the database and the client take none.
    for line in printed
        .lines()
        .filter(|line| line.starts_with("docker build"))
    {
        let is_server = !line.contains("/tfb-database:") && !line.contains("/tfb-client:");
        assert_eq!(
            line.contains("--build-arg TARGET_CPU=x86-64-v3"),
            is_server,
            "{line}"
        );
    }
    let output = run("bash", &["scripts/images.sh", "--bogus"], &[]);
    assert!(!succeeded(&output) && text(&output).contains("unknown argument --bogus"));
}

fn flag_value<'a>(words: &[&'a str], flag: &str) -> &'a str {
    let position = words
        .iter()
        .position(|word| *word == flag)
        .unwrap_or_else(|| panic!("{flag} missing from {words:?}"));
    words[position + 1]
}

/// Writes `contents` to `name` in a fresh folder, removed when the returned guard is dropped.
fn tempfile_with(name: &str, contents: &str) -> (tempfile::TempDir, PathBuf) {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join(name);
    fs::write(&path, contents).unwrap();
    (directory, path)
}
