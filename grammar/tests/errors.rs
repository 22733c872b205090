//! Syntax errors: code, exact span of the offending token, and the rendered
//! report (insta snapshots).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use lvc_grammar::{parse, ParseError, ParseErrorKind, Span, MAX_DEPTH};

fn error(text: &str) -> ParseError {
    match parse(text) {
        Ok(tree) => panic!("{text:?} should not parse, got {tree:?}"),
        Err(err) => err,
    }
}

fn render(name: &str, text: &str, err: &ParseError) -> String {
    let report = miette::Report::new(err.clone())
        .with_source_code(miette::NamedSource::new(name, text.to_string()));
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, report.as_ref())
        .expect("rendering into a String cannot fail");
    out
}

/// Checks kind and primary span (given as the offending text and its
/// position), then snapshots the rendered report.
fn check(name: &str, text: &str, kind: ParseErrorKind, offending: &str, at: usize) {
    let err = error(text);
    assert_eq!(err.kind(), kind, "{name}: {err}");
    assert_eq!(err.code(), kind.code());
    assert_eq!(err.span(), Span::new(at, at + offending.len()), "{name}: {err}");
    assert_eq!(&text[at..at + offending.len()], offending);
    assert!(!err.help().is_empty());
    insta::assert_snapshot!(name, render(&format!("{name}.prototxt"), text, &err));
}

#[test]
fn missing_colon_after_field_name() {
    let text = "layer {\n  convolution_param {\n    num_output 64\n  }\n}\n";
    check("missing_colon", text, ParseErrorKind::Syntax, "64", 45);
    assert_eq!(
        error(text).message(),
        "expected `:` or `{` after field name `num_output`, found `64`"
    );
}

#[test]
fn stray_closing_brace() {
    let text = "layer {\n  name: \"conv1\"\n}\n}\nlayer { name: \"relu1\" }\n";
    check("stray_brace", text, ParseErrorKind::Unmatched, "}", 26);
}

#[test]
fn unclosed_brace_labels_opener_and_end_of_file() {
    let text =
        "layer {\n  name: \"conv1\"\n  param { lr_mult: 1 }\nlayer {\n  name: \"relu1\"\n}\n";
    check("unclosed_brace", text, ParseErrorKind::Unclosed, "{", 6);
    let err = error(text);
    assert_eq!(err.labels()[1].span, Span::new(text.len() - 2, text.len() - 1));
}

#[test]
fn block_closed_with_wrong_delimiter() {
    let text = "layer <\n  name: \"conv1\"\n}\n";
    check("mismatched_delimiter", text, ParseErrorKind::Unmatched, "}", 24);
    assert_eq!(error(text).labels()[1].span, Span::new(6, 7));
}

#[test]
fn unterminated_string() {
    let text = "layer {\n  name: \"conv1\n  type: \"Convolution\"\n}\n";
    check("unterminated_string", text, ParseErrorKind::String, "\"conv1", 16);
}

#[test]
fn unknown_escape() {
    let text = "name: \"a\\qb\"\n";
    check("bad_escape", text, ParseErrorKind::String, "\\q", 8);
}

#[test]
fn non_octal_digit_after_leading_zero() {
    let text = "layer { convolution_param { pad: 08 } }\n";
    check("bad_octal", text, ParseErrorKind::Number, "08", 33);
}

#[test]
fn integer_out_of_range() {
    let text = "max_iter: 18446744073709551616\n";
    check("int_out_of_range", text, ParseErrorKind::Number, "18446744073709551616", 10);
    let text = "x: -9223372036854775809";
    assert_eq!(error(text).kind(), ParseErrorKind::Number);
}

#[test]
fn number_running_into_a_name() {
    let text = "kernel_size: 3x\n";
    check("number_then_name", text, ParseErrorKind::Number, "3x", 13);
}

#[test]
fn missing_value() {
    let text = "layer {\n  name: \n}\n";
    check("missing_value", text, ParseErrorKind::Syntax, "}", 17);
    assert_eq!(error(text).message(), "expected a value after `name:`, found `}`");
}

#[test]
fn list_without_comma() {
    let text = "dim: [1 3]\n";
    check("list_without_comma", text, ParseErrorKind::Syntax, "3", 8);
}

#[test]
fn stray_character_where_a_field_belongs() {
    let text = "layer {\n  name: \"a\"\n  @weird: 1\n}\n";
    check("stray_character", text, ParseErrorKind::Syntax, "@", 22);
}

#[test]
fn scalar_list_needs_colon() {
    let text = "dim [1, 2]\n";
    check("scalar_list_without_colon", text, ParseErrorKind::Syntax, "1", 5);
}

#[test]
fn nesting_deeper_than_the_limit() {
    let text = format!("a {{ {}", "b { ".repeat(MAX_DEPTH));
    let err = error(&text);
    assert_eq!(err.kind(), ParseErrorKind::Depth);
    assert_eq!(err.span(), Span::new(text.len() - 2, text.len() - 1));
    let at_limit = format!("{}{}", "a { ".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
    assert!(parse(&at_limit).is_ok());
    let small = format!("{}{}", "a { ".repeat(3), "}".repeat(3));
    let too_deep = format!("{}{small}", "a {\n".repeat(MAX_DEPTH + 1));
    check("too_deep", &too_deep, ParseErrorKind::Depth, "{", 4 * MAX_DEPTH + 2);
}

/// Kind and primary span only, for the cases not worth a snapshot.
fn check_span(text: &str, kind: ParseErrorKind, offending: &str) {
    let err = error(text);
    assert_eq!(err.kind(), kind, "{text:?}: {err}");
    let at = text.find(offending).expect("offending text is in the input");
    assert_eq!(err.span(), Span::new(at, at + offending.len()), "{text:?}: {err}");
}

#[test]
fn bad_escapes_point_at_the_escape() {
    check_span("s: \"ab\\\n", ParseErrorKind::String, "\\");
    check_span("s: \"a\\xg\"", ParseErrorKind::String, "\\x");
    check_span("s: \"a\\777\"", ParseErrorKind::String, "\\777");
    check_span("s: \"a\\u12\"", ParseErrorKind::String, "\\u");
    check_span("s: \"a\\ud800x\"", ParseErrorKind::String, "\\ud800");
    check_span("s: \"a\\é\"", ParseErrorKind::String, "\\é");
    check_span("s: 'abc", ParseErrorKind::String, "'abc");
    check_span("s: \"a\" \"b", ParseErrorKind::String, "\"b");
}

#[test]
fn malformed_numbers_point_at_the_number() {
    check_span("x: 0x", ParseErrorKind::Number, "0x");
    check_span("x: 1.5.3", ParseErrorKind::Syntax, ".3");
    check_span("x: 1e", ParseErrorKind::Number, "1e");
    check_span("x: -", ParseErrorKind::Syntax, "-");
    check_span("x: 12abc", ParseErrorKind::Number, "12abc");
}

#[test]
fn messages_name_what_was_expected() {
    let cases = [
        ("a { b: 1 ", "unclosed `{`"),
        ("a: 1 }", "unexpected `}`: no block is open here"),
        ("a: [1, 2", "unclosed `[`"),
        ("a: [1, ]", "expected a value in the list, found `]`"),
        ("a < b: 1 }", "`}` does not close the open `<`"),
        ("\"name\": 1", "expected a field name or end of file, found a string"),
        ("a { b: 1 } c", "expected `:` or `{` after field name `c`, found end of file"),
    ];
    for (text, message) in cases {
        assert_eq!(error(text).message(), message, "{text:?}");
    }
}
