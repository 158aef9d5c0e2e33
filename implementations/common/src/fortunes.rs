//! The fortunes page: the extra fortune, the sort, the HTML escaping rule, and the sailfish
//! template that escapes and renders the rows into one pre-sized buffer.
//!
//! Implementations whose template engine escapes differently (yarte writes `'` as `&#x27;` and
//! also escapes `/`) render messages through [`escape_html`] instead, so every implementation
//! sends the same bytes for the same rows.

use bytes::Bytes;
use sailfish::{TemplateSimple, runtime::Buffer};

use crate::model::Fortune;

/// The fortune every request adds before sorting; it is never stored.
pub const ADDITIONAL_FORTUNE: &str = "Additional fortune added at request time.";

/// Large enough for the 13-row page (about 1.2 KiB) so rendering never reallocates.
const PAGE_CAPACITY: usize = 2048;

#[derive(TemplateSimple)]
#[template(path = "fortunes.stpl")]
struct FortunesPage<'a> {
    fortunes: &'a [Fortune<'a>],
}

/// Adds the request-time fortune and sorts by message in code-point order (Rust's `str` ordering
/// is byte order, which equals code-point order for UTF-8): the rows every page shows.
pub fn add_and_sort(fortunes: &mut Vec<Fortune<'_>>) {
    fortunes.push(Fortune {
        id: 0,
        message: ADDITIONAL_FORTUNE,
    });
    fortunes.sort_unstable_by(|left, right| left.message.cmp(right.message));
}

/// Escapes `text` for HTML exactly as sailfish does (`"` `&` `'` `<` `>` become `&quot;` `&amp;`
/// `&#039;` `&lt;` `&gt;`), handing the output to `write` in pieces: runs of text that need no
/// escaping, and entities.
pub fn escape_html(text: &str, mut write: impl FnMut(&str)) {
    let mut unescaped_from = 0;
    for (index, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'"' => "&quot;",
            b'&' => "&amp;",
            b'\'' => "&#039;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            _ => continue,
        };
        // Every escaped byte is ASCII, so these indices are character boundaries.
        if unescaped_from < index {
            write(&text[unescaped_from..index]);
        }
        write(entity);
        unescaped_from = index + 1;
    }
    if unescaped_from < text.len() {
        write(&text[unescaped_from..]);
    }
}

/// Adds the request-time fortune, sorts, and renders the HTML page.
pub fn render_page(mut fortunes: Vec<Fortune<'_>>) -> Bytes {
    add_and_sort(&mut fortunes);
    let mut page = Buffer::with_capacity(PAGE_CAPACITY);
    FortunesPage {
        fortunes: &fortunes,
    }
    .render_once_to(&mut page)
    .expect("rendering integers and strings cannot fail");
    Bytes::from(page.into_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_escapes_and_adds_the_extra_fortune() {
        let page = render_page(vec![
            Fortune {
                id: 2,
                message: "b & 'c'",
            },
            Fortune {
                id: 1,
                message: "<a href=\"x\">",
            },
        ]);
        assert_eq!(
            std::str::from_utf8(&page).unwrap(),
            "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>\
             <tr><th>id</th><th>message</th></tr>\
             <tr><td>1</td><td>&lt;a href=&quot;x&quot;&gt;</td></tr>\
             <tr><td>0</td><td>Additional fortune added at request time.</td></tr>\
             <tr><td>2</td><td>b &amp; &#039;c&#039;</td></tr>\
             </table></body></html>"
        );
    }

    #[test]
    fn escape_html_matches_sailfish() {
        let mut samples: Vec<String> = (0u8..128)
            .map(|byte| char::from(byte).to_string())
            .collect();
        samples.extend(
            [
                "",
                "plain text",
                "<script>alert(\"This should not be displayed in a browser alert box.\");</script>",
                "'&'<>\"x\"",
                "フレームワークのベンチマーク & <日本語>",
                "ends with &",
                "&starts",
            ]
            .map(str::to_owned),
        );
        for sample in samples {
            let mut ours = String::new();
            escape_html(&sample, |piece| ours.push_str(piece));
            let mut sailfish = String::new();
            sailfish::runtime::escape::escape_to_string(&sample, &mut sailfish);
            assert_eq!(ours, sailfish, "escaping {sample:?}");
        }
    }
}
