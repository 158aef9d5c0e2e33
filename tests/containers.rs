//! The images and the three-role topology, built and run for real on a Docker engine:
//! `scripts/containers.sh` (an engine, a local registry, stand-ins for base images that cannot
//! be pulled), `scripts/images.sh` (axum, the database and the client, built with the `ci` cargo
//! profile, pushed, removed and pulled back by tag and digest), then `deploy/compose.yaml` on one
//! host with the database container stopped and started again in the middle of a load, a server
//! that fails verification, and the multi-host layout's three per-host commands (host
//! networking) on this one engine.
//!
//! Needs root (to start a private dockerd and install Debian's packages) or an engine that
//! already answers; without either every trial is ignored and the reason printed. The trials run
//! in order and share one engine and one set of images; everything they started is stopped and
//! removed at the end.

#[path = "support/compose.rs"]
mod support;

use std::{
    collections::BTreeMap,
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Output, Stdio},
    sync::{Mutex, OnceLock},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail, ensure};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use tfb_harness::workspace_root;

/// The images these tests build, as named in `dockerfiles/`.
const IMAGES: [&str; 3] = ["axum", "tfb-database", "tfb-client"];
/// The six types every successful run verifies and loads.
const TYPES: [&str; 6] = ["json", "db", "query", "fortune", "update", "plaintext"];
/// Every Compose profile, so that `down` reaches every service a run started.
const EVERY_PROFILE: [&str; 8] = [
    "--profile",
    "all",
    "--profile",
    "database",
    "--profile",
    "server",
    "--profile",
    "client",
];
const DATABASE_TYPES: [&str; 4] = ["db", "query", "fortune", "update"];
/// Readiness waits are bounded so that a broken image fails the test instead of hanging it;
/// the bounds are far beyond what a busy 2-core machine needs.
const READY_WITHIN: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    let mut arguments = Arguments::from_args();
    // One engine, one set of images, one port space: the trials build on each other.
    arguments.test_threads = Some(1);
    let unavailable = engine_unavailable();
    if let Some(reason) = &unavailable {
        eprintln!("containers: every trial ignored: {reason}");
    }
    let trials = [
        (
            "containers::images_are_built_pushed_and_pulled_back",
            images_are_built_pushed_and_pulled_back as fn() -> anyhow::Result<()>,
        ),
        (
            "containers::one_host_topology_survives_a_database_outage",
            one_host_topology_survives_a_database_outage,
        ),
        (
            "containers::a_server_failing_verification_is_reported_not_loaded",
            a_server_failing_verification_is_reported_not_loaded,
        ),
        (
            "containers::multi_host_commands_run_as_written",
            multi_host_commands_run_as_written,
        ),
    ]
    .into_iter()
    .map(|(name, run)| {
        Trial::test(name, move || {
            run().map_err(|error| Failed::from(format!("{error:#}")))
        })
        .with_ignored_flag(unavailable.is_some())
    })
    .collect();
    let conclusion = libtest_mimic::run(&arguments, trials);
    match ENGINE.get() {
        Some(engine) => engine
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .stop(conclusion.has_failed()),
        // Setting up failed after `containers.sh up` may have started an engine and a registry.
        None if ENGINE_ERROR.get().is_some() => containers_down(&state_dir()),
        None => {}
    }
    conclusion.exit_code()
}

/// Why no engine can be had here, if none can.
fn engine_unavailable() -> Option<String> {
    let root = nix::unistd::Uid::effective().is_root();
    let answers = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    (!root && !answers).then(|| {
        "no Docker engine answers and starting one (scripts/containers.sh) needs root".to_owned()
    })
}

// --- the trials ----------------------------------------------------------------------------

fn images_are_built_pushed_and_pulled_back() -> anyhow::Result<()> {
    let engine = engine()?;
    let engine = engine.lock().unwrap();
    let report = fs::read_to_string(&engine.images_report)?;
    let rows: Vec<Vec<&str>> = report
        .lines()
        .skip(1)
        .map(|line| line.split('\t').collect())
        .collect();
    ensure!(
        rows.len() == IMAGES.len(),
        "images.sh reported {} images:\n{report}",
        rows.len()
    );
    for row in &rows {
        let [image, bytes, seconds, digest] = row[..] else {
            bail!("a short report row: {row:?}")
        };
        ensure!(
            digest.starts_with("sha256:"),
            "{image}: no registry digest ({digest})"
        );
        eprintln!(
            "containers: {image}: {} MB, built in {seconds} s, {digest}",
            bytes.parse::<u64>()? / 1_000_000
        );
        // What was pulled back is what runs: the local copy carries the registry's digest.
        let digests = engine.docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            image,
        ])?;
        ensure!(
            digests.contains(digest),
            "{image} here is not the pushed {digest}: {digests}"
        );
    }
    // A server image is its base, the binary and what the health check runs: no toolchain,
    // no sources, no cargo registry.
    let server = engine.image("axum");
    engine
        .docker(&[
            "run",
            "--rm",
            "--entrypoint",
            "bash",
            &server,
            "-c",
            "for tool in cargo rustc cc gcc; do if command -v $tool; then exit 1; fi; done; \
             test ! -e /src && test ! -e /usr/local/cargo && test ! -e /usr/local/rustup \
             && test -x /usr/local/bin/tfb-axum",
        ])
        .context("the server image holds build tools or sources")?;
    let bytes: u64 = engine
        .docker(&["image", "inspect", "--format", "{{.Size}}", &server])?
        .trim()
        .parse()?;
    ensure!(
        bytes < 200_000_000,
        "the server image is {} MB: more than a base and a binary",
        bytes / 1_000_000
    );
    let labels = engine.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &server,
    ])?;
    ensure!(
        labels.contains(&format!(
            "\"org.opencontainers.image.version\":\"{}\"",
            engine.version
        )) && labels.contains("\"tfb.target-cpu\":\"native\""),
        "labels: {labels}"
    );
    Ok(())
}

fn one_host_topology_survives_a_database_outage() -> anyhow::Result<()> {
    let engine = engine()?;
    let engine = engine.lock().unwrap();
    let run = engine.compose_run("one-host", &[])?;
    // deploy/README.md's one-host command: `run` starts the database and the server first.
    let mut up = run
        .compose(&["--profile", "all", "run", "--rm", "tfb-client"])
        .spawn_logged(&run.log)?;
    let result = (|| -> anyhow::Result<(u64, Value)> {
        let database = run.container("tfb-database");
        let server = run.container("tfb-server");
        for container in [&database, &server] {
            engine.wait_healthy(container, &mut up)?;
        }
        // The database goes down during the first measured level of /db (a wrk of the level's
        // duration: the quick profile's 5 s, warmups are shorter) and comes back once the next
        // measured level of a database type has started: that level is certain to meet the
        // outage, however slowly this machine runs the steps in between.
        let measured_database_load = |args: &str| {
            args.starts_with("wrk ")
                && args.contains("-d 5s")
                && ["/db", "/queries", "/fortunes", "/updates"]
                    .iter()
                    .any(|path| args.contains(path))
        };
        let (_, client, first) =
            engine.wait_for_process(&run.project, "tfb-client", &mut up, |_, args| {
                measured_database_load(args) && args.contains("/db")
            })?;
        engine.docker(&["stop", &database])?;
        let (outage_seen, _, _) =
            engine.wait_for_process(&run.project, "tfb-client", &mut up, |pid, args| {
                pid != first && measured_database_load(args)
            })?;
        engine.docker(&["start", &database])?;
        eprintln!(
            "containers: {database} stopped during one level and started at {outage_seen}, \
             once the next level had begun"
        );
        engine.wait_healthy(&database, &mut up)?;
        for (container, expected) in [(&database, "999"), (&server, "10001"), (&client, "10001")] {
            let uid = engine.docker(&["exec", container, "id", "-u"])?;
            ensure!(
                uid.trim() == expected,
                "{container} runs as uid {} (expected {expected})",
                uid.trim()
            );
        }
        let status = wait_child(&mut up)?;
        ensure!(
            status,
            "compose run tfb-client failed; see {}",
            run.log.display()
        );
        Ok((outage_seen, run.results()?))
    })();
    let (outage_seen, results) = result.inspect_err(|_| {
        let _ = up.kill();
    })?;
    verified_and_loaded(&results, &TYPES)?;
    // The level that began while the database was down records the failure...
    let during = DATABASE_TYPES
        .iter()
        .flat_map(|test_type| levels(&results, test_type))
        .find(|level| {
            level["startTime"].as_u64() <= Some(outage_seen)
                && Some(outage_seen) <= level["endTime"].as_u64()
        })
        .context("no level of a database type was running during the outage")?;
    ensure!(
        errors(&during) > 0,
        "the level that began while the database was down recorded no errors: {during}"
    );
    // ... and the server is back long before the run's last database level.
    let last = levels(&results, "update")
        .pop()
        .context("no update levels")?;
    ensure!(
        errors(&last) == 0,
        "the last update level, long after the database came back, had errors: {last}"
    );
    run.down()
}

fn a_server_failing_verification_is_reported_not_loaded() -> anyhow::Result<()> {
    let engine = engine()?;
    let engine = engine.lock().unwrap();
    // The server gets a wrong database password: the database types answer 503.
    let run = engine.compose_run("failing", &[])?;
    let broken = run.directory.join("wrong-password.yaml");
    fs::write(
        &broken,
        "services:\n  tfb-server:\n    environment:\n      DATABASE_URL: \
         postgres://benchmarkdbuser:wrong@tfb-database:5432/hello_world\n",
    )?;
    let compose_file = workspace_root().join("deploy/compose.yaml");
    let mut up = run
        .compose(&[
            "-f",
            &compose_file.to_string_lossy(),
            "-f",
            &broken.to_string_lossy(),
            "--profile",
            "all",
            "run",
            "--rm",
            "tfb-client",
        ])
        .spawn_logged(&run.log)?;
    let status = wait_child(&mut up)?;
    ensure!(status, "compose up failed; see {}", run.log.display());
    let results = run.results()?;
    for test_type in DATABASE_TYPES {
        ensure!(
            results["verify"]["axum"][test_type] == "fail",
            "{test_type}: {}",
            results["verify"]["axum"]
        );
        ensure!(
            levels(&results, test_type).is_empty(),
            "{test_type} failed verification but was loaded"
        );
        ensure!(
            results["skipped"]["axum"][test_type]
                .as_str()
                .is_some_and(|reason| !reason.is_empty()),
            "{test_type}: no reason given for not loading it"
        );
    }
    verified_and_loaded(&results, &["json", "plaintext"])?;
    let log = fs::read_to_string(&run.log)?;
    ensure!(
        log.contains("is not loaded"),
        "the client's output does not say what was not loaded"
    );
    run.down()
}

fn multi_host_commands_run_as_written() -> anyhow::Result<()> {
    let engine = engine()?;
    let engine = engine.lock().unwrap();
    // Host networking shares this machine's ports: free ones, in case 5432 or 8080 are taken.
    let database_port = free_port()?.to_string();
    let server_port = free_port()?.to_string();
    let hosts = [
        ("TFB_DATABASE_HOST", "127.0.0.1"),
        ("TFB_SERVER_HOST", "127.0.0.1"),
        ("TFB_DATABASE_PORT", database_port.as_str()),
        ("TFB_SERVER_PORT", server_port.as_str()),
    ];
    let run = engine.compose_run("multi-host", &hosts)?;
    let commands = readme_multi_host_commands()?;
    ensure!(
        commands.len() == 3,
        "deploy/README.md shows {} per-host commands, not 3",
        commands.len()
    );
    let outcome = (|| -> anyhow::Result<()> {
        for (index, command) in commands.iter().enumerate() {
            // Every host is this engine: DOCKER_HOST and the addresses are the run's.
            let mut shell = run.shell(command);
            shell.env("TFB_RESULTS", &run.results_dir);
            let mut child = shell.spawn_logged(&run.log)?;
            if index == 0 {
                wait_child(&mut child)?
                    .then_some(())
                    .context("the database host's command failed")?;
                engine.wait_healthy(&run.container("tfb-database"), &mut child)?;
            } else if index == 1 {
                wait_child(&mut child)?
                    .then_some(())
                    .context("the server host's command failed")?;
                engine.wait_healthy(&run.container("tfb-server"), &mut child)?;
            } else {
                ensure!(
                    wait_child(&mut child)?,
                    "the client host's command failed; see {}",
                    run.log.display()
                );
            }
        }
        Ok(())
    })();
    outcome.with_context(|| format!("compose output: {}", run.log.display()))?;
    let results = run.results()?;
    verified_and_loaded(&results, &TYPES)?;
    for container in ["tfb-database", "tfb-server"] {
        let mode = engine.docker(&[
            "inspect",
            "--format",
            "{{.HostConfig.NetworkMode}}",
            &run.container(container),
        ])?;
        ensure!(
            mode.trim() == "host",
            "{container} is on network {mode}, not the host's"
        );
    }
    run.down()
}

/// The three `DOCKER_HOST=ssh://... docker compose ...` lines of deploy/README.md, with
/// `docker compose` as Compose's own binary and the ssh hosts dropped (DOCKER_HOST is ours).
fn readme_multi_host_commands() -> anyhow::Result<Vec<String>> {
    let readme = fs::read_to_string(workspace_root().join("deploy/README.md"))?;
    let compose = support::docker_compose();
    Ok(readme
        .lines()
        .filter(|line| {
            line.starts_with("DOCKER_HOST=ssh://") && line.contains("compose.multi-host.yaml")
        })
        .map(|line| {
            let (_, rest) = line
                .split_once(' ')
                .expect("DOCKER_HOST=... then the command");
            let words: Vec<&str> = rest
                .split_whitespace()
                .filter(|word| {
                    !word.starts_with("TFB_DATABASE_HOST=")
                        && !word.starts_with("TFB_SERVER_HOST=")
                        && !word.starts_with("TFB_RESULTS=")
                })
                .collect();
            let command = words.join(" ");
            command.replacen("docker compose", &compose.to_string_lossy(), 1)
        })
        .collect())
}

// --- results -------------------------------------------------------------------------------

/// Each of `types` passed verification and was loaded at every level.
fn verified_and_loaded(results: &Value, types: &[&str]) -> anyhow::Result<()> {
    for test_type in types {
        let verdict = &results["verify"]["axum"][test_type];
        ensure!(
            verdict == "pass",
            "{test_type} verified {verdict}: {}\n{}",
            results["verify"]["axum"],
            failures(results, test_type)
        );
        ensure!(
            !levels(results, test_type).is_empty(),
            "{test_type} passed but was not loaded"
        );
    }
    Ok(())
}

/// What failed TFB's rules for `test_type`, one line per finding, from the stored report.
fn failures(results: &Value, test_type: &str) -> String {
    let types = results["verification"]["axum"]["types"].as_array();
    types
        .into_iter()
        .flatten()
        .filter(|report| report["test_type"] == test_type)
        .flat_map(|report| report["findings"].as_array().cloned().unwrap_or_default())
        .filter(|finding| finding["level"] == "fail" && finding["strict"] == false)
        .map(|finding| {
            format!(
                "  {}: {} ({})",
                finding["check"], finding["message"], finding["url"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn levels(results: &Value, test_type: &str) -> Vec<Value> {
    results["rawData"][test_type]["axum"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn errors(level: &Value) -> u64 {
    ["connect", "read", "write", "timeout", "5xx"]
        .iter()
        .filter_map(|key| level[key].as_u64())
        .sum()
}

// --- the engine, the images and the Compose runs -------------------------------------------

static ENGINE: OnceLock<Mutex<Engine>> = OnceLock::new();
static ENGINE_ERROR: OnceLock<String> = OnceLock::new();

/// The engine and images, set up by the first trial that needs them.
fn engine() -> anyhow::Result<&'static Mutex<Engine>> {
    if let Some(engine) = ENGINE.get() {
        return Ok(engine);
    }
    if let Some(error) = ENGINE_ERROR.get() {
        bail!("setting up the engine failed earlier: {error}");
    }
    match Engine::start() {
        Ok(engine) => Ok(ENGINE.get_or_init(|| Mutex::new(engine))),
        Err(error) => {
            let message = format!("{error:#}");
            let _ = ENGINE_ERROR.set(message.clone());
            bail!(message)
        }
    }
}

struct Engine {
    state: PathBuf,
    env: BTreeMap<String, String>,
    registry: String,
    version: String,
    images_report: PathBuf,
    /// The open-file limit containers may have: Compose's 200000, or the engine's hard limit
    /// where that is lower (a container cannot raise it).
    nofile: u64,
    work: tempfile::TempDir,
    stopped: bool,
}

impl Engine {
    fn start() -> anyhow::Result<Self> {
        let state = state_dir();
        let containers = workspace_root().join("scripts/containers.sh");
        let work = tempfile::Builder::new()
            .prefix("tfb-containers-")
            .tempdir()?;
        let mut engine = Engine {
            state: state.clone(),
            env: BTreeMap::new(),
            registry: String::new(),
            version: format!("test-{}", std::process::id()),
            images_report: work.path().join("images.tsv"),
            nofile: 200_000,
            work,
            stopped: false,
        };
        for step in ["up", "bases"] {
            let status = Command::new(&containers)
                .args([step, "--state"])
                .arg(&state)
                .status()
                .with_context(|| format!("running scripts/containers.sh {step}"))?;
            ensure!(status.success(), "scripts/containers.sh {step} failed");
        }
        engine.env = read_env(&state.join("env"))?;
        engine.registry = engine
            .env
            .get("TFB_REGISTRY")
            .cloned()
            .context("no TFB_REGISTRY in the env file")?;
        let limit = engine.docker(&[
            "run",
            "--rm",
            "--entrypoint",
            "bash",
            "debian:12.12-slim",
            "-c",
            "ulimit -Hn",
        ])?;
        if let Ok(limit) = limit.trim().parse::<u64>() {
            engine.nofile = engine.nofile.min(limit);
        }
        let status = Command::new(workspace_root().join("scripts/images.sh"))
            .args(["--registry", &engine.registry, "--version", &engine.version])
            .args([
                "--cargo-profile",
                "ci",
                "--only",
                &IMAGES.join(","),
                "--push",
                "--pull-back",
            ])
            .arg("--report")
            .arg(&engine.images_report)
            .envs(&engine.env)
            .current_dir(workspace_root())
            .status()
            .context("running scripts/images.sh")?;
        ensure!(status.success(), "scripts/images.sh failed");
        Ok(engine)
    }

    fn image(&self, name: &str) -> String {
        let name = if name.starts_with("tfb-") {
            name.to_owned()
        } else {
            format!("tfb-{name}")
        };
        format!("{}/{name}:{}", self.registry, self.version)
    }

    fn docker(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new("docker").args(args).envs(&self.env).output()?;
        checked(output, &format!("docker {}", args.join(" ")))
    }

    /// A Compose project of its own, with the images and a results folder the client (uid
    /// 10001, as in its image) can write.
    fn compose_run(&self, name: &str, extra: &[(&str, &str)]) -> anyhow::Result<ComposeRun> {
        let directory = self.work.path().join(name);
        let results_dir = directory.join("results");
        fs::create_dir_all(&results_dir)?;
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&results_dir, fs::Permissions::from_mode(0o777))?;
        let project = format!("tfb-test-{}-{name}", std::process::id());
        let mut env = self.env.clone();
        for (key, value) in [
            ("COMPOSE_PROJECT_NAME", project.as_str()),
            ("TFB_REGISTRY", self.registry.as_str()),
            ("TFB_VERSION", self.version.as_str()),
            ("TFB_IMPLEMENTATION", "axum"),
            ("TFB_TEST", "axum"),
            ("TFB_PROFILE", "quick"),
            ("TFB_RESULTS", &results_dir.to_string_lossy()),
        ] {
            env.insert(key.to_owned(), value.to_owned());
        }
        for (key, value) in extra {
            env.insert((*key).to_owned(), (*value).to_owned());
        }
        // Compose's own binary must not see a caller's TFB_USER (root in CI).
        env.insert("TFB_USER".to_owned(), "10001".to_owned());
        env.insert("TFB_NOFILE".to_owned(), self.nofile.to_string());
        ENGINE_PROJECTS.lock().unwrap().push(project.clone());
        Ok(ComposeRun {
            log: directory.join("compose.log"),
            project,
            env,
            directory,
            results_dir,
        })
    }

    fn wait_healthy(&self, container: &str, child: &mut Child) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(state) = self.docker(&[
                "inspect",
                "--format",
                "{{.State.Status}} {{.State.Health.Status}}",
                container,
            ]) {
                match state.split_whitespace().collect::<Vec<_>>()[..] {
                    [_, "healthy"] => return Ok(()),
                    ["exited" | "dead", ..] => {
                        let logs = Command::new("docker")
                            .args(["logs", "--tail", "20", container])
                            .envs(&self.env)
                            .output()?;
                        bail!(
                            "{container} stopped before it was healthy:\n{}{}",
                            String::from_utf8_lossy(&logs.stdout),
                            String::from_utf8_lossy(&logs.stderr)
                        );
                    }
                    _ => {}
                }
            }
            if let Some(status) = child.try_wait()? {
                ensure!(
                    status.success(),
                    "compose exited ({status}) before {container} was healthy"
                );
            }
            ensure!(
                Instant::now() < deadline,
                "{container} not healthy within {READY_WITHIN:?}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until a process whose pid and command line satisfy `wanted` runs in the container
    /// of `service` (`compose run` names it at random); returns the Unix time it was seen, the
    /// container's name and the process's pid.
    fn wait_for_process(
        &self,
        project: &str,
        service: &str,
        child: &mut Child,
        wanted: impl Fn(u32, &str) -> bool,
    ) -> anyhow::Result<(u64, String, u32)> {
        let deadline = Instant::now() + READY_WITHIN;
        let project_label = format!("label=com.docker.compose.project={project}");
        let service_label = format!("label=com.docker.compose.service={service}");
        loop {
            let listing = self.docker(&[
                "ps",
                "--filter",
                &project_label,
                "--filter",
                &service_label,
                "--format",
                "{{.Names}}",
            ])?;
            // docker top needs the pid column; the command line follows it.
            let container = listing.lines().next();
            let found = container
                .and_then(|container| self.docker(&["top", container, "-eo", "pid,args"]).ok())
                .and_then(|processes| {
                    processes
                        .lines()
                        .filter_map(|line| line.trim().split_once(char::is_whitespace))
                        .filter_map(|(pid, args)| {
                            Some((pid.parse::<u32>().ok()?, args.trim().to_owned()))
                        })
                        .find(|(pid, args)| wanted(*pid, args))
                });
            if let (Some(container), Some((pid, _))) = (container, found) {
                return Ok((unix_now(), container.to_owned(), pid));
            }
            if let Some(status) = child.try_wait()? {
                bail!("compose exited ({status}) before the process appeared in {service}");
            }
            ensure!(
                Instant::now() < deadline,
                "no such process in {service} within {READY_WITHIN:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Removes every project these tests made and the images they built, then stops what
    /// scripts/containers.sh started. The Compose logs and results stay when a trial failed.
    fn stop(&mut self, keep_logs: bool) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let compose = support::docker_compose();
        for project in ENGINE_PROJECTS.lock().unwrap().iter() {
            let _ = Command::new(&compose)
                .args(["-p", project])
                .args(EVERY_PROFILE)
                .args([
                    "-f",
                    &workspace_root()
                        .join("deploy/compose.yaml")
                        .to_string_lossy(),
                    "down",
                    "-v",
                    "--remove-orphans",
                ])
                .envs(&self.env)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for name in IMAGES {
            let _ = self.docker(&["rmi", "--force", &self.image(name)]);
        }
        containers_down(&self.state);
        if keep_logs {
            eprintln!(
                "containers: logs and results kept in {}",
                self.work.path().display()
            );
        } else {
            let _ = fs::remove_dir_all(self.work.path());
        }
    }
}

/// The state folder of scripts/containers.sh for these tests: its engine's image store is the
/// build cache between runs.
fn state_dir() -> PathBuf {
    std::env::var_os("TFB_CONTAINERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/tfb-containers-test"))
}

fn containers_down(state: &Path) {
    let _ = Command::new(workspace_root().join("scripts/containers.sh"))
        .args(["down", "--state"])
        .arg(state)
        .status();
}

static ENGINE_PROJECTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct ComposeRun {
    project: String,
    env: BTreeMap<String, String>,
    directory: PathBuf,
    results_dir: PathBuf,
    log: PathBuf,
}

impl ComposeRun {
    fn compose(&self, args: &[&str]) -> Command {
        let mut command = Command::new(support::docker_compose());
        if !args.contains(&"-f") {
            command.args([
                "-f",
                &workspace_root()
                    .join("deploy/compose.yaml")
                    .to_string_lossy(),
            ]);
        }
        command
            .args(args)
            .envs(&self.env)
            .current_dir(workspace_root());
        command
    }

    /// A command line from the documentation, run by bash in the repository root.
    fn shell(&self, line: &str) -> Command {
        let mut command = Command::new("bash");
        command
            .args(["-c", line])
            .envs(&self.env)
            .current_dir(workspace_root());
        command
    }

    /// Compose names the containers it starts for a service PROJECT-SERVICE-1.
    fn container(&self, service: &str) -> String {
        format!("{}-{service}-1", self.project)
    }

    /// The one results.json the client wrote into the mounted folder.
    fn results(&self) -> anyhow::Result<Value> {
        let runs: Vec<PathBuf> = fs::read_dir(&self.results_dir)?
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|path| path.join("results.json").is_file())
            .collect();
        let [run] = &runs[..] else {
            bail!(
                "{} holds {} runs with a results.json",
                self.results_dir.display(),
                runs.len()
            )
        };
        for file in ["summary.md", "report.html"] {
            ensure!(run.join(file).is_file(), "{} has no {file}", run.display());
        }
        Ok(serde_json::from_str(&fs::read_to_string(
            run.join("results.json"),
        )?)?)
    }

    /// `docker compose down -v`, then nothing of the project may be left.
    fn down(&self) -> anyhow::Result<()> {
        let status = self
            .compose(&[&EVERY_PROFILE[..], &["down", "-v"]].concat())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        ensure!(status.success(), "compose down -v failed");
        let label = format!("label=com.docker.compose.project={}", self.project);
        for listing in [
            vec!["ps", "--all", "--quiet", "--filter", &label],
            vec!["volume", "ls", "--quiet", "--filter", &label],
            vec!["network", "ls", "--quiet", "--filter", &label],
        ] {
            let output = Command::new("docker")
                .args(&listing)
                .envs(&self.env)
                .output()?;
            let left = checked(output, "docker ls")?;
            ensure!(
                left.trim().is_empty(),
                "after down -v, `docker {}` still lists {left}",
                listing.join(" ")
            );
        }
        Ok(())
    }
}

trait SpawnLogged {
    fn spawn_logged(&mut self, log: &Path) -> anyhow::Result<Child>;
}

impl SpawnLogged for Command {
    /// Starts the command with its output appended to `log`, which a failure message names.
    fn spawn_logged(&mut self, log: &Path) -> anyhow::Result<Child> {
        let file = fs::OpenOptions::new().create(true).append(true).open(log)?;
        Ok(self
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?)
    }
}

/// Waits for a Compose command; whether it succeeded. Compose's own runs are bounded: the client
/// stops by itself after the quick profile, and readiness has its own bounds.
fn wait_child(child: &mut Child) -> anyhow::Result<bool> {
    Ok(child.wait()?.success())
}

fn checked(output: Output, what: &str) -> anyhow::Result<String> {
    ensure!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// The `export NAME=VALUE` lines scripts/containers.sh writes (values quoted with printf %q).
fn read_env(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let output = Command::new("bash")
        .args(["-c", ". \"$1\" && printf 'DOCKER_HOST=%s\\nTFB_REGISTRY=%s\\n' \"${DOCKER_HOST:-}\" \"$TFB_REGISTRY\"", "-"])
        .arg(path)
        .output()?;
    let text = checked(output, "reading the containers env file")?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
