//! What a correct response looks like to the end-to-end tests, held to TFB's patterns and a little beyond them (exact JSON
//! key case, a correct `Content-Length`, no compression). Written independently of `tfb-common`,
//! so a bug in the shared code cannot hide itself; TFB's own rules come from `conformance`.

use serde_json::Value;

use tfb_harness::http::Response;

/// Error messages name the URL and what was wrong.
pub type CheckResult = Result<(), String>;

#[derive(Clone, Copy)]
pub enum ContentKind {
    Json,
    Html,
    Plain,
}

/// Status 200 and the headers TFB requires, held to TFB's patterns, plus ours: a correct
/// `Content-Length` and no compression.
pub fn check_success(response: &Response, url: &str, kind: ContentKind) -> CheckResult {
    if response.status != 200 {
        return Err(format!(
            "GET {url}: status {} ({:?})",
            response.status,
            response.text()
        ));
    }
    for name in ["server", "date", "content-type"] {
        if response.header(name).is_none() {
            return Err(format!("GET {url}: required header {name} missing"));
        }
    }
    let date = response.header("date").unwrap_or_default();
    if !is_imf_fixdate(date) {
        return Err(format!("GET {url}: Date {date:?} is not an IMF-fixdate"));
    }
    let content_type = response.header("content-type").unwrap_or_default();
    if !matches_content_type(kind, content_type) {
        return Err(format!(
            "GET {url}: Content-Type {content_type:?} does not match TFB's pattern"
        ));
    }
    match response.header("content-length").map(str::parse::<usize>) {
        Some(Ok(length)) if length == response.body.len() => {}
        other => {
            return Err(format!(
                "GET {url}: Content-Length {other:?} for a {}-byte body",
                response.body.len()
            ));
        }
    }
    if let Some(encoding) = response.header("content-encoding") {
        return Err(format!(
            "GET {url}: Content-Encoding {encoding:?}; compression is not allowed"
        ));
    }
    Ok(())
}

/// TFB's Content-Type patterns, as the conformance crate implements them.
pub fn matches_content_type(kind: ContentKind, value: &str) -> bool {
    let kind = match kind {
        ContentKind::Json => conformance::headers::ContentKind::Json,
        ContentKind::Html => conformance::headers::ContentKind::Html,
        ContentKind::Plain => conformance::headers::ContentKind::Plaintext,
    };
    kind.matches(value)
}

/// `Wed, 17 Apr 2013 12:00:00 GMT`.
pub fn is_imf_fixdate(value: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = value.split(' ').collect();
    let digits = |text: &str, length: usize| {
        text.len() == length && text.bytes().all(|byte| byte.is_ascii_digit())
    };
    let time_ok = parts.get(4).is_some_and(|time| {
        let fields: Vec<&str> = time.split(':').collect();
        fields.len() == 3 && fields.iter().all(|field| digits(field, 2))
    });
    parts.len() == 6
        && parts[0]
            .strip_suffix(',')
            .is_some_and(|day| DAYS.contains(&day))
        && digits(parts[1], 2)
        && MONTHS.contains(&parts[2])
        && digits(parts[3], 4)
        && time_ok
        && parts[5] == "GMT"
}

pub fn parse_json(response: &Response, url: &str) -> Result<Value, String> {
    serde_json::from_slice(&response.body)
        .map_err(|error| format!("GET {url}: invalid JSON ({error}): {:?}", response.text()))
}

/// A World object with exactly the keys `id` and `randomNumber`, both in 1..=10000.
pub fn check_world(value: &Value) -> Result<(i32, i32), String> {
    let object = value
        .as_object()
        .ok_or_else(|| format!("expected a JSON object, got {value}"))?;
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != ["id", "randomNumber"] {
        return Err(format!(
            "expected exactly the keys id and randomNumber, got {keys:?}"
        ));
    }
    let field = |name: &str| {
        object[name]
            .as_i64()
            .filter(|number| (1..=10_000).contains(number))
            .map(|number| number as i32)
            .ok_or_else(|| {
                format!(
                    "{name} must be an integer in 1..=10000, got {}",
                    object[name]
                )
            })
    };
    Ok((field("id")?, field("randomNumber")?))
}

pub fn parse_world_list(response: &Response, url: &str) -> Result<Vec<(i32, i32)>, String> {
    let value = parse_json(response, url)?;
    let items = value
        .as_array()
        .ok_or_else(|| format!("GET {url}: expected a JSON array, got {}", response.text()))?;
    items
        .iter()
        .map(|item| check_world(item).map_err(|error| format!("GET {url}: {error}")))
        .collect()
}

/// The assertions' own tests, run as trials `assertions::<name>` (this binary has no libtest
/// harness to run `#[test]` functions).
pub(crate) mod self_tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            body: body.to_vec(),
            wire_length: body.len(),
        }
    }

    const GOOD: &[(&str, &str)] = &[
        ("Server", "x"),
        ("Date", "Wed, 17 Apr 2013 12:00:00 GMT"),
        ("Content-Type", "application/json"),
        ("Content-Length", "2"),
    ];

    fn accepts_a_correct_response() {
        assert_eq!(
            check_success(&response(200, GOOD, b"{}"), "/json", ContentKind::Json),
            Ok(())
        );
    }

    fn rejects_each_header_fault() {
        let without = |name: &str| -> Vec<(&str, &str)> {
            GOOD.iter()
                .copied()
                .filter(|(key, _)| *key != name)
                .collect()
        };
        let replaced = |name: &str, value: &'static str| -> Vec<(&str, &str)> {
            GOOD.iter()
                .map(|&(key, old)| (key, if key == name { value } else { old }))
                .collect()
        };
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (without("Server"), "required header server missing"),
            (without("Date"), "required header date missing"),
            (
                replaced("Date", "Wed, 17 Apr 2013 12:00:00 +0000"),
                "is not an IMF-fixdate",
            ),
            (
                replaced("Content-Type", "application/json; charset=utf8"),
                "does not match TFB's pattern",
            ),
            (replaced("Content-Length", "3"), "Content-Length"),
            (without("Content-Length"), "Content-Length"),
        ];
        for (headers, message) in cases {
            let error = check_success(&response(200, &headers, b"{}"), "/json", ContentKind::Json)
                .unwrap_err();
            assert!(
                error.contains(message),
                "{error:?} should mention {message:?}"
            );
        }
        let mut gzip = GOOD.to_vec();
        gzip.push(("Content-Encoding", "gzip"));
        assert!(check_success(&response(200, &gzip, b"{}"), "/json", ContentKind::Json).is_err());
        assert!(check_success(&response(500, GOOD, b"{}"), "/json", ContentKind::Json).is_err());
    }

    fn content_types_follow_tfb_patterns() {
        assert!(matches_content_type(
            ContentKind::Json,
            "application/json;charset=UTF-8"
        ));
        assert!(!matches_content_type(ContentKind::Json, "Application/JSON"));
        assert!(!matches_content_type(
            ContentKind::Json,
            "application/json;  charset=utf-8"
        ));
        assert!(matches_content_type(
            ContentKind::Html,
            "text/html; charset=utf-8"
        ));
        assert!(!matches_content_type(ContentKind::Html, "text/html"));
        assert!(matches_content_type(ContentKind::Plain, "text/plain"));
        assert!(!matches_content_type(
            ContentKind::Plain,
            "text/plain; charset=iso-8859-1"
        ));
    }

    fn worlds_need_exact_keys_and_ranges() {
        assert_eq!(
            check_world(&serde_json::json!({"id": 1, "randomNumber": 10000})),
            Ok((1, 10000))
        );
        for bad in [
            serde_json::json!({"id": 1, "randomnumber": 5}),
            serde_json::json!({"id": 0, "randomNumber": 5}),
            serde_json::json!({"id": 1, "randomNumber": 10001}),
            serde_json::json!({"id": 1, "randomNumber": 5, "extra": 1}),
            serde_json::json!([{"id": 1, "randomNumber": 5}]),
            serde_json::json!({"id": "1", "randomNumber": 5}),
        ] {
            assert!(check_world(&bad).is_err(), "{bad} should be rejected");
        }
    }

    pub(crate) const ALL: [(&str, fn()); 4] = [
        ("accepts_a_correct_response", accepts_a_correct_response),
        ("rejects_each_header_fault", rejects_each_header_fault),
        (
            "content_types_follow_tfb_patterns",
            content_types_follow_tfb_patterns,
        ),
        (
            "worlds_need_exact_keys_and_ranges",
            worlds_need_exact_keys_and_ranges,
        ),
    ];
}
