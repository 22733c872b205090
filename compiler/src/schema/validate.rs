//! Checks a parse tree against a message descriptor, the way protobuf's
//! text-format parser does, but reports every problem instead of the first.
//!
//! Besides reporting, validation leaves the tree in a shape the typed views
//! can trust: fields that are unknown or carry a value of the wrong kind are
//! removed, and enum values written as numbers are replaced by their names.

use std::collections::HashMap;

use lvc_grammar::{Field, Message, Scalar, ScalarKind, Span, Value};

use super::descriptor::{
    EnumDesc, FieldDesc, FieldType, Label, MessageDesc, LAYER_PARAMETER, V0_LAYER_PARAMETER,
    V1_LAYER_PARAMETER,
};
use super::suggest::{closest, did_you_mean, list_valid};
use super::upgrade::v1_type_string;
use super::LoadOptions;
use crate::diag::{Diagnostic, Diagnostics};

/// Validates `msg` (recursively) against `desc`, appending findings to
/// `diags`. Unknown fields are errors and are dropped from the tree; with
/// `opts.lenient` they are warnings and stay in the tree unvalidated, so the
/// ops of forked Caffe builds (ROIPooling's `roi_pooling_param`) can still
/// read their parameters.
pub fn validate(
    msg: &mut Message,
    desc: &'static MessageDesc,
    opts: &LoadOptions,
    diags: &mut Diagnostics,
) {
    Validator { opts, diags }.message(msg, desc, None);
}

struct Validator<'o> {
    opts: &'o LoadOptions,
    diags: &'o mut Diagnostics,
}

impl Validator<'_> {
    fn report(&mut self, diag: Diagnostic, layer: Option<&str>) {
        self.diags.push(match layer {
            Some(name) => diag.in_layer(name),
            None => diag,
        });
    }

    fn message(&mut self, msg: &mut Message, desc: &'static MessageDesc, layer: Option<&str>) {
        // Diagnostics inside a layer name the layer (the innermost one, for
        // V0 layers wrapped in a V1 connection).
        let own_name = is_layer_message(desc).then(|| layer_name(msg)).flatten();
        let layer = own_name.as_deref().or(layer);
        let mut first_seen: HashMap<&'static str, Span> = HashMap::new();
        let fields = std::mem::take(&mut msg.fields);
        for mut field in fields {
            let Some(fdesc) = desc.field(&field.name) else {
                self.unknown_field(&field, desc, layer);
                if self.opts.lenient {
                    msg.fields.push(field);
                }
                continue;
            };
            if !fdesc.is_repeated() {
                if let Some(&previous) = first_seen.get(fdesc.name) {
                    self.report(
                        Diagnostic::error(
                            "lvc::schema::duplicate",
                            format!(
                                "non-repeated field `{}` of {} is given more than once",
                                fdesc.name, desc.name
                            ),
                        )
                        .with_label(field.name_span, "given again here")
                        .with_label(previous, "first given here")
                        .with_help("protobuf rejects this; keep one of them"),
                        layer,
                    );
                } else {
                    first_seen.insert(fdesc.name, field.name_span);
                }
            }
            if self.value(&mut field, fdesc, desc, layer) {
                msg.fields.push(field);
            }
        }
        for missing in desc
            .fields
            .iter()
            .filter(|f| f.label == Label::Required && !first_seen.contains_key(f.name))
        {
            self.report(
                Diagnostic::error(
                    "lvc::schema::required",
                    format!("{} is missing its required field `{}`", desc.name, missing.name),
                )
                .with_label(msg.span, format!("no `{}` here", missing.name))
                .with_help(format!(
                    "add `{}: <{}>`",
                    missing.name,
                    missing.ty.name()
                )),
                layer,
            );
        }
    }

    fn unknown_field(&mut self, field: &Field, desc: &'static MessageDesc, layer: Option<&str>) {
        let names: Vec<&str> = desc.field_names().collect();
        let help = did_you_mean(&field.name, &names, &format!("fields of {}", desc.name));
        let diag = if self.opts.lenient {
            Diagnostic::warning(
                "lvc::schema::unknown_field",
                format!(
                    "{} has no field named `{}`; keeping it unchecked",
                    desc.name, field.name
                ),
            )
            .with_label(
                field.name_span,
                "not in BVLC caffe.proto (a field of a forked Caffe?)",
            )
            .with_help(format!(
                "lvc keeps it for the layers of forked Caffe builds that read it and checks nothing inside it; if it is a typo: {help}"
            ))
        } else {
            Diagnostic::error(
                "lvc::schema::unknown_field",
                format!("{} has no field named `{}`", desc.name, field.name),
            )
            .with_label(field.name_span, "unknown field")
            .with_help(help)
        };
        self.report(diag, layer);
    }

    /// Checks one field's value; returns whether the field stays in the tree.
    fn value(
        &mut self,
        field: &mut Field,
        fdesc: &'static FieldDesc,
        parent: &MessageDesc,
        layer: Option<&str>,
    ) -> bool {
        match (&fdesc.ty, &mut field.value) {
            (FieldType::Message(sub), Value::Message(m)) => {
                self.message(m, sub, layer);
                true
            }
            (FieldType::Message(sub), Value::Scalar(s)) => {
                let found = describe_scalar(s);
                let span = s.span;
                self.report(
                    Diagnostic::error(
                        "lvc::schema::type",
                        format!("`{}` is a {} message, found {found}", fdesc.name, sub.name),
                    )
                    .with_label(span, "expected `{ … }`")
                    .with_help(format!(
                        "write `{} {{ … }}` with the fields of {}",
                        fdesc.name, sub.name
                    )),
                    layer,
                );
                false
            }
            (ty, Value::Message(m)) => {
                let span = m.span;
                self.report(
                    Diagnostic::error(
                        "lvc::schema::type",
                        format!(
                            "`{}` of {} takes a {} value, found a message block",
                            fdesc.name,
                            parent.name,
                            ty.name()
                        ),
                    )
                    .with_label(span, "expected a single value")
                    .with_help(format!("write `{}: <value>`", fdesc.name)),
                    layer,
                );
                false
            }
            (ty, Value::Scalar(s)) => match check_scalar(*ty, s, fdesc, parent) {
                Ok(()) => true,
                Err(diag) => {
                    self.report(diag, layer);
                    false
                }
            },
        }
    }
}

fn is_layer_message(desc: &MessageDesc) -> bool {
    std::ptr::eq(desc, &LAYER_PARAMETER)
        || std::ptr::eq(desc, &V1_LAYER_PARAMETER)
        || std::ptr::eq(desc, &V0_LAYER_PARAMETER)
}

fn layer_name(msg: &Message) -> Option<String> {
    msg.last("name").and_then(|f| match &f.value {
        Value::Scalar(Scalar { kind: ScalarKind::Str(s), .. }) => Some(s.clone()),
        _ => None,
    })
}

fn describe_scalar(s: &Scalar) -> String {
    match &s.kind {
        ScalarKind::Int(i) => format!("the integer {i}"),
        ScalarKind::Float(f) => format!("the number {f}"),
        ScalarKind::Ident(id) => format!("the identifier `{id}`"),
        ScalarKind::Str(st) => format!("the string \"{}\"", st.escape_default()),
    }
}

/// Checks a scalar against the field type. Enum values given as numbers are
/// rewritten to their names in place.
fn check_scalar(
    ty: FieldType,
    s: &mut Scalar,
    fdesc: &FieldDesc,
    parent: &MessageDesc,
) -> Result<(), Diagnostic> {
    let type_error = |s: &Scalar, help: String| {
        Diagnostic::error(
            "lvc::schema::type",
            format!(
                "`{}` of {} takes a {} value, found {}",
                fdesc.name,
                parent.name,
                ty.name(),
                describe_scalar(s)
            ),
        )
        .with_label(s.span, format!("expected {}", ty.name()))
        .with_help(help)
    };
    match ty {
        FieldType::Int32 | FieldType::Int64 | FieldType::UInt32 | FieldType::UInt64 => match s.kind
        {
            ScalarKind::Int(i) => check_range(ty, i, s.span, fdesc, parent),
            _ => Err(type_error(s, format!("write a whole number, e.g. `{}: 1`", fdesc.name))),
        },
        FieldType::Float | FieldType::Double => match s.kind {
            ScalarKind::Int(_) | ScalarKind::Float(_) => Ok(()),
            _ => Err(type_error(s, format!("write a number, e.g. `{}: 0.5`", fdesc.name))),
        },
        FieldType::Bool => match &s.kind {
            ScalarKind::Ident(id)
                if matches!(id.as_str(), "true" | "false" | "True" | "False" | "t" | "f") =>
            {
                Ok(())
            }
            ScalarKind::Int(0 | 1) => Ok(()),
            _ => Err(type_error(s, "write `true` or `false` (or 1 / 0)".to_string())),
        },
        FieldType::String | FieldType::Bytes => match &s.kind {
            ScalarKind::Str(_) => Ok(()),
            ScalarKind::Ident(id) => {
                // `layer { type: CONVOLUTION }`: a V1 enum name in a
                // current-format layer.
                let v1_kind = (std::ptr::eq(parent, &LAYER_PARAMETER) && fdesc.name == "type")
                    .then(|| v1_type_string(id))
                    .flatten()
                    .filter(|kind| !kind.is_empty());
                Err(type_error(
                    s,
                    match v1_kind {
                        Some(kind) => format!(
                            "`{id}` is a V1 layer type (for `layers {{ }}` blocks); in a `layer {{ }}` block write `type: \"{kind}\"`"
                        ),
                        None => format!("strings are quoted: write `{}: \"{id}\"`", fdesc.name),
                    },
                ))
            }
            _ => Err(type_error(s, format!("write a quoted string, e.g. `{}: \"…\"`", fdesc.name))),
        },
        FieldType::Enum(e) => check_enum(e, s, fdesc, parent),
        // `Validator::value` reports a scalar given for a message field
        // before calling this.
        FieldType::Message(_) => Ok(()),
    }
}

fn check_range(
    ty: FieldType,
    value: i128,
    span: Span,
    fdesc: &FieldDesc,
    parent: &MessageDesc,
) -> Result<(), Diagnostic> {
    let (lo, hi): (i128, i128) = match ty {
        FieldType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        FieldType::UInt32 => (0, u32::MAX.into()),
        FieldType::Int64 => (i64::MIN.into(), i64::MAX.into()),
        _ => (0, u64::MAX.into()),
    };
    if (lo..=hi).contains(&value) {
        return Ok(());
    }
    Err(Diagnostic::error(
        "lvc::schema::range",
        format!("{value} is out of range for `{}` of {} ({})", fdesc.name, parent.name, ty.name()),
    )
    .with_label(span, format!("must be between {lo} and {hi}"))
    .with_help(if value < 0 && lo == 0 {
        format!("`{}` is unsigned; negative values are not allowed", fdesc.name)
    } else {
        format!("use a value between {lo} and {hi}")
    }))
}

fn check_enum(
    e: &EnumDesc,
    s: &mut Scalar,
    fdesc: &FieldDesc,
    parent: &MessageDesc,
) -> Result<(), Diagnostic> {
    let names: Vec<&str> = e.names().collect();
    match &s.kind {
        ScalarKind::Ident(id) if e.value(id).is_some() => Ok(()),
        ScalarKind::Ident(id) => Err(Diagnostic::error(
            "lvc::schema::enum",
            format!(
                "`{id}` is not a value of {} (field `{}` of {})",
                e.name, fdesc.name, parent.name
            ),
        )
        .with_label(s.span, "unknown enum value")
        .with_help(did_you_mean(id, &names, &format!("values of {}", e.name)))),
        ScalarKind::Int(n) => match i32::try_from(*n).ok().and_then(|n| e.name_of(n)) {
            // protobuf accepts an enum's number in text format.
            Some(name) => {
                s.kind = ScalarKind::Ident(name.to_string());
                Ok(())
            }
            None => Err(Diagnostic::error(
                "lvc::schema::enum",
                format!(
                    "{n} is not a value of {} (field `{}` of {})",
                    e.name, fdesc.name, parent.name
                ),
            )
            .with_label(s.span, "unknown enum number")
            .with_help(list_valid(&names, &format!("values of {}", e.name)))),
        },
        ScalarKind::Str(st) => {
            let help = match closest(st, names.iter().copied()) {
                Some(name) => {
                    format!("enum values are written without quotes: `{}: {name}`", fdesc.name)
                }
                None => did_you_mean(st, &names, &format!("values of {} (unquoted)", e.name)),
            };
            Err(Diagnostic::error(
                "lvc::schema::type",
                format!(
                    "`{}` of {} takes a {} enum value, found a quoted string",
                    fdesc.name, parent.name, e.name
                ),
            )
            .with_label(s.span, "expected an unquoted name")
            .with_help(help))
        }
        ScalarKind::Float(_) => Err(Diagnostic::error(
            "lvc::schema::type",
            format!(
                "`{}` of {} takes a {} enum value, found {}",
                fdesc.name,
                parent.name,
                e.name,
                describe_scalar(s)
            ),
        )
        .with_label(s.span, "expected an enum name")
        .with_help(list_valid(&names, &format!("values of {}", e.name)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::descriptor::{NET_PARAMETER, SOLVER_PARAMETER};
    use crate::schema::print::to_prototxt;

    fn check(text: &str, desc: &'static MessageDesc, lenient: bool) -> (String, Diagnostics) {
        let mut tree = lvc_grammar::parse(text).expect("test input parses");
        let mut diags = Diagnostics::new();
        validate(&mut tree, desc, &LoadOptions { lenient }, &mut diags);
        (to_prototxt(&tree), diags)
    }

    #[test]
    fn accepted_scalar_forms() {
        let text = concat!(
            "layer { name: \"c\" type: \"Convolution\" propagate_down: true propagate_down: 0 propagate_down: False propagate_down: t\n",
            "  loss_weight: 1 loss_weight: 1e-3 loss_weight: -inf\n",
            "  convolution_param { num_output: 0x10 pad: 4294967295 engine: CUDNN axis: -2147483648 } }\n",
        );
        let (_, diags) = check(text, &NET_PARAMETER, false);
        assert!(diags.is_empty(), "{diags:?}");
        let (_, diags) = check(
            "lr_policy: \"step\" random_seed: -9223372036854775808 net: \"x\"",
            &SOLVER_PARAMETER,
            false,
        );
        assert!(diags.is_empty(), "{diags:?}");
    }

    #[test]
    fn required_fields_must_be_present() {
        let (_, diags) =
            check("layer { name: \"c\" clip_param { min: 0 } }", &NET_PARAMETER, false);
        assert_eq!(diags.len(), 1);
        assert_eq!(diags.items[0].code, "lvc::schema::required");
        assert_eq!(diags.items[0].message, "ClipParameter is missing its required field `max`");
        let (_, diags) = check("layer { clip_param { min: 0 max: 6 } }", &NET_PARAMETER, false);
        assert!(diags.is_empty());
    }

    #[test]
    fn lr_policy_is_a_string_not_an_enum() {
        let (_, diags) = check("lr_policy: step", &SOLVER_PARAMETER, false);
        assert_eq!(diags.items[0].code, "lvc::schema::type");
        assert_eq!(
            diags.items[0].help.as_deref(),
            Some("strings are quoted: write `lr_policy: \"step\"`")
        );
    }

    #[test]
    fn v1_type_names_in_current_layers_get_the_string_type() {
        let (_, diags) = check(
            "layer { type: INNER_PRODUCT } layers { type: \"InnerProduct\" }",
            &NET_PARAMETER,
            false,
        );
        let helps: Vec<&str> = diags.iter().filter_map(|d| d.help.as_deref()).collect();
        assert_eq!(
            helps,
            [
                "`INNER_PRODUCT` is a V1 layer type (for `layers { }` blocks); in a `layer { }` block write `type: \"InnerProduct\"`",
                "enum values are written without quotes: `type: INNER_PRODUCT`",
            ]
        );
    }

    #[test]
    fn unknown_fields_are_dropped_when_strict_and_kept_when_lenient() {
        let input =
            "name: \"n\" bogus: 1 force_backward: 3 layer { name: \"a\" bn_param { x: 1 } }";
        let (strict, diags) = check(input, &NET_PARAMETER, false);
        assert_eq!(strict, "name: \"n\"\nlayer {\n  name: \"a\"\n}\n");
        assert_eq!(diags.error_count(), 3);
        assert_eq!(diags.items[2].layer.as_deref(), Some("a"));
        let (lenient, diags) = check(input, &NET_PARAMETER, true);
        // Fork fields stay (unchecked) for the ops that read them; the type
        // error stays an error and its field is dropped.
        assert_eq!(
            lenient,
            "name: \"n\"\nbogus: 1\nlayer {\n  name: \"a\"\n  bn_param {\n    x: 1\n  }\n}\n"
        );
        assert_eq!(diags.error_count(), 1);
        assert_eq!(diags.warning_count(), 2);
        assert_eq!(diags.items[2].layer.as_deref(), Some("a"));
    }

    #[test]
    fn v0_fields_are_checked_inside_v1_connections() {
        let (_, diags) = check(
            "layers { layer { name: \"c\" type: \"conv\" kernelsize: -1 } }",
            &NET_PARAMETER,
            false,
        );
        assert_eq!(diags.items[0].code, "lvc::schema::range");
        assert_eq!(diags.items[0].layer.as_deref(), Some("c"));
    }
}
