//! The pest parser and the conversion of its pairs into the [`Message`] tree,
//! decoding numbers and strings on the way.

use pest::iterators::Pair;
use pest::Parser as _;

use crate::delimiters::{self, closing_partner, Delimiters};
use crate::error::{ParseError, ParseErrorKind};
use crate::escape::decode_escapes;
use crate::tree::{Field, Message, Scalar, ScalarKind, Span, Value};

#[derive(pest_derive::Parser)]
#[grammar = "prototxt.pest"]
struct PrototxtParser;

/// Parses a whole prototxt document. The root message's span is the whole
/// text.
pub fn parse(text: &str) -> Result<Message, ParseError> {
    // Before pest: it recurses once per nesting level.
    let delimiters = delimiters::scan(text)?;
    let mut pairs = match PrototxtParser::parse(Rule::document, text) {
        Ok(pairs) => pairs,
        Err(err) => return Err(syntax_error(text, &delimiters, &err)),
    };
    let mut root = Message { fields: Vec::new(), span: Span::new(0, text.len()) };
    if let Some(document) = pairs.next() {
        for field in document.into_inner().filter(|p| p.as_rule() == Rule::field) {
            push_field(field, &mut root.fields)?;
        }
    }
    Ok(root)
}

fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let s = pair.as_span();
    Span::new(s.start(), s.end())
}

/// Appends one field, or one per element for a list literal.
fn push_field(pair: Pair<'_, Rule>, out: &mut Vec<Field>) -> Result<(), ParseError> {
    let mut inner = pair.into_inner();
    let Some(name) = inner.next() else {
        return Ok(());
    };
    let name_span = span_of(&name);
    let name = name.as_str().to_string();
    for part in inner {
        match part.as_rule() {
            Rule::list | Rule::message_list => {
                for item in part.into_inner().filter(|p| is_value(p.as_rule())) {
                    out.push(Field::new(&name, name_span, build_value(item)?));
                }
            }
            rule if is_value(rule) => out.push(Field::new(&name, name_span, build_value(part)?)),
            _ => {} // `:` and the separator
        }
    }
    Ok(())
}

fn is_value(rule: Rule) -> bool {
    matches!(rule, Rule::message | Rule::number | Rule::special_float | Rule::string | Rule::ident)
}

fn build_value(pair: Pair<'_, Rule>) -> Result<Value, ParseError> {
    let span = span_of(&pair);
    let kind = match pair.as_rule() {
        Rule::message => {
            let mut message = Message { fields: Vec::new(), span };
            for field in pair.into_inner().filter(|p| p.as_rule() == Rule::field) {
                push_field(field, &mut message.fields)?;
            }
            return Ok(Value::Message(message));
        }
        Rule::number => decode_number(pair.as_str(), span)?,
        Rule::special_float => ScalarKind::Float(decode_special_float(pair.as_str())),
        Rule::string => {
            let (text, span) = decode_string(pair)?;
            return Ok(Value::Scalar(Scalar { kind: ScalarKind::Str(text), span }));
        }
        _ => ScalarKind::Ident(pair.as_str().to_string()),
    };
    Ok(Value::Scalar(Scalar { kind, span }))
}

/// Concatenates adjacent literals, decoding escapes. Bytes that are not
/// UTF-8 (from `\xHH` or octal escapes) are kept lossily. The span runs
/// from the first opening quote to the last closing quote.
fn decode_string(pair: Pair<'_, Rule>) -> Result<(String, Span), ParseError> {
    let mut bytes = Vec::new();
    let mut span: Option<Span> = None;
    for literal in pair.into_inner() {
        let literal_span = span_of(&literal);
        span = Some(span.map_or(literal_span, |s| s.join(literal_span)));
        let mut closed = false;
        for part in literal.into_inner().flat_map(|quoted| quoted.into_inner()) {
            match part.as_rule() {
                Rule::dq_body | Rule::sq_body => {
                    decode_escapes(part.as_str(), span_of(&part).start, &mut bytes)?
                }
                _ => closed = true, // the closing quote
            }
        }
        if !closed {
            return Err(ParseError::new(
                ParseErrorKind::String,
                "unterminated string",
                literal_span,
                "this string is not closed before the end of the line",
                "close the string on the same line; a long string can be split into adjacent \
                 literals (`\"abc\" \"def\"`), which are joined",
            ));
        }
    }
    let span = span.unwrap_or_default(); // the grammar requires one literal
    Ok((String::from_utf8_lossy(&bytes).into_owned(), span))
}

fn decode_special_float(text: &str) -> f64 {
    let (negative, body) = split_sign(text);
    let value = if body.eq_ignore_ascii_case("nan") { f64::NAN } else { f64::INFINITY };
    if negative {
        -value
    } else {
        value
    }
}

fn split_sign(text: &str) -> (bool, &str) {
    match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text),
    }
}

/// Integer literals must fit in 64 bits, signed or unsigned, as protobuf's
/// tokenizer requires; which of the two is up to the field's type.
fn decode_number(text: &str, span: Span) -> Result<ScalarKind, ParseError> {
    let (negative, body) = split_sign(text);
    let is_hex = body.len() > 1 && body.as_bytes()[1].eq_ignore_ascii_case(&b'x');
    let is_float = !is_hex && body.contains(['.', 'e', 'E', 'f', 'F']);
    if is_float {
        let digits = body.trim_end_matches(['f', 'F']);
        return match digits.parse::<f64>() {
            Ok(v) => Ok(ScalarKind::Float(if negative { -v } else { v })),
            Err(_) => {
                Err(number_error(text, span, "is not a valid number", "not a number", NUMBER_HELP))
            }
        };
    }
    let (digits, radix) = if is_hex {
        (&body[2..], 16)
    } else if body.len() > 1 && body.starts_with('0') {
        (&body[1..], 8)
    } else {
        (body, 10)
    };
    if radix == 8 && digits.bytes().any(|b| b > b'7') {
        return Err(number_error(
            text,
            span,
            "is not a valid octal number",
            "octal, because of the leading 0",
            format!(
                "a leading `0` makes an integer octal in the protobuf text format, so only \
                 digits 0-7 may follow; write `{}` for decimal",
                body.trim_start_matches('0')
            ),
        ));
    }
    let magnitude = u128::from_str_radix(digits, radix).ok().filter(|&m| {
        if negative {
            m <= 1u128 << 63
        } else {
            m <= u128::from(u64::MAX)
        }
    });
    match magnitude {
        // In range by the filter above, so the conversion cannot fail.
        Some(m) => {
            let m = i128::try_from(m).unwrap_or(i128::MAX);
            Ok(ScalarKind::Int(if negative { -m } else { m }))
        }
        None => Err(number_error(
            text,
            span,
            "does not fit in 64 bits",
            "out of range",
            "integers must lie between -9223372036854775808 and 18446744073709551615; \
             write a float (e.g. `1e20`) if the field is a float",
        )),
    }
}

const NUMBER_HELP: &str = "numbers look like `42`, `-3`, `0x1F`, `017` (octal), `1.5`, `-1e-5`, \
                           `.5` or `1.0f`, and must be separated from a following name by a space";

fn number_error(
    text: &str,
    span: Span,
    what: &str,
    label: &str,
    help: impl Into<String>,
) -> ParseError {
    ParseError::new(ParseErrorKind::Number, format!("`{text}` {what}"), span, label, help)
}

/// Turns a pest failure into an error that says, in words, what was expected
/// at the offending token, or into an unclosed/unmatched-delimiter error
/// when the pre-pass explains the failure better.
fn syntax_error(text: &str, delimiters: &Delimiters, err: &pest::error::Error<Rule>) -> ParseError {
    let pos = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((p, _)) => p,
    }
    .min(text.len());
    let positives: &[Rule] = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives,
        pest::error::ErrorVariant::CustomError { .. } => &[],
    };
    if let Some(stray) = delimiters.first_stray.filter(|s| s.close.start == pos) {
        return unmatched_error(text, stray);
    }
    let wants_closer =
        positives.iter().any(|r| matches!(r, Rule::rbrace | Rule::rangle | Rule::rbracket));
    if let Some(open) = delimiters.innermost_unclosed.filter(|_| pos == text.len() && wants_closer)
    {
        return unclosed_error(text, open);
    }
    let (found_span, found) = token_at(text, pos);
    let has = |rule: Rule| positives.contains(&rule);

    if has(Rule::number) || has(Rule::special_float) {
        let context = value_context(text, pos);
        if starts_like_number(&text[pos..]) {
            return number_error(
                &text[found_span.start..found_span.end],
                found_span,
                "is not a valid number",
                "not a number",
                NUMBER_HELP,
            );
        }
        return ParseError::new(
            ParseErrorKind::Syntax,
            format!("expected a value {context}, found {found}"),
            found_span,
            "expected a value here",
            "a value is a number, a quoted string, an identifier (an enum value, `true`, \
             `false`), a `{ … }` message or a `[ … ]` list",
        );
    }
    if has(Rule::colon) {
        let name = preceding_word(text, pos);
        return ParseError::new(
            ParseErrorKind::Syntax,
            format!("expected `:` or `{{` after field name `{name}`, found {found}"),
            found_span,
            "expected `:` or `{` here",
            format!("write `{name}: value` for a value or `{name} {{ … }}` for a message"),
        );
    }
    let mut expected: Vec<&str> = Vec::new();
    for rule in positives {
        if let Some(words) = describe_rule(*rule) {
            if !expected.contains(&words) {
                expected.push(words);
            }
        }
    }
    let expected = join_alternatives(&expected);
    let after_list_start = matches!(text[..pos].trim_end().chars().last(), Some('[' | ','));
    let help = if has(Rule::message) && after_list_start {
        "a list written without `:` holds messages only; write `name: [1, 2]` for a list of values"
    } else if has(Rule::comma) {
        "list elements are separated by `,` and the list ends with `]`"
    } else {
        "each entry of a message is `name: value` or `name { … }`; \
         look for a missing name, a missing `:` or a stray character"
    };
    ParseError::new(
        ParseErrorKind::Syntax,
        format!("expected {expected}, found {found}"),
        found_span,
        format!("expected {expected} here"),
        help,
    )
}

/// The expected token in words, or `None` for rules that are never the
/// real reason for a failure (an optional `;`, a further adjacent string).
fn describe_rule(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::field | Rule::ident | Rule::extension_name => "a field name",
        // The whole document fails at its start only when the first token
        // can neither begin a field nor end the file.
        Rule::document => "a field name or end of file",
        Rule::rbrace => "`}`",
        Rule::rangle => "`>`",
        Rule::rbracket => "`]`",
        Rule::comma => "`,`",
        Rule::colon => "`:`",
        Rule::message | Rule::lbrace => "`{`",
        Rule::langle => "`<`",
        Rule::list | Rule::message_list | Rule::lbracket => "`[`",
        Rule::EOI => "end of file",
        Rule::number | Rule::special_float | Rule::string => "a value",
        _ => return None,
    })
}

fn join_alternatives(items: &[&str]) -> String {
    match items {
        // Every failure pest reports names some rule above; this keeps the
        // function total.
        [] => "a different token".to_string(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn starts_like_number(rest: &str) -> bool {
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    rest.starts_with(|c: char| c.is_ascii_digit())
}

/// "after `name:`" or "in the list", from the text before `pos`.
fn value_context(text: &str, pos: usize) -> String {
    let before = text[..pos].trim_end();
    match before.chars().last() {
        Some(':') => format!("after `{}:`", preceding_word(before, before.len() - 1)),
        Some(',' | '[') => "in the list".to_string(),
        _ => "here".to_string(),
    }
}

/// The identifier or `[extension]` name just before `pos` (whitespace
/// skipped).
fn preceding_word(text: &str, pos: usize) -> &str {
    let before = text[..pos].trim_end();
    let start = before
        .char_indices()
        .rev()
        .take_while(|&(_, c)| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '[' | ']'))
        .last()
        .map_or(before.len(), |(i, _)| i);
    &before[start..]
}

/// The token starting at `pos`, as a span and as words for "found …".
fn token_at(text: &str, pos: usize) -> (Span, String) {
    let rest = &text[pos..];
    let Some(first) = rest.chars().next() else {
        return (Span::new(pos, pos), "end of file".to_string());
    };
    let word_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.');
    let len = if word_char(first) || (first == '-' && rest.len() > 1) {
        first.len_utf8()
            + rest[first.len_utf8()..]
                .find(|c: char| !word_char(c))
                .unwrap_or(rest.len() - first.len_utf8())
    } else if first == '"' || first == '\'' {
        rest[1..].find([first, '\n', '\r']).map_or(rest.len(), |i| {
            if rest.as_bytes()[1 + i] == first as u8 {
                i + 2
            } else {
                i + 1
            }
        })
    } else {
        first.len_utf8()
    };
    let token = &rest[..len];
    let words = match first {
        '"' | '\'' => "a string".to_string(),
        _ => format!("`{}`", token.escape_debug()),
    };
    (Span::new(pos, pos + len), words)
}

fn unmatched_error(text: &str, stray: delimiters::Stray) -> ParseError {
    let close = char::from(text.as_bytes()[stray.close.start]);
    match stray.open {
        None => ParseError::new(
            ParseErrorKind::Unmatched,
            format!("unexpected `{close}`: no block is open here"),
            stray.close,
            format!("this `{close}` closes nothing"),
            "remove it, or look above for a block that was closed too early",
        ),
        Some(open) => {
            let opener = text.as_bytes()[open.start];
            let partner = char::from(closing_partner(opener));
            let opener = char::from(opener);
            ParseError::new(
                ParseErrorKind::Unmatched,
                format!("`{close}` does not close the open `{opener}`"),
                stray.close,
                format!("expected `{partner}` here"),
                format!("a block opened with `{opener}` must be closed with `{partner}`"),
            )
            .with_label(open, "the block opened here")
        }
    }
}

fn unclosed_error(text: &str, open: Span) -> ParseError {
    let opener = text.as_bytes()[open.start];
    let partner = char::from(closing_partner(opener));
    let opener = char::from(opener);
    ParseError::new(
        ParseErrorKind::Unclosed,
        format!("unclosed `{opener}`"),
        open,
        format!("this `{opener}` is never closed"),
        format!(
            "add the missing `{partner}`; the block opened here is the innermost one left open"
        ),
    )
    .with_label(last_token_span(text), format!("the file ends here, without `{partner}`"))
}

/// The last non-whitespace character, where "the file ends" is shown (a
/// label past the final newline would sit on a line that does not exist).
fn last_token_span(text: &str) -> Span {
    let trimmed = text.trim_end();
    match trimmed.chars().last() {
        Some(c) => Span::new(trimmed.len() - c.len_utf8(), trimmed.len()),
        None => Span::new(text.len(), text.len()),
    }
}
