//! `tfb`: the benchmark runner. Verifies every implementation under `implementations/` with the
//! conformance crate, loads each type that did not fail with wrk at TFB's levels, and writes
//! `results/<timestamp>/results.json`, `summary.md` and `report.html`.
//!
//! ```sh
//! cargo run --release -p tfb-runner -- benchmark              # every test, quick profile
//! cargo run --release -p tfb-runner -- benchmark --test axum --type db,fortune --profile tfb
//! cargo run --release -p tfb-runner -- verify --test actix-pool
//! cargo run --release -p tfb-runner -- list
//! cargo run --release -p tfb-runner -- new xitca-web --from axum   # a new implementation
//! ```
//!
//! The arguments ([`cli`]) become a validated [`plan`]; a [`session`] builds and starts what the
//! plan needs; [`benchmark`] carries it out, [`load`]ing each type with [`wrk`]; the figures are
//! [`results`], and everything people read is rendered by [`output`].

mod benchmark;
mod cli;
mod compare;
mod environment;
mod load;
mod oha;
mod output;
mod plan;
mod procstat;
mod profile;
mod ranking;
mod results;
mod scaffold;
mod server;
mod session;
mod wrk;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::Parser;
use cli::{BenchmarkArgs, Cli, Command, Format, Selection};
use plan::{BenchmarkPlan, Plan};
use results::Results;
use session::Session;

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
        Command::Benchmark(arguments) => run_benchmark(&arguments, format),
        Command::Report { directory } => report(&directory),
        Command::New { name, from } => new(&name, &from),
        Command::Compare { runs, output_dir } => compare(&runs, output_dir),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tfb: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn list(format: Format) -> anyhow::Result<ExitCode> {
    print!("{}", output::listing(&plan::select(&[])?, format)?);
    Ok(ExitCode::SUCCESS)
}

fn verify(selection: &Selection, format: Format) -> anyhow::Result<ExitCode> {
    let plan = Plan::new(selection)?;
    let session = Session::start(&plan)?;
    let verified = benchmark::verify(&plan, &session, |test, report| {
        if format == Format::Text {
            println!("{}", output::verification(test, report));
        }
    });
    if format == Format::Json {
        print!("{}", output::verifications_json(&verified.reports)?);
    }
    Ok(exit_code(!verified.failed))
}

fn run_benchmark(arguments: &BenchmarkArgs, format: Format) -> anyhow::Result<ExitCode> {
    let plan = BenchmarkPlan::new(arguments)?;
    let session = Session::start(&plan.plan)?;
    let quiet = plan.plan.quiet || format == Format::Json;
    let progress = output::progress_bar(plan.planned_seconds(), quiet)?;
    let run = benchmark::benchmark(&plan, &session, &progress, |test, report| {
        if !quiet {
            progress.suspend(|| eprintln!("{}", output::verification(test, report)));
        }
    })?;
    progress.finish_and_clear();
    print!(
        "{}",
        output::finished_run(&run.results, &run.directory, format)?
    );
    if session.interrupted() {
        eprintln!("tfb: interrupted; the results above are partial");
        return Ok(ExitCode::from(130));
    }
    if run.servers_failed {
        eprintln!("tfb: a server failed during the run (see above); the results above are partial");
    }
    Ok(exit_code(!run.servers_failed))
}

fn report(directory: &Path) -> anyhow::Result<ExitCode> {
    let results = Results::read(directory)?;
    output::write_reports(&results, directory)?;
    print!("{}", output::rewritten_reports(&results, directory));
    Ok(ExitCode::SUCCESS)
}

fn compare(runs: &[PathBuf], output_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let results: Vec<Results> = runs
        .iter()
        .map(|run| Results::read(run))
        .collect::<anyhow::Result<_>>()?;
    let directory = match output_dir {
        Some(directory) => directory,
        None => {
            let beside = runs[0].parent().unwrap_or(Path::new("."));
            beside.join(format!("compare-{}", benchmark::timestamp()?))
        }
    };
    print!("{}", output::write_comparison(&results, &directory)?);
    Ok(ExitCode::SUCCESS)
}

fn new(name: &str, from: &str) -> anyhow::Result<ExitCode> {
    let root = tfb_harness::workspace_root();
    let scaffolded = scaffold::scaffold(&root, name, from)?;
    print!("{}", output::scaffolded(&scaffolded, name, from));
    Ok(ExitCode::SUCCESS)
}

fn exit_code(success: bool) -> ExitCode {
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
