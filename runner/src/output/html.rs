//! `report.html`: one self-contained page (no scripts, styles or images from anywhere else) with,
//! per test type, charts of requests/s and p99 latency per level for every test, and a table of
//! every level's figures. Charts are SVG drawn with plotters, inlined in the page.

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::results::{Entry, Results};

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

pub fn render(results: &Results) -> anyhow::Result<String> {
    let mut page = String::new();
    let environment = &results.environment;
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Benchmark {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:75em}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
         .charts{{display:flex;flex-wrap:wrap;gap:1em}}</style></head><body>\
         <h1>Benchmark {name}</h1><p>Profile <b>{profile}</b>, {duration} s per level. {cpus} × {cpu}; kernel {kernel}; \
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
    for (test_type, tests) in &results.raw_data {
        let _ = write!(page, "<h2>{}</h2><div class=\"charts\">", escape(test_type));
        page.push_str(&chart(
            &format!("{test_type}: requests/s"),
            tests,
            |entry| entry.requests_per_second,
        )?);
        page.push_str(&chart(
            &format!("{test_type}: p99 latency (ms)"),
            tests,
            |entry| entry.latency_ms.p99,
        )?);
        page.push_str("</div><table><tr><th>test</th><th>level</th><th>req/s</th><th>avg</th><th>p50</th><th>p75</th>\
                       <th>p90</th><th>p99 (ms)</th><th>errors</th><th>server CPU s</th><th>database CPU s</th>\
                       <th>server peak MB</th></tr>");
        for (test, entries) in tests {
            for entry in entries {
                let errors = entry.errors();
                let optional = |value: Option<f64>| {
                    value.map_or(String::from("—"), |value| format!("{value:.2}"))
                };
                let _ = write!(
                    page,
                    "<tr><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td>\
                     <td>{:.2}</td><td>{errors}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(test),
                    escape(&entry.level()),
                    entry.requests_per_second,
                    entry.latency_ms.avg,
                    entry.latency_ms.p50,
                    entry.latency_ms.p75,
                    entry.latency_ms.p90,
                    entry.latency_ms.p99,
                    optional(entry.server_cpu_seconds),
                    optional(entry.database_cpu_seconds),
                    optional(
                        entry
                            .server_peak_memory_bytes
                            .map(|bytes| bytes as f64 / 1e6)
                    ),
                );
            }
        }
        page.push_str("</table>");
    }
    if !results.skipped.is_empty() {
        page.push_str("<h2>Not loaded</h2><ul>");
        for (test, reasons) in &results.skipped {
            for (test_type, reason) in reasons {
                let _ = write!(
                    page,
                    "<li>{} {}: {}</li>",
                    escape(test),
                    escape(test_type),
                    escape(reason)
                );
            }
        }
        page.push_str("</ul>");
    }
    page.push_str("</body></html>\n");
    Ok(page)
}

/// A line per test over its levels, levels in order on the x axis.
fn chart(
    title: &str,
    tests: &std::collections::BTreeMap<String, Vec<Entry>>,
    value: impl Fn(&Entry) -> f64,
) -> anyhow::Result<String> {
    let levels: Vec<String> = tests
        .values()
        .max_by_key(|entries| entries.len())
        .map(|entries| entries.iter().map(Entry::level).collect())
        .unwrap_or_default();
    let top = tests
        .values()
        .flatten()
        .filter(|entry| entry.error.is_none())
        .map(&value)
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
            .build_cartesian_2d((0..levels.len().max(1)).into_segmented(), 0.0..top)
            .map_err(plot_error)?;
        let decimals = if top > 100.0 { 0 } else { 1 };
        chart
            .configure_mesh()
            .x_labels(levels.len().max(1))
            .x_label_formatter(&|segment| match segment {
                SegmentValue::CenterOf(index) | SegmentValue::Exact(index) => {
                    levels.get(*index).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .y_label_formatter(&|value| format!("{value:.decimals$}"))
            .draw()
            .map_err(plot_error)?;
        for (index, (test, entries)) in tests.iter().enumerate() {
            let colour = PALETTE[index % PALETTE.len()];
            let points: Vec<(SegmentValue<usize>, f64)> = entries
                .iter()
                .enumerate()
                .filter(|(_, entry)| entry.error.is_none())
                .map(|(level, entry)| (SegmentValue::CenterOf(level), value(entry)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(plot_error)?
                .label(test.as_str())
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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
