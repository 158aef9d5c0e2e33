//! `summary.md`: the run's setting in a sentence, then per test and type the verdict and the
//! headline requests/s ([`crate::ranking::headline`]) with the level it came from (or why the
//! type was not loaded).

use std::fmt::Write as _;

use crate::{
    ranking,
    results::{Entry, Results},
};

pub fn render(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark {}\n", results.title());
    let _ = writeln!(
        out,
        "Profile `{}` ({} s per level), {} × {}, PostgreSQL {}, {}, commit {}.\n",
        results.profile.name,
        results.profile.duration_seconds,
        results.environment.logical_cpus,
        results.environment.cpu_model,
        results.environment.postgres_version,
        results.environment.wrk_version,
        results
            .environment
            .git_commit
            .get(..12)
            .unwrap_or(&results.environment.git_commit),
    );
    let wall = results.end_time.saturating_sub(results.start_time).max(1) as f64;
    let _ = writeln!(
        out,
        "{wall:.0} s in all; the runner itself used {:.1} s of CPU ({:.2} % of the run).\n",
        results.runner_cpu_seconds,
        100.0 * results.runner_cpu_seconds / wall
    );
    if let Some(build) = &results.environment.build {
        let _ = writeln!(out, "Servers built with the {}.\n", build.describe());
    }
    if let Some(note) = results.environment.scheduler_note() {
        let _ = writeln!(out, "**Note:** {note}\n");
    }
    let _ = writeln!(
        out,
        "Headline: each type's best level; query and update at {} queries per request, as TFB \
         quoted them.\n",
        ranking::HEADLINE_QUERIES
    );
    let _ = writeln!(
        out,
        "| test | type | verification | headline req/s | at | p99 there | errors |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---|---:|---:|");
    for (test, verdicts) in &results.verify {
        for (test_type, verdict) in verdicts {
            let entries = results
                .raw_data
                .get(test_type)
                .and_then(|tests| tests.get(test));
            let best = entries.and_then(|entries| ranking::headline(test_type, entries));
            match best {
                Some(best) => {
                    let errors: u64 = entries.into_iter().flatten().map(Entry::errors).sum();
                    let _ = writeln!(
                        out,
                        "| {test} | {test_type} | {verdict} | {:.0} | {} | {:.2} ms | {errors} |",
                        best.requests_per_second,
                        best.level(),
                        best.latency_ms.p99
                    );
                }
                None => {
                    let level_error = entries
                        .into_iter()
                        .flatten()
                        .find_map(|entry| entry.error.as_deref());
                    let reason = results
                        .skipped
                        .get(test)
                        .and_then(|reasons| reasons.get(test_type))
                        .map(String::as_str)
                        .or(level_error)
                        .unwrap_or("not loaded");
                    let _ = writeln!(
                        out,
                        "| {test} | {test_type} | {verdict} | — | {reason} | | |"
                    );
                }
            }
        }
    }
    fixed_rate(&mut out, results);
    out
}

/// The fixed-rate runs, when there were any: latency corrected for coordinated omission.
fn fixed_rate(out: &mut String, results: &Results) {
    if results.fixed_rate.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nFixed-rate latency (oha, counted from when each request was due), in ms:\n"
    );
    let _ = writeln!(
        out,
        "| test | type | of peak | asked req/s | served req/s | p50 | p99 | p99.9 | max | errors |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for test_type in ranking::in_tfb_order(results.fixed_rate.keys().map(String::as_str)) {
        for (test, entries) in &results.fixed_rate[test_type] {
            for entry in entries {
                let share = 100.0 * entry.fraction;
                match &entry.error {
                    Some(error) => {
                        let _ = writeln!(
                            out,
                            "| {test} | {test_type} | {share:.0} % | {:.0} | {error} | | | | | |",
                            entry.target_rate
                        );
                    }
                    None => {
                        let latency = &entry.latency_ms;
                        let _ = writeln!(
                            out,
                            "| {test} | {test_type} | {share:.0} % | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                            entry.target_rate,
                            entry.achieved_rate,
                            latency.p50,
                            latency.p99,
                            latency.p999,
                            latency.max,
                            entry.errors
                        );
                    }
                }
            }
        }
    }
}
