//! `report.html`: one self-contained page (no scripts, styles or images from anywhere else)
//! organised like TFB's results site. Tabs: per type, the tests ranked by their headline figure
//! as bars with % of the best; latency (wrk's closed loop at the headline level, and the
//! fixed-rate runs corrected for coordinated omission); errors; efficiency (requests per second
//! of server CPU, peak memory); and every level, as SVG charts drawn with plotters and a table.
//! Filters hide tests and types. Every number is in a table; without JavaScript every tab shows.

use std::{collections::BTreeMap, fmt::Write as _};

use plotters::prelude::*;

use crate::{
    ranking::{self, Ranked},
    results::{Entry, FixedRateEntry, Results},
};

/// Up to eight tests get distinct colours; more reuse them.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// The tabs, by section id and title, in order; the first is shown when the page opens.
const TABS: [(&str, &str); 5] = [
    ("ranking", "Ranking"),
    ("latency", "Latency"),
    ("errors", "Errors"),
    ("efficiency", "Efficiency"),
    ("levels", "Every level"),
];

/// Shared by every page the runner writes (this report and `tfb compare`'s).
pub(crate) const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:80em;color:#222}\
    table{border-collapse:collapse;margin:.5em 0 1.5em}\
    td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right;white-space:nowrap}\
    td:first-child,th:first-child,td.name,th.name{text-align:left}\
    td.bar{width:40em;text-align:left;padding:.25em}\
    td.bar span{display:inline-block;height:1em;background:#1f77b4;vertical-align:middle}\
    .charts{display:flex;flex-wrap:wrap;gap:1em}\
    nav button{font-size:1em;padding:.4em 1em;margin-right:.3em;border:1px solid #999;background:#eee;cursor:pointer}\
    nav button[aria-selected=true]{background:#1f77b4;color:#fff}\
    table.environments td{white-space:normal}#filters label{margin-right:1em}.note{color:#555;font-size:.9em}";

pub fn render(results: &Results) -> anyhow::Result<String> {
    let mut page = String::new();
    let title = escape(&results.title());
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Benchmark {title}</title>\
         <style>{STYLE}</style></head><body><h1>Benchmark {title}</h1>"
    );
    header(&mut page, results);
    filters(&mut page, results);
    page.push_str("<nav id=\"tabs\" hidden>");
    for (id, name) in TABS {
        let _ = write!(
            page,
            "<button type=\"button\" data-tab=\"{id}\" aria-selected=\"false\">{name}</button>"
        );
    }
    page.push_str("</nav>");
    let types = ranking::types(results);
    for (id, name) in TABS {
        // Not the fragment's own name, so opening `#latency` shows the tab without scrolling.
        let _ = write!(
            page,
            "<section class=\"tab\" id=\"tab-{id}\"><h2>{name}</h2>"
        );
        for test_type in &types {
            let tests = &results.raw_data[*test_type];
            let _ = write!(
                page,
                "<div class=\"type\" data-type=\"{0}\"><h3>{0}</h3>",
                escape(test_type)
            );
            match id {
                "ranking" => ranking_table(&mut page, test_type, tests),
                "latency" => latency_tables(&mut page, test_type, tests, results)?,
                "errors" => errors_table(&mut page, tests),
                "efficiency" => efficiency_table(&mut page, test_type, tests),
                _ => levels(&mut page, test_type, tests)?,
            }
            page.push_str("</div>");
        }
        if id == "errors" {
            not_loaded(&mut page, results);
        }
        page.push_str("</section>");
    }
    let _ = writeln!(page, "<script>{SCRIPT}</script></body></html>");
    Ok(page)
}

/// The run's setting: profile, machine, software, build, and the scheduler warning.
fn header(page: &mut String, results: &Results) {
    let environment = &results.environment;
    let _ = write!(
        page,
        "<p>Run {name}, profile <b>{profile}</b>, {duration} s per level. {cpus} × {cpu}; kernel {kernel}; \
         PostgreSQL {postgres}; {wrk}; commit <code>{commit}</code>. The runner itself used {runner:.1} s of CPU.</p>",
        name = escape(&results.name),
        profile = escape(&results.profile.name),
        duration = results.profile.duration_seconds,
        cpus = environment.logical_cpus,
        cpu = escape(&environment.cpu_model),
        kernel = escape(&environment.kernel),
        postgres = escape(&environment.postgres_version),
        wrk = escape(&environment.wrk_version),
        commit = escape(&environment.git_commit),
        runner = results.runner_cpu_seconds,
    );
    if let Some(build) = &environment.build {
        let _ = write!(
            page,
            "<p>Servers built with the {}.</p>",
            escape(&build.describe())
        );
    }
    if let Some(note) = environment.scheduler_note() {
        let _ = write!(page, "<p><b>Note:</b> {}</p>", escape(note));
    }
}

/// A checkbox per test and per type; the script hides what is unticked.
fn filters(page: &mut String, results: &Results) {
    let mut tests: Vec<&str> = results
        .raw_data
        .values()
        .flat_map(|tests| tests.keys().map(String::as_str))
        .collect();
    tests.sort_unstable();
    tests.dedup();
    page.push_str("<div id=\"filters\" hidden><p>Tests: ");
    for test in tests {
        let _ = write!(
            page,
            "<label><input type=\"checkbox\" name=\"test\" value=\"{0}\" checked> {0}</label>",
            escape(test)
        );
    }
    page.push_str("</p><p>Types: ");
    for test_type in ranking::types(results) {
        let _ = write!(
            page,
            "<label><input type=\"checkbox\" name=\"type\" value=\"{0}\" checked> {0}</label>",
            escape(test_type)
        );
    }
    page.push_str("</p></div>");
}

/// The tests as bars, fastest first, with requests/s, % of the best and the level.
fn ranking_table(page: &mut String, test_type: &str, tests: &BTreeMap<String, Vec<Entry>>) {
    let ranked = ranking::rank(test_type, tests);
    let _ = write!(
        page,
        "<p class=\"note\">Requests/s, {}.</p>",
        escape(&ranking::headline_rule(test_type))
    );
    if ranked.is_empty() {
        page.push_str("<p>No test measured anything.</p>");
        return;
    }
    page.push_str(
        "<table class=\"ranking\"><tr><th>#</th><th class=\"name\">test</th><th class=\"name\">requests/s</th>\
         <th>req/s</th><th>% of best</th><th>level</th></tr>",
    );
    for (
        place,
        Ranked {
            test,
            entry,
            share_of_best,
        },
    ) in ranked.iter().enumerate()
    {
        let _ = write!(
            page,
            "<tr data-test=\"{test}\"><td>{place}</td><td class=\"name\">{test}</td>{bar}<td>{rps}</td>\
             <td>{share:.1} %</td><td>{level}</td></tr>",
            test = escape(test),
            place = place + 1,
            bar = bar(*share_of_best, ""),
            rps = thousands(entry.requests_per_second),
            share = 100.0 * share_of_best,
            level = escape(&entry.level()),
        );
    }
    page.push_str("</table>");
}

/// wrk's percentiles at each test's headline level, then the fixed-rate runs.
fn latency_tables(
    page: &mut String,
    test_type: &str,
    tests: &BTreeMap<String, Vec<Entry>>,
    results: &Results,
) -> anyhow::Result<()> {
    let ranked = ranking::rank(test_type, tests);
    if !ranked.is_empty() {
        page.push_str(
            "<p class=\"note\">wrk at the headline level, in ms. wrk sends a connection's next request only \
             after the last answer, so a server that stalls delays the requests wrk would have sent and \
             their waiting is never counted (coordinated omission); the fixed-rate runs below count it.</p>\
             <table><tr><th class=\"name\">test</th><th>level</th><th>p50</th><th>p75</th><th>p90</th>\
             <th>p99</th><th>max</th></tr>",
        );
        for Ranked { test, entry, .. } in &ranked {
            let latency = &entry.latency_ms;
            let _ = write!(
                page,
                "<tr data-test=\"{test}\"><td class=\"name\">{test}</td><td>{level}</td><td>{:.2}</td>\
                 <td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                latency.p50,
                latency.p75,
                latency.p90,
                latency.p99,
                latency.max,
                test = escape(test),
                level = escape(&entry.level()),
            );
        }
        page.push_str("</table>");
    }
    let Some(fixed) = results.fixed_rate.get(test_type) else {
        page.push_str(
            "<p class=\"note\">No fixed-rate runs (<code>tfb benchmark --latency-rates</code>).</p>",
        );
        return Ok(());
    };
    page.push_str(
        "<p class=\"note\">At fixed fractions of each test's peak requests/s, latency corrected for \
         coordinated omission (counted from when each request was due), in ms.</p>",
    );
    page.push_str(&fixed_rate_chart(
        &format!("{test_type}: p99 at fixed rates (ms)"),
        fixed,
        |entry| entry.latency_ms.p99,
    )?);
    page.push_str(
        "<table class=\"fixed-rate\"><tr><th class=\"name\">test</th><th>of peak</th><th>asked req/s</th>\
         <th>served req/s</th><th>connections</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th>\
         <th>max</th><th>errors</th></tr>",
    );
    for (test, entries) in fixed {
        for entry in entries {
            fixed_rate_row(page, test, entry);
        }
    }
    page.push_str("</table>");
    Ok(())
}

fn fixed_rate_row(page: &mut String, test: &str, entry: &FixedRateEntry) {
    let test = escape(test);
    let _ = write!(
        page,
        "<tr data-test=\"{test}\"><td class=\"name\">{test}</td><td>{:.0} %</td><td>{}</td>",
        100.0 * entry.fraction,
        thousands(entry.target_rate),
    );
    if let Some(error) = &entry.error {
        let _ = write!(
            page,
            "<td colspan=\"8\" class=\"name\">{}</td></tr>",
            escape(error)
        );
        return;
    }
    let latency = &entry.latency_ms;
    let _ = write!(
        page,
        "<td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td></tr>",
        thousands(entry.achieved_rate),
        entry.connections,
        latency.p50,
        latency.p90,
        latency.p99,
        latency.p999,
        latency.max,
        entry.errors,
    );
}

/// Every level's socket errors and non-2xx answers, and levels that measured nothing.
fn errors_table(page: &mut String, tests: &BTreeMap<String, Vec<Entry>>) {
    page.push_str(
        "<table><tr><th class=\"name\">test</th><th>level</th><th>connect</th><th>read</th><th>write</th>\
         <th>timeout</th><th>non-2xx</th><th>total</th><th class=\"name\">note</th></tr>",
    );
    for (test, entries) in tests {
        for entry in entries {
            let _ = write!(
                page,
                "<tr data-test=\"{test}\"><td class=\"name\">{test}</td><td>{level}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"name\">{note}</td></tr>",
                entry.connect,
                entry.read,
                entry.write,
                entry.timeout,
                entry.non_2xx,
                entry.errors(),
                test = escape(test),
                level = escape(&entry.level()),
                note = escape(entry.error.as_deref().unwrap_or_default()),
            );
        }
    }
    page.push_str("</table>");
}

/// Requests per second of server CPU at the headline level, most efficient first, with memory.
fn efficiency_table(page: &mut String, test_type: &str, tests: &BTreeMap<String, Vec<Entry>>) {
    let mut rows: Vec<(Ranked, Option<f64>)> = ranking::rank(test_type, tests)
        .into_iter()
        .map(|place| (place, ranking::requests_per_cpu_second(place.entry)))
        .collect();
    rows.sort_by(|(_, a), (_, b)| b.unwrap_or(0.0).total_cmp(&a.unwrap_or(0.0)));
    let best = rows
        .first()
        .and_then(|(_, value)| *value)
        .unwrap_or(0.0)
        .max(f64::MIN_POSITIVE);
    page.push_str(
        "<p class=\"note\">At the headline level: requests served per second of the server's CPU \
         (TFB never showed it), the database's CPU per request and the server's peak memory.</p>\
         <table class=\"efficiency\"><tr><th class=\"name\">test</th><th class=\"name\">requests per CPU-second</th>\
         <th>req / CPU-s</th><th>req/s</th><th>level</th><th>database µs / req</th><th>server peak MB</th></tr>",
    );
    for (Ranked { test, entry, .. }, per_cpu_second) in &rows {
        let database_per_request = entry
            .database_cpu_seconds
            .filter(|_| entry.total_requests > 0)
            .map(|seconds| 1e6 * seconds / entry.total_requests as f64);
        let _ = write!(
            page,
            "<tr data-test=\"{test}\"><td class=\"name\">{test}</td>{bar}<td>{per_cpu}</td><td>{rps}</td>\
             <td>{level}</td><td>{database}</td><td>{memory}</td></tr>",
            test = escape(test),
            bar = bar(per_cpu_second.unwrap_or(0.0) / best, ""),
            per_cpu = per_cpu_second.map_or("—".to_owned(), thousands),
            rps = thousands(entry.requests_per_second),
            level = escape(&entry.level()),
            database = optional(database_per_request, 1),
            memory = optional(
                entry
                    .server_peak_memory_bytes
                    .map(|bytes| bytes as f64 / 1e6),
                1
            ),
        );
    }
    page.push_str("</table>");
}

/// The charts of requests/s and p99 per level, and every level's figures.
fn levels(
    page: &mut String,
    test_type: &str,
    tests: &BTreeMap<String, Vec<Entry>>,
) -> anyhow::Result<()> {
    page.push_str("<div class=\"charts\">");
    page.push_str(&levels_chart(
        &format!("{test_type}: requests/s"),
        tests,
        |entry| entry.requests_per_second,
    )?);
    page.push_str(&levels_chart(
        &format!("{test_type}: p99 latency (ms)"),
        tests,
        |entry| entry.latency_ms.p99,
    )?);
    page.push_str(
        "</div><table><tr><th class=\"name\">test</th><th>level</th><th>req/s</th><th>avg</th><th>p50</th><th>p75</th>\
         <th>p90</th><th>p99 (ms)</th><th>errors</th><th>server CPU s</th><th>database CPU s</th>\
         <th>server peak MB</th></tr>",
    );
    for (test, entries) in tests {
        for entry in entries {
            let _ = write!(
                page,
                "<tr data-test=\"{test}\"><td class=\"name\">{test}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td>\
                 <td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&entry.level()),
                entry.requests_per_second,
                entry.latency_ms.avg,
                entry.latency_ms.p50,
                entry.latency_ms.p75,
                entry.latency_ms.p90,
                entry.latency_ms.p99,
                entry.errors(),
                optional(entry.server_cpu_seconds, 2),
                optional(entry.database_cpu_seconds, 2),
                optional(
                    entry
                        .server_peak_memory_bytes
                        .map(|bytes| bytes as f64 / 1e6),
                    2
                ),
                test = escape(test),
            );
        }
    }
    page.push_str("</table>");
    Ok(())
}

fn not_loaded(page: &mut String, results: &Results) {
    if results.skipped.is_empty() {
        return;
    }
    page.push_str("<h3>Not loaded</h3><ul>");
    for (test, reasons) in &results.skipped {
        for (test_type, reason) in reasons {
            let _ = write!(
                page,
                "<li data-test=\"{0}\">{0} {1}: {2}</li>",
                escape(test),
                escape(test_type),
                escape(reason)
            );
        }
    }
    page.push_str("</ul>");
}

/// A horizontal bar cell, `share` of the full width (0 to 1), in the colour of `class` (the
/// style's default when empty).
pub(crate) fn bar(share: f64, class: &str) -> String {
    format!(
        "<td class=\"bar\"><span class=\"{class}\" style=\"width:{:.1}%\"></span></td>",
        100.0 * share.clamp(0.0, 1.0)
    )
}

/// 58812.4 → "58,812".
pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

fn optional(value: Option<f64>, decimals: usize) -> String {
    value.map_or(String::from("—"), |value| format!("{value:.decimals$}"))
}

/// Tabs (the one in the address's `#fragment`, else the first) and the filters. Without it the
/// page shows every tab, and hides the controls that would do nothing.
const SCRIPT: &str = "(function(){\
var buttons=document.querySelectorAll('#tabs button'),sections=document.querySelectorAll('section.tab');\
function show(tab){var known=Array.prototype.some.call(sections,function(s){return s.id==='tab-'+tab;});\
if(!known){tab=sections[0].id.slice(4);}\
sections.forEach(function(s){s.hidden=s.id!=='tab-'+tab;});\
buttons.forEach(function(b){b.setAttribute('aria-selected',String(b.dataset.tab===tab));});}\
buttons.forEach(function(b){b.addEventListener('click',function(){history.replaceState(null,'','#'+b.dataset.tab);show(b.dataset.tab);});});\
var boxes=document.querySelectorAll('#filters input');\
function filter(){var off={};boxes.forEach(function(b){if(!b.checked){off[b.name+':'+b.value]=true;}});\
document.querySelectorAll('[data-test]').forEach(function(e){e.hidden=!!off['test:'+e.dataset.test];});\
document.querySelectorAll('div.type').forEach(function(e){e.hidden=!!off['type:'+e.dataset.type];});}\
boxes.forEach(function(b){b.addEventListener('change',filter);});\
document.getElementById('tabs').hidden=false;document.getElementById('filters').hidden=false;\
show(location.hash.slice(1));filter();})();";

/// One line of a chart: a test's values at some of the x axis' labels.
struct Series<'a> {
    name: &'a str,
    /// (index into the x labels, value).
    points: Vec<(usize, f64)>,
}

/// A line per test over its levels, levels in order on the x axis.
fn levels_chart(
    title: &str,
    tests: &BTreeMap<String, Vec<Entry>>,
    value: impl Fn(&Entry) -> f64,
) -> anyhow::Result<String> {
    let levels: Vec<String> = tests
        .values()
        .max_by_key(|entries| entries.len())
        .map(|entries| entries.iter().map(Entry::level).collect())
        .unwrap_or_default();
    let series: Vec<Series> = tests
        .iter()
        .map(|(test, entries)| Series {
            name: test,
            points: entries
                .iter()
                .enumerate()
                .filter(|(_, entry)| entry.error.is_none())
                .map(|(level, entry)| (level, value(entry)))
                .collect(),
        })
        .collect();
    line_chart(title, &levels, &series)
}

/// A line per test over the fixed rates, as fractions of the peak, on the x axis.
fn fixed_rate_chart(
    title: &str,
    tests: &BTreeMap<String, Vec<FixedRateEntry>>,
    value: impl Fn(&FixedRateEntry) -> f64,
) -> anyhow::Result<String> {
    let mut fractions: Vec<f64> = tests
        .values()
        .flatten()
        .map(|entry| entry.fraction)
        .collect();
    fractions.sort_by(f64::total_cmp);
    fractions.dedup();
    let labels: Vec<String> = fractions
        .iter()
        .map(|fraction| format!("{:.0} % of peak", 100.0 * fraction))
        .collect();
    let series: Vec<Series> = tests
        .iter()
        .map(|(test, entries)| Series {
            name: test,
            points: entries
                .iter()
                .filter(|entry| entry.error.is_none())
                .filter_map(|entry| {
                    let at = fractions.iter().position(|&f| f == entry.fraction)?;
                    Some((at, value(entry)))
                })
                .collect(),
        })
        .collect();
    line_chart(title, &labels, &series)
}

/// An SVG line chart: `x_labels` in order on the x axis, a line and dots per series.
fn line_chart(title: &str, x_labels: &[String], series: &[Series]) -> anyhow::Result<String> {
    let top = series
        .iter()
        .flat_map(|line| line.points.iter().map(|(_, value)| *value))
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d((0..x_labels.len().max(1)).into_segmented(), 0.0..top)
            .map_err(plot_error)?;
        let decimals = if top > 100.0 { 0 } else { 1 };
        chart
            .configure_mesh()
            .x_labels(x_labels.len().max(1))
            .x_label_formatter(&|segment| match segment {
                SegmentValue::CenterOf(index) | SegmentValue::Exact(index) => {
                    x_labels.get(*index).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .y_label_formatter(&|value| format!("{value:.decimals$}"))
            .draw()
            .map_err(plot_error)?;
        for (index, line) in series.iter().enumerate() {
            let colour = PALETTE[index % PALETTE.len()];
            let points: Vec<(SegmentValue<usize>, f64)> = line
                .points
                .iter()
                .map(|&(at, value)| (SegmentValue::CenterOf(at), value))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(plot_error)?
                .label(line.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|point| Circle::new(point, 3, colour.filled())),
                )
                .map_err(plot_error)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_error)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn plot_error<E: std::fmt::Display>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {error}")
}

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(58_812.4), "58,812");
        assert_eq!(thousands(1_319_800.0), "1,319,800");
    }
}
