//! Typed, spanned access to a (validated) message of the parse tree.
//!
//! The schema validator has already rejected unknown fields and values of the
//! wrong type, so the accessors here only pick values out; a value of an
//! unexpected kind reads as absent.
//!
//! A view may know the descriptor of the message it views (a layer's
//! `*_param` blocks and their sub-messages do): the `*_or_default` accessors
//! then return the written value or else caffe.proto's `[default = …]` from
//! [`super::descriptor`], so each default is written once, in the tables.
//! Fields without a declared default are read with the plain accessors, which
//! keep presence (`Option`).

use lvc_grammar::{Message, ScalarKind, Span, Value};

use super::descriptor::{DefaultValue, FieldType, MessageDesc};

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
    /// The message's descriptor, where known: the source of defaults.
    desc: Option<&'static MessageDesc>,
    /// The span a default (a field not written) is reported with; a layer's
    /// blocks use the layer's `type:` value.
    anchor: Span,
}

impl<'a> ParamView<'a> {
    pub fn new(msg: Option<&'a Message>) -> Self {
        ParamView { msg, desc: None, anchor: msg.map(|m| m.span).unwrap_or_default() }
    }
    pub fn of(msg: &'a Message) -> Self {
        ParamView::new(Some(msg))
    }
    /// The same view, knowing its message's descriptor.
    pub fn described(self, desc: &'static MessageDesc) -> Self {
        ParamView { desc: Some(desc), ..self }
    }
    /// The same view, reporting defaults with `span`.
    pub fn anchored(self, span: Span) -> Self {
        ParamView { anchor: span, ..self }
    }
    /// The descriptor of the viewed message, where known.
    pub fn descriptor(&self) -> Option<&'static MessageDesc> {
        self.desc
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

    /// The descriptor of a message-typed field's messages, where known.
    fn sub_desc(&self, name: &str) -> Option<&'static MessageDesc> {
        match self.desc?.field(name)?.ty {
            FieldType::Message(m) => Some(m),
            _ => None,
        }
    }
    pub fn sub(&self, name: &str) -> ParamView<'a> {
        ParamView {
            msg: self.last_value(name).and_then(Value::as_message),
            desc: self.sub_desc(name),
            anchor: self.anchor,
        }
    }
    pub fn subs(&self, name: &'a str) -> Vec<ParamView<'a>> {
        let desc = self.sub_desc(name);
        self.values(name)
            .filter_map(Value::as_message)
            .map(|msg| ParamView { msg: Some(msg), desc, anchor: self.anchor })
            .collect()
    }

    /// A field's `[default = …]` in the descriptor, if it declares one.
    pub fn declared_default(&self, name: &str) -> Option<DefaultValue> {
        let default = self.desc?.field(name)?.default;
        (default != DefaultValue::None).then_some(default)
    }
    /// The declared default of a field read with a `*_or_default` accessor.
    /// Reading one without a declared default is a bug in the caller (it
    /// should read presence with the plain accessor); unit tests catch it,
    /// release builds fall back to proto2's zero value, as Caffe's getters do.
    fn expected_default(&self, name: &str) -> Option<DefaultValue> {
        let default = self.declared_default(name);
        #[cfg(test)]
        assert!(
            default.is_some(),
            "{}.{name} has no declared default",
            self.desc.map_or("<undescribed message>", |m| m.name)
        );
        default
    }
    fn defaulted<T>(&self, value: Option<Spanned<T>>, default: impl FnOnce() -> T) -> Spanned<T> {
        value.unwrap_or_else(|| Spanned::new(default(), self.anchor))
    }

    /// The written integer, else the descriptor's default.
    pub fn int_or_default(&self, name: &str) -> Spanned<i64> {
        self.defaulted(self.int(name), || match self.expected_default(name) {
            Some(DefaultValue::Int(i)) => i,
            _ => 0,
        })
    }
    /// The written number, else the descriptor's default.
    pub fn float_or_default(&self, name: &str) -> Spanned<f64> {
        self.defaulted(self.float(name), || match self.expected_default(name) {
            Some(DefaultValue::Float(f)) => f,
            Some(DefaultValue::Int(i)) => i as f64,
            _ => 0.0,
        })
    }
    /// The written bool, else the descriptor's default.
    pub fn bool_or_default(&self, name: &str) -> Spanned<bool> {
        self.defaulted(self.bool(name), || {
            matches!(self.expected_default(name), Some(DefaultValue::Bool(true)))
        })
    }
    /// The written enum value's name, else the descriptor's default's name.
    pub fn ident_or_default(&self, name: &str) -> Spanned<&'a str> {
        self.defaulted(self.ident(name), || match self.expected_default(name) {
            Some(DefaultValue::Enum(e)) => e,
            // proto2 reads an enum without a default as its first value.
            _ => match self.desc.and_then(|m| m.field(name)).map(|f| f.ty) {
                Some(FieldType::Enum(e)) => e.values.first().map_or("", |&(n, _)| n),
                _ => "",
            },
        })
    }
    /// The written string, else the descriptor's default.
    pub fn string_or_default(&self, name: &str) -> Spanned<&'a str> {
        self.defaulted(self.string(name), || match self.expected_default(name) {
            Some(DefaultValue::Str(s)) => s,
            _ => "",
        })
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

#[cfg(test)]
mod tests {
    use crate::ops::testing::layer;

    #[test]
    fn defaults_come_from_the_descriptor_anchored_on_the_type() {
        let (_, def) = layer(
            "name: \"c\" type: \"Convolution\" top: \"y\" \
             convolution_param { num_output: 2 group: 2 weight_filler { type: \"xavier\" } }",
        );
        let v = def.param_block("convolution_param");
        assert_eq!(v.descriptor().map(|m| m.name), Some("ConvolutionParameter"));
        // Written: the written value and its span.
        let group = v.int_or_default("group");
        assert_eq!(group.value, 2);
        assert_ne!(group.span, def.kind.span);
        // Not written: caffe.proto's default, with the layer's `type:` span.
        let axis = v.int_or_default("axis");
        assert_eq!((axis.value, axis.span), (1, def.kind.span));
        assert!(v.bool_or_default("bias_term").value);
        assert_eq!(v.ident_or_default("engine").value, "DEFAULT");
        // A sub-message knows its type, written or not.
        let w = v.sub("weight_filler");
        assert_eq!(w.descriptor().map(|m| m.name), Some("FillerParameter"));
        assert_eq!(w.string_or_default("type").value, "xavier");
        assert_eq!(w.float_or_default("std").value, 1.0);
        assert_eq!(v.sub("bias_filler").string_or_default("type").value, "constant");
        assert_eq!(v.sub("bias_filler").ident_or_default("variance_norm").value, "FAN_IN");
        // A field without a declared default has none to offer.
        assert_eq!(v.declared_default("num_output"), None);
    }

    #[test]
    fn an_absent_block_reads_as_all_defaults() {
        let (_, def) = layer("name: \"l\" type: \"LRN\" top: \"y\"");
        let v = def.param_block("lrn_param");
        assert!(!v.is_present());
        assert_eq!(v.int_or_default("local_size").value, 5);
        assert_eq!(v.float_or_default("beta").value, 0.75);
        assert_eq!(v.ident_or_default("norm_region").value, "ACROSS_CHANNELS");
        // lvc's own messages are described too (descriptor/lvc.rs).
        assert_eq!(def.param_block("dice_param").float_or_default("smooth").value, 1.0);
        // A forked block (not in caffe.proto) has no descriptor.
        assert!(def.param_block("roi_pooling_param").descriptor().is_none());
    }

    #[test]
    #[should_panic(expected = "ConvolutionParameter.num_output has no declared default")]
    fn reading_a_field_without_a_default_as_defaulted_is_caught_in_tests() {
        let (_, def) = layer("name: \"c\" type: \"Convolution\" top: \"y\"");
        def.param_block("convolution_param").int_or_default("num_output");
    }
}
