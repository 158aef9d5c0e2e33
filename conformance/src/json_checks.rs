//! TFB's JSON body checks: the hello-world object, the World object and the World list, with
//! Python's semantics where they decide a verdict (`int()` on values, lower-cased keys, a
//! `ValueError` escaping as "Caused Exception in TFB").

use serde_json::{Map, Value};

use crate::report::{Finding, Level};

/// A check TFB could not finish because Python raised; the whole test type becomes one fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TfbException(pub String);

/// TFB's fail for any exception raised while verifying.
pub fn exception_finding(exception: &TfbException, url: &str) -> Finding {
    Finding::fail(
        format!(
            "Caused Exception in TFB\n  This is most likely a result of your framework's response not matching \
             what TFB expected ({})",
            exception.0
        ),
        url,
    )
}

/// `json.loads` after TFB's empty-body checks, or the fail they give.
pub fn parse_body(body: &[u8], url: &str) -> Result<Value, Finding> {
    if body.is_empty() {
        return Err(Finding::fail("Empty response", url));
    }
    serde_json::from_slice(body)
        .map_err(|error| Finding::fail(format!("Invalid JSON: {error}"), url))
}

/// Python's `repr`-like rendering of a value in messages.
fn shown(value: &Value) -> String {
    value.to_string()
}

/// The JSON test's object (`verify_helloworld_object`).
pub fn verify_hello_world(value: &Value, url: &str) -> Vec<Finding> {
    let Some(object) = value.as_object() else {
        return vec![Finding::fail("Not a valid JSON object", url)];
    };
    let mut lowered: Map<String, Value> = Map::new();
    for (key, value) in object {
        let Some(text) = value.as_str() else {
            return vec![Finding::fail("Not a valid JSON object", url)];
        };
        lowered.insert(key.to_lowercase(), Value::String(text.to_lowercase()));
    }
    let mut findings = Vec::new();
    let Some(message) = lowered.get("message") else {
        return vec![Finding::fail("Missing required key 'message'", url)];
    };
    if lowered.len() > 1 {
        let extra: Vec<&str> = lowered
            .keys()
            .map(String::as_str)
            .filter(|key| *key != "message")
            .collect();
        findings.push(Finding::warn(
            format!(
                "Too many JSON key/value pairs, consider removing: {}",
                extra.join(", ")
            ),
            url,
        ));
    }
    let message = message.as_str().unwrap_or_default();
    if message != "hello, world!" {
        findings.push(Finding::fail(
            format!("Expected message of 'hello, world!', got '{message}'"),
            url,
        ));
    }
    findings
}

/// Python's `int(value)` on a decoded JSON value.
enum PythonInt {
    Value(i128),
    /// `TypeError`: TFB catches it and reports a fail.
    TypeError,
    /// `ValueError`: TFB does not catch it.
    ValueError,
}

fn python_int(value: &Value) -> PythonInt {
    match value {
        Value::Bool(flag) => PythonInt::Value(i128::from(*flag)),
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                PythonInt::Value(i128::from(integer))
            } else if let Some(integer) = number.as_u64() {
                PythonInt::Value(i128::from(integer))
            } else {
                PythonInt::Value(number.as_f64().unwrap_or(0.0).trunc() as i128)
            }
        }
        Value::String(text) => {
            let trimmed = text.trim();
            let digits = trimmed
                .strip_prefix(['+', '-'])
                .unwrap_or(trimmed)
                .replace('_', "");
            if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
                trimmed
                    .replace('_', "")
                    .parse()
                    .map_or(PythonInt::ValueError, PythonInt::Value)
            } else {
                PythonInt::ValueError
            }
        }
        Value::Null | Value::Array(_) | Value::Object(_) => PythonInt::TypeError,
    }
}

/// Caps a finding's level at `severity` (the `max_infraction` of TFB's list checks).
fn capped(mut finding: Finding, severity: Level) -> Finding {
    finding.level = finding.level.min(severity);
    finding
}

/// The World object (`verify_randomnumber_object`), fails capped at `severity`.
pub fn verify_world(
    value: &Value,
    url: &str,
    severity: Level,
) -> Result<Vec<Finding>, TfbException> {
    let Some(object) = value.as_object() else {
        return Ok(vec![capped(
            Finding::fail(
                format!("Expected a JSON object, got '{}'", shown(value)),
                url,
            ),
            severity,
        )]);
    };
    let lowered: Map<String, Value> = object
        .iter()
        .map(|(key, value)| (key.to_lowercase(), value.clone()))
        .collect();
    let mut findings = Vec::new();
    for key in ["id", "randomnumber"] {
        if !lowered.contains_key(key) {
            findings.push(capped(
                Finding::fail(
                    format!("Response object was missing required key: {key}"),
                    url,
                ),
                severity,
            ));
        }
    }
    let extra: Vec<&str> = lowered
        .keys()
        .map(String::as_str)
        .filter(|key| *key != "id" && *key != "randomnumber")
        .collect();
    if !extra.is_empty() {
        findings.push(Finding::warn(
            format!(
                "An extra key(s) is being included with the db object: {}",
                extra.join(", ")
            ),
            url,
        ));
    }
    if !findings.is_empty() {
        return Ok(findings);
    }
    match python_int(&lowered["id"]) {
        PythonInt::Value(id) if !(1..=10_000).contains(&id) => findings.push(Finding::warn(
            format!("Response key id should be between 1 and 10,000: {id}"),
            url,
        )),
        PythonInt::Value(_) => {}
        PythonInt::TypeError => {
            return Ok(vec![capped(
                Finding::fail(
                    format!(
                        "Response key 'id' does not map to an integer - {}",
                        shown(&lowered["id"])
                    ),
                    url,
                ),
                severity,
            )]);
        }
        PythonInt::ValueError => {
            return Err(TfbException(format!(
                "id {} is not an integer",
                shown(&lowered["id"])
            )));
        }
    }
    match python_int(&lowered["randomnumber"]) {
        PythonInt::Value(number) if number > 10_000 => findings.push(Finding::warn(
            "Response key `randomNumber` is over 10,000. This may negatively affect performance by sending extra bytes",
            url,
        )),
        PythonInt::Value(_) => {}
        PythonInt::TypeError => findings.push(capped(
            Finding::fail(
                format!(
                    "Response key 'randomNumber' does not map to an integer - {}",
                    shown(&lowered["randomnumber"])
                ),
                url,
            ),
            severity,
        )),
        PythonInt::ValueError => {
            return Err(TfbException(format!(
                "randomNumber {} is not an integer",
                shown(&lowered["randomnumber"])
            )));
        }
    }
    Ok(findings)
}

/// TFB stops looking after this many bad objects in a list.
const BAD_OBJECTS_SHOWN: usize = 5;

/// The World list (`verify_randomnumber_list`), fails capped at `severity`.
pub fn verify_world_list(
    body: &[u8],
    url: &str,
    expected_len: usize,
    severity: Level,
) -> Result<Vec<Finding>, TfbException> {
    let value = match parse_body(body, url) {
        Ok(value) => value,
        Err(finding) => return Ok(vec![finding]),
    };
    let Some(items) = value.as_array() else {
        let mut findings = vec![capped(
            Finding::fail("Top-level JSON is an object, not an array", url),
            severity,
        )];
        findings.extend(verify_world(&value, url, severity)?);
        return Ok(findings);
    };
    let mut findings = Vec::new();
    if items.iter().any(|item| !item.is_object()) {
        findings.push(capped(
            Finding::fail("Not all items in the JSON array were JSON objects", url),
            severity,
        ));
    }
    if items.len() != expected_len {
        findings.push(capped(
            Finding::fail(
                format!(
                    "JSON array length of {} != expected length of {expected_len}",
                    items.len()
                ),
                url,
            ),
            severity,
        ));
    }
    let mut bad_objects = 0;
    for item in items {
        if bad_objects >= BAD_OBJECTS_SHOWN {
            break;
        }
        let item_findings = verify_world(item, url, severity)?;
        if !item_findings.is_empty() {
            findings.extend(item_findings);
            bad_objects += 1;
        }
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn levels(findings: &[Finding]) -> Vec<Level> {
        findings.iter().map(|finding| finding.level).collect()
    }

    #[test]
    fn hello_world_rules() {
        assert!(verify_hello_world(&json!({"message": "Hello, World!"}), "/json").is_empty());
        assert!(verify_hello_world(&json!({"Message": "HELLO, WORLD!"}), "/json").is_empty());
        assert_eq!(
            levels(&verify_hello_world(
                &json!({"message": "Hello, World!", "x": "y"}),
                "/json"
            )),
            [Level::Warn]
        );
        let not_object = verify_hello_world(&json!({"message": "Hello, World!", "n": 1}), "/json");
        assert_eq!(not_object[0].message, "Not a valid JSON object");
        assert_eq!(
            verify_hello_world(&json!([]), "/json")[0].message,
            "Not a valid JSON object"
        );
        assert_eq!(
            verify_hello_world(&json!({"msg": "x"}), "/json")[0].message,
            "Missing required key 'message'"
        );
        assert_eq!(
            levels(&verify_hello_world(
                &json!({"message": "Hello World"}),
                "/json"
            )),
            [Level::Fail]
        );
    }

    #[test]
    fn world_rules() {
        let ok = |value: Value| verify_world(&value, "/db", Level::Fail).unwrap();
        assert!(ok(json!({"id": 5, "randomNumber": 10000})).is_empty());
        assert!(ok(json!({"id": "5", "RandomNumber": 5.7})).is_empty());
        assert_eq!(
            levels(&ok(json!({"id": 0, "randomNumber": 1}))),
            [Level::Warn]
        );
        assert_eq!(
            levels(&ok(json!({"id": 1, "randomNumber": 10001}))),
            [Level::Warn]
        );
        assert_eq!(
            levels(&ok(json!({"id": 1, "randomNumber": 1, "extra": 1}))),
            [Level::Warn]
        );
        assert_eq!(levels(&ok(json!({"id": 1}))), [Level::Fail]);
        assert_eq!(
            levels(&ok(json!({"id": null, "randomNumber": 1}))),
            [Level::Fail]
        );
        assert!(
            verify_world(&json!({"id": "abc", "randomNumber": 1}), "/db", Level::Fail).is_err()
        );
        assert!(
            verify_world(&json!({"id": "1.5", "randomNumber": 1}), "/db", Level::Fail).is_err()
        );
        let warned =
            verify_world(&json!({"id": null, "randomNumber": 1}), "/q", Level::Warn).unwrap();
        assert_eq!(levels(&warned), [Level::Warn]);
    }

    #[test]
    fn list_rules() {
        let list = |body: &str, expected: usize| {
            verify_world_list(body.as_bytes(), "/q", expected, Level::Fail).unwrap()
        };
        assert!(
            list(
                r#"[{"id":1,"randomNumber":2},{"id":3,"randomNumber":4}]"#,
                2
            )
            .is_empty()
        );
        assert_eq!(
            list(r#"{"id":1,"randomNumber":2}"#, 1)[0].message,
            "Top-level JSON is an object, not an array"
        );
        assert_eq!(
            list(r#"[{"id":1,"randomNumber":2}]"#, 2)[0].message,
            "JSON array length of 1 != expected length of 2"
        );
        assert_eq!(
            list("[1]", 1)[0].message,
            "Not all items in the JSON array were JSON objects"
        );
        assert_eq!(list("", 1)[0].message, "Empty response");
        assert!(list("nope", 1)[0].message.starts_with("Invalid JSON"));
        let many_bad: String = format!("[{}]", [r#"{"id":1}"#; 9].join(","));
        assert_eq!(list(&many_bad, 9).len(), BAD_OBJECTS_SHOWN);
    }
}
