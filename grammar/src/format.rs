//! The canonical layout of a prototxt document (`lvc fmt`).
//!
//! The output is the parse tree written back: one field per line, nested
//! messages as `name {` … `}` indented by [`FormatOptions::indent`] spaces,
//! `name: value` for scalars, `{ }` for `< >`, strings in double quotes,
//! no `,`/`;` separators, and list literals (`dim: [1, 2]`, `layer [ {…} ]`)
//! written as one field per element, which is what they mean. Numbers,
//! identifiers and escapes are kept exactly as written, and adjacent string
//! pieces stay separate pieces (joining `"\1"` `"2"` would make `"\12"`).
//!
//! Comments are not in the tree; they are found in the text between its
//! spans. A comment on the line of the token before it stays at the end of
//! that line; any other comment goes on its own line before what follows it
//! (in a block, before the closing brace when nothing follows). One blank
//! line is kept wherever the source had one or more between two fields or
//! comments, never right after an opening brace or at the start.
//!
//! So the output parses to the same tree as the input (the test runs this
//! over the whole corpus), and formatting it again changes nothing.

use crate::error::ParseError;
use crate::parser::parse;
use crate::tree::{Field, Message, ScalarKind, Span, Value};

/// How to lay the document out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatOptions {
    /// Spaces per nesting level.
    pub indent: usize,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions { indent: 2 }
    }
}

/// `text` in the canonical layout, or why it does not parse.
pub fn format(text: &str, options: &FormatOptions) -> Result<String, ParseError> {
    let tree = parse(text)?;
    Ok(write(text, &tree, options, false))
}

/// `tree`, a rewrite of `text`'s parse tree (an upgrade to the current
/// format, say), in the canonical layout with `text`'s comments. A value
/// whose span's text no longer means it (a V1 `CONVOLUTION` that became
/// `"Convolution"`) is written from the tree; comments follow the spans of
/// the nodes they were near, so a node that moved takes its comments along.
pub fn format_tree(text: &str, tree: &Message, options: &FormatOptions) -> String {
    write(text, tree, options, true)
}

fn write(text: &str, tree: &Message, options: &FormatOptions, rewritten: bool) -> String {
    let mut writer = Writer {
        rewritten,
        text,
        comments: comments_in(text),
        next_comment: 0,
        out: String::with_capacity(text.len() + text.len() / 8),
        indent: options.indent,
        last_end: 0,
        line_open: false,
        line_has_trailing: false,
        at_block_start: true,
    };
    writer.fields(&tree.fields, 0);
    writer.comments_before(text.len(), 0);
    writer.end_line();
    writer.out
}

/// Byte ranges of the `#` comments in `text` (to their line end, trailing
/// blanks left out), skipping `#` inside string literals. Only called on
/// text that parsed, so every string here is closed on its line.
fn comments_in(text: &str) -> Vec<Span> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'#' => {
                let start = i;
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                let end = start + text[start..i].trim_end().len();
                found.push(Span::new(start, end));
            }
            _ => i += 1,
        }
    }
    found
}

/// Whether `gap` (text between two items) holds a blank line: a line with
/// nothing but whitespace between two line breaks.
fn has_blank_line(gap: &str) -> bool {
    let mut lines = gap.split('\n');
    lines.next();
    let mut interior: Vec<&str> = lines.collect();
    interior.pop();
    interior.iter().any(|line| line.trim().is_empty())
}

struct Writer<'a> {
    text: &'a str,
    /// The tree is not `text`'s own: check each value against its span.
    rewritten: bool,
    comments: Vec<Span>,
    next_comment: usize,
    out: String,
    indent: usize,
    /// Where in the source the last written token or comment ends.
    last_end: usize,
    /// The output's last line has content and no line break yet.
    line_open: bool,
    /// That line already ends in a comment.
    line_has_trailing: bool,
    /// Nothing written yet in the current block (or the document).
    at_block_start: bool,
}

impl Writer<'_> {
    fn end_line(&mut self) {
        if self.line_open {
            self.out.push('\n');
            self.line_open = false;
            self.line_has_trailing = false;
        }
    }

    /// Starts a new line at `depth`, after one blank line when the source
    /// had one before `start`.
    fn open_line(&mut self, start: usize, depth: usize) {
        self.end_line();
        let gap = self.text.get(self.last_end..start).unwrap_or("");
        if !self.at_block_start && has_blank_line(gap) {
            self.out.push('\n');
        }
        self.at_block_start = false;
        self.out.extend(std::iter::repeat_n(' ', depth * self.indent));
        self.line_open = true;
    }

    /// Writes every comment that starts before `before`: at the end of the
    /// current line when it sat on the line of the token before it, else on
    /// a line of its own at `depth`.
    fn comments_before(&mut self, before: usize, depth: usize) {
        while let Some(&comment) = self.comments.get(self.next_comment) {
            if comment.start >= before {
                break;
            }
            self.next_comment += 1;
            let comment_text = &self.text[comment.start..comment.end];
            let same_line = comment.start < self.last_end
                || self
                    .text
                    .get(self.last_end..comment.start)
                    .is_none_or(|gap| !gap.contains('\n'));
            if self.line_open && !self.line_has_trailing && same_line {
                self.out.push_str("  ");
                self.out.push_str(comment_text);
                self.line_has_trailing = true;
            } else {
                self.open_line(comment.start, depth);
                self.out.push_str(comment_text);
                self.line_has_trailing = true;
            }
            self.last_end = self.last_end.max(comment.end);
        }
    }

    fn fields(&mut self, fields: &[Field], depth: usize) {
        let mut previous_name: Option<Span> = None;
        for field in fields {
            // The elements of one list literal share its name's span; each
            // after the first starts at its value.
            let start = if previous_name == Some(field.name_span) {
                field.value.span().start
            } else {
                field.name_span.start
            };
            previous_name = Some(field.name_span);
            self.comments_before(start, depth);
            self.open_line(start, depth);
            self.out.push_str(&field.name);
            match &field.value {
                Value::Scalar(scalar) => {
                    self.out.push_str(": ");
                    let written = self.text.get(scalar.span.start..scalar.span.end).unwrap_or("");
                    if self.rewritten && !means(written, &scalar.kind) {
                        push_value(&mut self.out, &scalar.kind);
                    } else if let ScalarKind::Str(_) = scalar.kind {
                        self.string_pieces(written);
                    } else {
                        self.out.push_str(written);
                    }
                    self.last_end = self.last_end.max(scalar.span.end);
                }
                Value::Message(message) => self.message(message, depth),
            }
        }
    }

    fn message(&mut self, message: &Message, depth: usize) {
        let close = message.span.end.saturating_sub(1);
        let has_comment_inside = self
            .comments
            .get(self.next_comment..)
            .unwrap_or(&[])
            .iter()
            .take_while(|c| c.start < close)
            .any(|c| c.start > message.span.start);
        if message.fields.is_empty() && !has_comment_inside {
            self.out.push_str(" {}");
            self.last_end = message.span.end;
            return;
        }
        self.out.push_str(" {");
        self.last_end = message.span.start + 1;
        self.at_block_start = true;
        self.fields(&message.fields, depth + 1);
        self.comments_before(close, depth + 1);
        self.end_line();
        self.at_block_start = true; // no blank line before `}`
        self.open_line(close, depth);
        self.out.push('}');
        self.last_end = message.span.end;
    }

    /// A string value as its pieces, each in double quotes, one space
    /// between; comments between pieces are left to `comments_before`.
    fn string_pieces(&mut self, written: &str) {
        let bytes = written.as_bytes();
        let mut i = 0;
        let mut first = true;
        while i < bytes.len() {
            match bytes[i] {
                quote @ (b'"' | b'\'') => {
                    let body_start = i + 1;
                    let mut j = body_start;
                    while j < bytes.len() && bytes[j] != quote {
                        j += if bytes[j] == b'\\' { 2 } else { 1 };
                    }
                    let body = &written[body_start..j.min(bytes.len())];
                    if !first {
                        self.out.push(' ');
                    }
                    first = false;
                    self.out.push('"');
                    if quote == b'"' {
                        self.out.push_str(body);
                    } else {
                        push_as_double_quoted(&mut self.out, body);
                    }
                    self.out.push('"');
                    i = j + 1;
                }
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                _ => i += 1,
            }
        }
    }
}

/// Whether the text `written` reads as the value `kind`.
fn means(written: &str, kind: &ScalarKind) -> bool {
    let Ok(tree) = parse(&format!("v: {written}")) else { return false };
    let [field] = tree.fields.as_slice() else { return false };
    match (field.value.as_scalar().map(|s| &s.kind), kind) {
        (Some(ScalarKind::Float(a)), ScalarKind::Float(b)) => a.to_bits() == b.to_bits(),
        (Some(a), b) => a == b,
        (None, _) => false,
    }
}

/// A value written from the tree: strings quoted with `"`, `\\` and
/// control characters escaped; floats in the shortest form that reads back
/// as the same value.
fn push_value(out: &mut String, kind: &ScalarKind) {
    use std::fmt::Write as _;
    match kind {
        ScalarKind::Int(i) => {
            let _ = write!(out, "{i}");
        }
        ScalarKind::Float(f) if f.is_nan() => out.push_str("nan"),
        ScalarKind::Float(f) if f.is_infinite() => {
            out.push_str(if *f > 0.0 { "inf" } else { "-inf" })
        }
        ScalarKind::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
            let _ = write!(out, "{f:.1}");
        }
        ScalarKind::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        ScalarKind::Ident(name) => out.push_str(name),
        ScalarKind::Str(text) => out.push_str(&quote(text)),
    }
}

/// A double-quoted text-format string literal of `text`: `"` and `\\`
/// escaped, control characters as `\n`, `\r`, `\t` or octal escapes.
pub fn quote(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The body of a single-quoted literal as a double-quoted one: `"` gets a
/// backslash, `\'` loses its own; every other escape is kept as written.
fn push_as_double_quoted(out: &mut String, body: &str) {
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\'') => out.push('\''),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(text: &str) -> String {
        let out = format(text, &FormatOptions::default()).unwrap();
        assert_eq!(format(&out, &FormatOptions::default()).unwrap(), out, "idempotent");
        out
    }

    #[test]
    fn one_field_per_line_indented_with_canonical_punctuation() {
        assert_eq!(
            fmt("name:'net' layer <name: \"a\", type: \"ReLU\"; param{lr_mult:1}> input_dim: [1, 3]"),
            "name: \"net\"\nlayer {\n  name: \"a\"\n  type: \"ReLU\"\n  param {\n    lr_mult: 1\n  }\n}\ninput_dim: 1\ninput_dim: 3\n"
        );
    }

    #[test]
    fn numbers_and_identifiers_stay_as_written() {
        assert_eq!(
            fmt("a: 0x1F b: 1e-5 c: .5 d: 1.0f e: -inf f: MAX g: 017"),
            "a: 0x1F\nb: 1e-5\nc: .5\nd: 1.0f\ne: -inf\nf: MAX\ng: 017\n"
        );
    }

    #[test]
    fn comments_stay_with_what_they_annotate_and_blank_lines_between_layers_stay() {
        let text = "# header\n\nname: \"n\"  # the name\n\n\n\nlayer {   # first\n  # leading\n  top: \"a\"\n  # closing\n}\nlayer { top: \"b\" } # after\n# end\n";
        assert_eq!(
            fmt(text),
            "# header\n\nname: \"n\"  # the name\n\nlayer {  # first\n  # leading\n  top: \"a\"\n  # closing\n}\nlayer {\n  top: \"b\"\n}  # after\n# end\n"
        );
    }

    #[test]
    fn string_pieces_stay_apart_and_single_quotes_become_double() {
        assert_eq!(
            fmt("a: \"\\1\" \"2\"\nb: 'say \"hi\" it\\'s'"),
            "a: \"\\1\" \"2\"\nb: \"say \\\"hi\\\" it's\"\n"
        );
        let out = fmt("b: 'say \"hi\" it\\'s'");
        let value = parse(&out).unwrap().fields[0].value.as_scalar().unwrap().kind.clone();
        assert_eq!(value, ScalarKind::Str("say \"hi\" it's".into()));
    }

    #[test]
    fn a_hash_inside_a_string_is_not_a_comment_and_empty_messages_stay_on_one_line() {
        assert_eq!(
            fmt("a: \"x # y\" b {} c { # inside\n}"),
            "a: \"x # y\"\nb {}\nc {  # inside\n}\n"
        );
    }

    #[test]
    fn a_rewritten_tree_writes_the_values_its_spans_no_longer_mean() {
        let text = "layers { type: CONVOLUTION  # conv\n  name: 'c' }\n";
        let mut tree = parse(text).unwrap();
        let Value::Message(layer) = &mut tree.fields[0].value else { panic!() };
        let Value::Scalar(kind) = &mut layer.fields[0].value else { panic!() };
        kind.kind = ScalarKind::Str("Conv \"1\"\\".into());
        tree.fields[0].name = "layer".into();
        let out = format_tree(text, &tree, &FormatOptions::default());
        assert_eq!(out, "layer {\n  type: \"Conv \\\"1\\\"\\\\\"  # conv\n  name: \"c\"\n}\n");
        let reread = parse(&out).unwrap();
        let Value::Message(layer) = &reread.fields[0].value else { panic!() };
        assert_eq!(
            layer.fields[0].value.as_scalar().unwrap().kind,
            ScalarKind::Str("Conv \"1\"\\".into())
        );
        let mut floats = String::new();
        for f in [0.5f64, 1e-8, 3.0, f64::INFINITY, 2.5e20] {
            push_value(&mut floats, &ScalarKind::Float(f));
            floats.push(' ');
        }
        assert_eq!(floats, "0.5 1e-8 3.0 inf 2.5e20 ");
    }

    #[test]
    fn the_indent_is_an_option_and_text_that_does_not_parse_is_an_error() {
        let four = format("a { b: 1 }", &FormatOptions { indent: 4 }).unwrap();
        assert_eq!(four, "a {\n    b: 1\n}\n");
        assert!(format("a { b: 1", &FormatOptions::default()).is_err());
        assert_eq!(fmt(""), "");
        assert_eq!(fmt("# only\n"), "# only\n");
    }
}
