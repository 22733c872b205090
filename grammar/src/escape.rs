//! C-style escape sequences in string literals, as protobuf's tokenizer
//! decodes them.

use crate::error::{ParseError, ParseErrorKind};
use crate::tree::Span;

const ESCAPE_HELP: &str = "valid escapes are \\n \\t \\r \\\\ \\' \\\" \\? \\a \\b \\f \\v, \
                           octal \\NNN, hex \\xHH, \\uXXXX and \\UXXXXXXXX; write \\\\ for a \
                           literal backslash";

/// Appends the bytes of a string literal's body (between the quotes),
/// which starts at byte `offset` of the source, to `out`.
pub(crate) fn decode_escapes(
    body: &str,
    offset: usize,
    out: &mut Vec<u8>,
) -> Result<(), ParseError> {
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Copy the run up to the next backslash unchanged (it is valid UTF-8).
        let run_end = body[i..].find('\\').map_or(bytes.len(), |n| i + n);
        out.extend_from_slice(&bytes[i..run_end]);
        i = run_end;
        if i >= bytes.len() {
            break;
        }
        let start = i;
        let Some(&letter) = bytes.get(i + 1) else {
            return Err(bad_escape(body, offset, start, i + 1, "a backslash at the end of a line"));
        };
        i += 2;
        match letter {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0C),
            b'v' => out.push(0x0B),
            b'\\' | b'\'' | b'"' | b'?' => out.push(letter),
            b'0'..=b'7' => {
                let end = digits_end(bytes, i - 1, 3, |b| (b'0'..=b'7').contains(&b));
                let code = u32::from_str_radix(&body[i - 1..end], 8).unwrap_or(u32::MAX);
                i = end;
                match u8::try_from(code) {
                    Ok(b) => out.push(b),
                    Err(_) => {
                        return Err(bad_escape(
                            body,
                            offset,
                            start,
                            i,
                            "an octal escape above \\377",
                        ))
                    }
                }
            }
            b'x' | b'X' => {
                let end = digits_end(bytes, i, 2, |b| b.is_ascii_hexdigit());
                if end == i {
                    return Err(bad_escape(body, offset, start, i, "`\\x` without hex digits"));
                }
                // At most two hex digits, so it fits in a byte.
                out.push(u8::from_str_radix(&body[i..end], 16).unwrap_or(0));
                i = end;
            }
            b'u' | b'U' => {
                let width = if letter == b'u' { 4 } else { 8 };
                let code = hex_code(body, i, width).ok_or_else(|| {
                    bad_escape(body, offset, start, i, "a unicode escape without enough hex digits")
                })?;
                i += width;
                let code = if (0xD800..0xDC00).contains(&code) {
                    // A UTF-16 surrogate pair written as two escapes.
                    let low = body[i..]
                        .strip_prefix("\\u")
                        .and_then(|_| hex_code(body, i + 2, 4))
                        .filter(|low| (0xDC00..0xE000).contains(low));
                    match low {
                        Some(low) => {
                            i += 6;
                            0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        None => code,
                    }
                } else {
                    code
                };
                let Some(c) = char::from_u32(code) else {
                    return Err(bad_escape(
                        body,
                        offset,
                        start,
                        i,
                        "a unicode escape that is not a character",
                    ));
                };
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => {
                let end = start + 1 + body[start + 1..].chars().next().map_or(0, char::len_utf8);
                return Err(bad_escape(body, offset, start, end, "an unknown escape sequence"));
            }
        }
    }
    Ok(())
}

/// The end of up to `max` bytes from `from` that satisfy `accept`.
fn digits_end(bytes: &[u8], from: usize, max: usize, accept: impl Fn(u8) -> bool) -> usize {
    let mut end = from;
    while end < bytes.len() && end - from < max && accept(bytes[end]) {
        end += 1;
    }
    end
}

fn hex_code(body: &str, from: usize, width: usize) -> Option<u32> {
    let digits = body.get(from..from + width)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

fn bad_escape(body: &str, offset: usize, start: usize, end: usize, what: &str) -> ParseError {
    let end = end.min(body.len());
    let escape = &body[start..end];
    ParseError::new(
        ParseErrorKind::String,
        format!("bad escape sequence `{escape}` in string"),
        Span::new(offset + start, offset + end),
        what,
        ESCAPE_HELP,
    )
}
