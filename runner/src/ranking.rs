//! Which test wins each type, and by how much: each test's headline figure per type and the tests
//! ranked by it, the way TFB's results site showed them. The headline is a test's best
//! requests/s over its levels, except for query and update, where TFB's headline was 20 queries
//! per request whatever level was fastest. Every report and comparison reads headlines from here.

use std::collections::BTreeMap;

use crate::results::{Entry, Results};

/// TFB's headline rows per request for the query and update types.
pub const HEADLINE_QUERIES: u32 = 20;

/// Types in the order TFB's site showed them; types it did not know come after, by name.
const TYPE_ORDER: [&str; 7] = [
    "json",
    "db",
    "query",
    "cached-query",
    "fortune",
    "update",
    "plaintext",
];

/// One test's headline on one type, with its place in the ranking.
#[derive(Debug, Clone, Copy)]
pub struct Ranked<'a> {
    pub test: &'a str,
    pub entry: &'a Entry,
    /// Requests/s as a fraction of the type's best (1.0 for the winner).
    pub share_of_best: f64,
}

/// The types of a run in TFB's order.
pub fn types(results: &Results) -> Vec<&str> {
    in_tfb_order(results.raw_data.keys().map(String::as_str))
}

/// Type names in TFB's order, each once.
pub fn in_tfb_order<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut types: Vec<&str> = names.into_iter().collect();
    types.sort_by_key(|test_type| {
        let known = TYPE_ORDER.iter().position(|known| known == test_type);
        (known.unwrap_or(TYPE_ORDER.len()), *test_type)
    });
    types.dedup();
    types
}

/// Whether a type's headline is taken at a fixed number of queries rather than the best level.
fn headline_at_queries(test_type: &str) -> bool {
    matches!(test_type, "query" | "update")
}

/// A test's headline entry on a type: the measured level TFB would have quoted, or `None` when
/// no level measured anything. For query and update that is 20 queries per request, or, when a
/// run did not measure 20, the measured level nearest to it (the higher one on a tie).
pub fn headline<'a>(test_type: &str, entries: &'a [Entry]) -> Option<&'a Entry> {
    let measured = entries.iter().filter(|entry| entry.error.is_none());
    if headline_at_queries(test_type) {
        measured.min_by_key(|entry| {
            let queries = entry.queries.unwrap_or(0);
            (queries.abs_diff(HEADLINE_QUERIES), u32::MAX - queries)
        })
    } else {
        measured.max_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second))
    }
}

/// What a type's headline means, for the reader: "at 20 queries per request, TFB's headline" or
/// "each test at its best level".
pub fn headline_rule(test_type: &str) -> String {
    if headline_at_queries(test_type) {
        format!(
            "at {HEADLINE_QUERIES} queries per request, TFB's headline (the nearest measured \
             level where a run has no q={HEADLINE_QUERIES})"
        )
    } else {
        "each test at its best level".to_owned()
    }
}

/// A type's tests ranked by headline requests/s, fastest first (ties by name); tests with no
/// measured level are left out.
pub fn rank<'a>(test_type: &str, tests: &'a BTreeMap<String, Vec<Entry>>) -> Vec<Ranked<'a>> {
    let mut ranked: Vec<Ranked> = tests
        .iter()
        .filter_map(|(test, entries)| {
            headline(test_type, entries).map(|entry| Ranked {
                test,
                entry,
                share_of_best: 0.0,
            })
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.entry
            .requests_per_second
            .total_cmp(&a.entry.requests_per_second)
            .then_with(|| a.test.cmp(b.test))
    });
    let best = ranked
        .first()
        .map_or(0.0, |winner| winner.entry.requests_per_second);
    for place in &mut ranked {
        place.share_of_best = if best > 0.0 {
            place.entry.requests_per_second / best
        } else {
            0.0
        };
    }
    ranked
}

/// Requests served per second of the server's CPU at this level: how much work one core buys.
pub fn requests_per_cpu_second(entry: &Entry) -> Option<f64> {
    entry
        .server_cpu_seconds
        .filter(|&seconds| seconds > 0.0)
        .map(|seconds| entry.total_requests as f64 / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(queries: Option<u32>, concurrency: Option<u32>, rps: f64) -> Entry {
        Entry {
            queries,
            concurrency,
            requests_per_second: rps,
            ..Entry::default()
        }
    }

    #[test]
    fn query_types_headline_at_twenty_queries_not_the_fastest_level() {
        let entries = [level(Some(1), None, 9000.0), level(Some(20), None, 800.0)];
        assert_eq!(headline("query", &entries).unwrap().queries, Some(20));
        assert_eq!(headline("update", &entries).unwrap().queries, Some(20));
        // Without q=20, the nearest measured level: 15 is nearer than 1, and on a tie the higher.
        let entries = [
            level(Some(1), None, 9000.0),
            level(Some(15), None, 900.0),
            level(Some(25), None, 700.0),
        ];
        assert_eq!(headline("query", &entries).unwrap().queries, Some(25));
        // cached-query is ranked at its best level, as the other types are.
        assert_eq!(headline("cached-query", &entries).unwrap().queries, Some(1));
    }

    #[test]
    fn failed_levels_are_never_a_headline() {
        let mut failed = level(None, Some(512), 99_999.0);
        failed.error = Some("wrk failed".to_owned());
        let entries = [level(None, Some(16), 10.0), failed];
        assert_eq!(headline("db", &entries).unwrap().concurrency, Some(16));
        let mut only_failed = level(Some(20), None, 5.0);
        only_failed.error = Some("server died".to_owned());
        assert!(headline("query", &[only_failed]).is_none());
    }

    #[test]
    fn ranking_is_fastest_first_with_shares_of_the_best() {
        let tests: BTreeMap<String, Vec<Entry>> = [
            ("slow", vec![level(None, Some(16), 50.0)]),
            (
                "fast",
                vec![level(None, Some(16), 100.0), level(None, Some(64), 200.0)],
            ),
            ("empty", vec![]),
        ]
        .into_iter()
        .map(|(name, entries)| (name.to_owned(), entries))
        .collect();
        let ranked = rank("json", &tests);
        let order: Vec<(&str, f64)> = ranked
            .iter()
            .map(|place| (place.test, place.share_of_best))
            .collect();
        assert_eq!(order, [("fast", 1.0), ("slow", 0.25)]);
    }
}
