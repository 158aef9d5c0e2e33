//! The readable report the `conformance` command and the runner print: a verdict line per type,
//! then every warn and fail with its check, URL, message and a hint; strict results marked.

use crate::{Level, Report};

/// The readable report: a verdict line per type, then every warn and fail with its URL and a
/// hint, strict results marked as ours.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for type_report in &report.types {
        let strict_note = if type_report.strict_verdict > type_report.verdict {
            format!(" (strict: {})", type_report.strict_verdict)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{:<9} {:<4}{strict_note}  {} ({:.1} s)\n",
            type_report.test_type,
            type_report.verdict,
            type_report.url,
            type_report.elapsed.as_secs_f64()
        ));
        for finding in type_report
            .findings
            .iter()
            .filter(|finding| finding.level != Level::Pass)
        {
            let origin = if finding.strict {
                "strict, beyond TFB"
            } else {
                "TFB"
            };
            out.push_str(&format!(
                "  {} [{}] {} ({origin})\n",
                finding.level,
                finding.check_name(),
                finding.url
            ));
            for line in finding.message.lines() {
                out.push_str(&format!("      {line}\n"));
            }
            if let Some(hint) = finding.check.and_then(|check| check.check.hint()) {
                out.push_str(&format!("      hint: {hint}\n"));
            }
        }
    }
    out.push_str(&format!(
        "TFB verdict: {}; strict verdict: {}; {:.1} s, of which {:.1} s waiting for a quiet database\n",
        report.verdict(),
        report.strict_verdict(),
        report.elapsed.as_secs_f64(),
        report.quiet_wait.as_secs_f64()
    ));
    out.push_str(
        "Strict results are checks TFB did not make; they never change the TFB verdict.\n",
    );
    out
}
