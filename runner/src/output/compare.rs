//! `tfb compare`'s output: `compare.md` (also printed) and `compare.html`, each with the runs'
//! environments side by side (label, CPU, cores, kernel, PostgreSQL, wrk, commit, build), then
//! per type each test's headline requests/s and p99 in every run with its ratio to the first run
//! and the noise-aware verdict, the fixed-rate latency of every run side by side, then the
//! per-level changes against the first run.

use std::fmt::Write as _;

use crate::{
    compare::{FixedRateRow, HeadlineRow, Verdict, compare, fixed_rates, headlines},
    output::html::{STYLE, bar, escape, thousands},
    ranking,
    results::{FixedRateEntry, Results},
};

/// One colour per run in the page's bars; more runs reuse them.
const RUN_COLOURS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// The Markdown report: environments, headlines per type, then every level.
pub fn markdown(runs: &[Results]) -> String {
    let mut out = String::new();
    let titles: Vec<String> = runs.iter().map(Results::title).collect();
    let _ = writeln!(out, "# Comparison of {}\n", titles.join(", "));
    for note in notes(runs) {
        let _ = writeln!(out, "**Note:** {note}\n");
    }
    let _ = writeln!(out, "| | {} |", titles.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(runs.len()));
    for (name, values) in environment_rows(runs) {
        let _ = writeln!(out, "| {name} | {} |", values.join(" | "));
    }
    let _ = writeln!(
        out,
        "\nHeadline requests/s per type (each type's best level; query and update at {} \
         queries per request), p99 there, and the ratio to {}.\n",
        ranking::HEADLINE_QUERIES,
        titles[0]
    );
    for (test_type, rows) in headlines(runs) {
        let _ = writeln!(out, "## {test_type}\n");
        let mut heading = String::from("| test |");
        let mut rule = String::from("|---|");
        for (index, title) in titles.iter().enumerate() {
            let _ = write!(heading, " {title} req/s | p99 ms | level |");
            rule.push_str("---:|---:|---|");
            if index > 0 {
                heading.push_str(" ratio | verdict |");
                rule.push_str("---:|---|");
            }
        }
        let _ = writeln!(out, "{heading}\n{rule}");
        for row in &rows {
            let _ = write!(out, "| {} |", row.test);
            for (index, entry) in row.entries.iter().enumerate() {
                match entry {
                    Some(entry) => {
                        let _ = write!(
                            out,
                            " {:.0} | {:.2} | {} |",
                            entry.requests_per_second,
                            entry.latency_ms.p99,
                            entry.level()
                        );
                    }
                    None => out.push_str(" — | — | — |"),
                }
                if index > 0 {
                    let _ = write!(
                        out,
                        " {} | {} |",
                        ratio(row, index).map_or("—".to_owned(), |ratio| format!("{ratio:.2}×")),
                        row.verdicts[index].map_or("—", verdict_text)
                    );
                }
            }
            out.push('\n');
        }
        out.push('\n');
    }
    let fixed = fixed_rates(runs);
    if !fixed.is_empty() {
        let _ = writeln!(
            out,
            "## Fixed-rate latency\n\np99 in ms, counted from when each request was due, at each \
             fraction of the test's own peak in that run (served/asked req/s in brackets).\n"
        );
        let _ = writeln!(out, "| type | test | of peak | {} |", titles.join(" | "));
        let _ = writeln!(out, "|---|---|---:|{}", "---:|".repeat(runs.len()));
        for (test_type, rows) in &fixed {
            for row in rows {
                let cells: Vec<String> = row
                    .entries
                    .iter()
                    .map(|entry| fixed_rate_cell(*entry))
                    .collect();
                let _ = writeln!(
                    out,
                    "| {test_type} | {} | {:.0} % | {} |",
                    row.test,
                    100.0 * row.fraction,
                    cells.join(" | ")
                );
            }
        }
        out.push('\n');
    }
    out.push_str(&per_level(&runs[0], &runs[1..]));
    out
}

/// "12.34 (980/1000)", the error, or "—" where the run has no such fixed-rate run.
fn fixed_rate_cell(entry: Option<&FixedRateEntry>) -> String {
    match entry {
        None => "—".to_owned(),
        Some(entry) => match &entry.error {
            Some(error) => error.clone(),
            None => format!(
                "{:.2} ({:.0}/{:.0})",
                entry.latency_ms.p99, entry.achieved_rate, entry.target_rate
            ),
        },
    }
}

/// The HTML page: the environments as a table, and per type each test's bars, one per run.
pub fn html(runs: &[Results]) -> String {
    let titles: Vec<String> = runs.iter().map(Results::title).collect();
    let mut page = String::new();
    let heading = escape(&titles.join(" vs "));
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Comparison: {heading}</title>\
         <style>{STYLE}</style></head><body><h1>Comparison: {heading}</h1>"
    );
    for note in notes(runs) {
        let _ = write!(page, "<p><b>Note:</b> {}</p>", escape(&note));
    }
    page.push_str("<table class=\"environments\"><tr><th></th>");
    for (index, title) in titles.iter().enumerate() {
        let _ = write!(
            page,
            "<th class=\"name\" data-run=\"{index}\"><span style=\"color:{}\">■</span> {}</th>",
            RUN_COLOURS[index % RUN_COLOURS.len()],
            escape(title)
        );
    }
    page.push_str("</tr>");
    for (name, values) in environment_rows(runs) {
        let _ = write!(page, "<tr><th class=\"name\">{name}</th>");
        for value in values {
            let _ = write!(page, "<td class=\"name\">{}</td>", escape(&value));
        }
        page.push_str("</tr>");
    }
    let _ = write!(
        page,
        "</table><p class=\"note\">Headline requests/s per type: each type's best level; query and update \
         at {} queries per request, as TFB quoted them. Ratios are to the first run; a change is called \
         only beyond the spread (the min–max ranges with <code>--repeat</code>, else {:.0} %).</p>",
        ranking::HEADLINE_QUERIES,
        100.0 * crate::compare::SINGLE_RUN_NOISE
    );
    for (test_type, rows) in headlines(runs) {
        let best = rows
            .iter()
            .flat_map(|row| row.entries.iter().flatten())
            .map(|entry| entry.requests_per_second)
            .fold(0.0_f64, f64::max)
            .max(f64::MIN_POSITIVE);
        let _ = write!(
            page,
            "<div class=\"type\" data-type=\"{0}\"><h2>{0}</h2><table class=\"comparison\"><tr>\
             <th class=\"name\">test</th><th class=\"name\">run</th><th class=\"name\">requests/s</th><th>req/s</th>\
             <th>ratio</th><th>p99 ms</th><th>level</th><th class=\"name\">verdict</th></tr>",
            escape(test_type)
        );
        for row in &rows {
            for (index, entry) in row.entries.iter().enumerate() {
                let _ = write!(
                    page,
                    "<tr data-test=\"{test}\" data-run=\"{index}\">{name}<td class=\"name\">{title}</td>",
                    test = escape(row.test),
                    name = if index == 0 {
                        format!(
                            "<td class=\"name\" rowspan=\"{}\">{}</td>",
                            runs.len(),
                            escape(row.test)
                        )
                    } else {
                        String::new()
                    },
                    title = escape(&titles[index]),
                );
                match entry {
                    Some(entry) => {
                        let _ = write!(
                            page,
                            "{}<td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td>",
                            bar(entry.requests_per_second / best, &format!("run{index}")),
                            thousands(entry.requests_per_second),
                            ratio(row, index).map_or("—".to_owned(), |ratio| format!("{ratio:.2}×")),
                            entry.latency_ms.p99,
                            escape(&entry.level()),
                        );
                    }
                    None => page.push_str(
                        "<td class=\"bar\"></td><td>—</td><td>—</td><td>—</td><td>not measured</td>",
                    ),
                }
                let _ = write!(
                    page,
                    "<td class=\"name\">{}</td></tr>",
                    match (index, row.verdicts[index]) {
                        (0, _) => "baseline",
                        (_, Some(verdict)) => verdict_text(verdict),
                        (_, None) => "—",
                    }
                );
            }
        }
        page.push_str("</table></div>");
    }
    fixed_rate_html(&mut page, &titles, &fixed_rates(runs));
    page.push_str("<style>");
    for (index, colour) in RUN_COLOURS.iter().enumerate() {
        for run in (index..runs.len()).step_by(RUN_COLOURS.len()) {
            let _ = write!(page, "td.bar span.run{run}{{background:{colour}}}");
        }
    }
    page.push_str("</style></body></html>\n");
    page
}

/// The fixed-rate runs as one table: a row per test, type and fraction, a column per run.
fn fixed_rate_html(page: &mut String, titles: &[String], fixed: &[(&str, Vec<FixedRateRow>)]) {
    if fixed.is_empty() {
        return;
    }
    page.push_str(
        "<h2>Fixed-rate latency</h2><p class=\"note\">p99 in ms, counted from when each request was due \
         (coordinated omission corrected), at each fraction of the test's own peak in that run; \
         served/asked requests/s in brackets.</p><table class=\"fixed-rate\"><tr><th class=\"name\">type</th>\
         <th class=\"name\">test</th><th>of peak</th>",
    );
    for title in titles {
        let _ = write!(page, "<th>{}</th>", escape(title));
    }
    page.push_str("</tr>");
    for (test_type, rows) in fixed {
        for row in rows {
            let _ = write!(
                page,
                "<tr data-test=\"{test}\"><td class=\"name\">{}</td><td class=\"name\">{test}</td><td>{:.0} %</td>",
                escape(test_type),
                100.0 * row.fraction,
                test = escape(row.test),
            );
            for entry in &row.entries {
                let _ = write!(page, "<td>{}</td>", escape(&fixed_rate_cell(*entry)));
            }
            page.push_str("</tr>");
        }
    }
    page.push_str("</table>");
}

/// The per-level changes: a Markdown table per later run against the first.
fn per_level(baseline: &Results, later_runs: &[Results]) -> String {
    let mut out = String::new();
    for later in later_runs {
        let _ = writeln!(out, "# {} → {}\n", baseline.name, later.name);
        let _ = writeln!(
            out,
            "| type | test | level | {} req/s | {} req/s | change | verdict |",
            baseline.name, later.name
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---|");
        for comparison in compare(baseline, later) {
            let change =
                100.0 * (comparison.later - comparison.baseline) / comparison.baseline.max(1e-9);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {:.0} | {change:+.1} % | {} |",
                comparison.test_type,
                comparison.test,
                comparison.level,
                comparison.baseline,
                comparison.later,
                verdict_text(comparison.verdict)
            );
        }
        out.push('\n');
    }
    out
}

/// What makes the runs' figures differ besides the code: the scheduler and the build.
fn notes(runs: &[Results]) -> Vec<String> {
    let mut notes = Vec::new();
    let setting = |results: &Results| match results.environment.sched_autogroup {
        Some(true) => "on",
        Some(false) => "off",
        None => "not recorded",
    };
    if runs
        .iter()
        .any(|run| run.environment.sched_autogroup != runs[0].environment.sched_autogroup)
    {
        let settings: Vec<String> = runs
            .iter()
            .map(|run| format!("{}: {}", run.name, setting(run)))
            .collect();
        notes.push(format!(
            "autogroup scheduling differs ({}); on a 2-core machine that alone moved the database \
             types by up to 1.7×, so read changes as the scheduler's as much as the code's.",
            settings.join(", ")
        ));
    }
    let builds: Vec<(&str, String)> = runs
        .iter()
        .filter_map(|run| {
            run.environment
                .build
                .as_ref()
                .map(|build| (run.name.as_str(), build.describe()))
        })
        .collect();
    if builds.iter().any(|(_, build)| *build != builds[0].1) {
        let described: Vec<String> = builds
            .iter()
            .map(|(name, build)| format!("{name}: {build}"))
            .collect();
        notes.push(format!(
            "the servers were built differently ({}), so read changes as the build's as much as \
             the code's.",
            described.join("; ")
        ));
    }
    notes
}

/// The environment table's rows: what each run measured on.
fn environment_rows(runs: &[Results]) -> Vec<(&'static str, Vec<String>)> {
    let row = |name: &'static str, value: &dyn Fn(&Results) -> String| {
        (name, runs.iter().map(value).collect::<Vec<String>>())
    };
    vec![
        row("label", &|run| {
            run.environment.label.clone().unwrap_or("—".to_owned())
        }),
        row("run", &|run| run.name.clone()),
        row("CPU", &|run| run.environment.cpu_model.clone()),
        row("logical CPUs", &|run| {
            run.environment.logical_cpus.to_string()
        }),
        row("kernel", &|run| run.environment.kernel.clone()),
        row("PostgreSQL", &|run| {
            run.environment.postgres_version.clone()
        }),
        row("wrk", &|run| run.environment.wrk_version.clone()),
        row("commit", &|run| {
            let commit = &run.environment.git_commit;
            commit.get(..12).unwrap_or(commit).to_owned()
        }),
        row("build", &|run| {
            run.environment
                .build
                .as_ref()
                .map_or("not recorded".to_owned(), |build| build.describe())
        }),
        row("profile", &|run| {
            format!(
                "{}, {} s per level, {} repeat(s)",
                run.profile.name, run.profile.duration_seconds, run.profile.repeat
            )
        }),
    ]
}

/// A run's headline over the first run's, where both measured.
fn ratio(row: &HeadlineRow, index: usize) -> Option<f64> {
    match (row.entries[0], row.entries[index]) {
        (Some(first), Some(entry)) if first.requests_per_second > 0.0 => {
            Some(entry.requests_per_second / first.requests_per_second)
        }
        _ => None,
    }
}

fn verdict_text(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Faster => "faster",
        Verdict::Slower => "slower",
        Verdict::WithinNoise => "within noise",
    }
}
