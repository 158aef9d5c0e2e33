//! The names of the checks: [`Check`] is one rule (a body, the headers, a query case), a
//! [`CheckId`] is that rule for one test type (`query::bare_url`), written as text only in reports
//! and read back from them. Which checks each type runs is [`TestType::checks`].

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TestType;

/// One named check; each type runs some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// The type answered at all (a refused connection or a timeout is filed here).
    Responds,
    /// Nothing TFB's verifier would have raised on (a body it cannot decode).
    NoException,
    /// The configured path is as long as TFB requires.
    UrlLength,
    Body,
    Status,
    Headers,
    ContentLength,
    Pipelining,
    DatabaseCounts,
    IdsSpread,
    Case2ReturnsTwoItems,
    Case0ReturnsOneItem,
    CaseFooReturnsOneItem,
    Case501Returns500Items,
    CaseEmptyReturnsOneItem,
    BareUrl,
    RowsChanged,
    ReportedRowsAreStored,
    ServedFromCache,
    Page,
}

impl Check {
    pub const ALL: [Check; 20] = [
        Check::Responds,
        Check::NoException,
        Check::UrlLength,
        Check::Body,
        Check::Status,
        Check::Headers,
        Check::ContentLength,
        Check::Pipelining,
        Check::DatabaseCounts,
        Check::IdsSpread,
        Check::Case2ReturnsTwoItems,
        Check::Case0ReturnsOneItem,
        Check::CaseFooReturnsOneItem,
        Check::Case501Returns500Items,
        Check::CaseEmptyReturnsOneItem,
        Check::BareUrl,
        Check::RowsChanged,
        Check::ReportedRowsAreStored,
        Check::ServedFromCache,
        Check::Page,
    ];

    /// The checks every type has besides its own list: they file what stops a type early.
    pub const OF_EVERY_TYPE: [Check; 3] = [Check::Responds, Check::NoException, Check::UrlLength];

    /// Its name in reports, the part after `<type>::`.
    pub const fn name(self) -> &'static str {
        match self {
            Check::Responds => "responds",
            Check::NoException => "no_exception",
            Check::UrlLength => "url_length",
            Check::Body => "body",
            Check::Status => "status",
            Check::Headers => "headers",
            Check::ContentLength => "content_length",
            Check::Pipelining => "pipelining",
            Check::DatabaseCounts => "database_counts",
            Check::IdsSpread => "ids_spread",
            Check::Case2ReturnsTwoItems => "case_2_returns_two_items",
            Check::Case0ReturnsOneItem => "case_0_returns_one_item",
            Check::CaseFooReturnsOneItem => "case_foo_returns_one_item",
            Check::Case501Returns500Items => "case_501_returns_500_items",
            Check::CaseEmptyReturnsOneItem => "case_empty_returns_one_item",
            Check::BareUrl => "bare_url",
            Check::RowsChanged => "rows_changed",
            Check::ReportedRowsAreStored => "reported_rows_are_stored",
            Check::ServedFromCache => "served_from_cache",
            Check::Page => "page",
        }
    }

    /// What a server that fails it usually has to change.
    pub fn hint(self) -> Option<&'static str> {
        Some(match self {
            Check::Headers => {
                "send Server, Date (refreshed every second, IMF-fixdate), Content-Length and TFB's exact Content-Type"
            }
            Check::DatabaseCounts => {
                "one SELECT per row (no IN/ANY), one UPDATE per request or per row, no extra statements on the table"
            }
            Check::Page => {
                "13 rows sorted by message, escape < and &, no extra tags, every closing tag written"
            }
            Check::Pipelining => "answer every request already read before reading more, in order",
            Check::IdsSpread => "draw every id fresh from a random generator over 1..=10000",
            Check::RowsChanged | Check::ReportedRowsAreStored => {
                "write every reported row's new randomNumber to the table"
            }
            Check::ContentLength => "compute Content-Length from the body you send",
            Check::Case2ReturnsTwoItems
            | Check::Case0ReturnsOneItem
            | Check::CaseFooReturnsOneItem
            | Check::Case501Returns500Items
            | Check::CaseEmptyReturnsOneItem
            | Check::BareUrl => {
                "clamp queries: missing, empty, non-integer or < 1 → 1, > 500 → 500; always a 200 with a JSON array"
            }
            Check::Responds
            | Check::NoException
            | Check::UrlLength
            | Check::Body
            | Check::Status
            | Check::ServedFromCache => return None,
        })
    }

    /// This check of `test_type`.
    pub const fn of(self, test_type: TestType) -> CheckId {
        CheckId {
            test_type,
            check: self,
        }
    }
}

/// One check of one type, written `<type>::<check>` (e.g. `query::bare_url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckId {
    pub test_type: TestType,
    pub check: Check,
}

impl CheckId {
    /// Whether the type runs it: one of its own checks or one every type has.
    pub fn is_run(self) -> bool {
        Check::OF_EVERY_TYPE.contains(&self.check)
            || self
                .test_type
                .checks()
                .iter()
                .any(|(check, _)| *check == self)
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{}::{}", self.test_type, self.check.name()))
    }
}

impl FromStr for CheckId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || format!("{text:?} is not a check this version knows");
        let (test_type, check) = text.split_once("::").ok_or_else(unknown)?;
        let test_type = TestType::ALL
            .into_iter()
            .find(|candidate| candidate.to_string() == test_type)
            .ok_or_else(unknown)?;
        let check = Check::ALL
            .into_iter()
            .find(|candidate| candidate.name() == check)
            .ok_or_else(unknown)?;
        Ok(check.of(test_type))
    }
}

impl Serialize for CheckId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CheckId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A finding not filed under a check yet is written as an empty name, as before names were typed.
pub(crate) mod unfiled_as_empty {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::CheckId;

    pub fn serialize<S: Serializer>(
        check: &Option<CheckId>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match check {
            Some(check) => serializer.collect_str(check),
            None => serializer.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<CheckId>, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name reads back as the check that wrote it, and no two checks share a name.
    #[test]
    fn every_name_reads_back() {
        for test_type in TestType::ALL {
            for check in Check::ALL {
                let id = check.of(test_type);
                assert_eq!(id.to_string().parse::<CheckId>(), Ok(id));
            }
        }
        assert!("json::nonsense".parse::<CheckId>().is_err());
        assert!("teapot::body".parse::<CheckId>().is_err());
        assert!("json".parse::<CheckId>().is_err());
    }

    /// Each type's list names every check once, and none of those every type has.
    #[test]
    fn each_type_lists_its_checks_once() {
        for test_type in TestType::ALL {
            let checks = test_type.checks();
            for (index, (id, _)) in checks.iter().enumerate() {
                assert_eq!(id.test_type, test_type);
                assert!(!Check::OF_EVERY_TYPE.contains(&id.check), "{id}");
                assert!(
                    checks[index + 1..].iter().all(|(other, _)| other != id),
                    "{id} twice"
                );
            }
        }
    }
}
