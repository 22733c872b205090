//! lvc snapshots as safetensors: one float32 tensor per blob, named
//! `<layer>.<index>` (`conv1.0`, `conv1.1`), plus `__metadata__` with the lvc
//! version, the layer list (order, type, legacy-shape flags, blob count, so
//! that a caffemodel → safetensors → caffemodel round trip is exact) and the
//! parameter roles when known.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};

use super::{map_file, wire, WeightBlob, WeightsError, WeightsFile, WeightsLayer};

/// Per layer, the role of each blob (`weight`, `bias`, `mean`, …), in blob order.
pub type ParamRoles = BTreeMap<String, Vec<String>>;

/// Marks files written by lvc (`__metadata__.format`).
const FORMAT_TAG: &str = "lvc-weights/1";

/// A safetensors file as read: the weights plus what its metadata says.
#[derive(Debug, Clone, PartialEq)]
pub struct SafetensorsWeights {
    pub weights: WeightsFile,
    pub roles: ParamRoles,
    /// `__metadata__.lvc_version` of the writer, if lvc wrote the file.
    pub lvc_version: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct LayerMeta {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    blobs: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    legacy_4d: Vec<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
}

/// A float32 tensor for the safetensors writer (also used by solver states).
pub(crate) struct BlobView<'a> {
    pub(crate) shape: Vec<usize>,
    pub(crate) data: &'a [f32],
}

impl View for BlobView<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        if cfg!(target_endian = "little") {
            Cow::Borrowed(bytemuck::cast_slice(self.data))
        } else {
            Cow::Owned(self.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        }
    }
    fn data_len(&self) -> usize {
        self.data.len() * 4
    }
}

fn tensor_name(layer: &str, index: usize) -> String {
    format!("{layer}.{index}")
}

/// Writes `weights` as safetensors, atomically.
pub fn write_safetensors(
    path: &Path,
    weights: &WeightsFile,
    roles: &ParamRoles,
) -> Result<(), WeightsError> {
    let bad = |what: String| WeightsError::Safetensors { path: path.to_path_buf(), what };
    let mut seen = HashSet::new();
    let mut tensors = Vec::new();
    let mut layers = Vec::new();
    for layer in &weights.layers {
        if !seen.insert(layer.name.as_str()) {
            return Err(bad(format!(
                "layer name '{}' appears twice; tensor names must be unique",
                layer.name
            )));
        }
        for (i, blob) in layer.blobs.iter().enumerate() {
            let shape = blob
                .shape
                .iter()
                .map(|&d| usize::try_from(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    bad(format!(
                        "layer '{}' blob {i} has a negative dimension {:?}",
                        layer.name, blob.shape
                    ))
                })?;
            if shape.iter().product::<usize>() != blob.data.len() {
                return Err(bad(format!(
                    "layer '{}' blob {i}: shape {:?} does not match {} values",
                    layer.name,
                    blob.shape,
                    blob.data.len()
                )));
            }
            tensors.push((tensor_name(&layer.name, i), BlobView { shape, data: &blob.data }));
        }
        layers.push(LayerMeta {
            name: layer.name.clone(),
            kind: layer.kind.clone(),
            blobs: layer.blobs.len(),
            legacy_4d: layer
                .blobs
                .iter()
                .enumerate()
                .filter(|(_, b)| b.legacy_4d)
                .map(|(i, _)| i)
                .collect(),
            roles: roles.get(&layer.name).cloned().unwrap_or_default(),
        });
    }
    let mut metadata = HashMap::new();
    metadata.insert("format".to_string(), FORMAT_TAG.to_string());
    metadata.insert("lvc_version".to_string(), env!("CARGO_PKG_VERSION").to_string());
    if let Some(name) = &weights.name {
        metadata.insert("net_name".to_string(), name.clone());
    }
    let layers_json = serde_json::to_string(&layers).map_err(|e| bad(e.to_string()))?;
    metadata.insert("layers".to_string(), layers_json);
    // Streamed to the file by the safetensors crate: no second copy of the
    // weights in memory.
    lvc_fsio::write_atomic_via_temp_path(path, |tmp| {
        safetensors::tensor::serialize_to_file(tensors, &Some(metadata), tmp)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))
    })
    .map_err(|e| WeightsError::io(path, e))
}

/// Reads a safetensors file through a memory map. Files not written by lvc
/// work too when their tensors are named `<layer>.<index>`.
pub fn read_safetensors(path: &Path) -> Result<SafetensorsWeights, WeightsError> {
    let map = map_file(path)?;
    read_safetensors_bytes(&map, path)
}

/// `__metadata__.format` of lvc's solver states (`lvc-solverstate/<version>`,
/// written by `crate::solver::state`): safetensors files too, but never
/// weights.
pub const STATE_FORMAT: &str = "lvc-solverstate";

/// Decodes the bytes of a safetensors file; `path` only names the file in
/// errors.
pub fn read_safetensors_bytes(map: &[u8], path: &Path) -> Result<SafetensorsWeights, WeightsError> {
    let bad = |what: String| WeightsError::Safetensors { path: path.to_path_buf(), what };
    let (_, header) = SafeTensors::read_metadata(map)
        .map_err(|e| bad(format!("not a safetensors file: {e:?}")))?;
    let file =
        SafeTensors::deserialize(map).map_err(|e| bad(format!("not a safetensors file: {e:?}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    if metadata.get("format").is_some_and(|tag| tag.starts_with(STATE_FORMAT)) {
        return Err(bad("this is a solver state (optimizer history), not weights: resume from it with `lvc train --snapshot`, or pass the weights file next to it".to_string()));
    }

    // Tensors grouped by layer, blobs by index.
    let mut groups: BTreeMap<String, BTreeMap<usize, WeightBlob>> = BTreeMap::new();
    for (name, view) in file.iter() {
        let (layer, index) = name
            .rsplit_once('.')
            .and_then(|(l, i)| Some((l, i.parse::<usize>().ok()?)))
            .ok_or_else(|| bad(format!("tensor '{name}' is not named <layer>.<index>")))?;
        let mut data = Vec::new();
        match view.dtype() {
            Dtype::F32 => wire::extend_f32_le(&mut data, view.data()),
            Dtype::F64 => wire::extend_f64_le_as_f32(&mut data, view.data()),
            other => {
                return Err(bad(format!(
                    "tensor '{name}' has dtype {other:?}; only F32 and F64 are read"
                )))
            }
        }
        let shape = view.shape().iter().map(|&d| d as i64).collect();
        groups.entry(layer.to_string()).or_default().insert(index, WeightBlob::new(shape, data));
    }

    let listed: Vec<LayerMeta> = match (metadata.get("format"), metadata.get("layers")) {
        (Some(tag), Some(json)) if tag == FORMAT_TAG => serde_json::from_str(json)
            .map_err(|e| bad(format!("__metadata__.layers is not valid: {e}")))?,
        _ => Vec::new(),
    };
    let mut roles = ParamRoles::new();
    let mut layers = Vec::new();
    for meta in &listed {
        let blobs =
            take_blobs(&mut groups, &meta.name, Some(meta.blobs), &meta.legacy_4d).map_err(bad)?;
        layers.push(WeightsLayer { name: meta.name.clone(), kind: meta.kind.clone(), blobs });
        if !meta.roles.is_empty() {
            roles.insert(meta.name.clone(), meta.roles.clone());
        }
    }
    let unlisted: Vec<String> = groups.keys().cloned().collect();
    for name in unlisted {
        let blobs = take_blobs(&mut groups, &name, None, &[]).map_err(bad)?;
        layers.push(WeightsLayer { name, kind: String::new(), blobs });
    }
    Ok(SafetensorsWeights {
        weights: WeightsFile { name: metadata.get("net_name").cloned(), layers },
        roles,
        lvc_version: metadata.get("lvc_version").cloned(),
    })
}

/// Removes one layer's tensors from `groups`, checking that they are
/// numbered 0..n (and that there are `expected` of them, when known).
fn take_blobs(
    groups: &mut BTreeMap<String, BTreeMap<usize, WeightBlob>>,
    name: &str,
    expected: Option<usize>,
    legacy: &[usize],
) -> Result<Vec<WeightBlob>, String> {
    let blobs_by_index = groups.remove(name).unwrap_or_default();
    let count = expected.unwrap_or(blobs_by_index.len());
    let mut blobs = Vec::with_capacity(count);
    for (position, (index, blob)) in blobs_by_index.into_iter().enumerate() {
        if index != position {
            return Err(format!(
                "layer '{name}' has tensor {} but no {}",
                tensor_name(name, index),
                tensor_name(name, position)
            ));
        }
        blobs.push(WeightBlob {
            legacy_4d: legacy.contains(&index) && blob.shape.len() == 4,
            ..blob
        });
    }
    if blobs.len() != count {
        return Err(format!(
            "layer '{name}' should have {count} tensors but the file has {}",
            blobs.len()
        ));
    }
    Ok(blobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WeightsFile {
        WeightsFile {
            name: Some("n".into()),
            layers: vec![
                WeightsLayer { name: "relu".into(), kind: "ReLU".into(), blobs: vec![] },
                WeightsLayer {
                    name: "conv.a".into(),
                    kind: "Convolution".into(),
                    blobs: vec![
                        WeightBlob::new(vec![2, 1, 1, 1], vec![1.0, 2.0]),
                        WeightBlob::new(vec![2], vec![3.0, 4.0]),
                    ],
                },
                WeightsLayer {
                    name: "fc".into(),
                    kind: "InnerProduct".into(),
                    blobs: vec![WeightBlob {
                        shape: vec![1, 1, 1, 3],
                        legacy_4d: true,
                        data: vec![5.0, 6.0, 7.0],
                    }],
                },
            ],
        }
    }

    #[test]
    fn round_trip_keeps_order_types_legacy_flags_and_roles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let mut roles = ParamRoles::new();
        roles.insert("conv.a".into(), vec!["weight".into(), "bias".into()]);
        write_safetensors(&path, &sample(), &roles).unwrap();
        let back = read_safetensors(&path).unwrap();
        assert_eq!(back.weights, sample());
        assert_eq!(back.roles, roles);
        assert_eq!(back.lvc_version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn foreign_files_group_tensors_by_layer_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.safetensors");
        let w = [1.0f32, 2.0];
        let b = [3.0f32];
        let tensors = vec![
            ("conv1.0".to_string(), BlobView { shape: vec![2], data: &w }),
            ("conv1.1".to_string(), BlobView { shape: vec![1], data: &b }),
        ];
        std::fs::write(&path, safetensors::tensor::serialize(tensors, &None).unwrap()).unwrap();
        let back = read_safetensors(&path).unwrap();
        assert_eq!(back.weights.layers.len(), 1);
        assert_eq!(back.weights.layers[0].blobs[1].data, vec![3.0]);
        assert_eq!(back.lvc_version, None);
    }

    #[test]
    fn badly_named_or_gapped_tensors_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let v = [1.0f32];
        for (name, expected) in [
            ("weights", "not named <layer>.<index>"),
            ("conv1.1", "has tensor conv1.1 but no conv1.0"),
        ] {
            let path = dir.path().join("bad.safetensors");
            let tensors = vec![(name.to_string(), BlobView { shape: vec![1], data: &v })];
            std::fs::write(&path, safetensors::tensor::serialize(tensors, &None).unwrap()).unwrap();
            let err = read_safetensors(&path).unwrap_err().to_string();
            assert!(err.contains(expected) && err.contains("bad.safetensors"), "{err}");
        }
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.safetensors");
        std::fs::write(&path, b"\xff\xff\xff\xff\xff\xff\xff\x7fjunk").unwrap();
        let err = read_safetensors(&path).unwrap_err().to_string();
        assert!(
            err.contains("junk.safetensors") && err.contains("not a safetensors file"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_layer_names_cannot_be_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = sample();
        w.layers.push(w.layers[1].clone());
        let err = write_safetensors(&dir.path().join("d.safetensors"), &w, &ParamRoles::new())
            .unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
    }
}
