//! The fortunes page rendered with yarte straight into the connection's body buffer.
//!
//! Messages go through `tfb_common::fortunes::escape_html` rather than yarte's own escaping
//! (which writes `'` as `&#x27;` and escapes `/` too), so this page is byte for byte the page
//! the sailfish-based implementations send; the test below proves it.

use bytes::BytesMut;
use tfb_common::{fortunes::escape_html, model::Fortune};
use yarte::{Buffer, RenderBytesSafe, TemplateBytes};

#[derive(TemplateBytes)]
#[template(path = "fortunes")]
struct FortunesPage<'a> {
    fortunes: &'a [Fortune<'a>],
}

/// A message to be written escaped by the shared rule.
#[derive(Clone, Copy)]
struct Escaped<'a>(&'a str);

impl RenderBytesSafe for Escaped<'_> {
    fn render<B: Buffer>(self, buf: &mut B) {
        escape_html(self.0, |piece| buf.extend(piece));
    }
}

/// Renders the page for `fortunes` (already completed and sorted) into `body`.
pub fn render_into(fortunes: &[Fortune<'_>], body: &mut BytesMut) {
    FortunesPage { fortunes }.write_call(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfb_common::fortunes::{add_and_sort, render_page};

    /// Messages like the stored fortunes (non-ASCII, a script tag) and every escaped byte in odd places.
    const MESSAGES: [&str; 16] = [
        "fortune: No such file or directory",
        "A computer scientist is someone who fixes things that aren't broken.",
        "After enough decimal places, nobody gives a damn.",
        "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1",
        "A computer program does what you tell it to do, not what you want it to do.",
        "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen",
        "Any program that runs right is obsolete.",
        "A list is only as strong as its weakest link. — Donald Knuth",
        "Feature: A bug with seniority.",
        "Computers make very fast, very accurate mistakes.",
        "<script>alert(\"This should not be displayed in a browser alert box.\");</script>",
        "フレームワークのベンチマーク",
        "&amp; is already an entity; '&' <&> \"'\" </closing/>",
        "",
        "tabs\tand\nnewlines",
        "ends with an escape <",
    ];

    #[test]
    fn yarte_and_sailfish_pages_are_byte_identical() {
        let rows: Vec<Fortune<'_>> = MESSAGES
            .iter()
            .zip(1..)
            .map(|(&message, id)| Fortune { id, message })
            .collect();
        let sailfish = render_page(rows.clone());

        let mut sorted = rows;
        add_and_sort(&mut sorted);
        let mut yarte = BytesMut::new();
        render_into(&sorted, &mut yarte);

        assert_eq!(
            std::str::from_utf8(&yarte).unwrap(),
            std::str::from_utf8(&sailfish).unwrap()
        );
    }
}
