//! lvc-grammar: reads the protobuf text format as Caffe `.prototxt` files use
//! it into a schema-free [`Message`] tree with byte spans.

mod tree;

pub use tree::{Field, Message, Scalar, ScalarKind, Span, Value};
