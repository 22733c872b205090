//! lvc-grammar: reads the protobuf text format as Caffe `.prototxt` files use
//! it into a schema-free [`Message`] tree with byte spans.
//!
//! [`parse`] accepts what protobuf's `TextFormat::Parser` accepts, with
//! these deliberate differences:
//! - `inf`, `infinity` and `nan` (any case) are always floats, never enum
//!   identifiers; protobuf decides by the field's type, which needs a schema.
//! - A minus sign must touch its number (`-1`, not `- 1`), and an extension
//!   name is written without spaces inside the brackets (`[pkg.ext]`).
//! - An empty list (`dim: []`) yields no field at all, as in protobuf.
//! - Nesting deeper than [`MAX_DEPTH`] is refused (`lvc::parse::depth`).
//!
//! ```
//! let net = lvc_grammar::parse("name: \"net\" layer { type: \"ReLU\" }").unwrap();
//! assert_eq!(net.fields.len(), 2);
//! ```

// pest_derive without its `std` feature names `::alloc` in generated code.
extern crate alloc;

mod delimiters;
mod error;
mod escape;
mod format;
mod parser;
mod tree;

pub use delimiters::MAX_DEPTH;
pub use error::{ParseError, ParseErrorKind, ParseLabel};
pub use format::{format, format_tree, quote, FormatOptions};
pub use parser::parse;
pub use tree::{Field, Message, Scalar, ScalarKind, Span, Value};
