//! Writes a parse tree back out as protobuf text format (two-space indent,
//! one field per line), e.g. to show what an upgraded V0/V1 net looks like
//! in the current format, as Caffe's `upgrade_net_proto_text` tool does.

use std::fmt::Write;

use lvc_grammar::{Message, ScalarKind, Value};

pub fn to_prototxt(msg: &Message) -> String {
    let mut out = String::new();
    write_fields(&mut out, msg, 0);
    out
}

fn write_fields(out: &mut String, msg: &Message, depth: usize) {
    for field in &msg.fields {
        let indent = "  ".repeat(depth);
        match &field.value {
            Value::Message(sub) => {
                let _ = writeln!(out, "{indent}{} {{", field.name);
                write_fields(out, sub, depth + 1);
                let _ = writeln!(out, "{indent}}}");
            }
            Value::Scalar(s) => {
                let _ = writeln!(out, "{indent}{}: {}", field.name, scalar_text(&s.kind));
            }
        }
    }
}

fn scalar_text(kind: &ScalarKind) -> String {
    match kind {
        ScalarKind::Int(i) => i.to_string(),
        // Debug keeps a decimal point and switches to exponents for very
        // small or large magnitudes (1e-10), both valid text format.
        ScalarKind::Float(f) if f.is_nan() => "nan".to_string(),
        ScalarKind::Float(f) if f.is_infinite() => {
            if *f > 0.0 { "inf" } else { "-inf" }.to_string()
        }
        ScalarKind::Float(f) => format!("{f:?}"),
        ScalarKind::Ident(id) => id.clone(),
        ScalarKind::Str(s) => quote(s),
    }
}

/// A double-quoted text-format string literal (written once, in the grammar).
pub use lvc_grammar::quote;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_parser() {
        let text = "name: \"a\\\"b\\n\\001\"\nlayer {\n  type: \"Convolution\"\n  convolution_param {\n    num_output: 96\n    pad: -1\n  }\n  phase: TEST\n  lr: 1e-10\n  x: 0.5\n  y: inf\n}\n";
        let tree = lvc_grammar::parse(text).expect("test input parses");
        let printed = to_prototxt(&tree);
        assert_eq!(printed, text);
        let again = lvc_grammar::parse(&printed).expect("printed text parses");
        assert_eq!(to_prototxt(&again), printed);
    }
}
