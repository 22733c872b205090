//! Pretrained weights: Caffe `.caffemodel` files (read and written without a
//! protobuf library), lvc snapshots as safetensors, Caffe's
//! `CopyTrainedLayersFrom` matching with a report of every mismatch, and the
//! load-time fixes requested with `--adapt`.

pub mod adapt;
pub mod caffemodel;
pub mod matching;
pub mod safetensors;
pub(crate) mod wire;

use std::fmt;
use std::path::{Path, PathBuf};

pub use adapt::{apply_adaptations, AdaptError, AdaptMode, Adaptation, AppliedAdaptation};
pub use caffemodel::{read_caffemodel, read_caffemodel_bytes, write_caffemodel};
pub use matching::{
    match_weights, shape_equals, targets_from_graph, LayerReport, LayerStatus, ParamReport,
    TargetLayer, WeightsReport,
};
pub use safetensors::{read_safetensors, read_safetensors_bytes, write_safetensors};

/// All layers of a weights file, in file order, including layers without
/// blobs (Caffe's `Net::ToProto` writes every layer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WeightsFile {
    /// `NetParameter.name`, if the file has one.
    pub name: Option<String>,
    pub layers: Vec<WeightsLayer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeightsLayer {
    pub name: String,
    /// The layer type string (`"Convolution"`); V0/V1 types are upgraded to
    /// today's names.
    pub kind: String,
    pub blobs: Vec<WeightBlob>,
}

/// One stored blob.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightBlob {
    pub shape: Vec<i64>,
    /// The blob was stored with the legacy `num/channels/height/width`
    /// fields, so its shape is 4-D and compares right-aligned (Caffe's
    /// `ShapeEquals`).
    pub legacy_4d: bool,
    pub data: Vec<f32>,
}

impl WeightBlob {
    pub fn new(shape: Vec<i64>, data: Vec<f32>) -> Self {
        WeightBlob { shape, legacy_4d: false, data }
    }
    pub fn count(&self) -> usize {
        self.data.len()
    }
}

impl WeightsFile {
    pub fn layer(&self, name: &str) -> Option<&WeightsLayer> {
        self.layers.iter().find(|l| l.name == name)
    }
    /// Every blob holding NaN or ±inf, in file order: such a file loads
    /// (Caffe would load it too), but every output through the layer is
    /// then NaN, so callers warn, naming the layer.
    pub fn non_finite(&self) -> Vec<NonFinite> {
        let mut found = Vec::new();
        for layer in &self.layers {
            for (blob, values) in layer.blobs.iter().enumerate() {
                let count = values.data.iter().filter(|v| !v.is_finite()).count();
                if count > 0 {
                    found.push(NonFinite {
                        layer: layer.name.clone(),
                        blob,
                        count,
                        of: values.data.len(),
                    });
                }
            }
        }
        found
    }

    /// Number of stored values over all blobs.
    pub fn param_count(&self) -> usize {
        self.layers.iter().flat_map(|l| &l.blobs).map(WeightBlob::count).sum()
    }
}

/// A blob with values that are not finite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonFinite {
    pub layer: String,
    pub blob: usize,
    pub count: usize,
    pub of: usize,
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "layer '{}' blob {} holds {} NaN or infinite value(s) of {}",
            self.layer, self.blob, self.count, self.of
        )
    }
}

/// Caffe's way of printing a shape: `96 3 11 11 (34848)`.
pub struct CaffeShape<'a>(pub &'a [i64]);

impl fmt::Display for CaffeShape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.0 {
            write!(f, "{d} ")?;
        }
        write!(f, "({})", self.0.iter().product::<i64>())
    }
}

/// Why a weights file could not be read or written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WeightsError {
    #[error("cannot access weights file {}: {source}", path.display())]
    #[diagnostic(
        code(lvc::weights::io),
        help("check that the path exists and is readable (or its folder writable)")
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is not a valid .caffemodel: {what} at byte {offset}", path.display())]
    #[diagnostic(
        code(lvc::weights::malformed),
        help("the file is truncated or is not a binary caffe.NetParameter; download or export it again")
    )]
    Malformed { path: PathBuf, offset: usize, what: String },

    #[error("{}: layer '{layer}' blob {index}: {what}", path.display())]
    #[diagnostic(code(lvc::weights::blob), help("the blob's shape and its stored values disagree; the file is damaged or was written by a broken tool"))]
    BadBlob { path: PathBuf, layer: String, index: usize, what: String },

    #[error("{} has both `layer` and `layers` entries", path.display())]
    #[diagnostic(
        code(lvc::weights::mixed_format),
        help("Caffe refuses such files too (\"Refusing to upgrade inconsistent NetParameter input\"); re-export the weights with one Caffe version")
    )]
    MixedFormat { path: PathBuf },

    #[error("{} is empty", path.display())]
    #[diagnostic(
        code(lvc::weights::empty),
        help("an empty file holds no weights; the download or the save was probably interrupted")
    )]
    Empty { path: PathBuf },

    #[error("{}: {what}", path.display())]
    #[diagnostic(code(lvc::weights::safetensors), help("the file is not a safetensors file written by lvc or holds tensors lvc cannot use (float32 only)"))]
    Safetensors { path: PathBuf, what: String },

    #[error("{}: cannot tell the weights format from the extension `{ext}`", path.display())]
    #[diagnostic(
        code(lvc::weights::format),
        help("use a file ending in .caffemodel or .safetensors")
    )]
    UnknownFormat { path: PathBuf, ext: String },
}

impl WeightsError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        WeightsError::Io { path: path.to_path_buf(), source }
    }
}

/// The two weights containers lvc reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    Caffemodel,
    Safetensors,
}

impl WeightsFormat {
    /// By extension: `.safetensors` or `.caffemodel`.
    pub fn of_path(path: &Path) -> Result<Self, WeightsError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "caffemodel" => Ok(WeightsFormat::Caffemodel),
            "safetensors" => Ok(WeightsFormat::Safetensors),
            _ => Err(WeightsError::UnknownFormat { path: path.to_path_buf(), ext }),
        }
    }
}

/// Reads a `.caffemodel` or `.safetensors` file (by extension).
pub fn read_weights(path: &Path) -> Result<WeightsFile, WeightsError> {
    match WeightsFormat::of_path(path)? {
        WeightsFormat::Caffemodel => read_caffemodel(path),
        WeightsFormat::Safetensors => read_safetensors(path).map(|s| s.weights),
    }
}

/// Writes a `.caffemodel` or `.safetensors` file (by extension), atomically.
/// `roles` (per layer, per blob: `weight`, `bias`, …) go into the safetensors
/// metadata when known.
pub fn write_weights(
    path: &Path,
    weights: &WeightsFile,
    roles: &safetensors::ParamRoles,
) -> Result<(), WeightsError> {
    match WeightsFormat::of_path(path)? {
        WeightsFormat::Caffemodel => write_caffemodel(path, weights),
        WeightsFormat::Safetensors => write_safetensors(path, weights, roles),
    }
}

/// Maps a file read-only. The map is only read while the file is open here;
/// a file truncated by another process during the read can still fault, the
/// usual caveat of memory-mapped I/O that buys disk-speed loading.
pub(crate) fn map_file(path: &Path) -> Result<memmap2::Mmap, WeightsError> {
    // Only a regular file: opening a FIFO would block, a device never ends.
    let (file, len) = lvc_fsio::open_regular(path).map_err(|e| WeightsError::io(path, e))?;
    if len == 0 {
        return Err(WeightsError::Empty { path: path.to_path_buf() });
    }
    // SAFETY: the mapping is read-only and private to this call; see above.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| WeightsError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caffe_shape_prints_like_caffe() {
        assert_eq!(CaffeShape(&[96, 3, 11, 11]).to_string(), "96 3 11 11 (34848)");
    }

    #[test]
    fn format_comes_from_the_extension() {
        assert_eq!(
            WeightsFormat::of_path(Path::new("a/b.caffemodel")).unwrap(),
            WeightsFormat::Caffemodel
        );
        assert_eq!(
            WeightsFormat::of_path(Path::new("b.SafeTensors")).unwrap(),
            WeightsFormat::Safetensors
        );
        let err = WeightsFormat::of_path(Path::new("b.h5")).unwrap_err();
        assert!(err.to_string().contains("`h5`"), "{err}");
    }
}
