//! `parse` never panics or overflows the stack, whatever the input, and every
//! span it returns lies within the text on char boundaries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use lvc_grammar::{parse, Message, Span, Value, MAX_DEPTH};
use proptest::prelude::*;

const FCN8S: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/corpus/prototxt/shelhamer__fcn.berkeleyvision.org/voc-fcn8s/train.prototxt"
));

fn check_span(text: &str, span: Span, what: &str) {
    assert!(
        span.start <= span.end && span.end <= text.len(),
        "{what} {span:?} outside 0..{}",
        text.len()
    );
    assert!(
        text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
        "{what} {span:?} splits a char"
    );
}

fn check_message(text: &str, message: &Message) {
    check_span(text, message.span, "message");
    for field in &message.fields {
        check_span(text, field.span, "field");
        check_span(text, field.name_span, "field name");
        let value = field.value.span();
        check_span(text, value, "value");
        assert_eq!(field.span, field.name_span.join(value));
        if let Value::Message(inner) = &field.value {
            assert!(
                text[inner.span.start..].starts_with(['{', '<']),
                "message span {:?}",
                inner.span
            );
            check_message(text, inner);
        }
    }
}

/// Parses and checks the spans of the result, tree or error.
fn parse_checked(text: &str) {
    match parse(text) {
        Ok(root) => {
            assert_eq!(root.span, Span::new(0, text.len()));
            check_message(text, &root);
        }
        Err(err) => {
            assert!(!err.labels().is_empty());
            for label in err.labels() {
                check_span(text, label.span, err.code());
            }
            assert!(err.code().starts_with("lvc::parse::"));
        }
    }
}

/// Characters that matter to the grammar, so random strings reach deep into
/// it instead of failing on the first byte.
fn prototxt_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("{"),
            Just("}"),
            Just("<"),
            Just(">"),
            Just("["),
            Just("]"),
            Just(":"),
            Just(","),
            Just(";"),
            Just("\""),
            Just("'"),
            Just("\\"),
            Just("#"),
            Just("\n"),
            Just("\r\n"),
            Just(" "),
            Just("\t"),
            Just("layer"),
            Just("name"),
            Just("x"),
            Just("0"),
            Just("7"),
            Just("0x"),
            Just("1.5e-3"),
            Just("-"),
            Just("."),
            Just("f"),
            Just("inf"),
            Just("nan"),
            Just("\\x4"),
            Just("\\u12"),
            Just("\\377"),
            Just("é"),
            Just("\u{FEFF}"),
            Just("∂"),
        ],
        0..200,
    )
    .prop_map(|pieces| pieces.concat())
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Duplicate { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), prototxt_soup()).prop_map(|(at, text)| Mutation::Insert { at, text }),
        (any::<usize>(), 0usize..400).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
    ]
}

/// The char boundary at or before `at % (len + 1)`.
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, mutation: &Mutation) {
    match mutation {
        Mutation::Delete { at, len } => {
            let start = boundary(text, *at);
            let end = boundary(text, start + len);
            if end >= start {
                text.replace_range(start..end, "");
            }
        }
        Mutation::Insert { at, text: piece } => {
            let at = boundary(text, *at);
            text.insert_str(at, piece);
        }
        Mutation::Duplicate { at, len } => {
            let start = boundary(text, *at);
            let end = boundary(text, start + len).max(start);
            let copy = text[start..end].to_string();
            text.insert_str(end, &copy);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        parse_checked(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_prototxt_like_text(text in prototxt_soup()) {
        parse_checked(&text);
    }

    #[test]
    fn mutated_fcn8s(mutations in proptest::collection::vec(mutation(), 1..6)) {
        let mut text = FCN8S.to_string();
        for m in &mutations {
            apply(&mut text, m);
        }
        parse_checked(&text);
    }

    #[test]
    fn deep_nesting_of_every_form(
        depth in 0usize..3 * MAX_DEPTH,
        form in prop_oneof![Just("a{"), Just("a:{"), Just("a<"), Just("a:["), Just("a [{"), Just("{"), Just("[")],
        closed in any::<bool>(),
    ) {
        let mut text = form.repeat(depth);
        if closed {
            for c in text.clone().chars().rev() {
                match c {
                    '{' => text.push('}'),
                    '<' => text.push('>'),
                    '[' => text.push(']'),
                    _ => {}
                }
            }
        }
        parse_checked(&text);
    }
}

#[test]
fn very_deep_nesting_is_refused_not_a_crash() {
    for opener in ["{", "<", "[", "a{", "a:[{", "x <"] {
        let text = opener.repeat(1_000_000);
        let err = parse(&text).expect_err("a million levels cannot parse");
        assert_eq!(err.code(), "lvc::parse::depth", "{opener}");
    }
}

#[test]
fn nesting_at_the_limit_parses_on_a_small_stack() {
    // A thread with 256 KiB of stack: the limit must hold with room to spare.
    let at_limit = format!("{}{}", "a { ".repeat(MAX_DEPTH), "} ".repeat(MAX_DEPTH));
    let parsed = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || parse(&at_limit).map(|m| m.fields.len()))
        .expect("spawn")
        .join()
        .expect("parsing at the depth limit must not overflow the stack");
    assert_eq!(parsed, Ok(1));
}

#[test]
fn fcn8s_spans_are_consistent() {
    parse_checked(FCN8S);
}
