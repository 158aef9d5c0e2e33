//! The `queries` parameter rule of the multiple-queries and updates tests (and `count` of the
//! cached-queries test): missing, empty, non-integer or below 1 means 1; above 500 means 500.

/// The fewest rows a multiple-queries or updates request asks for.
pub const MIN_QUERIES: usize = 1;
/// The most rows a multiple-queries or updates request asks for.
pub const MAX_QUERIES: usize = 500;

/// Reads `queries` from a raw query string (the part after `?`, undecoded) and clamps it.
///
/// The first `queries` pair wins when the parameter is repeated. Digits only: a value that is not
/// an optionally signed decimal integer counts as "not an integer" and gives 1, while an integer
/// too large for any machine type still means "more than 500".
pub fn queries_from_query_string(query: Option<&str>) -> usize {
    clamped_parameter(query, "queries=")
}

/// Reads `count` the same way, for the cached-queries test (`/cached-queries?count=N`).
pub fn count_from_query_string(query: Option<&str>) -> usize {
    clamped_parameter(query, "count=")
}

fn clamped_parameter(query: Option<&str>, name_and_equals: &str) -> usize {
    let value = query.and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name_and_equals))
    });
    value.map_or(MIN_QUERIES, clamp_queries)
}

/// Clamps one raw `queries` value to `MIN_QUERIES..=MAX_QUERIES`.
pub fn clamp_queries(value: &str) -> usize {
    let (negative, digits) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return MIN_QUERIES;
    }
    if negative {
        return MIN_QUERIES;
    }
    // Leading zeros are allowed ("007" is 7), so strip them before judging the magnitude.
    let significant = digits.trim_start_matches('0');
    if significant.len() > 3 {
        return MAX_QUERIES;
    }
    let number: usize = significant.parse().unwrap_or(0);
    number.clamp(MIN_QUERIES, MAX_QUERIES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_tfb_rule() {
        let cases = [
            (None, 1),
            (Some(""), 1),
            (Some("queries="), 1),
            (Some("queries=0"), 1),
            (Some("queries=-1"), 1),
            (Some("queries=-99999999999999999999"), 1),
            (Some("queries=foo"), 1),
            (Some("queries=1.5"), 1),
            (Some("queries=2"), 2),
            (Some("queries=+7"), 7),
            (Some("queries=007"), 7),
            (Some("queries=20"), 20),
            (Some("queries=500"), 500),
            (Some("queries=501"), 500),
            (Some("queries=99999999999999999999"), 500),
            (Some("queries=3&queries=9"), 3),
            (Some("other=9&queries=4"), 4),
            (Some("xqueries=9"), 1),
        ];
        for (query, expected) in cases {
            assert_eq!(
                queries_from_query_string(query),
                expected,
                "query {query:?}"
            );
        }
    }
}
