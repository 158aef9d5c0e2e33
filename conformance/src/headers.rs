//! TFB's header check (`verify_headers`): required headers, the size header, the Date format
//! (a warn), the Date-must-change re-request 3 s later (a fail), and the Content-Type patterns.

use std::time::Duration;

use crate::{
    client::{self, Response},
    report::Finding,
};

/// How long TFB waited before asking again to see whether `Date` changed.
pub const DATE_RECHECK_DELAY: Duration = Duration::from_secs(3);

/// The body kinds whose `Content-Type` TFB matches, each against its own pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    Json,
    Html,
    Plaintext,
}

impl ContentKind {
    /// TFB's pattern, as it prints it in its message.
    pub fn pattern(self) -> &'static str {
        match self {
            ContentKind::Json => "^application/json(; ?charset=(UTF|utf)-8)?$",
            ContentKind::Html => "^text/html; ?charset=(UTF|utf)-8$",
            ContentKind::Plaintext => "^text/plain(; ?charset=(UTF|utf)-8)?$",
        }
    }

    /// Whether `value` fully matches the pattern: case-sensitive, at most one space after `;`,
    /// the charset exactly `UTF-8` or `utf-8`.
    pub fn matches(self, value: &str) -> bool {
        let (base, charset_required) = match self {
            ContentKind::Json => ("application/json", false),
            ContentKind::Html => ("text/html", true),
            ContentKind::Plaintext => ("text/plain", false),
        };
        let Some(rest) = value.strip_prefix(base) else {
            return false;
        };
        if rest.is_empty() {
            return !charset_required;
        }
        let Some(rest) = rest.strip_prefix(';') else {
            return false;
        };
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        rest == "charset=UTF-8" || rest == "charset=utf-8"
    }
}

/// Checks `response` (the answer to GET `url`), then asks again after [`DATE_RECHECK_DELAY`].
pub async fn verify_headers(
    response: &Response,
    url: &str,
    accept: &str,
    kind: ContentKind,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for name in ["Server", "Date", "Content-Type"] {
        if response.header(name).is_none() {
            findings.push(Finding::fail(
                format!("Required response header missing: {name}"),
                url,
            ));
        }
    }
    if response.header("Content-Length").is_none() && response.header("Transfer-Encoding").is_none()
    {
        findings.push(Finding::fail(
            "Required response size header missing, please include either \"Content-Length\" or \"Transfer-Encoding\"",
            url,
        ));
    }
    let first_date = response.header("Date").unwrap_or_default().to_owned();
    if response.header("Date").is_some() && !parses_as_http_date(&first_date) {
        findings.push(Finding::warn(
            format!(
                "Invalid Date header, found \"{first_date}\", did not match \"%a, %d %b %Y %H:%M:%S %Z\"."
            ),
            url,
        ));
    }
    tokio::time::sleep(DATE_RECHECK_DELAY).await;
    match client::get(url, accept).await {
        Ok(second) => {
            // Python's `None == None`: two responses without a Date are "the same Date".
            let second_date = second.header("Date");
            if second_date == response.header("Date") {
                let shown = |date: Option<&str>| date.unwrap_or("None").to_owned();
                findings.push(Finding::fail(
                    format!(
                        "Invalid Cached Date. Found \"{}\" and \"{}\" on separate requests.",
                        shown(response.header("Date")),
                        shown(second_date)
                    ),
                    url,
                ));
            }
        }
        Err(error) => findings.push(Finding::fail(error.tfb_message(), url)),
    }
    if let Some(content_type) = response.header("Content-Type")
        && !kind.matches(content_type)
    {
        findings.push(Finding::fail(
            format!(
                "Invalid Content-Type header, found \"{content_type}\", did not match \"{}\".",
                kind.pattern()
            ),
            url,
        ));
    }
    findings
}

/// Python's `strptime(value, "%a, %d %b %Y %H:%M:%S %Z")` in a UTC container: abbreviated names
/// in any case, one- or two-digit day and time fields, a real calendar date, zone GMT or UTC.
/// Whitespace in the format matches any run of whitespace.
pub fn parses_as_http_date(value: &str) -> bool {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = value.to_ascii_lowercase();
    let Some((weekday, rest)) = lower.split_once(',') else {
        return false;
    };
    if !DAYS.contains(&weekday) || !rest.starts_with(char::is_whitespace) {
        return false;
    }
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, time, zone] = fields[..] else {
        return false;
    };
    let number = |text: &str, max_digits: usize| -> Option<u32> {
        (!text.is_empty()
            && text.len() <= max_digits
            && text.bytes().all(|byte| byte.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
    };
    let Some(month) = MONTHS.iter().position(|name| *name == month) else {
        return false;
    };
    let (Some(day), Some(year)) = (number(day, 2), number(year, 4).filter(|_| year.len() == 4))
    else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let time: Vec<Option<u32>> = time.split(':').map(|field| number(field, 2)).collect();
    let time_ok = matches!(time[..], [Some(hour), Some(minute), Some(second)] if hour <= 23 && minute <= 59 && second <= 61);
    (1..=month_days[month]).contains(&day) && time_ok && (zone == "gmt" || zone == "utc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_like_python_strptime() {
        for accepted in [
            "Wed, 17 Apr 2013 12:00:00 GMT",
            "Wed, 17 Apr 2013 12:00:00 UTC",
            "Wed, 7 Apr 2013 12:00:00 GMT",
            "wed, 17 apr 2013 12:00:00 gmt",
            "Mon, 17 Apr 2013 12:00:00 GMT",
        ] {
            assert!(parses_as_http_date(accepted), "{accepted}");
        }
        for rejected in [
            "Wed, 17 Apr 2013 12:00:00 +0000",
            "Wednesday, 17 Apr 2013 12:00:00 GMT",
            "17-Apr-2013",
            "Wed, 31 Apr 2013 12:00:00 GMT",
            "Wed, 17 Apr 13 12:00:00 GMT",
            "",
        ] {
            assert!(!parses_as_http_date(rejected), "{rejected}");
        }
    }

    #[test]
    fn content_types_match_tfb_patterns() {
        let cases = [
            (ContentKind::Json, "application/json", true),
            (ContentKind::Json, "application/json; charset=utf-8", true),
            (ContentKind::Json, "application/json;charset=UTF-8", true),
            (ContentKind::Json, "Application/JSON", false),
            (ContentKind::Json, "application/json; charset=Utf-8", false),
            (
                ContentKind::Json,
                "application/json; charset=\"utf-8\"",
                false,
            ),
            (ContentKind::Json, "application/json; charset=utf8", false),
            (ContentKind::Json, "application/json;  charset=utf-8", false),
            (ContentKind::Html, "text/html; charset=UTF-8", true),
            (ContentKind::Html, "text/html;charset=utf-8", true),
            (ContentKind::Html, "text/html", false),
            (ContentKind::Plaintext, "text/plain", true),
            (ContentKind::Plaintext, "text/plain; charset=utf-8", true),
            (
                ContentKind::Plaintext,
                "text/plain; charset=iso-8859-1",
                false,
            ),
        ];
        for (kind, value, expected) in cases {
            assert_eq!(kind.matches(value), expected, "{kind:?} {value:?}");
        }
    }
}
