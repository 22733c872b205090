//! The parse tree of a protobuf text-format document, schema-free.
//!
//! Every node keeps its byte span in the source so that later stages
//! (schema, IR, shape checks) can point diagnostics at the exact token.

use std::ops::Range;

/// A half-open byte range `[start, end)` into the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.start, s.len()).into()
    }
}

impl From<Span> for Range<usize> {
    fn from(s: Span) -> Self {
        s.start..s.end
    }
}

/// A message body: the fields in file order. Repeated fields appear once per
/// occurrence; a list literal `f: [1, 2]` is expanded into one field per
/// element, each with the element's span as its value span.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    pub fields: Vec<Field>,
    /// For the document root: the whole text. For a nested message: from the
    /// opening brace to the closing brace inclusive.
    pub span: Span,
}

/// `name: value` or `name { ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub name_span: Span,
    pub value: Value,
    /// From the first byte of the name to the last byte of the value.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Message(Message),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub kind: ScalarKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScalarKind {
    /// Decimal, hex (`0x1F`) or octal (`017`) integer literal, sign applied.
    Int(i128),
    /// Float literal (`1.5`, `1e-5`, `.5`, `5.`, `1.0f`), sign applied;
    /// also `inf`, `-inf`, `nan` and their case variants (`Infinity`).
    Float(f64),
    /// A bare identifier: enum value names (`MAX`, `TEST`, `CONVOLUTION`) and
    /// `true` / `false` / `True` / `t` / `f`.
    Ident(String),
    /// A string literal with escapes decoded; adjacent literals concatenated.
    /// Bytes that are not UTF-8 are kept lossily (Caffe strings are text).
    Str(String),
}

impl Message {
    /// All fields called `name`, in file order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.fields.iter().filter(move |f| f.name == name)
    }
    /// The last field called `name` (protobuf keeps the last value of a
    /// non-repeated field).
    pub fn last(&self, name: &str) -> Option<&Field> {
        self.fields.iter().rev().find(|f| f.name == name)
    }
}

impl Field {
    /// A field named `name` whose name sits at `name_span`; its span runs to
    /// the end of `value`.
    pub fn new(name: &str, name_span: Span, value: Value) -> Field {
        let span = name_span.join(value.span());
        Field { name: name.to_string(), name_span, value, span }
    }
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Scalar(s) => s.span,
            Value::Message(m) => m.span,
        }
    }
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match self {
            Value::Scalar(s) => Some(s),
            Value::Message(_) => None,
        }
    }
    pub fn as_message(&self) -> Option<&Message> {
        match self {
            Value::Message(m) => Some(m),
            Value::Scalar(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_field_spans_from_its_name_to_the_end_of_its_value() {
        let value = Value::Scalar(Scalar { kind: ScalarKind::Int(96), span: Span::new(12, 14) });
        let field = Field::new("num_output", Span::new(0, 10), value);
        assert_eq!(field.name, "num_output");
        assert_eq!(field.span, Span::new(0, 14));
    }
}
