//! lvc-grammar: reads the protobuf text format as Caffe `.prototxt` files use
//! it into a schema-free [`Message`] tree with byte spans.
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
mod parser;
mod tree;

pub use delimiters::MAX_DEPTH;
pub use error::{ParseError, ParseErrorKind, ParseLabel};
pub use parser::parse;
pub use tree::{Field, Message, Scalar, ScalarKind, Span, Value};
