//! One test per syntax feature, with exact spans and decoded values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use lvc_grammar::{parse, Field, Message, ScalarKind, Span, Value};

fn parsed(text: &str) -> Message {
    parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e} at {:?}", e.span()))
}

/// The scalar values of all fields of `text`, in order.
fn scalars(text: &str) -> Vec<(ScalarKind, Span)> {
    parsed(text)
        .fields
        .into_iter()
        .map(|f| match f.value {
            Value::Scalar(s) => (s.kind, s.span),
            Value::Message(_) => panic!("{}: expected a scalar", f.name),
        })
        .collect()
}

fn only_scalar(text: &str) -> ScalarKind {
    let mut all = scalars(text);
    assert_eq!(all.len(), 1, "{text:?}");
    all.remove(0).0
}

fn int(text: &str) -> i128 {
    match only_scalar(text) {
        ScalarKind::Int(v) => v,
        other => panic!("{text:?}: expected an int, got {other:?}"),
    }
}

fn float(text: &str) -> f64 {
    match only_scalar(text) {
        ScalarKind::Float(v) => v,
        other => panic!("{text:?}: expected a float, got {other:?}"),
    }
}

fn string(text: &str) -> String {
    match only_scalar(text) {
        ScalarKind::Str(v) => v,
        other => panic!("{text:?}: expected a string, got {other:?}"),
    }
}

fn sp(start: usize, end: usize) -> Span {
    Span::new(start, end)
}

#[test]
fn scalar_field_spans() {
    let text = "num_output: 64\n";
    let net = parsed(text);
    assert_eq!(net.span, sp(0, text.len()));
    assert_eq!(
        net.fields,
        vec![Field {
            name: "num_output".into(),
            name_span: sp(0, 10),
            value: Value::Scalar(lvc_grammar::Scalar {
                kind: ScalarKind::Int(64),
                span: sp(12, 14)
            }),
            span: sp(0, 14),
        }]
    );
}

#[test]
fn empty_and_comment_only_documents() {
    assert_eq!(parsed("").fields, vec![]);
    assert_eq!(parsed("  # just a comment\n\t\r\n").fields, vec![]);
    assert_eq!(parsed("").span, sp(0, 0));
}

#[test]
fn nested_message_spans_cover_braces() {
    let text = "layer {\n  name: \"a\"\n  param { lr_mult: 1 }\n}";
    let net = parsed(text);
    let layer = &net.fields[0];
    assert_eq!(layer.name, "layer");
    assert_eq!(layer.name_span, sp(0, 5));
    assert_eq!(layer.span, sp(0, text.len()));
    let body = layer.value.as_message().expect("message");
    assert_eq!(body.span, sp(6, text.len()));
    assert_eq!(body.fields[0].name, "name");
    assert_eq!(body.fields[0].span, sp(10, 19));
    let param = &body.fields[1];
    assert_eq!(param.name_span, sp(22, 27));
    let param_body = param.value.as_message().expect("message");
    assert_eq!(&text[param_body.span.start..param_body.span.end], "{ lr_mult: 1 }");
    assert_eq!(param.span, sp(22, param_body.span.end));
}

#[test]
fn all_message_delimiter_forms() {
    for text in ["p { a: 1 }", "p: { a: 1 }", "p < a: 1 >", "p: < a: 1 >", "p{a:1}", "p:<a:1>"] {
        let net = parsed(text);
        let body = net.fields[0].value.as_message().unwrap_or_else(|| panic!("{text}"));
        let open = text.find(['{', '<']).expect("opener");
        assert_eq!(body.span, sp(open, text.len()), "{text}");
        assert_eq!(body.fields.len(), 1, "{text}");
        assert_eq!(body.fields[0].value.as_scalar().map(|s| &s.kind), Some(&ScalarKind::Int(1)));
    }
}

#[test]
fn repeated_fields_stay_in_order() {
    let net = parsed("bottom: \"a\" bottom: \"b\" top: \"c\" bottom: \"d\"");
    let bottoms: Vec<_> =
        net.all("bottom").map(|f| f.value.as_scalar().map(|s| s.kind.clone())).collect();
    assert_eq!(bottoms, ["a", "b", "d"].map(|s| Some(ScalarKind::Str(s.into()))).to_vec());
    assert_eq!(net.last("bottom").map(|f| f.name_span), Some(sp(33, 39)));
}

#[test]
fn scalar_list_expands_to_one_field_per_element() {
    let text = "dim: [1, 3 , 224]";
    let net = parsed(text);
    let fields: Vec<_> =
        net.fields.iter().map(|f| (f.name.as_str(), f.name_span, f.span, f.value.span())).collect();
    assert_eq!(
        fields,
        vec![
            ("dim", sp(0, 3), sp(0, 7), sp(6, 7)),
            ("dim", sp(0, 3), sp(0, 10), sp(9, 10)),
            ("dim", sp(0, 3), sp(0, 16), sp(13, 16)),
        ]
    );
    assert_eq!(parsed("dim: []").fields, vec![]);
}

#[test]
fn message_list_with_and_without_colon() {
    for text in ["param: [{lr_mult: 1}, {lr_mult: 2}]", "param [{lr_mult: 1}, <lr_mult: 2>]"] {
        let net = parsed(text);
        assert_eq!(net.fields.len(), 2, "{text}");
        let first = net.fields[0].value.as_message().expect("message");
        let open = text.find('{').expect("brace");
        assert_eq!(first.span, sp(open, open + 12), "{text}");
        let second = net.fields[1].value.as_message().expect("message");
        assert_eq!(second.span, sp(open + 14, text.len() - 1), "{text}");
    }
}

#[test]
fn enum_identifiers_and_booleans() {
    assert_eq!(only_scalar("pool: MAX"), ScalarKind::Ident("MAX".into()));
    assert_eq!(only_scalar("phase: TEST"), ScalarKind::Ident("TEST".into()));
    assert_eq!(only_scalar("bias_term: false"), ScalarKind::Ident("false".into()));
    assert_eq!(only_scalar("force_backward: true"), ScalarKind::Ident("true".into()));
    assert_eq!(only_scalar("x: _snake_Case9"), ScalarKind::Ident("_snake_Case9".into()));
    // Names that merely start like `inf`/`nan` are identifiers.
    assert_eq!(only_scalar("x: information"), ScalarKind::Ident("information".into()));
    assert_eq!(only_scalar("x: nano"), ScalarKind::Ident("nano".into()));
}

#[test]
fn strings_single_and_double_quoted() {
    assert_eq!(string("s: \"data\""), "data");
    assert_eq!(string("s: 'data'"), "data");
    assert_eq!(string("s: \"it's\""), "it's");
    assert_eq!(string("s: 'say \"hi\"'"), "say \"hi\"");
    assert_eq!(string("s: \"\""), "");
    assert_eq!(string("s: \"héllo ∂\""), "héllo ∂");
    assert_eq!(scalars("s: \"data\"")[0].1, sp(3, 9));
}

#[test]
fn string_escapes() {
    assert_eq!(string(r#"s: "\n\t\r\\\'\"\?\a\b\f\v""#), "\n\t\r\\'\"?\x07\x08\x0C\x0B");
    assert_eq!(string(r#"s: "\101\60\0x""#), "A0\0x");
    assert_eq!(string(r#"s: "\x41\x4a\x7""#), "AJ\x07");
    assert_eq!(string(r#"s: "\u00e9\u2202""#), "é∂");
    assert_eq!(string(r#"s: "\U0001F600""#), "😀");
    assert_eq!(string(r#"s: "\ud83d\ude00""#), "😀");
    // A byte that is not UTF-8 is kept lossily.
    assert_eq!(string(r#"s: "a\xffb""#), "a\u{FFFD}b");
}

#[test]
fn adjacent_strings_concatenate() {
    let text = "s: \"a\" 'b'\n  # a comment between\n  \"c\"\n";
    let (kind, span) = scalars(text).remove(0);
    assert_eq!(kind, ScalarKind::Str("abc".into()));
    assert_eq!(span, sp(3, text.len() - 1));
}

#[test]
fn integers() {
    assert_eq!(int("i: 0"), 0);
    assert_eq!(int("i: 42"), 42);
    assert_eq!(int("i: -7"), -7);
    assert_eq!(int("i: 0x1F"), 31);
    assert_eq!(int("i: 0XfF"), 255);
    assert_eq!(int("i: -0x10"), -16);
    assert_eq!(int("i: 017"), 15);
    assert_eq!(int("i: -017"), -15);
    assert_eq!(int("i: 00"), 0);
    assert_eq!(int("i: -0"), 0);
    assert_eq!(int("i: 18446744073709551615"), u64::MAX as i128);
    assert_eq!(int("i: -9223372036854775808"), i64::MIN as i128);
    assert_eq!(scalars("i: -0x10")[0].1, sp(3, 8));
}

#[test]
fn floats() {
    assert_eq!(float("f: 1.5"), 1.5);
    assert_eq!(float("f: -1e-5"), -1e-5);
    assert_eq!(float("f: 5e-05"), 5e-5);
    assert_eq!(float("f: 1E+3"), 1000.0);
    assert_eq!(float("f: .5"), 0.5);
    assert_eq!(float("f: -.5"), -0.5);
    assert_eq!(float("f: 5."), 5.0);
    assert_eq!(float("f: 1.0f"), 1.0);
    assert_eq!(float("f: 1f"), 1.0);
    assert_eq!(float("f: 2.5e2F"), 250.0);
    assert_eq!(float("f: 0.0001"), 0.0001);
    assert!(float("f: -0.0").is_sign_negative());
    assert_eq!(float("f: 1.e5"), 1e5);
    assert_eq!(float("f: -.5e-3"), -0.0005);
    assert_eq!(float("f: 0f"), 0.0);
    assert_eq!(float("f: 1e400"), f64::INFINITY);
    assert_eq!(scalars("f: -1e-5")[0].1, sp(3, 8));
}

#[test]
fn infinities_and_nan_in_any_case() {
    for text in ["f: inf", "f: INF", "f: Infinity", "f: infinity"] {
        assert_eq!(float(text), f64::INFINITY, "{text}");
    }
    for text in ["f: -inf", "f: -Infinity", "f: -INF"] {
        assert_eq!(float(text), f64::NEG_INFINITY, "{text}");
    }
    for text in ["f: nan", "f: NaN", "f: -nan"] {
        assert!(float(text).is_nan(), "{text}");
    }
    assert_eq!(scalars("f: -Infinity")[0].1, sp(3, 12));
}

#[test]
fn optional_separators() {
    let net = parsed("a: 1, b: 2; c { d: 3; }, e: 'x';");
    let names: Vec<_> = net.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "e"]);
    // The separator is not part of the field.
    assert_eq!(net.fields[0].span, sp(0, 4));
}

#[test]
fn comments_anywhere_whitespace_may_be() {
    let text = "# header\nlayer # after name\n{ # after brace\n a # x\n : # y\n 1 # z\n} # end";
    let net = parsed(text);
    let body = net.fields[0].value.as_message().expect("message");
    assert_eq!(body.fields[0].name, "a");
    assert_eq!(body.fields[0].value.as_scalar().map(|s| &s.kind), Some(&ScalarKind::Int(1)));
    // `#` inside a string is not a comment.
    assert_eq!(string("s: \"a#b\" # c"), "a#b");
}

#[test]
fn tabs_crlf_and_bom() {
    let text = "\u{FEFF}layer {\r\n\tname:\t\"a\"\r\n}\r\n";
    let net = parsed(text);
    assert_eq!(net.span, sp(0, text.len()));
    let layer = &net.fields[0];
    assert_eq!(layer.name_span, sp(3, 8));
    let name = &layer.value.as_message().expect("message").fields[0];
    assert_eq!(name.name_span, sp(13, 17));
    assert_eq!(name.value.span(), sp(19, 22));
}

#[test]
fn no_whitespace_needed_between_tokens() {
    let net = parsed("layer{top:\"dsn1_loss\"bottom:'x'param{lr_mult:1}kernel_size:3,pool:MAX}");
    let body = net.fields[0].value.as_message().expect("message");
    let names: Vec<_> = body.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["top", "bottom", "param", "kernel_size", "pool"]);
    assert_eq!(body.fields[0].value.span(), sp(10, 21));
}

#[test]
fn extension_names() {
    let net = parsed("[caffe.ext_param] { a: 1 } [type.googleapis.com/pkg.Msg]: 2");
    assert_eq!(net.fields[0].name, "[caffe.ext_param]");
    assert_eq!(net.fields[0].name_span, sp(0, 17));
    assert_eq!(net.fields[1].name, "[type.googleapis.com/pkg.Msg]");
}
