//! Tensors given to a net from files: `.npy` or raw float32 with a shape.

use std::path::PathBuf;

use lvc_runtime::tch::Tensor;

/// `NAME=FILE.npy` or `NAME=FILE.f32:1x1x256x256`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputArg {
    /// The net input it feeds.
    pub name: String,
    pub path: PathBuf,
    /// For raw float32 files.
    pub raw_shape: Option<Vec<i64>>,
}

/// Parses `NAME=FILE.npy` or `NAME=FILE.f32:DxDx…`.
pub fn parse_input(text: &str) -> Result<InputArg, String> {
    let (name, file) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=FILE.npy or NAME=FILE.f32:DxDx…, got '{text}'"))?;
    if name.trim().is_empty() {
        return Err(format!("no blob name before '=' in '{text}'"));
    }
    let (path, raw_shape) = match file.rsplit_once(':') {
        Some((path, dims)) if !dims.contains('/') && !dims.is_empty() => {
            let dims = dims
                .split('x')
                .map(|d| match d.trim().parse::<i64>() {
                    Ok(v) if v > 0 => Ok(v),
                    _ => Err(format!("'{d}' is not a positive dimension in '{text}'")),
                })
                .collect::<Result<Vec<_>, _>>()?;
            (path, Some(dims))
        }
        _ => (file, None),
    };
    Ok(InputArg { name: name.trim().to_string(), path: PathBuf::from(path), raw_shape })
}

/// Reads one input file into a float32 tensor; the error names the file.
/// Both kinds go through lvc-data's checked readers (a regular file, its
/// length checked against the shape before anything is read or
/// allocated): libtorch's own `.npy` loader trusts the header.
pub fn read_input(input: &InputArg) -> Result<Tensor, String> {
    let (shape, values) = match &input.raw_shape {
        Some(shape) => {
            let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
            let values =
                lvc_data::npy::read_raw_f32(&input.path, &shape).map_err(|e| e.to_string())?;
            (shape, values)
        }
        None => lvc_data::npy::read_npy_f32(&input.path).map_err(|e| match e {
            lvc_data::npy::NpyError::Format { ref reason, .. } if reason.contains("magic") => {
                format!("{e} (for raw float32 give the shape: FILE.f32:1x1x256x256)")
            }
            other => other.to_string(),
        })?,
    };
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::f_from_slice(&values)
        .and_then(|t| t.f_reshape(dims.as_slice()))
        .map_err(|e| format!("cannot make a tensor of {}: {e}", input.path.display()))
}
