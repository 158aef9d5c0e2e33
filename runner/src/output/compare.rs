//! `tfb compare`'s output: a Markdown table per later run against the baseline, each change with
//! its noise-aware verdict.

use std::fmt::Write as _;

use crate::{
    compare::{Verdict, compare},
    results::Results,
};

/// A markdown table per later run.
pub fn render(baseline: &Results, later_runs: &[Results]) -> String {
    let mut out = String::new();
    for later in later_runs {
        let _ = writeln!(out, "# {} → {}\n", baseline.name, later.name);
        if baseline.environment.sched_autogroup != later.environment.sched_autogroup {
            let setting = |results: &Results| match results.environment.sched_autogroup {
                Some(true) => "on",
                Some(false) => "off",
                None => "not recorded",
            };
            let _ = writeln!(
                out,
                "**Note:** autogroup scheduling differs ({}: {}, {}: {}); on a 2-core machine \
                 that alone moved the database types by up to 1.7×, so read changes as the \
                 scheduler's as much as the code's.\n",
                baseline.name,
                setting(baseline),
                later.name,
                setting(later)
            );
        }
        if let (Some(before), Some(after)) = (&baseline.environment.build, &later.environment.build)
            && before != after
        {
            let _ = writeln!(
                out,
                "**Note:** the servers were built differently ({}: {}; {}: {}), so read changes \
                 as the build's as much as the code's.\n",
                baseline.name,
                before.describe(),
                later.name,
                after.describe()
            );
        }
        let _ = writeln!(
            out,
            "| type | test | level | {} req/s | {} req/s | change | verdict |",
            baseline.name, later.name
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---|");
        for comparison in compare(baseline, later) {
            let change =
                100.0 * (comparison.later - comparison.baseline) / comparison.baseline.max(1e-9);
            let verdict = match comparison.verdict {
                Verdict::Faster => "faster",
                Verdict::Slower => "slower",
                Verdict::WithinNoise => "within noise",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {:.0} | {change:+.1} % | {verdict} |",
                comparison.test_type,
                comparison.test,
                comparison.level,
                comparison.baseline,
                comparison.later
            );
        }
        out.push('\n');
    }
    out
}
