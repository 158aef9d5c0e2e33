//! The fortunes page: the extra fortune, the sort, and the sailfish template that escapes and
//! renders the rows into one pre-sized buffer.

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

/// Adds the request-time fortune, sorts by message in code-point order (Rust's `str` ordering is
/// byte order, which equals code-point order for UTF-8) and renders the HTML page.
pub fn render_page(mut fortunes: Vec<Fortune<'_>>) -> Bytes {
    fortunes.push(Fortune {
        id: 0,
        message: ADDITIONAL_FORTUNE,
    });
    fortunes.sort_unstable_by(|left, right| left.message.cmp(right.message));
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
}
