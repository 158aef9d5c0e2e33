//! report.html and compare.html in a real browser: headless Chromium loads each page written by
//! `tfb report` and `tfb compare` from recorded runs (this version's format, with fixed-rate
//! latency and labels, and the previous one's), the page logs nothing to the console, the DOM
//! Chromium built holds the ranking in the order TFB's rule gives (written down here, not taken
//! from the runner), the tabs answer the address's fragment, and a screenshot of each page is
//! written for a person to look at. One trial proves a page whose script fails is caught.

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

/// A run recorded by this version: axum and actix, four types, fixed-rate latency, a label.
const CURRENT: &str = "tests/runs/format-1-fixed-rate";
/// A run recorded before labels, headlines and fixed-rate latency existed.
const PREVIOUS: &str = "tests/runs/format-1";

/// Chromium's binary: `TFB_CHROMIUM`, else the first of Debian's and others' names on the PATH.
fn chromium() -> PathBuf {
    if let Ok(path) = std::env::var("TFB_CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|directory| directory.join(name))
                .find(|candidate| candidate.is_file())
        });
        if let Some(path) = found {
            return path;
        }
    }
    panic!(
        "no Chromium found (chromium, chromium-browser or google-chrome on the PATH, or \
         TFB_CHROMIUM): scripts/install-deps.sh installs Debian's chromium"
    );
}

/// What Chromium made of a page: the DOM after its scripts ran, and every console message.
struct Loaded {
    dom: String,
    console: Vec<String>,
}

/// Flags for a headless Chromium as root on a machine with no outside network: no sandbox (root),
/// no GPU, and none of the background connections a closed network refuses.
fn headless(profile: &Path) -> Command {
    let mut command = Command::new(chromium());
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Loads `page` (with `#fragment` when given) and returns its DOM and console messages.
fn load(page: &Path, fragment: &str) -> Loaded {
    let profile = tempfile::tempdir().unwrap();
    let output = headless(profile.path())
        .arg("--dump-dom")
        .arg(format!("file://{}{fragment}", page.display()))
        .output()
        .expect("running Chromium");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Chromium failed on {}:\n{stderr}",
        page.display()
    );
    Loaded {
        dom: String::from_utf8_lossy(&output.stdout).into_owned(),
        // Chromium logs each console message (errors and uncaught exceptions among them) as a
        // line with ":CONSOLE" in it.
        console: stderr
            .lines()
            .filter(|line| line.contains(":CONSOLE"))
            .map(str::to_owned)
            .collect(),
    }
}

/// Writes a full-page-wide screenshot of `page` where a person can find it, and returns its path.
fn screenshot(page: &Path, name: &str) -> PathBuf {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join(name);
    let profile = tempfile::tempdir().unwrap();
    let output = headless(profile.path())
        .arg("--window-size=1280,2400")
        .arg(format!("--screenshot={}", path.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("running Chromium");
    assert!(
        output.status.success() && path.is_file(),
        "no screenshot of {}:\n{}",
        page.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 10_000, "{} is only {size} bytes", path.display());
    eprintln!("screenshot: {}", path.display());
    path
}

/// A recorded run copied into `directory` with its reports written by this version's `tfb report`.
fn reported(recorded: &str, directory: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(recorded);
    let run = directory.join(source.file_name().unwrap());
    std::fs::create_dir_all(&run).unwrap();
    std::fs::copy(source.join("results.json"), run.join("results.json")).unwrap();
    tfb(&["report", run.to_str().unwrap()]);
    run
}

fn tfb(arguments: &[&str]) -> String {
    let (success, text) = support::run_tfb(arguments);
    assert!(success, "tfb {arguments:?} failed:\n{text}");
    text
}

/// The start tag of the element with `id` in a serialized DOM.
fn start_tag<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element with id {id} in:\n{dom}"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find('>').unwrap();
    &dom[start..=end]
}

/// The `data-test` of each ranking row of `test_type` in the ranking tab, in DOM order.
fn ranking_in_dom(dom: &str, test_type: &str) -> Vec<String> {
    let tab = &dom[dom.find("id=\"tab-ranking\"").expect("a ranking tab")..];
    let tab = &tab[..tab.find("</section>").unwrap()];
    let block = &tab[tab
        .find(&format!("data-type=\"{test_type}\""))
        .unwrap_or_else(|| panic!("no {test_type} in the ranking tab"))..];
    let table = &block[..block.find("</table>").unwrap()];
    table
        .split("<tr data-test=\"")
        .skip(1)
        .map(|row| row[..row.find('"').unwrap()].to_owned())
        .collect()
}

/// TFB's ranking, written down independently of the runner: per type, tests by requests/s at
/// 20 queries per request for query and update, at their best measured level otherwise.
fn expected_ranking(results: &Value, test_type: &str) -> Vec<String> {
    let mut headlines: Vec<(String, f64)> = results["rawData"][test_type]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(test, levels)| {
            let measured = levels
                .as_array()
                .unwrap()
                .iter()
                .filter(|level| level.get("error").is_none());
            let rps = |level: &Value| level["requestsPerSecond"].as_f64().unwrap();
            let headline = if matches!(test_type, "query" | "update") {
                measured
                    .filter(|level| level["queries"] == 20)
                    .map(rps)
                    .next()
            } else {
                measured.map(rps).reduce(f64::max)
            };
            headline.map(|rps| (test.clone(), rps))
        })
        .collect();
    headlines.sort_by(|a, b| b.1.total_cmp(&a.1));
    headlines.into_iter().map(|(test, _)| test).collect()
}

#[test]
fn the_report_ranks_every_type_in_a_real_browser() {
    let directory = tempfile::tempdir().unwrap();
    let run = reported(CURRENT, directory.path());
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    let page = run.join("report.html");
    let loaded = load(&page, "");
    assert!(
        loaded.console.is_empty(),
        "console messages: {:#?}",
        loaded.console
    );
    let types: Vec<&String> = results["rawData"].as_object().unwrap().keys().collect();
    assert!(types.len() >= 4, "the recorded run has too few types");
    for test_type in types {
        let expected = expected_ranking(&results, test_type);
        assert!(expected.len() >= 2, "{test_type}: fewer than two tests");
        assert_eq!(
            ranking_in_dom(&loaded.dom, test_type),
            expected,
            "{test_type}"
        );
    }
    // The script ran: the controls it shows are visible, the first tab is open, the others shut.
    assert!(!start_tag(&loaded.dom, "tabs").contains("hidden"));
    assert!(!start_tag(&loaded.dom, "filters").contains("hidden"));
    assert!(!start_tag(&loaded.dom, "tab-ranking").contains("hidden"));
    for tab in ["latency", "errors", "efficiency", "levels"] {
        assert!(
            start_tag(&loaded.dom, &format!("tab-{tab}")).contains("hidden"),
            "{tab}"
        );
    }
    // The label heads the page, and the fixed-rate runs are in the latency tab.
    let label = results["environment"]["label"].as_str().unwrap();
    assert!(
        loaded.dom.contains(&format!("<h1>Benchmark {label} (")),
        "no label heading"
    );
    assert!(loaded.dom.contains("class=\"fixed-rate\""));
    screenshot(&page, "report.png");
}

#[test]
fn the_address_fragment_opens_its_tab() {
    let directory = tempfile::tempdir().unwrap();
    let page = reported(CURRENT, directory.path()).join("report.html");
    let loaded = load(&page, "#latency");
    assert!(loaded.console.is_empty(), "{:#?}", loaded.console);
    assert!(!start_tag(&loaded.dom, "tab-latency").contains("hidden"));
    assert!(start_tag(&loaded.dom, "tab-ranking").contains("hidden"));
}

#[test]
fn a_run_in_the_previous_format_renders_in_a_real_browser() {
    let directory = tempfile::tempdir().unwrap();
    let run = reported(PREVIOUS, directory.path());
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    let loaded = load(&run.join("report.html"), "");
    assert!(loaded.console.is_empty(), "{:#?}", loaded.console);
    for test_type in ["db", "json"] {
        assert_eq!(
            ranking_in_dom(&loaded.dom, test_type),
            expected_ranking(&results, test_type)
        );
    }
    assert!(loaded.dom.contains("No fixed-rate runs"));
}

#[test]
fn a_comparison_shows_every_environment_side_by_side_in_a_real_browser() {
    let directory = tempfile::tempdir().unwrap();
    let current = reported(CURRENT, directory.path());
    let previous = reported(PREVIOUS, directory.path());
    let output_dir = directory.path().join("comparison");
    tfb(&[
        "compare",
        current.to_str().unwrap(),
        previous.to_str().unwrap(),
        "--output-dir",
        output_dir.to_str().unwrap(),
    ]);
    let page = output_dir.join("compare.html");
    let loaded = load(&page, "");
    assert!(loaded.console.is_empty(), "{:#?}", loaded.console);
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(current.join("results.json")).unwrap())
            .unwrap();
    let label = recorded["environment"]["label"].as_str().unwrap();
    let heading = &loaded.dom[loaded.dom.find("class=\"environments\"").unwrap()..];
    let heading = &heading[..heading.find("</tr>").unwrap()];
    assert!(
        heading.contains(label) && heading.contains("20261203-134239"),
        "both runs head a column: {heading}"
    );
    // Per type, each test has a row per run; the test both runs measured has both figures.
    let db = &loaded.dom[loaded.dom.find("<h2>db</h2>").unwrap()..];
    let db = &db[..db.find("</table>").unwrap()];
    assert_eq!(db.matches("<tr data-test=\"axum\"").count(), 2, "{db}");
    // The fixed-rate runs of the run that has them, beside a dash for the one that has none.
    let fixed = &loaded.dom[loaded
        .dom
        .find("<h2>Fixed-rate latency</h2>")
        .expect("a fixed-rate table")..];
    assert!(
        fixed.contains("<td class=\"name\">db</td><td class=\"name\">axum</td><td>50 %</td>"),
        "{fixed}"
    );
    assert!(
        std::fs::read_to_string(output_dir.join("compare.md"))
            .unwrap()
            .contains(&format!("| | {label} ("))
    );
    screenshot(&page, "compare.png");
}

/// The console check is not blind: a page whose script throws is caught, with the message.
#[test]
fn a_script_error_is_caught() {
    let directory = tempfile::tempdir().unwrap();
    let page = reported(CURRENT, directory.path()).join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let broken = html.replacen(
        "document.getElementById('tabs').hidden",
        "document.getElementById('no-such-element').hidden",
        1,
    );
    assert_ne!(broken, html, "the script changed; update this trial");
    std::fs::write(&page, broken).unwrap();
    let loaded = load(&page, "");
    assert!(
        loaded
            .console
            .iter()
            .any(|line| line.contains("Uncaught TypeError")),
        "{:#?}",
        loaded.console
    );
    // And the DOM shows the consequence: the controls stay hidden.
    assert!(start_tag(&loaded.dom, "tabs").contains("hidden"));
}
