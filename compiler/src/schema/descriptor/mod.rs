//! Static descriptors of the caffe.proto messages reachable from
//! `NetParameter` and `SolverParameter` (BVLC caffe 9b891540), plus lvc's own
//! extensions (marked [`Origin::Lvc`], documented in
//! `docs/schema_extensions.md`).
//!
//! The tables are data: one line per field with its number, type, label and
//! default, transcribed from caffe.proto. The validator walks a parse tree
//! against them; nothing here knows about spans.

mod layer_params;
mod lvc;
mod net;
mod solver;

pub use layer_params::*;
pub use lvc::{AUGMENT_PARAMETER, DICE_PARAMETER};
pub use net::*;
pub use solver::*;

use std::fmt;

/// The type of a field's values.
#[derive(Clone, Copy)]
pub enum FieldType {
    Int32,
    Int64,
    UInt32,
    UInt64,
    Float,
    Double,
    Bool,
    String,
    Bytes,
    Enum(&'static EnumDesc),
    Message(&'static MessageDesc),
}

impl FieldType {
    /// The name as caffe.proto writes it (`uint32`, `FillerParameter`).
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::Int32 => "int32",
            FieldType::Int64 => "int64",
            FieldType::UInt32 => "uint32",
            FieldType::UInt64 => "uint64",
            FieldType::Float => "float",
            FieldType::Double => "double",
            FieldType::Bool => "bool",
            FieldType::String => "string",
            FieldType::Bytes => "bytes",
            FieldType::Enum(e) => e.name,
            FieldType::Message(m) => m.name,
        }
    }
}

// Printing only the name keeps `Debug` of a descriptor finite and readable.
impl fmt::Debug for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Optional,
    /// proto2 `required` (only `ClipParameter.min`/`max`): a message
    /// without it fails to parse.
    Required,
    Repeated,
}

/// A field's declared default. `None` means no `[default = …]`: the field
/// has presence semantics or reads as the type's zero value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    None,
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(&'static str),
    Enum(&'static str),
}

/// Where a field comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// BVLC caffe.proto.
    Caffe,
    /// An lvc extension (not understood by real Caffe).
    Lvc,
}

#[derive(Debug)]
pub struct FieldDesc {
    pub name: &'static str,
    pub number: u32,
    pub ty: FieldType,
    pub label: Label,
    pub default: DefaultValue,
    pub origin: Origin,
}

impl FieldDesc {
    pub fn is_repeated(&self) -> bool {
        self.label == Label::Repeated
    }
}

#[derive(Debug)]
pub struct MessageDesc {
    pub name: &'static str,
    pub fields: &'static [FieldDesc],
}

impl MessageDesc {
    pub fn field(&self, name: &str) -> Option<&'static FieldDesc> {
        self.fields.iter().find(|f| f.name == name)
    }
    pub fn field_by_number(&self, number: u32) -> Option<&'static FieldDesc> {
        self.fields.iter().find(|f| f.number == number)
    }
    pub fn field_names(&self) -> impl Iterator<Item = &'static str> {
        self.fields.iter().map(|f| f.name)
    }
}

#[derive(Debug)]
pub struct EnumDesc {
    pub name: &'static str,
    pub values: &'static [(&'static str, i32)],
}

impl EnumDesc {
    pub fn value(&self, name: &str) -> Option<i32> {
        self.values.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
    }
    pub fn name_of(&self, number: i32) -> Option<&'static str> {
        self.values.iter().find(|&&(_, v)| v == number).map(|&(n, _)| n)
    }
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        self.values.iter().map(|&(n, _)| n)
    }
}

// Table-building helpers: one call per field keeps each table line short.

pub(crate) const fn opt(
    number: u32,
    name: &'static str,
    ty: FieldType,
    default: DefaultValue,
) -> FieldDesc {
    FieldDesc { name, number, ty, label: Label::Optional, default, origin: Origin::Caffe }
}

pub(crate) const fn req(number: u32, name: &'static str, ty: FieldType) -> FieldDesc {
    FieldDesc {
        name,
        number,
        ty,
        label: Label::Required,
        default: DefaultValue::None,
        origin: Origin::Caffe,
    }
}

pub(crate) const fn rep(number: u32, name: &'static str, ty: FieldType) -> FieldDesc {
    FieldDesc {
        name,
        number,
        ty,
        label: Label::Repeated,
        default: DefaultValue::None,
        origin: Origin::Caffe,
    }
}

/// Marks a field as an lvc extension.
pub(crate) const fn lvc_ext(field: FieldDesc) -> FieldDesc {
    FieldDesc { origin: Origin::Lvc, ..field }
}

pub(crate) const fn msg(desc: &'static MessageDesc) -> FieldType {
    FieldType::Message(desc)
}

pub(crate) const fn en(desc: &'static EnumDesc) -> FieldType {
    FieldType::Enum(desc)
}

pub(crate) use DefaultValue::{Bool as B, Enum as E, Float as F, Int as I, None as NONE, Str as S};
pub(crate) use FieldType::{
    Bool as BOOL, Double as DOUBLE, Float as FLOAT, Int32 as INT32, Int64 as INT64,
    String as STRING, UInt32 as UINT32,
};

macro_rules! message {
    ($(#[$doc:meta])* $static:ident = $name:literal [ $($field:expr),* $(,)? ]) => {
        $(#[$doc])*
        pub static $static: $crate::schema::descriptor::MessageDesc =
            $crate::schema::descriptor::MessageDesc { name: $name, fields: &[$($field),*] };
    };
}

macro_rules! enumeration {
    ($(#[$doc:meta])* $static:ident = $name:literal [ $($value:ident = $number:literal),* $(,)? ]) => {
        $(#[$doc])*
        pub static $static: $crate::schema::descriptor::EnumDesc =
            $crate::schema::descriptor::EnumDesc { name: $name, values: &[$((stringify!($value), $number)),*] };
    };
}

pub(crate) use {enumeration, message};

/// Every message descriptor, for lookups by name and for table checks.
pub fn all_messages() -> &'static [&'static MessageDesc] {
    ALL_MESSAGES
}

static ALL_MESSAGES: &[&MessageDesc] = &[
    &NET_PARAMETER,
    &LAYER_PARAMETER,
    &V1_LAYER_PARAMETER,
    &V0_LAYER_PARAMETER,
    &BLOB_PROTO,
    &BLOB_SHAPE,
    &BLOB_PROTO_VECTOR,
    &NET_STATE,
    &NET_STATE_RULE,
    &PARAM_SPEC,
    &SOLVER_PARAMETER,
    &SOLVER_STATE,
    &TRANSFORMATION_PARAMETER,
    &LOSS_PARAMETER,
    &FILLER_PARAMETER,
    &ACCURACY_PARAMETER,
    &ARG_MAX_PARAMETER,
    &BATCH_NORM_PARAMETER,
    &BIAS_PARAMETER,
    &CLIP_PARAMETER,
    &CONCAT_PARAMETER,
    &CONTRASTIVE_LOSS_PARAMETER,
    &CONVOLUTION_PARAMETER,
    &CROP_PARAMETER,
    &DATA_PARAMETER,
    &DROPOUT_PARAMETER,
    &DUMMY_DATA_PARAMETER,
    &ELTWISE_PARAMETER,
    &ELU_PARAMETER,
    &EMBED_PARAMETER,
    &EXP_PARAMETER,
    &FLATTEN_PARAMETER,
    &HDF5_DATA_PARAMETER,
    &HDF5_OUTPUT_PARAMETER,
    &HINGE_LOSS_PARAMETER,
    &IMAGE_DATA_PARAMETER,
    &INFOGAIN_LOSS_PARAMETER,
    &INNER_PRODUCT_PARAMETER,
    &INPUT_PARAMETER,
    &LOG_PARAMETER,
    &LRN_PARAMETER,
    &MEMORY_DATA_PARAMETER,
    &MVN_PARAMETER,
    &PARAMETER_PARAMETER,
    &POOLING_PARAMETER,
    &POWER_PARAMETER,
    &PYTHON_PARAMETER,
    &RECURRENT_PARAMETER,
    &REDUCTION_PARAMETER,
    &RELU_PARAMETER,
    &PRELU_PARAMETER,
    &RESHAPE_PARAMETER,
    &SCALE_PARAMETER,
    &SIGMOID_PARAMETER,
    &SOFTMAX_PARAMETER,
    &SPP_PARAMETER,
    &SLICE_PARAMETER,
    &SWISH_PARAMETER,
    &TANH_PARAMETER,
    &THRESHOLD_PARAMETER,
    &TILE_PARAMETER,
    &WINDOW_DATA_PARAMETER,
    &DICE_PARAMETER,
    &AUGMENT_PARAMETER,
];

/// A message descriptor by its caffe.proto name (`"ConvolutionParameter"`).
pub fn message_by_name(name: &str) -> Option<&'static MessageDesc> {
    ALL_MESSAGES.iter().copied().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn reachable() -> Vec<&'static MessageDesc> {
        let mut seen: Vec<&'static MessageDesc> = Vec::new();
        let mut stack: Vec<&'static MessageDesc> =
            vec![&NET_PARAMETER, &SOLVER_PARAMETER, &SOLVER_STATE, &BLOB_PROTO_VECTOR];
        while let Some(m) = stack.pop() {
            if seen.iter().any(|s| std::ptr::eq(*s, m)) {
                continue;
            }
            seen.push(m);
            stack.extend(m.fields.iter().filter_map(|f| match f.ty {
                FieldType::Message(sub) => Some(sub),
                _ => None,
            }));
        }
        seen
    }

    #[test]
    fn every_listed_message_is_reachable_and_vice_versa() {
        let reachable: HashSet<&str> = reachable().iter().map(|m| m.name).collect();
        let listed: HashSet<&str> = all_messages().iter().map(|m| m.name).collect();
        assert_eq!(reachable, listed);
        assert_eq!(listed.len(), all_messages().len(), "no message listed twice");
        assert!(listed.len() >= 60, "{}", listed.len());
    }

    #[test]
    fn names_and_numbers_are_unique_per_message() {
        for m in all_messages() {
            let names: HashSet<&str> = m.field_names().collect();
            let numbers: HashSet<u32> = m.fields.iter().map(|f| f.number).collect();
            assert_eq!(names.len(), m.fields.len(), "{}", m.name);
            assert_eq!(numbers.len(), m.fields.len(), "{}", m.name);
        }
    }

    #[test]
    fn defaults_fit_their_field_types() {
        for m in all_messages() {
            for f in m.fields {
                let fits = match (f.ty, f.default) {
                    (_, DefaultValue::None) => true,
                    (
                        FieldType::Int32 | FieldType::Int64 | FieldType::UInt32 | FieldType::UInt64,
                        DefaultValue::Int(_),
                    ) => true,
                    (FieldType::Float | FieldType::Double, DefaultValue::Float(_)) => true,
                    (FieldType::Bool, DefaultValue::Bool(_)) => true,
                    (FieldType::String | FieldType::Bytes, DefaultValue::Str(_)) => true,
                    (FieldType::Enum(e), DefaultValue::Enum(name)) => e.value(name).is_some(),
                    _ => false,
                };
                assert!(fits, "{}.{}: {:?} default {:?}", m.name, f.name, f.ty, f.default);
                assert!(
                    !(f.is_repeated() && f.default != DefaultValue::None),
                    "{}.{}",
                    m.name,
                    f.name
                );
            }
        }
    }

    #[test]
    fn lvc_extensions_are_exactly_the_documented_ones() {
        let mut ext: Vec<String> = all_messages()
            .iter()
            .filter(|m| m.name != "DiceParameter" && m.name != "AugmentParameter")
            .flat_map(|m| {
                m.fields
                    .iter()
                    .filter(|f| f.origin == Origin::Lvc)
                    .map(move |f| format!("{}.{}={}", m.name, f.name, f.number))
            })
            .collect();
        ext.sort();
        assert_eq!(
            ext,
            [
                "LayerParameter.augment_param=1002",
                "LayerParameter.dice_param=1001",
                "LossParameter.class_weight=1001"
            ]
        );
        assert!(DICE_PARAMETER
            .fields
            .iter()
            .chain(AUGMENT_PARAMETER.fields)
            .all(|f| f.origin == Origin::Lvc));
        assert_eq!(AUGMENT_PARAMETER.fields.len(), 19);
        assert_eq!(
            DICE_PARAMETER.field("empty_score").map(|f| f.default),
            Some(DefaultValue::Float(1.0))
        );
    }

    #[test]
    fn spot_checks_against_caffe_proto() {
        let number = |m: &MessageDesc, name: &str| m.field(name).map(|f| f.number);
        assert_eq!(number(&NET_PARAMETER, "layer"), Some(100));
        assert_eq!(number(&LAYER_PARAMETER, "clip_param"), Some(148));
        assert_eq!(number(&LAYER_PARAMETER, "transform_param"), Some(100));
        assert_eq!(number(&V1_LAYER_PARAMETER, "convolution_param"), Some(10));
        assert_eq!(number(&V1_LAYER_PARAMETER, "blob_share_mode"), Some(1002));
        assert_eq!(number(&V0_LAYER_PARAMETER, "hdf5_output_param"), Some(1001));
        assert_eq!(number(&SOLVER_PARAMETER, "weights"), Some(42));
        assert_eq!(V1_LAYER_TYPE.value("DECONVOLUTION"), Some(39));
        assert_eq!(NET_STATE.field("phase").map(|f| f.default), Some(DefaultValue::Enum("TEST")));
        assert_eq!(LRN_PARAMETER.field("alpha").map(|f| f.default), Some(DefaultValue::Float(1.0)));
        assert!(matches!(
            SOLVER_PARAMETER.field("lr_policy").map(|f| f.ty),
            Some(FieldType::String)
        ));
        assert!(message_by_name("ConvolutionParameter")
            .is_some_and(|m| m.field("dilation").is_some_and(FieldDesc::is_repeated)));
        assert_eq!(SOLVER_TYPE.name_of(5), Some("ADAM"));
    }
}
