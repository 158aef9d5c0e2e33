//! `tfb compare`: per test type and test, each run's headline side by side (runs on other
//! machines or clouds, or before and after a change), and per level how requests/s changed from
//! the first run to each later one. A difference is called a change only when it exceeds the
//! spread: with `--repeat`, when the runs' min–max ranges do not overlap; for single
//! measurements, when it exceeds [`SINGLE_RUN_NOISE`], since one measurement on a shared machine
//! says nothing of its spread. [`crate::output::compare`] renders it.

use crate::{
    ranking,
    results::{Entry, FixedRateEntry, Results},
};

/// Below this relative difference, two single measurements are called the same.
pub const SINGLE_RUN_NOISE: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Faster,
    Slower,
    WithinNoise,
}

/// One figure compared between a baseline and a later run.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub test_type: String,
    pub test: String,
    pub level: String,
    pub baseline: f64,
    pub later: f64,
    pub verdict: Verdict,
}

/// The lowest and highest requests/s measured for a level (the same value without repeats).
fn range(entry: &Entry) -> (f64, f64) {
    if entry.requests_per_second_runs.is_empty() {
        return (entry.requests_per_second, entry.requests_per_second);
    }
    let low = entry
        .requests_per_second_runs
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let high = entry
        .requests_per_second_runs
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    (low, high)
}

pub fn verdict(baseline: &Entry, later: &Entry) -> Verdict {
    let repeated =
        !baseline.requests_per_second_runs.is_empty() && !later.requests_per_second_runs.is_empty();
    if repeated {
        let ((base_low, base_high), (later_low, later_high)) = (range(baseline), range(later));
        if later_low > base_high {
            Verdict::Faster
        } else if later_high < base_low {
            Verdict::Slower
        } else {
            Verdict::WithinNoise
        }
    } else {
        let change = (later.requests_per_second - baseline.requests_per_second)
            / baseline.requests_per_second.max(1e-9);
        if change > SINGLE_RUN_NOISE {
            Verdict::Faster
        } else if change < -SINGLE_RUN_NOISE {
            Verdict::Slower
        } else {
            Verdict::WithinNoise
        }
    }
}

/// One test's headline on one type in every run compared.
#[derive(Debug, Clone)]
pub struct HeadlineRow<'a> {
    pub test: &'a str,
    /// Per run, in the order given: its headline entry, `None` where it measured nothing.
    pub entries: Vec<Option<&'a Entry>>,
    /// Per run (the first's is `None`): the verdict against the first run, where both measured.
    pub verdicts: Vec<Option<Verdict>>,
}

/// Per type in TFB's order, each test's headline in every run: tests ranked as in the first run,
/// then those only later runs measured, by name.
pub fn headlines(runs: &[Results]) -> Vec<(&str, Vec<HeadlineRow<'_>>)> {
    let types = ranking::in_tfb_order(
        runs.iter()
            .flat_map(|run| run.raw_data.keys().map(String::as_str)),
    );
    types
        .into_iter()
        .map(|test_type| {
            let mut tests: Vec<&str> = runs
                .first()
                .and_then(|first| first.raw_data.get(test_type))
                .map(|tests| {
                    ranking::rank(test_type, tests)
                        .iter()
                        .map(|place| place.test)
                        .collect()
                })
                .unwrap_or_default();
            let mut later_only: Vec<&str> = runs
                .iter()
                .filter_map(|run| run.raw_data.get(test_type))
                .flat_map(|tests| tests.keys().map(String::as_str))
                .filter(|test| !tests.contains(test))
                .collect();
            later_only.sort_unstable();
            later_only.dedup();
            tests.extend(later_only);
            let rows = tests
                .into_iter()
                .map(|test| {
                    let entries: Vec<Option<&Entry>> = runs
                        .iter()
                        .map(|run| {
                            run.raw_data
                                .get(test_type)
                                .and_then(|tests| tests.get(test))
                                .and_then(|entries| ranking::headline(test_type, entries))
                        })
                        .collect();
                    let verdicts = entries
                        .iter()
                        .enumerate()
                        .map(|(index, entry)| match (index, entries[0], entry) {
                            (1.., Some(first), Some(later)) => Some(verdict(first, later)),
                            _ => None,
                        })
                        .collect();
                    HeadlineRow {
                        test,
                        entries,
                        verdicts,
                    }
                })
                .collect();
            (test_type, rows)
        })
        .collect()
}

/// One test's fixed-rate run at one fraction of its peak, in every run compared.
#[derive(Debug, Clone)]
pub struct FixedRateRow<'a> {
    pub test: &'a str,
    pub fraction: f64,
    /// Per run, in the order given; `None` where it has no such run.
    pub entries: Vec<Option<&'a FixedRateEntry>>,
}

/// Per type in TFB's order, every (test, fraction) some run measured at a fixed rate, by test
/// name and fraction, with each run's entry.
pub fn fixed_rates(runs: &[Results]) -> Vec<(&str, Vec<FixedRateRow<'_>>)> {
    let types = ranking::in_tfb_order(
        runs.iter()
            .flat_map(|run| run.fixed_rate.keys().map(String::as_str)),
    );
    types
        .into_iter()
        .map(|test_type| {
            let mut keys: Vec<(&str, f64)> = runs
                .iter()
                .filter_map(|run| run.fixed_rate.get(test_type))
                .flat_map(|tests| {
                    tests.iter().flat_map(|(test, entries)| {
                        entries.iter().map(|entry| (test.as_str(), entry.fraction))
                    })
                })
                .collect();
            keys.sort_by(|a, b| a.0.cmp(b.0).then(a.1.total_cmp(&b.1)));
            keys.dedup();
            let rows = keys
                .into_iter()
                .map(|(test, fraction)| FixedRateRow {
                    test,
                    fraction,
                    entries: runs
                        .iter()
                        .map(|run| {
                            run.fixed_rate
                                .get(test_type)?
                                .get(test)?
                                .iter()
                                .find(|entry| entry.fraction == fraction)
                        })
                        .collect(),
                })
                .collect();
            (test_type, rows)
        })
        .collect()
}

/// Every figure present in both runs.
pub fn compare(baseline: &Results, later: &Results) -> Vec<Comparison> {
    let mut comparisons = Vec::new();
    for (test_type, tests) in &baseline.raw_data {
        for (test, entries) in tests {
            let Some(later_entries) = later
                .raw_data
                .get(test_type)
                .and_then(|tests| tests.get(test))
            else {
                continue;
            };
            for entry in entries.iter().filter(|entry| entry.error.is_none()) {
                let Some(other) = later_entries
                    .iter()
                    .find(|other| other.error.is_none() && other.level() == entry.level())
                else {
                    continue;
                };
                comparisons.push(Comparison {
                    test_type: test_type.clone(),
                    test: test.clone(),
                    level: entry.level(),
                    baseline: entry.requests_per_second,
                    later: other.requests_per_second,
                    verdict: verdict(entry, other),
                });
            }
        }
    }
    comparisons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(median: f64, runs: &[f64]) -> Entry {
        Entry {
            concurrency: Some(256),
            requests_per_second: median,
            requests_per_second_runs: runs.to_vec(),
            ..Entry::default()
        }
    }

    #[test]
    fn repeated_runs_call_a_change_only_beyond_the_spread() {
        let baseline = entry(100.0, &[95.0, 100.0, 104.0]);
        assert_eq!(
            verdict(&baseline, &entry(120.0, &[115.0, 120.0, 126.0])),
            Verdict::Faster
        );
        assert_eq!(
            verdict(&baseline, &entry(80.0, &[78.0, 80.0, 90.0])),
            Verdict::Slower
        );
        // 10 % higher median, but the ranges overlap: noise.
        assert_eq!(
            verdict(&baseline, &entry(110.0, &[103.0, 110.0, 118.0])),
            Verdict::WithinNoise
        );
    }

    #[test]
    fn single_runs_use_the_noise_threshold() {
        let baseline = entry(100.0, &[]);
        assert_eq!(verdict(&baseline, &entry(104.0, &[])), Verdict::WithinNoise);
        assert_eq!(verdict(&baseline, &entry(106.0, &[])), Verdict::Faster);
        assert_eq!(verdict(&baseline, &entry(90.0, &[])), Verdict::Slower);
    }
}
