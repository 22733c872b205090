//! Everything lvc prints goes through [`shown`]: names read from input (case
//! folders, file names, layer names, prototxt snippets in diagnostics) may
//! hold control characters, and printed raw an ESC sequence clears the
//! screen, sets the window title or rewrites what was shown before. They are
//! written as escapes instead (`\x1b`), using the same rule as path
//! components ([`lvc_fsio::name::is_control`]).
//!
//! Kept as they are: newlines and tabs (layout), and SGR sequences
//! (`ESC [ … m`, colours and bold): miette colours its reports on a
//! terminal, and a colour change is all an injected SGR can do.

use std::borrow::Cow;

/// `text` with every control character but `\n`, `\t` and SGR colour
/// sequences written as an escape.
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| lvc_fsio::name::is_control(c) && c != '\n' && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '\u{1b}' {
            if let Some(len) = sgr_len(rest) {
                out.push_str(&rest[..len]);
                rest = &rest[len..];
                continue;
            }
        }
        if c == '\n' || c == '\t' {
            out.push(c);
        } else {
            lvc_fsio::name::push_escaped(&mut out, c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// The byte length of the SGR sequence `ESC [ params m` at the start of
/// `text`, if one is there.
fn sgr_len(text: &str) -> Option<usize> {
    let params = text.strip_prefix("\u{1b}[")?;
    let digits =
        params.bytes().take_while(|b| b.is_ascii_digit() || *b == b';' || *b == b':').count();
    (params.as_bytes().get(digits) == Some(&b'm')).then_some(2 + digits + 1)
}

/// `println!` through [`shown`].
#[macro_export]
macro_rules! outln {
    () => { ::std::println!() };
    ($($arg:tt)*) => { ::std::println!("{}", $crate::term::shown(&::std::format!($($arg)*))) };
}

/// `print!` through [`shown`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { ::std::print!("{}", $crate::term::shown(&::std::format!($($arg)*))) };
}

/// `eprintln!` through [`shown`].
#[macro_export]
macro_rules! errln {
    () => { ::std::eprintln!() };
    ($($arg:tt)*) => { ::std::eprintln!("{}", $crate::term::shown(&::std::format!($($arg)*))) };
}

/// `eprint!` through [`shown`].
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => { ::std::eprint!("{}", $crate::term::shown(&::std::format!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_commands_from_input_are_escaped() {
        assert_eq!(
            shown("case \u{1b}[2J\u{1b}]0;pwned\u{7} done"),
            "case \\x1b[2J\\x1b]0;pwned\\x07 done"
        );
        assert_eq!(shown("a\rb\u{0}c\u{9b}d\u{202e}"), "a\\x0db\\x00c\\x9bd\\u{202e}");
    }

    #[test]
    fn layout_and_colours_stay() {
        let coloured = "\u{1b}[31;1merror\u{1b}[0m: x\n\tindented";
        assert_eq!(shown(coloured), coloured);
        assert!(matches!(shown("plain text ✓\n"), Cow::Borrowed(_)));
        // An ESC that starts no SGR, and a cut-off one, are escaped.
        assert_eq!(shown("\u{1b}[12"), "\\x1b[12");
        assert_eq!(shown("\u{1b}[1;2H"), "\\x1b[1;2H");
    }
}
