//! Syntax errors: code, exact span of the offending token, and the rendered
//! report (insta snapshots).

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
    assert_eq!(error(text).message(), "expected `:` or `{` after field name `num_output`, found `64`");
}

#[test]
fn stray_closing_brace() {
    let text = "layer {\n  name: \"conv1\"\n}\n}\nlayer { name: \"relu1\" }\n";
    check("stray_brace", text, ParseErrorKind::Unmatched, "}", 26);
}

#[test]
fn unclosed_brace_labels_opener_and_end_of_file() {
    let text = "layer {\n  name: \"conv1\"\n  param { lr_mult: 1 }\nlayer {\n  name: \"relu1\"\n}\n";
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
