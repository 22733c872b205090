//! A pre-pass over the raw bytes that matches `{ }`, `< >` and `[ ]`,
//! skipping comments and strings the same way the grammar does.
//!
//! It exists for two reasons. First, pest parses nested messages by
//! recursion, so `{{{{…` from arbitrary input would overflow the stack and
//! abort the process; the pre-pass refuses nesting deeper than
//! [`MAX_DEPTH`] before pest runs. Second, it knows which opening brace was
//! never closed and which closing brace closes nothing, so a pest failure at
//! such a place can be reported as what it is.

use crate::error::{ParseError, ParseErrorKind};
use crate::tree::Span;

/// The deepest nesting of `{`/`<`/`[` accepted. Real nets nest about 4 deep.
pub const MAX_DEPTH: usize = 100;

/// A closing delimiter that does not close the innermost open block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stray {
    pub close: Span,
    /// The block that was open, if any (`{ … >` mismatches it).
    pub open: Option<Span>,
}

/// What the pre-pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Delimiters {
    /// The first closing delimiter that does not match.
    pub first_stray: Option<Stray>,
    /// The innermost block still open at the end of the text.
    pub innermost_unclosed: Option<Span>,
}

pub(crate) fn closing_partner(open: u8) -> u8 {
    match open {
        b'{' => b'}',
        b'<' => b'>',
        _ => b']',
    }
}

pub(crate) fn scan(text: &str) -> Result<Delimiters, ParseError> {
    let bytes = text.as_bytes();
    let mut open: Vec<usize> = Vec::new();
    let mut found = Delimiters::default();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => i = skip_to_line_end(bytes, i),
            quote @ (b'"' | b'\'') => i = skip_string(bytes, i, quote),
            b'{' | b'<' | b'[' => {
                open.push(i);
                if open.len() > MAX_DEPTH {
                    let opener = char::from(bytes[i]);
                    return Err(ParseError::new(
                        ParseErrorKind::Depth,
                        format!("blocks are nested more than {MAX_DEPTH} levels deep"),
                        Span::new(i, i + 1),
                        format!("this `{opener}` is level {}", open.len()),
                        format!(
                            "lvc accepts at most {MAX_DEPTH} nested `{{`, `<` or `[`; \
                             real networks nest only a few levels, so this file is \
                             probably damaged or not a prototxt"
                        ),
                    ));
                }
                i += 1;
            }
            close @ (b'}' | b'>' | b']') => {
                match open.last() {
                    Some(&o) if closing_partner(bytes[o]) == close => {
                        open.pop();
                    }
                    innermost => {
                        if found.first_stray.is_none() {
                            found.first_stray = Some(Stray {
                                close: Span::new(i, i + 1),
                                open: innermost.map(|&o| Span::new(o, o + 1)),
                            });
                        }
                        // A mismatched closer most likely ends the open block
                        // anyway; keep going so the depth check stays meaningful.
                        open.pop();
                    }
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    found.innermost_unclosed = open.last().map(|&o| Span::new(o, o + 1));
    Ok(found)
}

fn skip_to_line_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
        i += 1;
    }
    i
}

/// From an opening quote to just past the closing one, or to the line end
/// for an unterminated string (strings cannot cross lines).
fn skip_string(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' | b'\r' => return i,
            b'\\' => {
                if matches!(bytes.get(i + 1), Some(b'\n' | b'\r') | None) {
                    return i + 1;
                }
                i += 2;
            }
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_delimiters_in_strings_and_comments() {
        let found = scan("a: \"{<[\" # }>]\nb: '\\'}' c { }").unwrap();
        assert_eq!(found, Delimiters::default());
    }

    #[test]
    fn finds_stray_and_unclosed() {
        let found = scan("a { } } b {").unwrap();
        assert_eq!(found.first_stray, Some(Stray { close: Span::new(6, 7), open: None }));
        assert_eq!(found.innermost_unclosed, Some(Span::new(10, 11)));
    }

    #[test]
    fn finds_mismatched_closer() {
        let found = scan("a { >").unwrap();
        assert_eq!(
            found.first_stray,
            Some(Stray { close: Span::new(4, 5), open: Some(Span::new(2, 3)) })
        );
    }

    #[test]
    fn refuses_deep_nesting() {
        let ok = "{".repeat(MAX_DEPTH);
        assert!(scan(&ok).is_ok());
        let deep = "<".repeat(MAX_DEPTH + 1);
        let err = scan(&deep).unwrap_err();
        assert_eq!(err.kind(), ParseErrorKind::Depth);
        assert_eq!(err.span(), Span::new(MAX_DEPTH, MAX_DEPTH + 1));
    }
}
