//! TFB's JSON body checks: the hello-world object, the World object and the World list, with
//! Python's semantics where they decide a verdict (`int()` on values, lower-cased keys, a
//! `ValueError` escaping as "Caused Exception in TFB").

use serde_json::{Map, Value};

use crate::report::{Finding, Level};

/// A check TFB could not finish because Python raised; the whole test type becomes one fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TfbException(pub String);

/// TFB's fail for any exception raised while verifying, in its words and indentation. The
/// exception's text is Python's where we can say it (`invalid literal for int() ...`); the
/// traceback TFB appended cannot be, as no Python ran, and a line says so instead.
pub fn exception_finding(exception: &TfbException, url: &str) -> Finding {
    Finding::fail(
        format!(
            "Caused Exception in TFB\n            This almost certainly means your return value is incorrect,\n            \
             but also that you have found a bug. Please submit an issue\n            \
             including this message: {}\n(TFB appended Python's traceback here)",
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

/// Python's `str()` of a decoded JSON value, as TFB's messages show it.
fn python_str(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => python_repr(other),
    }
}

/// Python's `repr()` of a decoded JSON value: `None`, `True`, `'text'`, `[1, 2]`, `{'a': 1}`.
fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => python_string_repr(text),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(object) => {
            let pairs: Vec<String> = object
                .iter()
                .map(|(key, value)| format!("{}: {}", python_string_repr(key), python_repr(value)))
                .collect();
            format!("{{{}}}", pairs.join(", "))
        }
    }
}

/// Python quotes with `'` unless the text holds a `'` and no `"`.
fn python_string_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            character if character == quote => {
                out.push('\\');
                out.push(character);
            }
            character => out.push(character),
        }
    }
    out.push(quote);
    out
}

/// Python's `TypeError` text for `int()` of a value that is no number and no string.
fn int_type_error(value: &Value) -> String {
    let type_name = match value {
        Value::Null => "NoneType",
        Value::Array(_) => "list",
        _ => "dict",
    };
    format!(
        "int() argument must be a string, a bytes-like object or a real number, not '{type_name}'"
    )
}

/// TFB's hello-world check meant to warn past this many keys, but called `list.append` with two
/// arguments there, so Python raised instead.
const HELLO_KEYS_THAT_RAISE: usize = 28;

/// The JSON test's object (`verify_helloworld_object`).
pub fn verify_hello_world(value: &Value, url: &str) -> Result<Vec<Finding>, TfbException> {
    let Some(object) = value.as_object() else {
        return Ok(vec![Finding::fail("Not a valid JSON object", url)]);
    };
    let mut lowered: Map<String, Value> = Map::new();
    for (key, value) in object {
        let Some(text) = value.as_str() else {
            return Ok(vec![Finding::fail("Not a valid JSON object", url)]);
        };
        lowered.insert(key.to_lowercase(), Value::String(text.to_lowercase()));
    }
    let mut findings = Vec::new();
    let Some(message) = lowered.get("message") else {
        return Ok(vec![Finding::fail("Missing required key 'message'", url)]);
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
    if lowered.len() >= HELLO_KEYS_THAT_RAISE {
        return Err(TfbException(
            "list.append() takes exactly one argument (2 given)".to_owned(),
        ));
    }
    let message = message.as_str().unwrap_or_default();
    if message != "hello, world!" {
        // TFB returns this fail alone, dropping the warn above.
        return Ok(vec![Finding::fail(
            format!("Expected message of 'hello, world!', got '{message}'"),
            url,
        )]);
    }
    Ok(findings)
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

/// Python's `ValueError` text for `int()` of a string that is no integer.
fn int_value_error(value: &Value) -> String {
    format!(
        "invalid literal for int() with base 10: {}",
        python_repr(value)
    )
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
        let text = python_str(value);
        let got = if text.chars().count() > 20 {
            format!("{}...", text.chars().take(17).collect::<String>())
        } else {
            text
        };
        return Ok(vec![capped(
            Finding::fail(format!("Expected a JSON object, got '{got}' instead"), url),
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
    // TFB compares the key count with two, so an extra key beside a missing one is no warn.
    if lowered.len() > 2 {
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
        PythonInt::TypeError => findings.push(capped(
            Finding::fail(
                format!(
                    "Response key 'id' does not map to an integer - {}",
                    int_type_error(&lowered["id"])
                ),
                url,
            ),
            severity,
        )),
        PythonInt::ValueError => {
            return Err(TfbException(int_value_error(&lowered["id"])));
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
                    "Response key 'randomnumber' does not map to an integer - {}",
                    int_type_error(&lowered["randomnumber"])
                ),
                url,
            ),
            severity,
        )),
        PythonInt::ValueError => {
            return Err(TfbException(int_value_error(&lowered["randomnumber"])));
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
        let verify_hello_world = |value: &Value, url: &str| verify_hello_world(value, url).unwrap();
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
        // A wrong message is the only finding, as in TFB, even beside extra keys.
        assert_eq!(
            verify_hello_world(&json!({"message": "Hi", "x": "y"}), "/json")
                .iter()
                .map(|finding| finding.message.as_str())
                .collect::<Vec<_>>(),
            ["Expected message of 'hello, world!', got 'hi'"]
        );
        let many: Map<String, Value> = (0..27)
            .map(|index| (format!("k{index}"), json!("v")))
            .chain([("message".to_owned(), json!("Hello, World!"))])
            .collect();
        assert_eq!(
            super::verify_hello_world(&Value::Object(many), "/json"),
            Err(TfbException(
                "list.append() takes exactly one argument (2 given)".to_owned()
            ))
        );
    }

    #[test]
    fn messages_show_values_as_python_does() {
        let fail = |value: Value| {
            verify_world(&value, "/db", Level::Fail).unwrap()[0]
                .message
                .clone()
        };
        assert_eq!(
            fail(json!(null)),
            "Expected a JSON object, got 'None' instead"
        );
        assert_eq!(
            fail(json!([1, "a", true])),
            "Expected a JSON object, got '[1, 'a', True]' instead"
        );
        assert_eq!(
            fail(json!("abcdefghijklmnopqrstuvwxyz")),
            "Expected a JSON object, got 'abcdefghijklmnopq...' instead"
        );
        assert_eq!(
            fail(json!({"id": null, "randomNumber": 1})),
            "Response key 'id' does not map to an integer - int() argument must be a string, \
             a bytes-like object or a real number, not 'NoneType'"
        );
        let both =
            verify_world(&json!({"id": [], "randomNumber": {}}), "/db", Level::Fail).unwrap();
        assert_eq!(
            both.iter()
                .map(|finding| finding.message.as_str())
                .collect::<Vec<_>>(),
            [
                "Response key 'id' does not map to an integer - int() argument must be a string, \
                 a bytes-like object or a real number, not 'list'",
                "Response key 'randomnumber' does not map to an integer - int() argument must be a \
                 string, a bytes-like object or a real number, not 'dict'",
            ]
        );
        assert_eq!(
            verify_world(
                &json!({"id": "ab'c", "randomNumber": 1}),
                "/db",
                Level::Fail
            ),
            Err(TfbException(
                "invalid literal for int() with base 10: \"ab'c\"".to_owned()
            ))
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
        // Two keys, one of them wrong: missing, and no extra-key warn (TFB counts keys).
        assert_eq!(levels(&ok(json!({"id": 1, "extra": 1}))), [Level::Fail]);
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
