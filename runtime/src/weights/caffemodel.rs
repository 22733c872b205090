//! `.caffemodel` files: a binary `caffe.NetParameter`, decoded straight from
//! a memory map. Only what weight loading needs is kept (layer name, type,
//! blobs); everything else is skipped by wire type. Handles the current
//! format (`layer`, field 100), V1 (`layers`, field 2, enum types, legacy 4-D
//! blob dims) and V0 (`layers { layer { … } }`).

use std::io::Write;
use std::path::Path;

use super::wire::{self, len_field_size, varint_len, Reader, WireError, WireType, Writer};
use super::{map_file, WeightBlob, WeightsError, WeightsFile, WeightsLayer};
use lvc_compiler::schema::upgrade::{v0_type_string, v1_type_string_of_number};

/// Field numbers of the caffe.proto messages read here.
mod field {
    pub const NET_NAME: u32 = 1;
    pub const NET_LAYERS_V1: u32 = 2;
    pub const NET_LAYER: u32 = 100;

    pub const LAYER_NAME: u32 = 1;
    pub const LAYER_TYPE: u32 = 2;
    pub const LAYER_BLOBS: u32 = 7;

    pub const V1_V0_LAYER: u32 = 1;
    pub const V1_NAME: u32 = 4;
    pub const V1_TYPE: u32 = 5;
    pub const V1_BLOBS: u32 = 6;

    pub const V0_NAME: u32 = 1;
    pub const V0_TYPE: u32 = 2;
    pub const V0_BLOBS: u32 = 50;

    pub const BLOB_NUM: u32 = 1;
    pub const BLOB_WIDTH: u32 = 4;
    pub const BLOB_DATA: u32 = 5;
    pub const BLOB_SHAPE: u32 = 7;
    pub const BLOB_DOUBLE_DATA: u32 = 8;

    pub const SHAPE_DIM: u32 = 1;
}

/// Reads a `.caffemodel` through a memory map.
pub fn read_caffemodel(path: &Path) -> Result<WeightsFile, WeightsError> {
    let map = map_file(path)?;
    read_caffemodel_bytes(&map, path)
}

/// Decodes `NetParameter` bytes; `path` only names the file in errors.
pub fn read_caffemodel_bytes(bytes: &[u8], path: &Path) -> Result<WeightsFile, WeightsError> {
    parse_net(Reader::new(bytes)).map_err(|e| match e {
        ParseError::Wire(WireError { offset, what }) => {
            WeightsError::Malformed { path: path.to_path_buf(), offset, what }
        }
        ParseError::Blob { layer, index, what } => {
            WeightsError::BadBlob { path: path.to_path_buf(), layer, index, what }
        }
        ParseError::Mixed => WeightsError::MixedFormat { path: path.to_path_buf() },
    })
}

enum ParseError {
    Wire(WireError),
    Blob { layer: String, index: usize, what: String },
    Mixed,
}

impl From<WireError> for ParseError {
    fn from(e: WireError) -> Self {
        ParseError::Wire(e)
    }
}

fn parse_net(mut r: Reader<'_>) -> Result<WeightsFile, ParseError> {
    let mut name = None;
    let mut current = Vec::new();
    let mut legacy = Vec::new();
    while let Some((f, wt)) = r.key()? {
        match (f, wt) {
            (field::NET_NAME, WireType::Len) => name = Some(r.string()?),
            (field::NET_LAYER, WireType::Len) => current.push(parse_layer(r.sub_message()?)?),
            (field::NET_LAYERS_V1, WireType::Len) => legacy.push(parse_v1_layer(r.sub_message()?)?),
            _ => r.skip(f, wt)?,
        }
    }
    if !current.is_empty() && !legacy.is_empty() {
        return Err(ParseError::Mixed);
    }
    current.extend(legacy);
    Ok(WeightsFile { name, layers: current })
}

/// A layer as read, before its blobs are checked (the name may come after them).
struct RawLayer {
    name: String,
    kind: String,
    blobs: Vec<RawBlob>,
}

impl RawLayer {
    fn finish(self) -> Result<WeightsLayer, ParseError> {
        let name = self.name;
        let blobs = self
            .blobs
            .into_iter()
            .enumerate()
            .map(|(index, b)| {
                b.finish().map_err(|what| ParseError::Blob { layer: name.clone(), index, what })
            })
            .collect::<Result<_, _>>()?;
        Ok(WeightsLayer { name, kind: self.kind, blobs })
    }
}

fn parse_layer(mut r: Reader<'_>) -> Result<WeightsLayer, ParseError> {
    let mut layer = RawLayer { name: String::new(), kind: String::new(), blobs: Vec::new() };
    while let Some((f, wt)) = r.key()? {
        match (f, wt) {
            (field::LAYER_NAME, WireType::Len) => layer.name = r.string()?,
            (field::LAYER_TYPE, WireType::Len) => layer.kind = r.string()?,
            (field::LAYER_BLOBS, WireType::Len) => layer.blobs.push(parse_blob(r.sub_message()?)?),
            _ => r.skip(f, wt)?,
        }
    }
    layer.finish()
}

fn parse_v1_layer(mut r: Reader<'_>) -> Result<WeightsLayer, ParseError> {
    let mut layer = RawLayer { name: String::new(), kind: String::new(), blobs: Vec::new() };
    let mut v0 = None;
    while let Some((f, wt)) = r.key()? {
        match (f, wt) {
            (field::V1_V0_LAYER, WireType::Len) => v0 = Some(parse_v0_layer(r.sub_message()?)?),
            (field::V1_NAME, WireType::Len) => layer.name = r.string()?,
            (field::V1_TYPE, WireType::Varint) => layer.kind = v1_type_name(r.varint()?),
            (field::V1_BLOBS, WireType::Len) => layer.blobs.push(parse_blob(r.sub_message()?)?),
            _ => r.skip(f, wt)?,
        }
    }
    // In a V0 net the V1 message only wraps the V0 layer (plus bottoms and
    // tops); Caffe's V0→V1 upgrade takes name, type and blobs from inside.
    v0.unwrap_or(layer).finish()
}

fn parse_v0_layer(mut r: Reader<'_>) -> Result<RawLayer, ParseError> {
    let mut layer = RawLayer { name: String::new(), kind: String::new(), blobs: Vec::new() };
    while let Some((f, wt)) = r.key()? {
        match (f, wt) {
            (field::V0_NAME, WireType::Len) => layer.name = r.string()?,
            (field::V0_TYPE, WireType::Len) => layer.kind = v0_type_name(&r.string()?),
            (field::V0_BLOBS, WireType::Len) => layer.blobs.push(parse_blob(r.sub_message()?)?),
            _ => r.skip(f, wt)?,
        }
    }
    Ok(layer)
}

/// A `BlobProto` as stored.
#[derive(Default)]
pub(crate) struct RawBlob {
    /// num, channels, height, width, when present.
    legacy: [Option<i64>; 4],
    shape: Option<Vec<i64>>,
    data: Vec<f32>,
    double_data: Vec<f32>,
}

pub(crate) fn parse_blob(mut r: Reader<'_>) -> Result<RawBlob, WireError> {
    let mut blob = RawBlob::default();
    while let Some((f, wt)) = r.key()? {
        match (f, wt) {
            (field::BLOB_NUM..=field::BLOB_WIDTH, WireType::Varint) => {
                // int32 on the wire: negative values arrive sign-extended.
                blob.legacy[(f - field::BLOB_NUM) as usize] = Some(i64::from(r.varint()? as i32));
            }
            (field::BLOB_DATA, WireType::Len) => {
                let (bytes, at) = r.len_bytes()?;
                if bytes.len() % 4 != 0 {
                    return Err(r.error(
                        at,
                        format!(
                            "packed float data of {} bytes is not a multiple of 4",
                            bytes.len()
                        ),
                    ));
                }
                wire::extend_f32_le(&mut blob.data, bytes);
            }
            (field::BLOB_DATA, WireType::Fixed32) => {
                blob.data.push(f32::from_le_bytes(r.fixed32()?))
            }
            (field::BLOB_DOUBLE_DATA, WireType::Len) => {
                let (bytes, at) = r.len_bytes()?;
                if bytes.len() % 8 != 0 {
                    return Err(r.error(
                        at,
                        format!(
                            "packed double data of {} bytes is not a multiple of 8",
                            bytes.len()
                        ),
                    ));
                }
                wire::extend_f64_le_as_f32(&mut blob.double_data, bytes);
            }
            (field::BLOB_DOUBLE_DATA, WireType::Fixed64) => {
                blob.double_data.push(f64::from_le_bytes(r.fixed64()?) as f32)
            }
            (field::BLOB_SHAPE, WireType::Len) => {
                // A repeated sub-message field that is set twice merges: dims append.
                let dims = parse_blob_shape(r.sub_message()?)?;
                blob.shape.get_or_insert_with(Vec::new).extend(dims);
            }
            _ => r.skip(f, wt)?,
        }
    }
    Ok(blob)
}

fn parse_blob_shape(mut r: Reader<'_>) -> Result<Vec<i64>, WireError> {
    let mut dims = Vec::new();
    while let Some((f, wt)) = r.key()? {
        match (f, wt) {
            (field::SHAPE_DIM, WireType::Len) => {
                let mut packed = r.sub_message()?;
                while !packed.is_empty() {
                    dims.push(packed.varint()? as i64);
                }
            }
            (field::SHAPE_DIM, WireType::Varint) => dims.push(r.varint()? as i64),
            _ => r.skip(f, wt)?,
        }
    }
    Ok(dims)
}

impl RawBlob {
    /// Caffe's `Blob::FromProto`: legacy dims win if any is present, then
    /// `shape`; values from `double_data` if non-empty, else `data`; the
    /// value count must equal the shape's count.
    pub(crate) fn finish(self) -> Result<WeightBlob, String> {
        let legacy_4d = self.legacy.iter().any(Option::is_some);
        let shape = if legacy_4d {
            self.legacy.iter().map(|d| d.unwrap_or(0)).collect()
        } else {
            self.shape.unwrap_or_default()
        };
        let count = shape
            .iter()
            .try_fold(1i64, |acc, &d| if d < 0 { None } else { acc.checked_mul(d) })
            .ok_or_else(|| format!("shape {shape:?} has a negative or overflowing dimension"))?;
        let data = if self.double_data.is_empty() { self.data } else { self.double_data };
        if data.len() as i64 != count {
            return Err(format!(
                "shape {shape:?} needs {count} values but the file stores {}",
                data.len()
            ));
        }
        Ok(WeightBlob { shape, legacy_4d, data })
    }
}

/// Caffe's `UpgradeV1LayerType`: V1 enum number → today's type string
/// (the compiler's table, which upgrades V1 prototxt).
fn v1_type_name(value: u64) -> String {
    match v1_type_string_of_number(value) {
        Some(name) => name.to_string(),
        // Matching is by name only, so an enum value from a forked Caffe
        // must not stop the load; the type is kept recognisable.
        None => format!("V1LayerType({value})"),
    }
}

/// Caffe's `UpgradeV0LayerType`: V0 type string → today's type string.
/// Unknown V0 types are kept as written (matching is by name only).
fn v0_type_name(v0: &str) -> String {
    v0_type_string(v0).unwrap_or(v0).to_string()
}

/// Writes `weights` as a current-format `NetParameter` (layer name, type and
/// blobs; blobs with `shape` and packed `data`, or the legacy 4-D fields for
/// blobs read that way so that Caffe's right-aligned shape rule still
/// applies). Atomic: a temporary file is renamed into place.
pub fn write_caffemodel(path: &Path, weights: &WeightsFile) -> Result<(), WeightsError> {
    lvc_fsio::write_atomic_with(path, |out| write_net(out, weights))
        .map_err(|e| WeightsError::io(path, e))
}

fn write_net(out: &mut impl Write, weights: &WeightsFile) -> std::io::Result<()> {
    let mut head = Writer::new();
    if let Some(name) = &weights.name {
        head.bytes_field(field::NET_NAME, name.as_bytes());
    }
    out.write_all(&head.buf)?;
    for layer in &weights.layers {
        let blobs: Vec<(Writer, usize)> = layer.blobs.iter().map(blob_header).collect();
        let mut head = Writer::new();
        head.bytes_field(field::LAYER_NAME, layer.name.as_bytes());
        head.bytes_field(field::LAYER_TYPE, layer.kind.as_bytes());
        let layer_len = head.buf.len()
            + blobs
                .iter()
                .map(|(_, blob_len)| len_field_size(field::LAYER_BLOBS, *blob_len))
                .sum::<usize>();
        let mut prefix = Writer::new();
        prefix.len_prefix(field::NET_LAYER, layer_len);
        out.write_all(&prefix.buf)?;
        out.write_all(&head.buf)?;
        for ((blob_head, blob_len), blob) in blobs.iter().zip(&layer.blobs) {
            let mut prefix = Writer::new();
            prefix.len_prefix(field::LAYER_BLOBS, *blob_len);
            out.write_all(&prefix.buf)?;
            out.write_all(&blob_head.buf)?;
            write_f32_le(out, &blob.data)?;
        }
    }
    Ok(())
}

/// A blob's encoding up to (and including) the key and length of its packed
/// data, plus the blob message's total payload length.
pub(crate) fn blob_header(blob: &WeightBlob) -> (Writer, usize) {
    let mut w = Writer::new();
    if blob.legacy_4d {
        for (i, &d) in blob.shape.iter().enumerate().take(4) {
            w.int_field(field::BLOB_NUM + i as u32, d);
        }
    } else {
        let dims_len: usize = blob.shape.iter().map(|&d| varint_len(d as u64)).sum();
        let shape_len =
            if blob.shape.is_empty() { 0 } else { len_field_size(field::SHAPE_DIM, dims_len) };
        w.len_prefix(field::BLOB_SHAPE, shape_len);
        if !blob.shape.is_empty() {
            w.len_prefix(field::SHAPE_DIM, dims_len);
            for &d in &blob.shape {
                w.varint(d as u64);
            }
        }
    }
    let data_bytes = blob.data.len() * 4;
    let mut total = w.buf.len();
    if data_bytes > 0 {
        w.len_prefix(field::BLOB_DATA, data_bytes);
        total = w.buf.len() + data_bytes;
    }
    (w, total)
}

/// Floats as little-endian bytes, without a per-value write call.
pub(crate) fn write_f32_le(out: &mut impl Write, data: &[f32]) -> std::io::Result<()> {
    if cfg!(target_endian = "little") {
        out.write_all(bytemuck::cast_slice(data))
    } else {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        out.write_all(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(weights: &WeightsFile) -> Vec<u8> {
        let mut out = Vec::new();
        write_net(&mut out, weights).unwrap();
        out
    }

    #[test]
    fn writer_output_decodes_to_the_same_weights() {
        let weights = WeightsFile {
            name: Some("net".into()),
            layers: vec![
                WeightsLayer { name: "data".into(), kind: "Input".into(), blobs: vec![] },
                WeightsLayer {
                    name: "conv1".into(),
                    kind: "Convolution".into(),
                    blobs: vec![
                        WeightBlob::new(vec![2, 1, 1, 2], vec![1.0, -2.0, 3.5, f32::MIN_POSITIVE]),
                        WeightBlob::new(vec![2], vec![0.1, 0.2]),
                    ],
                },
                WeightsLayer {
                    name: "fc".into(),
                    kind: "InnerProduct".into(),
                    blobs: vec![WeightBlob {
                        shape: vec![1, 1, 1, 2],
                        legacy_4d: true,
                        data: vec![5.0, 6.0],
                    }],
                },
                WeightsLayer {
                    name: "scalar".into(),
                    kind: "Parameter".into(),
                    blobs: vec![WeightBlob::new(vec![], vec![7.0])],
                },
            ],
        };
        let bytes = encode(&weights);
        assert_eq!(read_caffemodel_bytes(&bytes, Path::new("t.caffemodel")).unwrap(), weights);
    }

    #[test]
    fn count_mismatch_names_layer_and_blob() {
        let mut w = Writer::new();
        let mut blob = Writer::new();
        blob.len_prefix(field::BLOB_SHAPE, 4);
        blob.len_prefix(field::SHAPE_DIM, 2);
        blob.varint(3);
        blob.varint(2);
        blob.key(field::BLOB_DATA, WireType::Fixed32);
        blob.buf.extend_from_slice(&1f32.to_le_bytes());
        let mut layer = Writer::new();
        layer.bytes_field(field::LAYER_NAME, b"ip");
        layer.bytes_field(field::LAYER_BLOBS, &blob.buf);
        w.bytes_field(field::NET_LAYER, &layer.buf);
        let err = read_caffemodel_bytes(&w.buf, Path::new("x.caffemodel")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("layer 'ip' blob 0")
                && text.contains("needs 6 values but the file stores 1"),
            "{text}"
        );
    }

    #[test]
    fn both_layer_and_layers_is_refused_like_caffe() {
        let mut w = Writer::new();
        w.bytes_field(field::NET_LAYER, &[]);
        w.bytes_field(field::NET_LAYERS_V1, &[]);
        let err = read_caffemodel_bytes(&w.buf, Path::new("m.caffemodel")).unwrap_err();
        assert!(matches!(err, WeightsError::MixedFormat { .. }), "{err:?}");
    }

    #[test]
    fn v1_enum_and_v0_strings_are_upgraded() {
        assert_eq!(v1_type_name(4), "Convolution");
        assert_eq!(v1_type_name(21), "SoftmaxWithLoss");
        assert_eq!(v1_type_name(39), "Deconvolution");
        assert_eq!(v1_type_name(0), "");
        assert_eq!(v1_type_name(99), "V1LayerType(99)");
        assert_eq!(v0_type_name("innerproduct"), "InnerProduct");
        assert_eq!(v0_type_name("images"), "ImageData");
        assert_eq!(v0_type_name("padding"), "padding");
    }
}
