//! `tfb`: the benchmark runner. Verifies every implementation under `implementations/` with the
//! conformance crate, loads each type that did not fail with wrk at TFB's levels, and writes
//! `results/<timestamp>/results.json` and `summary.md`.
//!
//! ```sh
//! cargo run --release -p tfb-runner -- benchmark              # every test, quick profile
//! cargo run --release -p tfb-runner -- benchmark --test axum --type db,fortune --profile tfb
//! cargo run --release -p tfb-runner -- verify --test actix-pool
//! cargo run --release -p tfb-runner -- list
//! ```

mod compare;
mod procstat;
mod profile;
mod report;
mod results;
mod run;
mod wrk;

use std::{
    collections::BTreeMap,
    fs,
    path::PathBuf,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use conformance::{Level, TestType};
use profile::Profile;
use results::{Environment, Results};
use run::{Load, SelectedTest, Server};
use tfb_database::Database;
use tfb_harness::workspace_root;

#[derive(Parser)]
#[command(
    version,
    about = "Verify and benchmark web frameworks the TechEmpower way"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// `json` prints machine-readable output on stdout (reports, results) for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// The discovered implementations, their tests and test types.
    List,
    /// Verify the selected tests (TFB's verification plus our strict checks).
    Verify(Selection),
    /// Verify, then load every type that did not fail, and write the results.
    Benchmark(Benchmark),
    /// Compare runs: per type, test and level, the change in requests/s from the first run to
    /// each later one, called a change only when it exceeds the spread.
    Compare {
        /// Run folders; the first is the baseline.
        #[arg(num_args = 2.., required = true)]
        runs: Vec<PathBuf>,
    },
    /// Write summary.md and report.html again from a run's results.json.
    Report {
        /// A run's folder, e.g. results/20261126-170747.
        directory: PathBuf,
    },
}

#[derive(Args)]
struct Selection {
    /// Tests by TFB name (comma-separated: axum,actix-pool); default: all.
    #[arg(long = "test", value_delimiter = ',')]
    tests: Vec<String>,
    /// Test types (comma-separated: db,json,query,update,fortune,plaintext,cached-query); default:
    /// every type the test configures.
    #[arg(long = "type", value_delimiter = ',')]
    types: Vec<String>,
    /// Use this database instead of starting a throwaway one (also read from DATABASE_URL).
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Client mode: verify and load a server that runs elsewhere; nothing is built or started.
    /// Select exactly one test, whose benchmark_config.json gives the paths.
    #[arg(long)]
    server_url: Option<String>,
    /// Client mode: wait up to this many seconds for the server to accept connections, for
    /// containers started together (Compose, a Kubernetes Job); 0 fails at once.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    wait_for_server: u64,
    /// The cargo profile the servers are built with; benchmarks should keep `release`.
    #[arg(long, default_value = "release")]
    build_profile: String,
    /// Print less: no progress lines.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct Benchmark {
    #[command(flatten)]
    selection: Selection,
    /// `quick` (minutes on a laptop) or `tfb` (TFB's exact load phase).
    #[arg(long, default_value = "quick")]
    profile: String,
    /// Seconds per level (overrides the profile).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    duration: Option<u32>,
    /// Connections for json, db and fortune (overrides the profile).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    concurrency_levels: Vec<u32>,
    /// Connections for pipelined plaintext (overrides the profile).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pipeline_concurrency_levels: Vec<u32>,
    /// Rows per request for query and update (overrides the profile).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    query_levels: Vec<u32>,
    /// Rows per request for cached-query (overrides the profile).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    cached_query_levels: Vec<u32>,
    /// Connections for query, update and cached-query (overrides the profile).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    query_concurrency: Option<u32>,
    /// Seconds of primer and of warmup (overrides the profile).
    #[arg(long)]
    warmup: Option<u32>,
    /// Measure every level this many times; results keep the median and every run's figure.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Where results/<timestamp>/ goes.
    #[arg(long, default_value = "results")]
    results_dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs (what runs, with which command line) only when RUST_LOG asks for them.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let format = cli.format;
    let outcome = match cli.command {
        Command::List => list(format),
        Command::Verify(selection) => verify(&selection, format),
        Command::Benchmark(benchmark) => benchmark_command(&benchmark, format),
        Command::Report { directory } => report(&directory),
        Command::Compare { runs } => compare_command(&runs),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tfb: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn compare_command(runs: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let results: Vec<Results> = runs
        .iter()
        .map(|run| Results::read(run))
        .collect::<anyhow::Result<_>>()?;
    print!("{}", compare::render(&results[0], &results[1..]));
    Ok(ExitCode::SUCCESS)
}

fn report(directory: &std::path::Path) -> anyhow::Result<ExitCode> {
    let results = Results::read(directory)?;
    results.write_reports(directory)?;
    print!("{}", results.summary());
    println!("\nreport: {}", directory.join("report.html").display());
    Ok(ExitCode::SUCCESS)
}

fn list(format: Format) -> anyhow::Result<ExitCode> {
    let tests = run::select(&[])?;
    if format == Format::Json {
        let listing: Vec<serde_json::Value> = tests
            .iter()
            .map(|test| {
                let types: serde_json::Map<String, serde_json::Value> = test
                    .config
                    .urls()
                    .iter()
                    .map(|(kind, url)| ((*kind).to_owned(), serde_json::Value::from(*url)))
                    .collect();
                serde_json::json!({"name": test.name, "package": test.implementation.package, "types": types})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(ExitCode::SUCCESS);
    }
    for test in tests {
        let types: Vec<String> = test
            .config
            .urls()
            .iter()
            .map(|(kind, url)| format!("{kind} {url}"))
            .collect();
        println!(
            "{:<14} {:<10} {}",
            test.name,
            test.implementation.package,
            types.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Everything a command needs before the first server starts.
struct Prepared {
    tests: Vec<SelectedTest>,
    types: Vec<TestType>,
    binaries: BTreeMap<String, PathBuf>,
    database: Option<Database>,
    database_url: String,
    runtime: tokio::runtime::Runtime,
    /// Set by Ctrl-C or SIGTERM: finish the level under way, then stop.
    interrupted: Arc<AtomicBool>,
}

fn prepare(selection: &Selection) -> anyhow::Result<Prepared> {
    let tests = run::select(&selection.tests)?;
    let types = run::types(&selection.types)?;
    if selection.server_url.is_some() && tests.len() != 1 {
        bail!("with --server-url, select exactly one test with --test (it names the paths to use)");
    }
    let binaries = match &selection.server_url {
        Some(_) => BTreeMap::new(),
        None => run::build_all(&tests, &selection.build_profile)?,
    };
    let (database, database_url) = match &selection.database_url {
        Some(url) => (None, url.clone()),
        None => {
            if !selection.quiet {
                eprintln!("tfb: starting a throwaway PostgreSQL");
            }
            let database = Database::from_env()?;
            let url = database.url();
            (Some(database), url)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    let mut terminate = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    })?;
    runtime.spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        eprintln!("tfb: stopping after the current level; results so far are kept");
        flag.store(true, Ordering::SeqCst);
    });
    Ok(Prepared {
        tests,
        types,
        binaries,
        database,
        database_url,
        runtime,
        interrupted,
    })
}

fn start_server(
    prepared: &Prepared,
    selection: &Selection,
    test: &SelectedTest,
) -> anyhow::Result<Server> {
    match &selection.server_url {
        Some(url) => {
            run::wait_for_server(url, Duration::from_secs(selection.wait_for_server))?;
            Ok(Server::Remote(url.clone()))
        }
        None => Server::start(
            test,
            &prepared.binaries[&test.implementation.package],
            &prepared.database_url,
        ),
    }
}

/// Starts the test's server (unless it runs elsewhere) and verifies the selected types.
fn start_and_verify(
    prepared: &Prepared,
    selection: &Selection,
    test: &SelectedTest,
) -> anyhow::Result<(Server, conformance::Report)> {
    let server = start_server(prepared, selection, test)?;
    let report = run::verify(
        &prepared.runtime,
        test,
        &server,
        &prepared.database_url,
        &prepared.types,
    )?;
    Ok((server, report))
}

fn verify(selection: &Selection, format: Format) -> anyhow::Result<ExitCode> {
    let prepared = prepare(selection)?;
    let mut failed = false;
    let mut reports = serde_json::Map::new();
    for test in &prepared.tests {
        let (server, report) = match start_and_verify(&prepared, selection, test) {
            Ok(started) => started,
            Err(error) => {
                // One implementation that does not start must not cost the others their check.
                eprintln!("tfb: {}: {error:#}", test.name);
                failed = true;
                continue;
            }
        };
        if format == Format::Text {
            println!("== {}\n{}", test.name, conformance::text::render(&report));
        }
        failed |= report.verdict() == Level::Fail;
        reports.insert(test.name.clone(), serde_json::to_value(&report)?);
        if let Err(error) = server.stop() {
            eprintln!("tfb: {}: {error:#}", test.name);
            failed = true;
        }
    }
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn profile(benchmark: &Benchmark) -> anyhow::Result<Profile> {
    let mut profile = Profile::named(&benchmark.profile)
        .with_context(|| format!("unknown profile {:?} (quick or tfb)", benchmark.profile))?;
    if let Some(duration) = benchmark.duration {
        profile.duration_seconds = duration;
    }
    if let Some(warmup) = benchmark.warmup {
        profile.primer_seconds = warmup;
        profile.warmup_seconds = warmup;
    }
    if !benchmark.concurrency_levels.is_empty() {
        profile
            .concurrency_levels
            .clone_from(&benchmark.concurrency_levels);
    }
    if !benchmark.pipeline_concurrency_levels.is_empty() {
        profile
            .pipeline_concurrency_levels
            .clone_from(&benchmark.pipeline_concurrency_levels);
    }
    if !benchmark.query_levels.is_empty() {
        profile.query_levels.clone_from(&benchmark.query_levels);
    }
    if !benchmark.cached_query_levels.is_empty() {
        profile
            .cached_query_levels
            .clone_from(&benchmark.cached_query_levels);
    }
    if let Some(connections) = benchmark.query_concurrency {
        profile.query_concurrency = connections;
    }
    profile.repeat = benchmark.repeat.max(1);
    Ok(profile)
}

/// Fails before the build, not after an hour of it, when results cannot be written.
fn check_writable(results_dir: &std::path::Path) -> anyhow::Result<()> {
    fs::create_dir_all(results_dir)
        .with_context(|| format!("--results-dir {}: cannot create it", results_dir.display()))?;
    let probe = results_dir.join(format!(".tfb-write-check-{}", std::process::id()));
    fs::write(&probe, b"").with_context(|| {
        format!(
            "--results-dir {}: cannot write into it",
            results_dir.display()
        )
    })?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

fn benchmark_command(benchmark: &Benchmark, format: Format) -> anyhow::Result<ExitCode> {
    let selection = &benchmark.selection;
    let profile = profile(benchmark)?;
    check_writable(&benchmark.results_dir)?;
    let prepared = prepare(selection)?;
    let planned: u64 = prepared
        .tests
        .iter()
        .flat_map(|test| selected_types(test, &prepared.types))
        .map(|test_type| Load::planned_seconds(&profile, test_type))
        .sum();
    let progress = if selection.quiet || format == Format::Json {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(planned);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] load {pos}/{len} s, about {eta} left: {msg}",
            )?
            .progress_chars("=> "),
        );
        bar
    };
    let started = run::unix_now();
    let name = time::OffsetDateTime::now_utc().format(time::macros::format_description!(
        "[year][month][day]-[hour][minute][second]"
    ))?;
    let directory = benchmark.results_dir.join(&name);
    fs::create_dir_all(&directory).with_context(|| format!("creating {}", directory.display()))?;
    let pipeline_script = directory.join("pipeline.lua");
    fs::write(&pipeline_script, include_str!("../pipeline.lua"))?;
    let postgres_version = prepared
        .runtime
        .block_on(postgres_version(&prepared.database_url))
        .unwrap_or_else(|error| format!("unknown ({error})"));
    let mut results = Results {
        format_version: results::FORMAT_VERSION,
        name,
        start_time: started,
        end_time: started,
        environment: Environment::capture(postgres_version, &workspace_root()),
        concurrency_levels: profile.concurrency_levels.clone(),
        pipeline_concurrency_levels: profile.pipeline_concurrency_levels.clone(),
        query_intervals: profile.query_levels.clone(),
        cached_query_intervals: profile.cached_query_levels.clone(),
        duration: profile.duration_seconds,
        profile: profile.clone(),
        verify: BTreeMap::new(),
        verification: BTreeMap::new(),
        raw_data: BTreeMap::new(),
        skipped: BTreeMap::new(),
        succeeded: BTreeMap::new(),
        failed: BTreeMap::new(),
        runner_cpu_seconds: 0.0,
    };
    if let Some(note) = results.environment.scheduler_note() {
        eprintln!("tfb: note: {note}");
    }
    // A server that did not start, died on its own or did not stop cleanly: the run goes on
    // with the other tests, and its exit status says it is incomplete.
    let mut servers_failed = false;
    let database_pid = prepared
        .database
        .as_ref()
        .and_then(Database::cluster)
        .and_then(|cluster| cluster.pid());
    for test in &prepared.tests {
        let (server, report) = match start_and_verify(&prepared, selection, test) {
            Ok(started) => started,
            Err(error) => {
                // One implementation that does not start must not cost the others their run.
                servers_failed = true;
                let reason = format!("the server did not start: {}", first_line(&error));
                eprintln!("tfb: {}: {error:#}", test.name);
                for test_type in selected_types(test, &prepared.types) {
                    progress.inc(Load::planned_seconds(&profile, test_type));
                    results
                        .verify
                        .entry(test.name.clone())
                        .or_default()
                        .insert(test_type.to_string(), Level::Fail);
                    results.skip(&test.name, test_type, reason.clone());
                }
                results.write(&directory)?;
                continue;
            }
        };
        if !selection.quiet && format == Format::Text {
            progress
                .suspend(|| eprintln!("== {}\n{}", test.name, conformance::text::render(&report)));
        }
        let load = Load {
            profile: &profile,
            server: &server,
            database_pid,
            pipeline_script: &pipeline_script,
            progress: &progress,
            interrupted: &prepared.interrupted,
        };
        let target = conformance::Target::new(&server.base_url(), None)
            .with_config(
                &test.implementation.dir.join("benchmark_config.json"),
                &test.key,
            )?
            .only(&prepared.types);
        for (test_type, path) in &target.paths {
            if prepared.interrupted.load(Ordering::SeqCst) {
                break;
            }
            let type_name = test_type.to_string();
            let verdict = report
                .get(*test_type)
                .map_or(Level::Fail, |type_report| type_report.verdict);
            results
                .verify
                .entry(test.name.clone())
                .or_default()
                .insert(type_name.clone(), verdict);
            let skip_reason = run::skip_reason(&report, *test_type).or_else(|| server.exited());
            if let Some(reason) = skip_reason {
                if !selection.quiet {
                    progress.suspend(|| {
                        eprintln!("tfb: {} {type_name} is not loaded: {reason}", test.name)
                    });
                }
                progress.inc(Load::planned_seconds(&profile, *test_type));
                results.skip(&test.name, *test_type, reason);
                continue;
            }
            let mut raw = String::new();
            let entries = load.run(&test.name, *test_type, path, &mut raw);
            let raw_dir = directory.join(&test.name).join(&type_name);
            fs::create_dir_all(&raw_dir)?;
            fs::write(raw_dir.join("raw.txt"), raw)?;
            let outcome = if entries.iter().any(|entry| entry.error.is_none()) {
                &mut results.succeeded
            } else {
                &mut results.failed
            };
            outcome
                .entry(type_name.clone())
                .or_default()
                .push(test.name.clone());
            results
                .raw_data
                .entry(type_name)
                .or_default()
                .insert(test.name.clone(), entries);
            results.end_time = run::unix_now();
            results.runner_cpu_seconds = procstat::own_cpu_seconds();
            // Written after every type, so an interrupted run keeps what it measured.
            results.write(&directory)?;
        }
        results
            .verification
            .insert(test.name.clone(), serde_json::to_value(&report)?);
        if let Some(exit) = server.exited() {
            servers_failed = true;
            eprintln!("tfb: {}: {exit}", test.name);
        } else if let Err(error) = server.stop() {
            servers_failed = true;
            eprintln!("tfb: {}: {error:#}", test.name);
        }
        results.end_time = run::unix_now();
        results.runner_cpu_seconds = procstat::own_cpu_seconds();
        results.write(&directory)?;
        if prepared.interrupted.load(Ordering::SeqCst) {
            break;
        }
    }
    progress.finish_and_clear();
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", results.summary());
        println!("\nresults: {}", directory.display());
        println!("report: {}", directory.join("report.html").display());
    }
    if prepared.interrupted.load(Ordering::SeqCst) {
        eprintln!("tfb: interrupted; the results above are partial");
        return Ok(ExitCode::from(130));
    }
    if servers_failed {
        eprintln!("tfb: a server failed during the run (see above); the results above are partial");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The test's types that this run selected.
fn selected_types(test: &SelectedTest, types: &[TestType]) -> Vec<TestType> {
    test.config
        .urls()
        .iter()
        .filter_map(|(kind, _)| TestType::parse(kind))
        .filter(|test_type| types.contains(test_type))
        .collect()
}

fn first_line(error: &anyhow::Error) -> String {
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn postgres_version(database_url: &str) -> anyhow::Result<String> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client.query_one("SHOW server_version", &[]).await?.get(0))
}
