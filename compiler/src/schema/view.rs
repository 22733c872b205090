//! Typed, spanned access to a (validated) message of the parse tree.
//!
//! The schema validator has already rejected unknown fields and values of the
//! wrong type, so the accessors here only pick values out; a value of an
//! unexpected kind reads as absent. Defaults are not applied here: each op's
//! parameter struct applies Caffe's defaults next to its shape rule.

use lvc_grammar::{Message, ScalarKind, Span, Value};

/// A value with the span of the token it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned { value: f(self.value), span: self.span }
    }
}

/// A view of an optional sub-message, e.g. a layer's `convolution_param`.
/// An absent message is an empty view: every field reads as unset.
#[derive(Debug, Clone, Copy)]
pub struct ParamView<'a> {
    msg: Option<&'a Message>,
}

impl<'a> ParamView<'a> {
    pub fn new(msg: Option<&'a Message>) -> Self {
        ParamView { msg }
    }
    pub fn of(msg: &'a Message) -> Self {
        ParamView { msg: Some(msg) }
    }
    pub fn is_present(&self) -> bool {
        self.msg.is_some()
    }
    /// The span of the whole message, when present.
    pub fn span(&self) -> Option<Span> {
        self.msg.map(|m| m.span)
    }
    pub fn message(&self) -> Option<&'a Message> {
        self.msg
    }
    /// Whether a field is written at all (proto2 presence).
    pub fn has(&self, name: &str) -> bool {
        self.msg.is_some_and(|m| m.last(name).is_some())
    }
    /// The span of the last occurrence of a field (its value), if written.
    pub fn value_span(&self, name: &str) -> Option<Span> {
        self.msg.and_then(|m| m.last(name)).map(|f| f.value.span())
    }
    /// The span of the last occurrence of a field (name to value), if written.
    pub fn field_span(&self, name: &str) -> Option<Span> {
        self.msg.and_then(|m| m.last(name)).map(|f| f.span)
    }

    fn values(&self, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.msg.into_iter().flat_map(move |m| m.all(name)).map(|f| &f.value)
    }
    fn last_value(&self, name: &str) -> Option<&'a Value> {
        self.msg.and_then(|m| m.last(name)).map(|f| &f.value)
    }

    pub fn sub(&self, name: &str) -> ParamView<'a> {
        ParamView { msg: self.last_value(name).and_then(Value::as_message) }
    }
    pub fn subs(&self, name: &'a str) -> Vec<ParamView<'a>> {
        self.values(name).filter_map(Value::as_message).map(ParamView::of).collect()
    }

    pub fn int(&self, name: &str) -> Option<Spanned<i64>> {
        self.last_value(name).and_then(as_int)
    }
    pub fn ints(&self, name: &'a str) -> Vec<Spanned<i64>> {
        self.values(name).filter_map(as_int).collect()
    }
    pub fn float(&self, name: &str) -> Option<Spanned<f64>> {
        self.last_value(name).and_then(as_float)
    }
    pub fn floats(&self, name: &'a str) -> Vec<Spanned<f64>> {
        self.values(name).filter_map(as_float).collect()
    }
    pub fn bool(&self, name: &str) -> Option<Spanned<bool>> {
        self.last_value(name).and_then(as_bool)
    }
    pub fn bools(&self, name: &'a str) -> Vec<Spanned<bool>> {
        self.values(name).filter_map(as_bool).collect()
    }
    /// An enum value, by name (`MAX`, `TEST`).
    pub fn ident(&self, name: &str) -> Option<Spanned<&'a str>> {
        self.last_value(name).and_then(as_ident)
    }
    pub fn string(&self, name: &str) -> Option<Spanned<&'a str>> {
        self.last_value(name).and_then(as_str)
    }
    pub fn strings(&self, name: &'a str) -> Vec<Spanned<&'a str>> {
        self.values(name).filter_map(as_str).collect()
    }
}

fn as_int(v: &Value) -> Option<Spanned<i64>> {
    let s = v.as_scalar()?;
    match s.kind {
        ScalarKind::Int(i) => i64::try_from(i).ok().map(|i| Spanned::new(i, s.span)),
        _ => None,
    }
}

fn as_float(v: &Value) -> Option<Spanned<f64>> {
    let s = v.as_scalar()?;
    match s.kind {
        ScalarKind::Int(i) => Some(Spanned::new(i as f64, s.span)),
        ScalarKind::Float(f) => Some(Spanned::new(f, s.span)),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<Spanned<bool>> {
    let s = v.as_scalar()?;
    let b = match &s.kind {
        ScalarKind::Ident(id) => match id.as_str() {
            "true" | "True" | "t" => true,
            "false" | "False" | "f" => false,
            _ => return None,
        },
        ScalarKind::Int(0) => false,
        ScalarKind::Int(1) => true,
        _ => return None,
    };
    Some(Spanned::new(b, s.span))
}

fn as_ident(v: &Value) -> Option<Spanned<&str>> {
    let s = v.as_scalar()?;
    match &s.kind {
        ScalarKind::Ident(id) => Some(Spanned::new(id.as_str(), s.span)),
        // Caffe files sometimes quote enum-like strings; the validator decides
        // whether that is allowed for the field.
        ScalarKind::Str(st) => Some(Spanned::new(st.as_str(), s.span)),
        _ => None,
    }
}

fn as_str(v: &Value) -> Option<Spanned<&str>> {
    let s = v.as_scalar()?;
    match &s.kind {
        ScalarKind::Str(st) => Some(Spanned::new(st.as_str(), s.span)),
        _ => None,
    }
}
