//! Hand-encoded `.caffemodel` files for every encoding the reader must
//! accept (V1 layers with legacy dims, V0 layers, unpacked floats,
//! double_data, unknown fields of every wire type) and the damage it must
//! reject with the byte offset. The encoder here is written independently of
//! the crate's writer, from caffe.proto field numbers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::path::Path;

use lvc_runtime::weights::{read_caffemodel, read_caffemodel_bytes, WeightBlob, WeightsError};

/// A protobuf message under construction.
#[derive(Default, Clone)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(mut self, mut v: u64) -> Self {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
        self
    }
    fn key(self, field: u64, wire: u64) -> Self {
        self.varint(field << 3 | wire)
    }
    fn int(self, field: u64, v: i64) -> Self {
        self.key(field, 0).varint(v as u64)
    }
    fn bytes(self, field: u64, b: &[u8]) -> Self {
        let mut m = self.key(field, 2).varint(b.len() as u64);
        m.0.extend_from_slice(b);
        m
    }
    fn str(self, field: u64, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }
    fn msg(self, field: u64, m: &Msg) -> Self {
        self.bytes(field, &m.0)
    }
    fn fixed32(self, field: u64, v: f32) -> Self {
        let mut m = self.key(field, 5);
        m.0.extend_from_slice(&v.to_le_bytes());
        m
    }
    fn fixed64(self, field: u64, v: f64) -> Self {
        let mut m = self.key(field, 1);
        m.0.extend_from_slice(&v.to_le_bytes());
        m
    }
    fn packed_f32(self, field: u64, values: &[f32]) -> Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.bytes(field, &bytes)
    }
    fn packed_f64(self, field: u64, values: &[f64]) -> Self {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.bytes(field, &bytes)
    }
    /// One unknown field of each wire type (varint, fixed64, LEN, a group
    /// with a nested group, fixed32), numbered from `base`.
    fn unknown_fields(self, base: u64) -> Self {
        let group_body = Msg::default().int(1, -5).key(2, 3).fixed32(1, 1.0).key(2, 4);
        let mut m = self.int(base, 300).fixed64(base + 1, 2.5).str(base + 2, "fork param");
        m = m.key(base + 3, 3);
        m.0.extend_from_slice(&group_body.0);
        m.key(base + 3, 4).fixed32(base + 4, 7.0)
    }
}

fn shape(dims: &[i64]) -> Msg {
    let mut packed = Msg::default();
    for &d in dims {
        packed = packed.varint(d as u64);
    }
    Msg::default().msg(1, &packed)
}

fn decode(bytes: &[u8]) -> Result<lvc_runtime::weights::WeightsFile, WeightsError> {
    read_caffemodel_bytes(bytes, Path::new("hand.caffemodel"))
}

#[test]
fn v1_layers_with_legacy_dims_and_enum_types() {
    // V1LayerParameter: name 4, type 5 (enum), blobs 6; BlobProto legacy dims 1..4.
    let weight = Msg::default()
        .int(1, 1)
        .int(2, 1)
        .int(3, 2)
        .int(4, 3)
        .packed_f32(5, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let bias = Msg::default().int(1, 1).int(2, 1).int(3, 1).int(4, 2).packed_f32(5, &[0.5, -0.5]);
    let ip = Msg::default().str(4, "fc8").int(5, 14).msg(6, &weight).msg(6, &bias);
    let conv = Msg::default()
        .str(4, "conv1")
        .int(5, 4)
        .msg(6, &Msg::default().int(1, 1).int(2, 1).int(3, 1).int(4, 1).fixed32(5, 9.0));
    let relu = Msg::default().str(4, "relu1").int(5, 18).str(2, "conv1").str(3, "conv1");
    let net = Msg::default().str(1, "CaffeNet").msg(2, &conv).msg(2, &relu).msg(2, &ip);
    let file = decode(&net.0).unwrap();
    assert_eq!(file.name.as_deref(), Some("CaffeNet"));
    let summary: Vec<(&str, &str, usize)> =
        file.layers.iter().map(|l| (l.name.as_str(), l.kind.as_str(), l.blobs.len())).collect();
    assert_eq!(
        summary,
        vec![("conv1", "Convolution", 1), ("relu1", "ReLU", 0), ("fc8", "InnerProduct", 2)]
    );
    let fc8 = &file.layers[2];
    assert_eq!(
        fc8.blobs[0],
        WeightBlob {
            shape: vec![1, 1, 2, 3],
            legacy_4d: true,
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        }
    );
    assert_eq!(fc8.blobs[1].shape, vec![1, 1, 1, 2]);
}

#[test]
fn a_single_legacy_dim_makes_the_blob_4d_with_zeros() {
    // Caffe: if ANY of num/channels/height/width is present the blob is 4-D.
    let blob = Msg::default().int(3, 0).msg(7, &shape(&[5]));
    let layer = Msg::default().str(1, "empty").str(2, "Parameter").msg(7, &blob);
    let file = decode(&Msg::default().msg(100, &layer).0).unwrap();
    assert_eq!(
        file.layers[0].blobs[0],
        WeightBlob { shape: vec![0, 0, 0, 0], legacy_4d: true, data: vec![] }
    );
}

#[test]
fn v0_layers_inside_v1_connections() {
    // V1 `layers { layer { name type blobs(50) } bottom top }`, V0 type strings.
    let blob = Msg::default().int(1, 2).int(2, 1).int(3, 1).int(4, 1).packed_f32(5, &[0.25, 0.75]);
    let v0_conv = Msg::default().str(1, "conv1").str(2, "conv").int(3, 2).msg(50, &blob);
    let v0_ip = Msg::default().str(1, "ip").str(2, "innerproduct").msg(50, &blob);
    let net = Msg::default()
        .msg(2, &Msg::default().msg(1, &v0_conv).str(2, "data").str(3, "conv1"))
        .msg(2, &Msg::default().msg(1, &v0_ip).str(2, "conv1").str(3, "ip"));
    let file = decode(&net.0).unwrap();
    assert_eq!(file.layers[0].name, "conv1");
    assert_eq!(file.layers[0].kind, "Convolution");
    assert_eq!(file.layers[1].kind, "InnerProduct");
    assert_eq!(
        file.layers[1].blobs[0],
        WeightBlob { shape: vec![2, 1, 1, 1], legacy_4d: true, data: vec![0.25, 0.75] }
    );
}

#[test]
fn unpacked_floats_and_mixed_packed_runs_concatenate() {
    let blob = Msg::default()
        .msg(7, &shape(&[2, 2]))
        .fixed32(5, 1.0)
        .packed_f32(5, &[2.0, 3.0])
        .fixed32(5, 4.0);
    let layer = Msg::default().str(1, "ip").str(2, "InnerProduct").msg(7, &blob);
    let file = decode(&Msg::default().msg(100, &layer).0).unwrap();
    assert_eq!(file.layers[0].blobs[0], WeightBlob::new(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
}

#[test]
fn unpacked_shape_dims_are_accepted() {
    let dims = Msg::default().int(1, 3).int(1, 1);
    let blob = Msg::default().msg(7, &dims).packed_f32(5, &[1.0, 2.0, 3.0]);
    let layer = Msg::default().str(1, "b").str(2, "Bias").msg(7, &blob);
    let file = decode(&Msg::default().msg(100, &layer).0).unwrap();
    assert_eq!(file.layers[0].blobs[0].shape, vec![3, 1]);
}

#[test]
fn double_data_wins_over_data_packed_or_not() {
    let packed =
        Msg::default().msg(7, &shape(&[2])).packed_f32(5, &[9.0, 9.0]).packed_f64(8, &[0.1, -1e-3]);
    let unpacked = Msg::default().msg(7, &shape(&[2])).fixed64(8, 0.1).fixed64(8, -1e-3);
    for blob in [packed, unpacked] {
        let layer = Msg::default().str(1, "d").str(2, "Convolution").msg(7, &blob);
        let file = decode(&Msg::default().msg(100, &layer).0).unwrap();
        assert_eq!(file.layers[0].blobs[0].data, vec![0.1f64 as f32, -1e-3f64 as f32]);
    }
}

#[test]
fn diff_is_ignored() {
    let blob = Msg::default()
        .msg(7, &shape(&[1]))
        .packed_f32(5, &[1.0])
        .packed_f32(6, &[123.0])
        .packed_f64(9, &[4.0]);
    let layer = Msg::default().str(1, "d").str(2, "Scale").msg(7, &blob);
    let file = decode(&Msg::default().msg(100, &layer).0).unwrap();
    assert_eq!(file.layers[0].blobs[0].data, vec![1.0]);
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped_at_every_level() {
    let blob = Msg::default()
        .unknown_fields(20)
        .msg(7, &shape(&[2]).unknown_fields(30))
        .packed_f32(5, &[1.0, 2.0])
        .unknown_fields(40);
    // 149+ is past caffe.proto's last LayerParameter field: a fork's param.
    let layer = Msg::default()
        .unknown_fields(149)
        .str(1, "conv")
        .int(10, 1)
        .str(2, "Convolution")
        .msg(7, &blob)
        .unknown_fields(200);
    let v1 = Msg::default().str(4, "v1").int(5, 4).unknown_fields(50);
    let net = Msg::default().unknown_fields(9).msg(100, &layer).int(5, 1).unknown_fields(300);
    let file = decode(&net.0).unwrap();
    assert_eq!(file.layers.len(), 1);
    assert_eq!(file.layers[0].blobs[0], WeightBlob::new(vec![2], vec![1.0, 2.0]));
    let file = decode(&Msg::default().msg(2, &v1).0).unwrap();
    assert_eq!(file.layers[0].kind, "Convolution");
}

fn small_valid_file() -> Vec<u8> {
    let blob = Msg::default().msg(7, &shape(&[2, 2])).packed_f32(5, &[1.0, 2.0, 3.0, 4.0]);
    let layer = Msg::default().str(1, "conv1").str(2, "Convolution").msg(7, &blob);
    Msg::default().str(1, "net").msg(100, &layer).0
}

#[test]
fn truncated_file_is_an_error_naming_file_and_offset() {
    let bytes = small_valid_file();
    let cut = &bytes[..bytes.len() - 3];
    let err = decode(cut).unwrap_err();
    let text = err.to_string();
    // "net" name: 2 + 3 bytes; then the layer key (2 bytes: A2 06) and its
    // one-byte length, so the layer payload starts at byte 8.
    assert!(matches!(err, WeightsError::Malformed { offset: 8, .. }), "{err:?}");
    assert!(
        text.contains("hand.caffemodel")
            && text.contains("at byte 8")
            && text.contains("truncated"),
        "{text}"
    );
}

#[test]
fn every_truncation_is_either_a_shorter_net_or_an_error_never_a_panic() {
    let bytes = small_valid_file();
    for cut in 0..bytes.len() {
        match decode(&bytes[..cut]) {
            Ok(file) => assert!(file.layers.is_empty(), "cut at {cut} kept a partial layer"),
            Err(WeightsError::Malformed { offset, .. }) => {
                assert!(offset <= cut, "cut {cut}, offset {offset}")
            }
            Err(other) => panic!("cut at {cut}: unexpected {other:?}"),
        }
    }
}

#[test]
fn garbage_bytes_never_panic() {
    // A deterministic stream of junk, and the valid file with single bytes flipped.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for len in 0..200 {
        let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = decode(&junk);
    }
    let bytes = small_valid_file();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[i] ^= flip;
            let _ = decode(&damaged);
        }
    }
}

#[test]
fn overlong_varint_and_bad_packed_length_are_errors() {
    let mut bytes = vec![0x08];
    bytes.extend([0xff; 10]);
    let err = decode(&bytes).unwrap_err().to_string();
    assert!(err.contains("overlong varint") && err.contains("at byte 1"), "{err}");

    let blob = Msg::default().msg(7, &shape(&[1])).bytes(5, &[0, 0, 0]);
    let layer = Msg::default().str(1, "x").msg(7, &blob);
    let err = decode(&Msg::default().msg(100, &layer).0).unwrap_err().to_string();
    assert!(err.contains("not a multiple of 4"), "{err}");
}

#[test]
fn missing_and_empty_files_are_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.caffemodel");
    let err = read_caffemodel(&missing).unwrap_err();
    assert!(
        matches!(err, WeightsError::Io { .. }) && err.to_string().contains("nope.caffemodel"),
        "{err}"
    );
    let empty = dir.path().join("empty.caffemodel");
    std::fs::write(&empty, b"").unwrap();
    let err = read_caffemodel(&empty).unwrap_err();
    assert!(
        matches!(err, WeightsError::Empty { .. }) && err.to_string().contains("empty.caffemodel"),
        "{err}"
    );
}
