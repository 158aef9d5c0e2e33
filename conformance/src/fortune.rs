//! The fortunes page check: TFB's normalising HTML parser, the expected normalised document, and
//! the line diff TFB reports when they differ.
//!
//! The parser behaves like TFB's `FortuneHTMLParser` (a Python `HTMLParser` with character
//! references left unconverted): lower-cased doctype, tags without attributes, newlines after
//! `<html>`, `<table>`, `</head>` and `</tr>`, `<meta>`/`<link>`/`<thead>`/`<tbody>` dropped,
//! `<script>` elements removed, whitespace-only text dropped, `'` `"` `>` in text written as
//! entities, `&mdash;` turned into `—`, a few numeric references normalised and all others dropped.

use crate::report::Finding;

/// The normalised page every correct implementation produces.
pub const EXPECTED: &str = "<!doctype html><html>\n\
<head><title>Fortunes</title></head>\n\
<body><table>\n\
<tr><th>id</th><th>message</th></tr>\n\
<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser alert box.&quot;);&lt;/script&gt;</td></tr>\n\
<tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr>\n\
<tr><td>5</td><td>A computer program does what you tell it to do, not what you want it to do.</td></tr>\n\
<tr><td>2</td><td>A computer scientist is someone who fixes things that aren&apos;t broken.</td></tr>\n\
<tr><td>8</td><td>A list is only as strong as its weakest link. \u{2014} Donald Knuth</td></tr>\n\
<tr><td>0</td><td>Additional fortune added at request time.</td></tr>\n\
<tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>\n\
<tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>\n\
<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>\n\
<tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. \u{2014} Tom Christaensen</td></tr>\n\
<tr><td>9</td><td>Feature: A bug with seniority.</td></tr>\n\
<tr><td>1</td><td>fortune: No such file or directory</td></tr>\n\
<tr><td>12</td><td>\u{30d5}\u{30ec}\u{30fc}\u{30e0}\u{30ef}\u{30fc}\u{30af}\u{306e}\u{30d9}\u{30f3}\u{30c1}\u{30de}\u{30fc}\u{30af}</td></tr>\n\
</table></body></html>";

/// Checks a fortunes body: empty, not UTF-8, or different from [`EXPECTED`] after normalising.
/// An empty result means the page is valid.
pub fn verify_page(body: &[u8], url: &str) -> Result<Vec<Finding>, String> {
    if body.is_empty() {
        return Ok(vec![Finding::fail("Empty response", url)]);
    }
    let text = std::str::from_utf8(body).map_err(|error| python_decode_error(body, error))?;
    let normalised = normalise(text);
    if normalised == EXPECTED {
        return Ok(Vec::new());
    }
    let mut findings = vec![Finding::fail("Invalid according to FortuneHTMLParser", url)];
    for (got, expected) in diff_hunks(&normalised, EXPECTED) {
        findings.push(Finding::fail(
            format!("`{got}` should be `{expected}`"),
            url,
        ));
    }
    Ok(findings)
}

/// Runs TFB's normalising parser over an HTML page.
pub fn normalise(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let bytes = html.as_bytes();
    let mut position = 0;
    let mut text_start = 0;
    let flush_text = |out: &mut String, text: &str| {
        if !text.trim().is_empty() {
            for character in text.chars() {
                match character {
                    '\'' => out.push_str("&apos;"),
                    '"' => out.push_str("&quot;"),
                    '>' => out.push_str("&gt;"),
                    other => out.push(other),
                }
            }
        }
    };
    // Markup that is never closed makes every later `<` scan to the end again; these two
    // horizons keep the parse linear. Past the last `>`, no tag can end. After a tag that ran to
    // the end unclosed (an open quote), the rest is text: such a page fails anyway, as a valid
    // one has neither.
    let tags_end_before = html.rfind('>').map_or(0, |last| last + 1);
    let mut unclosed_tag_at = None;
    while position < bytes.len() {
        let rest = &html[position..];
        let markup = match bytes[position] {
            b'<' if rest.starts_with("<!--") => parse_markup(rest),
            b'<' if position < tags_end_before && unclosed_tag_at.is_none() => {
                let markup = parse_markup(rest);
                if markup.is_none() && ends_unclosed(rest) {
                    unclosed_tag_at = Some(position);
                }
                markup
            }
            b'&' => parse_reference(rest),
            _ => None,
        };
        let Some((length, token)) = markup else {
            position += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        flush_text(&mut out, &html[text_start..position]);
        position += length;
        match token {
            Token::Start { name, self_closing } => {
                if name == "script" {
                    // Python's parser reads a script's content as raw text; TFB drops it all.
                    let close = find_ignoring_case(&html[position..], "</script");
                    position = match close {
                        Some(offset) => {
                            let end = html[position + offset..]
                                .find('>')
                                .map_or(html.len(), |gt| position + offset + gt + 1);
                            end.min(html.len())
                        }
                        None => html.len(),
                    };
                } else if !DROPPED.contains(&name.as_str()) {
                    out.push('<');
                    out.push_str(&name);
                    out.push('>');
                    if name == "html" || name == "table" {
                        out.push('\n');
                    }
                    if self_closing {
                        push_end(&mut out, &name);
                    }
                }
            }
            Token::End(name) => {
                if !DROPPED.contains(&name.as_str()) && name != "script" {
                    push_end(&mut out, &name);
                }
            }
            Token::Declaration(declaration) => {
                out.push_str("<!");
                out.push_str(&declaration.to_lowercase());
                out.push('>');
            }
            Token::Ignored => {}
            Token::Entity(name) => {
                if name == "mdash" {
                    out.push('\u{2014}');
                } else {
                    out.push('&');
                    out.push_str(&name);
                    out.push(';');
                }
            }
            Token::CharRef(value) => out.push_str(normalised_char_ref(&value)),
        }
        text_start = position;
    }
    flush_text(&mut out, &html[text_start..]);
    out
}

/// Where `needle` (ASCII) first occurs in `haystack`, in any case, without copying it.
fn find_ignoring_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// True when `rest` (starting at a `<`) opens a start tag whose attributes run to the end of
/// the input without a closing `>` outside quotes.
fn ends_unclosed(rest: &str) -> bool {
    rest[1..].starts_with(|character: char| character.is_ascii_alphabetic())
}

/// Tags whose start and end tokens TFB's parser drops.
const DROPPED: [&str; 4] = ["meta", "link", "thead", "tbody"];

fn push_end(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
    if name == "tr" || name == "head" {
        out.push('\n');
    }
}

enum Token {
    Start { name: String, self_closing: bool },
    End(String),
    Declaration(String),
    Ignored,
    Entity(String),
    CharRef(String),
}

/// Markup at the start of `rest` (which begins with `<`), with its length; `None` when the `<`
/// is plain text, as Python's parser treats a `<` not followed by a tag.
fn parse_markup(rest: &str) -> Option<(usize, Token)> {
    let after = &rest[1..];
    if let Some(comment) = after.strip_prefix("!--") {
        let end = comment.find("-->").map_or(rest.len(), |end| 4 + end + 3);
        return Some((end, Token::Ignored));
    }
    if let Some(declaration) = after.strip_prefix('!') {
        let end = declaration.find('>')?;
        return Some((
            2 + end + 1,
            Token::Declaration(declaration[..end].to_owned()),
        ));
    }
    if after.starts_with('?') {
        let end = after.find('>')?;
        return Some((1 + end + 1, Token::Ignored));
    }
    if let Some(closing) = after.strip_prefix('/') {
        if !closing.starts_with(|character: char| character.is_ascii_alphabetic()) {
            return None;
        }
        let end = closing.find('>')?;
        let name: String = closing[..end]
            .chars()
            .take_while(|character| !character.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        return Some((2 + end + 1, Token::End(name)));
    }
    if !after.starts_with(|character: char| character.is_ascii_alphabetic()) {
        return None;
    }
    let name_length = after
        .find(|character: char| character.is_whitespace() || character == '>' || character == '/')
        .unwrap_or(after.len());
    let name = after[..name_length].to_ascii_lowercase();
    // Skip the attributes, honouring quotes, up to the closing '>'.
    let attributes = &after[name_length..];
    let mut quote = None;
    for (offset, character) in attributes.char_indices() {
        match (quote, character) {
            (Some(open), current) if current == open => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(character),
            (None, '>') => {
                let self_closing = attributes[..offset].trim_end().ends_with('/');
                return Some((
                    1 + name_length + offset + 1,
                    Token::Start { name, self_closing },
                ));
            }
            (None, _) => {}
        }
    }
    None
}

/// A character or entity reference at the start of `rest` (which begins with `&`).
fn parse_reference(rest: &str) -> Option<(usize, Token)> {
    let after = &rest[1..];
    if let Some(number) = after.strip_prefix('#') {
        let (digits, hex) = match number.strip_prefix(['x', 'X']) {
            Some(hex_digits) => (hex_digits, true),
            None => (number, false),
        };
        let length = digits
            .find(|character: char| {
                !(if hex {
                    character.is_ascii_hexdigit()
                } else {
                    character.is_ascii_digit()
                })
            })
            .unwrap_or(digits.len());
        if length == 0 {
            return None;
        }
        let consumed_semicolon = usize::from(digits[length..].starts_with(';'));
        let prefix = 2 + usize::from(hex);
        let value = if hex {
            format!("x{}", &digits[..length])
        } else {
            digits[..length].to_owned()
        };
        return Some((prefix + length + consumed_semicolon, Token::CharRef(value)));
    }
    let length = after
        .find(|character: char| !character.is_ascii_alphanumeric())
        .unwrap_or(after.len());
    if length == 0 || !after[length..].starts_with(';') {
        return None;
    }
    Some((1 + length + 1, Token::Entity(after[..length].to_owned())))
}

/// TFB's table of numeric references it understands; every other one is dropped.
fn normalised_char_ref(value: &str) -> &'static str {
    let code = match value.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    };
    match code {
        Some(34) => "&quot;",
        Some(39) => "&apos;",
        Some(43) => "+",
        Some(62) => "&gt;",
        Some(60) => "&lt;",
        Some(47) => "/",
        Some(40) => "(",
        Some(41) => ")",
        _ => "",
    }
}

/// How many lines of a page the diff compares.
const MAX_DIFF_LINES: usize = 200;

/// The hunks of a line diff with no context, as (response lines, expected lines) joined.
fn diff_hunks(got: &str, expected: &str) -> Vec<(String, String)> {
    // A page of thousands of lines is wrong from the start; its first lines say how, and the
    // table below stays small.
    let got: Vec<&str> = got.split('\n').take(MAX_DIFF_LINES).collect();
    let expected: Vec<&str> = expected.split('\n').collect();
    // Longest common subsequence over lines; pages are a few dozen lines long.
    let mut lengths = vec![vec![0usize; expected.len() + 1]; got.len() + 1];
    for i in (0..got.len()).rev() {
        for j in (0..expected.len()).rev() {
            lengths[i][j] = if got[i] == expected[j] {
                lengths[i + 1][j + 1] + 1
            } else {
                lengths[i + 1][j].max(lengths[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut hunks = Vec::new();
    let mut current: Option<(Vec<&str>, Vec<&str>)> = None;
    while i < got.len() || j < expected.len() {
        if i < got.len() && j < expected.len() && got[i] == expected[j] {
            hunks.extend(current.take());
            i += 1;
            j += 1;
        } else if j < expected.len() && (i == got.len() || lengths[i][j + 1] >= lengths[i + 1][j]) {
            current
                .get_or_insert_with(Default::default)
                .1
                .push(expected[j]);
            j += 1;
        } else {
            current.get_or_insert_with(Default::default).0.push(got[i]);
            i += 1;
        }
    }
    hunks.extend(current.take());
    hunks
        .into_iter()
        .map(|(got, expected)| (got.concat(), expected.concat()))
        .collect()
}

/// Python's `UnicodeDecodeError` text for `body.decode()`, which TFB's fortunes check raised on a
/// page that is not UTF-8.
fn python_decode_error(body: &[u8], error: std::str::Utf8Error) -> String {
    let position = error.valid_up_to();
    let byte = body[position];
    let reason = match error.error_len() {
        None => {
            let end = body.len() - 1;
            return if end == position {
                format!(
                    "'utf-8' codec can't decode byte {byte:#04x} in position {position}: unexpected end of data"
                )
            } else {
                format!(
                    "'utf-8' codec can't decode bytes in position {position}-{end}: unexpected end of data"
                )
            };
        }
        Some(_) if matches!(byte, 0x80..=0xc1 | 0xf5..=0xff) => "invalid start byte",
        Some(_) => "invalid continuation byte",
    };
    format!("'utf-8' codec can't decode byte {byte:#04x} in position {position}: {reason}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn decode_errors_read_as_python_words_them() {
        let error =
            |bytes: &[u8]| python_decode_error(bytes, std::str::from_utf8(bytes).unwrap_err());
        assert_eq!(
            error(b"ab\xe9\xe8"),
            "'utf-8' codec can't decode byte 0xe9 in position 2: invalid continuation byte"
        );
        assert_eq!(
            error(b"\xff"),
            "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
        );
        assert_eq!(
            error(b"a\xe2\x82"),
            "'utf-8' codec can't decode bytes in position 1-2: unexpected end of data"
        );
        assert_eq!(
            error(b"a\xe2"),
            "'utf-8' codec can't decode byte 0xe2 in position 1: unexpected end of data"
        );
    }

    use super::*;

    /// A correct page as our implementations write it (sailfish's escaping).
    fn page(rows: &str) -> String {
        format!(
            "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>\
             <tr><th>id</th><th>message</th></tr>{rows}</table></body></html>"
        )
    }

    const ROWS: &str = "<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser alert box.&quot;);&lt;/script&gt;</td></tr>\
        <tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr>\
        <tr><td>5</td><td>A computer program does what you tell it to do, not what you want it to do.</td></tr>\
        <tr><td>2</td><td>A computer scientist is someone who fixes things that aren&#039;t broken.</td></tr>\
        <tr><td>8</td><td>A list is only as strong as its weakest link. \u{2014} Donald Knuth</td></tr>\
        <tr><td>0</td><td>Additional fortune added at request time.</td></tr>\
        <tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>\
        <tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>\
        <tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>\
        <tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. \u{2014} Tom Christaensen</td></tr>\
        <tr><td>9</td><td>Feature: A bug with seniority.</td></tr>\
        <tr><td>1</td><td>fortune: No such file or directory</td></tr>\
        <tr><td>12</td><td>\u{30d5}\u{30ec}\u{30fc}\u{30e0}\u{30ef}\u{30fc}\u{30af}\u{306e}\u{30d9}\u{30f3}\u{30c1}\u{30de}\u{30fc}\u{30af}</td></tr>";

    #[test]
    fn accepts_equivalent_spellings() {
        assert_eq!(normalise(&page(ROWS)), EXPECTED);
        let variants = [
            page(ROWS).replace("<!DOCTYPE html>", "<!doctype HTML>"),
            page(ROWS).replace("&#039;", "'"),
            page(ROWS).replace("&#039;", "&#x27;"),
            page(ROWS).replace("&quot;", "&#34;"),
            page(ROWS)
                .replace("<html>", "<html lang=\"en\">")
                .replace("<head>", "<head><meta charset=\"utf-8\">"),
            page(ROWS)
                .replace("<table>", "<table>\n  <thead>")
                .replace("</th></tr>", "</th></tr></thead><tbody>")
                .replace("</table>", "</tbody></table>"),
            page(ROWS).replace("\u{2014}", "&mdash;"),
            page(ROWS).replace("<tr>", "\n    <tr>"),
        ];
        for variant in variants {
            assert_eq!(normalise(&variant), EXPECTED, "{variant}");
        }
    }

    #[test]
    fn rejects_what_tfb_rejects() {
        let broken = [
            page(ROWS).replace("\u{2014}", "&#8212;"),
            page(ROWS).replace("&lt;", "&amp;lt;"),
            page(ROWS).replace("&lt;script&gt;", "<script>"),
            page(ROWS).replace("</td></tr><tr><td>4", "</tr><tr><td>4"),
            page(ROWS)
                .replace("<body>", "<body><div>")
                .replace("</body>", "</div></body>"),
            page(ROWS).replace("<head>", "<head><style>td{}</style>"),
            page(ROWS).replace("<td>11</td>", "<td> 11 </td>"),
            page(ROWS).replace("<!DOCTYPE html>", ""),
            page(ROWS).replace("<td>4</td>", "<td>04</td>"),
        ];
        for page in broken {
            let findings = verify_page(page.as_bytes(), "/fortunes").unwrap();
            assert!(findings.len() >= 2, "should fail: {page}");
            assert_eq!(
                findings[0].message,
                "Invalid according to FortuneHTMLParser"
            );
        }
    }

    #[test]
    fn diff_names_the_wrong_line() {
        let page = page(ROWS).replace("UNIX", "Unix");
        let findings = verify_page(page.as_bytes(), "/fortunes").unwrap();
        assert_eq!(findings.len(), 2);
        assert!(
            findings[1].message.contains("I prefer Unix")
                && findings[1].message.contains("should be")
        );
    }

    /// Inputs that made the parser scan to the end again for every `<` (an open tag with no `>`,
    /// an open quote, a script close searched in a lowercased copy of the rest): 1 MiB each, the
    /// verifier's body limit. Before, each took minutes to hours; now they end at once.
    #[test]
    fn pathological_pages_parse_in_linear_time() {
        const SIZE: usize = 1 << 20;
        let repeat = |unit: &str| unit.repeat(SIZE / unit.len());
        let pages = [
            repeat("<a "),
            format!("<p \"{}>", repeat("<b ")),
            repeat("<script>x</script>"),
            repeat("</a"),
            repeat("\n<td>"),
        ];
        for page in pages {
            let findings = verify_page(page.as_bytes(), "/fortunes").unwrap();
            assert_eq!(
                findings[0].message,
                "Invalid according to FortuneHTMLParser"
            );
        }
    }
}
