//! Proves every check can fail: each test starts the test server wrong in exactly one way (see
//! `support/server.rs`), verifies it, and asserts that the fault is caught by the right check with
//! the right level and message, and that the TFB verdict is what TFB's would have been. One test
//! starts it correct and expects a pass everywhere. The database faults run against a real
//! throwaway PostgreSQL; those tests take turns, since the statement counters are server-wide.

#[path = "support/server.rs"]
mod server;

use std::{
    process::ExitCode,
    sync::{Arc, Mutex},
};

use conformance::{Check, CheckId, Level, Report, Target, TestType, verify};
use libtest_mimic::{Arguments, Failed, Trial};
use server::Fault;
use tfb_database::Database;

/// The database bursts use this many concurrent requests; TFB's rules scale with it (TFB: 512).
const CONCURRENCY: usize = 128;

/// A finding the fault must produce.
struct Expect {
    test_type: TestType,
    check: Check,
    level: Level,
    message: &'static str,
    strict: bool,
}

const fn tfb(test_type: TestType, check: Check, level: Level, message: &'static str) -> Expect {
    Expect {
        test_type,
        check,
        level,
        message,
        strict: false,
    }
}

const fn strict(test_type: TestType, check: Check, message: &'static str) -> Expect {
    Expect {
        test_type,
        check,
        level: Level::Fail,
        message,
        strict: true,
    }
}

const fn strict_warn(test_type: TestType, check: Check, message: &'static str) -> Expect {
    Expect {
        level: Level::Warn,
        ..strict(test_type, check, message)
    }
}

impl Expect {
    fn id(&self) -> CheckId {
        self.check.of(self.test_type)
    }
}

struct Case {
    name: &'static str,
    fault: Fault,
    types: &'static [TestType],
    expect: &'static [Expect],
    /// Checks that must produce no finding at all (a rule says TFB skips them).
    absent: &'static [CheckId],
    /// Path-style routes (`/queries/`, `/updates/`) instead of TFB's usual query strings.
    path_style: bool,
    /// Verified with the database's URL (the counts and row checks run), or without it.
    database: bool,
}

use Level::{Fail, Warn};
use TestType::{CachedQuery, Db, Fortune, Json, Plaintext, Query, Update};

const CASES: &[Case] = &[
    Case {
        name: "correct_server_passes_everything",
        fault: Fault::None,
        types: &TestType::ALL,
        expect: &[],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "headers::missing_server",
        fault: Fault::MissingServer,
        types: &[Json, Db, Plaintext, Fortune],
        expect: &[
            tfb(
                Json,
                Check::Headers,
                Fail,
                "Required response header missing: Server",
            ),
            tfb(
                Db,
                Check::Headers,
                Fail,
                "Required response header missing: Server",
            ),
            tfb(
                Plaintext,
                Check::Headers,
                Fail,
                "Required response header missing: Server",
            ),
            tfb(
                Fortune,
                Check::Headers,
                Fail,
                "Required response header missing: Server",
            ),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "headers::frozen_date",
        fault: Fault::FrozenDate,
        types: &[Json],
        expect: &[tfb(
            Json,
            Check::Headers,
            Fail,
            "Invalid Cached Date. Found \"Wed, 17 Apr 2013 12:00:00 GMT\" and \"Wed, 17 Apr 2013 12:00:00 GMT\"",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "headers::date_with_offset_warns",
        fault: Fault::DateWithOffset,
        types: &[Json],
        expect: &[tfb(
            Json,
            Check::Headers,
            Warn,
            " +0000\", did not match \"%a, %d %b %Y %H:%M:%S %Z\".",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "headers::missing_date_fails_twice",
        fault: Fault::MissingDate,
        types: &[Json],
        expect: &[
            tfb(
                Json,
                Check::Headers,
                Fail,
                "Required response header missing: Date",
            ),
            tfb(
                Json,
                Check::Headers,
                Fail,
                "Invalid Cached Date. Found \"None\" and \"None\" on separate requests.",
            ),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "headers::charset_utf8_without_dash",
        fault: Fault::CharsetUtf8WithoutDash,
        types: &[Json],
        expect: &[tfb(
            Json,
            Check::Headers,
            Fail,
            "Invalid Content-Type header, found \"application/json; charset=utf8\"",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "headers::html_without_charset",
        fault: Fault::HtmlWithoutCharset,
        types: &[Fortune],
        expect: &[tfb(
            Fortune,
            Check::Headers,
            Fail,
            "Invalid Content-Type header, found \"text/html\"",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "headers::no_size_header",
        fault: Fault::NoSizeHeader,
        types: &[Plaintext],
        expect: &[tfb(
            Plaintext,
            Check::Headers,
            Fail,
            "Required response size header missing",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "json::capitalised_key_passes",
        fault: Fault::CapitalisedMessageKey,
        types: &[Json],
        expect: &[],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "json::extra_key_warns",
        fault: Fault::ExtraJsonKey,
        types: &[Json],
        expect: &[tfb(
            Json,
            Check::Body,
            Warn,
            "Too many JSON key/value pairs, consider removing: extra",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "json::number_value_fails",
        fault: Fault::NumberInHelloObject,
        types: &[Json],
        expect: &[tfb(Json, Check::Body, Fail, "Not a valid JSON object")],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "status::201_fails",
        fault: Fault::WrongStatus,
        types: &[Json, Db, Plaintext],
        expect: &[
            tfb(
                Json,
                Check::Status,
                Fail,
                "Invalid response status, found \"201\", did not match \"200\"",
            ),
            tfb(
                Db,
                Check::Status,
                Fail,
                "Invalid response status, found \"201\", did not match \"200\"",
            ),
            tfb(
                Plaintext,
                Check::Status,
                Fail,
                "Invalid response status, found \"201\", did not match \"200\"",
            ),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "db::array_warns",
        fault: Fault::DbReturnsArray,
        types: &[Db],
        expect: &[tfb(
            Db,
            Check::Body,
            Warn,
            "Response is a JSON array. Expected JSON object (e.g. [] vs {})",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "db::extra_key_warns",
        fault: Fault::DbExtraKey,
        types: &[Db],
        expect: &[tfb(
            Db,
            Check::Body,
            Warn,
            "An extra key(s) is being included with the db object: extra",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "db::id_out_of_range_warns",
        fault: Fault::DbIdOutOfRange,
        types: &[Db],
        expect: &[tfb(
            Db,
            Check::Body,
            Warn,
            "Response key id should be between 1 and 10,000",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "db::non_numeric_id_raises",
        fault: Fault::DbIdNotNumeric,
        types: &[Db],
        expect: &[tfb(
            Db,
            Check::NoException,
            Fail,
            "Caused Exception in TFB\n            This almost certainly means your return value is incorrect,\n            \
             but also that you have found a bug. Please submit an issue\n            \
             including this message: invalid literal for int() with base 10: 'abc'\n",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "db::failed_requests_under_burst",
        fault: Fault::FailsUnderBurst,
        types: &[Db],
        expect: &[tfb(
            Db,
            Check::DatabaseCounts,
            Fail,
            // How many depends on what else asked `/db`; the cause does not.
            "\u{d7} answered HTTP 503.",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    // siege 4.0.7's rule, both sides of it: 408, 418 and 500-509 are failed transactions, other
    // statuses and cut bodies went through (a strict fail here), no answer at all failed.
    Case {
        name: "db::burst_answered_404_passes_tfb",
        fault: Fault::BurstAnsweredNotFound,
        types: &[Db],
        expect: &[strict(
            Db,
            Check::DatabaseCounts,
            "\u{d7} answered HTTP 404.",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "db::burst_answered_510_passes_tfb",
        fault: Fault::BurstAnsweredNotExtended,
        types: &[Db],
        expect: &[strict(
            Db,
            Check::DatabaseCounts,
            "which siege did not count as failed transactions (stricter than TFB)",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "db::burst_connections_dropped",
        fault: Fault::BurstConnectionsDropped,
        types: &[Db],
        expect: &[tfb(
            Db,
            Check::DatabaseCounts,
            Fail,
            "\u{d7} Server did not respond to request (the connection closed without a response).",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "db::burst_bodies_cut_pass_tfb",
        fault: Fault::BurstBodiesCut,
        types: &[Db],
        expect: &[
            strict(
                Db,
                Check::DatabaseCounts,
                "\u{d7} a 200 head, then the body ended after",
            ),
            // Some of the id-spread requests meet a cut body too.
            strict(Db, Check::IdsSpread, "100 requests gave 9"),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "fortune::answered_404_passes_tfb",
        fault: Fault::FortunesAnsweredNotFound,
        types: &[Fortune],
        expect: &[
            strict(
                Fortune,
                Check::Status,
                "Invalid response status, found \"404\", did not match \"200\"",
            ),
            strict(Fortune, Check::DatabaseCounts, "\u{d7} answered HTTP 404."),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    // A burst's counting window sees only its own type: the queries still queued after the
    // query burst gave up are worked off before the update burst counts.
    Case {
        name: "update::counts_wait_for_a_quiet_database",
        fault: Fault::QueriesQueuedSlowly,
        types: &[Query, Update],
        expect: &[
            tfb(
                Query,
                Check::DatabaseCounts,
                Fail,
                "executed queries in the database out of roughly",
            ),
            strict_warn(Update, Check::DatabaseCounts, "The database was busy for"),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "routes_shorter_than_tfb_allows",
        fault: Fault::ShortRoutes,
        types: &TestType::ALL,
        expect: &[
            tfb(
                CachedQuery,
                Check::UrlLength,
                Fail,
                "Route for cached queries must be at least 15 characters, found '/c?count=' instead",
            ),
            tfb(
                Query,
                Check::UrlLength,
                Fail,
                "Route for queries must be at least 9 characters, found '/q?q=' instead",
            ),
            tfb(
                Fortune,
                Check::UrlLength,
                Fail,
                "Route for fortunes must be at least 9 characters, found '/f' instead",
            ),
            tfb(
                Json,
                Check::UrlLength,
                Fail,
                "Route for json must be at least 5 characters, found '/j' instead",
            ),
            tfb(
                Db,
                Check::UrlLength,
                Fail,
                "Route for db must be at least 3 characters, found '/d' instead",
            ),
            tfb(
                Update,
                Check::UrlLength,
                Fail,
                "Route for update must be at least 8 characters, found '/u?q=' instead",
            ),
            tfb(
                Plaintext,
                Check::UrlLength,
                Fail,
                "Route for plaintext must be at least 10 characters, found '/p' instead",
            ),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    // cached-query: TFB's query cases without database counts, and (strict) rows from a cache.
    Case {
        name: "lists::count_ignored",
        fault: Fault::CountIgnored,
        types: &[Query, Update, CachedQuery],
        expect: &[
            tfb(
                Query,
                Check::Case2ReturnsTwoItems,
                Fail,
                "JSON array length of 1 != expected length of 2",
            ),
            tfb(
                Query,
                Check::Case501Returns500Items,
                Warn,
                "JSON array length of 1 != expected length of 500",
            ),
            tfb(
                Update,
                Check::Case2ReturnsTwoItems,
                Fail,
                "JSON array length of 1 != expected length of 2",
            ),
            tfb(
                Update,
                Check::Case501Returns500Items,
                Warn,
                "JSON array length of 1 != expected length of 500",
            ),
            tfb(
                CachedQuery,
                Check::Case2ReturnsTwoItems,
                Fail,
                "JSON array length of 1 != expected length of 2",
            ),
            tfb(
                CachedQuery,
                Check::Case501Returns500Items,
                Warn,
                "JSON array length of 1 != expected length of 500",
            ),
        ],
        absent: &[Check::DatabaseCounts.of(CachedQuery)],
        path_style: false,
        database: true,
    },
    Case {
        name: "lists::zero_not_clamped",
        fault: Fault::ZeroNotClamped,
        types: &[Query, Update, CachedQuery],
        expect: &[
            tfb(
                Query,
                Check::Case0ReturnsOneItem,
                Fail,
                "JSON array length of 0 != expected length of 1",
            ),
            tfb(
                Update,
                Check::Case0ReturnsOneItem,
                Fail,
                "JSON array length of 0 != expected length of 1",
            ),
            tfb(
                CachedQuery,
                Check::Case0ReturnsOneItem,
                Fail,
                "JSON array length of 0 != expected length of 1",
            ),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "cached_query::foo_answered_with_500_text",
        fault: Fault::FooAnsweredWith500Text,
        types: &[CachedQuery],
        expect: &[tfb(
            CachedQuery,
            Check::CaseFooReturnsOneItem,
            Fail,
            "Invalid JSON",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "cached_query::empty_answered_empty",
        fault: Fault::EmptyAnsweredEmpty,
        types: &[CachedQuery],
        expect: &[
            tfb(
                CachedQuery,
                Check::CaseEmptyReturnsOneItem,
                Fail,
                "Empty response given for stringy `queries` parameter \nSuggestion: modify your /queries route",
            ),
            tfb(
                CachedQuery,
                Check::BareUrl,
                Fail,
                "Invalid response status, found \"400\"",
            ),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "cached_query::rows_read_from_the_database",
        fault: Fault::CachedQueriesFromDatabase,
        types: &[CachedQuery],
        expect: &[strict(
            CachedQuery,
            Check::ServedFromCache,
            "100 requests of 20 cached rows ran 2000 statements on world",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "db::same_id_every_time",
        fault: Fault::SameIdEveryTime,
        types: &[Db],
        expect: &[strict(Db, Check::IdsSpread, "distinct")],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "query::foo_answered_with_500_text",
        fault: Fault::FooAnsweredWith500Text,
        types: &[Query, Update],
        expect: &[
            tfb(Query, Check::CaseFooReturnsOneItem, Fail, "Invalid JSON"),
            tfb(Update, Check::CaseFooReturnsOneItem, Fail, "Invalid JSON"),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "query::foo_answered_with_object",
        fault: Fault::FooAnsweredWithObject,
        types: &[Query],
        expect: &[tfb(
            Query,
            Check::CaseFooReturnsOneItem,
            Fail,
            "Top-level JSON is an object, not an array",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "query::empty_value_answered_empty",
        fault: Fault::EmptyAnsweredEmpty,
        types: &[Query, Update],
        expect: &[
            tfb(
                Query,
                Check::CaseEmptyReturnsOneItem,
                Fail,
                "Empty response given for stringy `queries` parameter",
            ),
            tfb(
                Query,
                Check::BareUrl,
                Fail,
                "Invalid response status, found \"400\"",
            ),
            tfb(
                Update,
                Check::CaseEmptyReturnsOneItem,
                Fail,
                "Empty response given for stringy `queries` parameter",
            ),
            tfb(
                Update,
                Check::BareUrl,
                Fail,
                "Invalid response status, found \"400\"",
            ),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "query::501_not_clamped_warns",
        fault: Fault::Clamp501Ignored,
        types: &[Query],
        expect: &[tfb(
            Query,
            Check::Case501Returns500Items,
            Warn,
            "JSON array length of 1 != expected length of 500",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "query::in_clause_fails_counts",
        fault: Fault::QueriesUseAny,
        types: &[Query],
        expect: &[tfb(
            Query,
            Check::DatabaseCounts,
            Fail,
            "executed queries in the database out of roughly 2560 expected.",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "update::501_not_clamped_fails",
        fault: Fault::Clamp501Ignored,
        types: &[Update],
        expect: &[tfb(
            Update,
            Check::RowsChanged,
            Fail,
            "items were updated in the database out of roughly 500 expected.",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "update::two_statements_per_request",
        fault: Fault::UpdatesTwoStatements,
        types: &[Update],
        expect: &[tfb(
            Update,
            Check::DatabaseCounts,
            Fail,
            "executed queries in the database out of roughly 5120 expected.",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "update::not_persisted",
        fault: Fault::UpdatesNotPersisted,
        types: &[Update],
        expect: &[
            tfb(
                Update,
                Check::RowsChanged,
                Fail,
                "No items were updated in the database.",
            ),
            tfb(
                Update,
                Check::DatabaseCounts,
                Fail,
                "rows updated in the database out of roughly 2560 expected.",
            ),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "update::reports_values_it_did_not_store",
        fault: Fault::UpdatesReportUnstoredValues,
        types: &[Update],
        expect: &[strict(
            Update,
            Check::ReportedRowsAreStored,
            "Reported rows are not the stored rows",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "fortune::unsorted",
        fault: Fault::FortunesUnsorted,
        types: &[Fortune],
        expect: &[tfb(
            Fortune,
            Check::Page,
            Fail,
            "Invalid according to FortuneHTMLParser",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "fortune::unescaped",
        fault: Fault::FortunesUnescaped,
        types: &[Fortune],
        expect: &[tfb(
            Fortune,
            Check::Page,
            Fail,
            "Invalid according to FortuneHTMLParser",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "fortune::double_escaped",
        fault: Fault::FortunesDoubleEscaped,
        types: &[Fortune],
        expect: &[tfb(Fortune, Check::Page, Fail, "&amp;lt;script&amp;gt;")],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "fortune::numeric_em_dash",
        fault: Fault::FortunesNumericDash,
        types: &[Fortune],
        expect: &[tfb(
            Fortune,
            Check::Page,
            Fail,
            "should be `<tr><td>8</td><td>A list is only as strong as its weakest link. \u{2014} Donald Knuth</td></tr>",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "fortune::missing_closing_td",
        fault: Fault::FortunesMissingClosingTd,
        types: &[Fortune],
        expect: &[tfb(
            Fortune,
            Check::Page,
            Fail,
            "Invalid according to FortuneHTMLParser",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "fortune::extra_div",
        fault: Fault::FortunesExtraDiv,
        types: &[Fortune],
        expect: &[tfb(Fortune, Check::Page, Fail, "<body><div><table>")],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "fortune::style_tag",
        fault: Fault::FortunesStyleTag,
        types: &[Fortune],
        expect: &[tfb(
            Fortune,
            Check::Page,
            Fail,
            "Invalid according to FortuneHTMLParser",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "fortune::no_doctype",
        fault: Fault::FortunesNoDoctype,
        types: &[Fortune],
        expect: &[tfb(
            Fortune,
            Check::Page,
            Fail,
            "should be `<!doctype html><html>",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "fortune::padded_cell",
        fault: Fault::FortunesPaddedCell,
        types: &[Fortune],
        expect: &[tfb(
            Fortune,
            Check::Page,
            Fail,
            "Invalid according to FortuneHTMLParser",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "fortune::missing_extra_fortune",
        fault: Fault::FortunesMissingExtra,
        types: &[Fortune],
        expect: &[tfb(
            Fortune,
            Check::Page,
            Fail,
            "Additional fortune added at request time.",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "plaintext::trailing_newline_warns",
        fault: Fault::PlaintextTrailingNewline,
        types: &[Plaintext],
        expect: &[tfb(
            Plaintext,
            Check::Body,
            Warn,
            "Server is returning 1 more bytes than are required.",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "plaintext::wrong_text",
        fault: Fault::PlaintextWrongText,
        types: &[Plaintext],
        expect: &[tfb(
            Plaintext,
            Check::Body,
            Fail,
            "Could not find 'Hello, World!' in response.",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "limits::chunk_size_overflow",
        fault: Fault::ChunkSizeOverflow,
        types: &TestType::ALL,
        expect: &[
            tfb(
                Json,
                Check::Responds,
                Fail,
                "more than the 1024 KiB accepted",
            ),
            tfb(Db, Check::Responds, Fail, "more than the 1024 KiB accepted"),
            tfb(
                Query,
                Check::Responds,
                Fail,
                "more than the 1024 KiB accepted",
            ),
            tfb(
                Update,
                Check::Responds,
                Fail,
                "more than the 1024 KiB accepted",
            ),
            tfb(
                Fortune,
                Check::Responds,
                Fail,
                "more than the 1024 KiB accepted",
            ),
            tfb(
                Plaintext,
                Check::Responds,
                Fail,
                "more than the 1024 KiB accepted",
            ),
            tfb(
                CachedQuery,
                Check::Responds,
                Fail,
                "more than the 1024 KiB accepted",
            ),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "limits::endless_body",
        fault: Fault::EndlessBody,
        types: &[Json],
        expect: &[tfb(
            Json,
            Check::Responds,
            Fail,
            "more than the 1024 KiB accepted",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "limits::gzip_bomb",
        fault: Fault::GzipBomb,
        types: &[Json],
        expect: &[tfb(
            Json,
            Check::Responds,
            Fail,
            "the decoded body is larger than the 1024 KiB accepted",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "limits::huge_head",
        fault: Fault::HugeHead,
        types: &TestType::ALL,
        expect: &[
            tfb(Json, Check::Responds, Fail, "more than the 64 KiB accepted"),
            tfb(Db, Check::Responds, Fail, "more than the 64 KiB accepted"),
            tfb(
                Query,
                Check::Responds,
                Fail,
                "more than the 64 KiB accepted",
            ),
            tfb(
                Update,
                Check::Responds,
                Fail,
                "more than the 64 KiB accepted",
            ),
            tfb(
                Fortune,
                Check::Responds,
                Fail,
                "more than the 64 KiB accepted",
            ),
            tfb(
                Plaintext,
                Check::Responds,
                Fail,
                "more than the 64 KiB accepted",
            ),
            tfb(
                CachedQuery,
                Check::Responds,
                Fail,
                "more than the 64 KiB accepted",
            ),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "strict::content_length_beside_chunked",
        fault: Fault::StaleContentLength,
        types: &[Json, Db, Plaintext, Fortune],
        expect: &[
            strict(Json, Check::ContentLength, "Content-Length says"),
            strict(Db, Check::ContentLength, "Content-Length says"),
            strict(Plaintext, Check::ContentLength, "Content-Length says"),
            strict(Fortune, Check::ContentLength, "Content-Length says"),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "strict::pipelined_requests_dropped",
        fault: Fault::PipelineDropsRequests,
        types: &[Json, Plaintext],
        expect: &[
            strict(Json, Check::Pipelining, "16 pipelined requests"),
            strict(Plaintext, Check::Pipelining, "16 pipelined requests"),
        ],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "query::extra_statements_warn",
        fault: Fault::QueriesExtraStatements,
        types: &[Query],
        expect: &[tfb(
            Query,
            Check::DatabaseCounts,
            Warn,
            "executed queries in the database instead of 2560 expected. This number is excessively high.",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "update::select_in_update_text_warns",
        fault: Fault::UpdateTextContainsSelect,
        types: &[Update],
        expect: &[tfb(
            Update,
            Check::DatabaseCounts,
            Warn,
            "rows read in the database instead of 2560 expected. This number is excessively high.",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "db::table_hidden_behind_a_view",
        fault: Fault::DbReadsThroughView,
        types: &[Db],
        expect: &[tfb(
            Db,
            Check::DatabaseCounts,
            Fail,
            "Only 0 executed queries in the database out of roughly 128 expected.",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "fortune::not_utf8_raises",
        fault: Fault::FortunesNotUtf8,
        types: &[Fortune],
        expect: &[tfb(
            Fortune,
            Check::NoException,
            Fail,
            "including this message: 'utf-8' codec can't decode byte 0xe9 in position",
        )],
        absent: &[],
        path_style: false,
        database: true,
    },
    Case {
        name: "query::path_style_routes_pass",
        fault: Fault::PathStyleRoutes,
        types: &[Query, Update],
        expect: &[],
        absent: &[],
        path_style: true,
        database: true,
    },
    Case {
        name: "query::path_style_without_empty_segment",
        fault: Fault::PathStyleWithoutEmptySegment,
        types: &[Query],
        expect: &[
            tfb(
                Query,
                Check::CaseEmptyReturnsOneItem,
                Fail,
                "Empty response given for stringy `queries` parameter \nSuggestion: modify your /queries route",
            ),
            tfb(
                Query,
                Check::BareUrl,
                Fail,
                "Invalid response status, found \"404\"",
            ),
        ],
        absent: &[],
        path_style: true,
        database: true,
    },
    Case {
        name: "no_database_url_warns_and_passes_tfb",
        fault: Fault::None,
        types: &TestType::ALL,
        expect: &[
            strict_warn(
                Db,
                Check::DatabaseCounts,
                "No database URL given: the database counts were not checked",
            ),
            strict_warn(
                Query,
                Check::DatabaseCounts,
                "No database URL given: the database counts were not checked",
            ),
            strict_warn(
                Update,
                Check::DatabaseCounts,
                "No database URL given: the database counts were not checked",
            ),
            strict_warn(
                Fortune,
                Check::DatabaseCounts,
                "No database URL given: the database counts were not checked",
            ),
            strict_warn(
                Update,
                Check::RowsChanged,
                "No database URL given: whether rows were updated is not checked",
            ),
            strict_warn(
                Update,
                Check::ReportedRowsAreStored,
                "No database URL given: whether the reported rows were stored",
            ),
            strict_warn(
                CachedQuery,
                Check::ServedFromCache,
                "No database URL given: whether the rows come from a cache",
            ),
        ],
        absent: &[],
        path_style: false,
        database: false,
    },
];

fn main() -> ExitCode {
    let mut arguments = Arguments::from_args();
    // The checks mostly wait (TFB's 3 s Date re-request), so run many at once.
    arguments.test_threads.get_or_insert(12);
    let database = match Database::from_env() {
        Ok(database) => Arc::new(database),
        Err(error) => {
            eprintln!("{error:#}");
            return ExitCode::FAILURE;
        }
    };
    let database_turns = Arc::new(Mutex::new(()));
    let mut trials: Vec<Trial> = CASES
        .iter()
        .map(|case| {
            let (url, turns) = (database.url(), Arc::clone(&database_turns));
            Trial::test(case.name, move || run_case(case, &url, &turns))
        })
        .collect();
    trials.push(Trial::test("every_check_has_a_fault", || {
        every_check_has_a_fault().map_err(Failed::from)
    }));
    let conclusion = libtest_mimic::run(&arguments, trials);
    drop(database);
    conclusion.exit_code()
}

/// Every named check of every type, and the two every type has besides (its answer at all, its
/// route's length), is expected to warn or fail by some case: none is claimed without a fault
/// that proves it can.
fn every_check_has_a_fault() -> Result<(), String> {
    let unproven: Vec<String> = TestType::ALL
        .into_iter()
        .flat_map(|test_type| {
            let mut checks: Vec<CheckId> = test_type
                .checks()
                .into_iter()
                .map(|(check, _)| check)
                .collect();
            checks.push(Check::Responds.of(test_type));
            checks.push(Check::UrlLength.of(test_type));
            checks
        })
        .filter(|check| {
            !CASES
                .iter()
                .flat_map(|case| case.expect)
                .any(|expect| expect.id() == *check && expect.level != Level::Pass)
        })
        .map(|check| check.to_string())
        .collect();
    if unproven.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "no case proves these checks can fail: {}",
            unproven.join(", ")
        ))
    }
}

fn run_case(case: &Case, database_url: &str, turns: &Mutex<()>) -> Result<(), Failed> {
    let uses_database = case
        .types
        .iter()
        .any(|test_type| matches!(test_type, Db | Query | Update | Fortune | CachedQuery));
    let _turn = uses_database.then(|| turns.lock().unwrap_or_else(|poison| poison.into_inner()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let base_url = server::start(case.fault, database_url).await;
        let mut target = Target::new(&base_url, case.database.then(|| database_url.to_owned()));
        // Not among TFB's defaults: only a config that declares it enables it.
        target
            .paths
            .push((CachedQuery, "/cached-queries?count=".to_owned()));
        if case.fault == Fault::ShortRoutes {
            for (test_type, path) in &mut target.paths {
                match test_type {
                    Json => *path = "/j".to_owned(),
                    Db => *path = "/d".to_owned(),
                    Query => *path = "/q?q=".to_owned(),
                    Update => *path = "/u?q=".to_owned(),
                    Fortune => *path = "/f".to_owned(),
                    Plaintext => *path = "/p".to_owned(),
                    CachedQuery => *path = "/c?count=".to_owned(),
                }
            }
        }
        if case.path_style {
            for (test_type, path) in &mut target.paths {
                match test_type {
                    Query => *path = "/queries/".to_owned(),
                    Update => *path = "/updates/".to_owned(),
                    _ => {}
                }
            }
        }
        let mut target = target.only(case.types);
        target.concurrency = CONCURRENCY;
        verify(&target).await
    });
    judge(case, &report)
        .map_err(|problem| format!("{problem}\n\nthe report:\n{}", describe(&report)).into())
}

fn judge(case: &Case, report: &Report) -> Result<(), String> {
    if let Some(finding) = report
        .types
        .iter()
        .flat_map(|type_report| &type_report.findings)
        .find(|finding| !finding.check.is_some_and(CheckId::is_run))
    {
        return Err(format!(
            "a finding is filed under {:?}, which its type does not run: {}",
            finding.check_name(),
            finding.message
        ));
    }
    for expect in case.expect {
        let type_report = report
            .get(expect.test_type)
            .ok_or_else(|| format!("{} was not verified", expect.test_type))?;
        let found = type_report.findings.iter().any(|finding| {
            finding.check == Some(expect.id())
                && finding.level == expect.level
                && finding.strict == expect.strict
                && finding.message.contains(expect.message)
        });
        if !found {
            return Err(format!(
                "expected a {}{} finding in {} containing {:?}",
                expect.level,
                if expect.strict { " (strict)" } else { "" },
                expect.id(),
                expect.message
            ));
        }
    }
    for check in case.absent {
        let found = report
            .types
            .iter()
            .flat_map(|type_report| &type_report.findings)
            .any(|finding| finding.check == Some(*check));
        if found {
            return Err(format!("TFB skips {check} here, but it ran"));
        }
    }
    for test_type in case.types {
        let type_report = report
            .get(*test_type)
            .ok_or_else(|| format!("{test_type} was not verified"))?;
        let expected = |strict: bool| {
            case.expect
                .iter()
                .filter(|expect| expect.test_type == *test_type && (strict || !expect.strict))
                .map(|expect| expect.level)
                .max()
                .unwrap_or(Level::Pass)
        };
        if type_report.verdict != expected(false) || type_report.strict_verdict != expected(true) {
            return Err(format!(
                "{test_type}: verdict {} (strict {}), expected {} (strict {})",
                type_report.verdict,
                type_report.strict_verdict,
                expected(false),
                expected(true)
            ));
        }
    }
    Ok(())
}

fn describe(report: &Report) -> String {
    let mut out = String::new();
    for type_report in &report.types {
        out.push_str(&format!(
            "{} {} (strict {})\n",
            type_report.test_type, type_report.verdict, type_report.strict_verdict
        ));
        for finding in &type_report.findings {
            out.push_str(&format!(
                "  {} {}{} {}\n",
                finding.level,
                finding.check_name(),
                if finding.strict { " (strict)" } else { "" },
                finding.message.replace('\n', " ")
            ));
        }
    }
    out
}
