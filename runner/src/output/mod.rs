//! Everything the runner shows or writes for people and scripts, in every format: the files of a
//! run (`results.json`, `summary.md`, `report.html`), `tfb list` as text or JSON, the verification
//! reports, the progress bar, and `tfb compare`'s files (`compare.md`, `compare.html`). The commands decide what to show; how
//! it looks is decided here.

pub mod compare;
pub mod html;
pub mod summary;

use std::{collections::BTreeMap, fmt::Write as _, fs, path::Path};

use anyhow::Context as _;

use crate::{cli::Format, plan::SelectedTest, results::Results};

/// A run's files: `results.json`, then the reports drawn from it.
pub fn write_run(results: &Results, directory: &Path) -> anyhow::Result<()> {
    results.write_json(directory)?;
    write_reports(results, directory)
}

/// `summary.md` and `report.html`, from a run's results.
pub fn write_reports(results: &Results, directory: &Path) -> anyhow::Result<()> {
    fs::write(directory.join("summary.md"), summary::render(results))?;
    fs::write(directory.join("report.html"), html::render(results)?)?;
    Ok(())
}

/// `tfb compare`'s files, `compare.md` and `compare.html` in `directory`; returns what it prints:
/// the Markdown and where both files are.
pub fn write_comparison(runs: &[Results], directory: &Path) -> anyhow::Result<String> {
    fs::create_dir_all(directory).with_context(|| format!("creating {}", directory.display()))?;
    let markdown = compare::markdown(runs);
    fs::write(directory.join("compare.md"), &markdown)?;
    fs::write(directory.join("compare.html"), compare::html(runs))?;
    Ok(format!(
        "{markdown}comparison: {}\n",
        directory.join("compare.html").display()
    ))
}

/// `tfb list`: each test with its package and its types' paths.
pub fn listing(tests: &[SelectedTest], format: Format) -> anyhow::Result<String> {
    if format == Format::Json {
        let listing: Vec<serde_json::Value> = tests
            .iter()
            .map(|test| {
                let types: serde_json::Map<String, serde_json::Value> = test
                    .config
                    .paths()
                    .into_iter()
                    .map(|(test_type, path)| (test_type.to_string(), path.into()))
                    .collect();
                serde_json::json!({"name": test.name, "package": test.package, "types": types})
            })
            .collect();
        return Ok(serde_json::to_string_pretty(&listing)? + "\n");
    }
    let mut out = String::new();
    for test in tests {
        let types: Vec<String> = test
            .config
            .paths()
            .into_iter()
            .map(|(test_type, path)| format!("{test_type} {path}"))
            .collect();
        let _ = writeln!(
            out,
            "{:<14} {:<10} {}",
            test.name,
            test.package.as_deref().unwrap_or("-"),
            types.join(", ")
        );
    }
    Ok(out)
}

/// What `tfb new` wrote, and what to do next.
pub fn scaffolded(scaffolded: &crate::scaffold::Scaffolded, name: &str, from: &str) -> String {
    let mut out = String::new();
    for path in &scaffolded.created {
        let _ = writeln!(out, "created {}", path.display());
    }
    for path in &scaffolded.changed {
        let _ = writeln!(out, "changed {}", path.display());
    }
    let _ = writeln!(
        out,
        "\nimplementations/{name} is {from}'s glue under a new name: it builds and passes as it is.\n\
         Rewrite src/ for {name}'s framework (the framework-independent code stays in tfb-common),\n\
         set the dependencies in its Cargo.toml, its benchmark_config.json notes and display_name,\n\
         and the row in implementations/README.md; then check it:\n\
         \n    cargo test -p tfb-tests --test implementations -- {name}::\n    \
         cargo run --release -p tfb-runner -- verify --test {name}"
    );
    out
}

/// One test's verification, as `tfb verify` and `tfb benchmark` print it while they run.
pub fn verification(test: &str, report: &conformance::Report) -> String {
    format!("== {test}\n{}", conformance::text::render(report))
}

/// `tfb verify --format json`: every test's report by name.
pub fn verifications_json(
    reports: &BTreeMap<String, conformance::Report>,
) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(reports)? + "\n")
}

/// What `tfb benchmark` prints at the end: the summary and where the files are,
/// or with `--format json` the whole results.
pub fn finished_run(results: &Results, directory: &Path, format: Format) -> anyhow::Result<String> {
    if format == Format::Json {
        return Ok(serde_json::to_string_pretty(results)? + "\n");
    }
    Ok(format!(
        "{}\nresults: {}\nreport: {}\n",
        summary::render(results),
        directory.display(),
        directory.join("report.html").display()
    ))
}

/// What `tfb report` prints after writing a run's reports again.
pub fn rewritten_reports(results: &Results, directory: &Path) -> String {
    format!(
        "{}\nreport: {}\n",
        summary::render(results),
        directory.join("report.html").display()
    )
}

/// The load's progress, `planned` seconds in all; hidden when nobody should see it.
pub fn progress_bar(planned: u64, hidden: bool) -> anyhow::Result<indicatif::ProgressBar> {
    if hidden {
        return Ok(indicatif::ProgressBar::hidden());
    }
    let bar = indicatif::ProgressBar::new(planned);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] load {pos}/{len} s, about {eta} left: {msg}",
        )?
        .progress_chars("=> "),
    );
    Ok(bar)
}
