//! A small `.npy` (NumPy format 1.0) writer and reader: little endian,
//! C order, dtypes `|u1`, `<u2`, `<i2`, `<f4`. Enough to hand images and
//! masks to NumPy and back, exactly.

use lvc_fsio::write_atomic;
use miette::Diagnostic;
use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The element values of an array.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    U8(Vec<u8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    F32(Vec<f32>),
}

impl NpyData {
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::F32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32 (exact for every type here).
    pub fn into_f32(self) -> Vec<f32> {
        match self {
            Self::U8(v) => v.into_iter().map(f32::from).collect(),
            Self::U16(v) => v.into_iter().map(f32::from).collect(),
            Self::I16(v) => v.into_iter().map(f32::from).collect(),
            Self::F32(v) => v,
        }
    }

    /// The element type.
    pub fn dtype(&self) -> NpyDtype {
        match self {
            Self::U8(_) => NpyDtype::U8,
            Self::U16(_) => NpyDtype::U16,
            Self::I16(_) => NpyDtype::I16,
            Self::F32(_) => NpyDtype::F32,
        }
    }

    /// The NumPy dtype descriptor.
    pub fn descr(&self) -> &'static str {
        self.dtype().descr()
    }
}

/// An element type this module reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NpyDtype {
    U8,
    U16,
    I16,
    F32,
}

impl NpyDtype {
    pub const ALL: [NpyDtype; 4] = [NpyDtype::U8, NpyDtype::U16, NpyDtype::I16, NpyDtype::F32];

    /// The NumPy dtype descriptor, as written in headers.
    pub fn descr(self) -> &'static str {
        match self {
            NpyDtype::U8 => "|u1",
            NpyDtype::U16 => "<u2",
            NpyDtype::I16 => "<i2",
            NpyDtype::F32 => "<f4",
        }
    }

    /// The type a header's descriptor names. Single bytes have no byte
    /// order, so NumPy's `<u1` and `u1` spellings of `|u1` count too.
    pub fn from_descr(descr: &str) -> Option<NpyDtype> {
        match descr {
            "<u1" | "u1" => Some(NpyDtype::U8),
            _ => Self::ALL.into_iter().find(|d| d.descr() == descr),
        }
    }

    /// Bytes per element.
    pub fn width(self) -> usize {
        match self {
            NpyDtype::U8 => 1,
            NpyDtype::U16 | NpyDtype::I16 => 2,
            NpyDtype::F32 => 4,
        }
    }
}

/// A C-order array: `data.len()` equals the product of `shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

/// A `.npy` read/write failure, naming the file.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum NpyError {
    #[error("{path}: cannot {action}: {source}")]
    #[diagnostic(code(lvc::npy::io), help("check that the path exists and that its folder is writable"))]
    Io { path: PathBuf, action: &'static str, source: std::io::Error },
    #[error("{path}: not a supported .npy file: {reason}")]
    #[diagnostic(
        code(lvc::npy::format),
        help("lvc reads NumPy format 1.0/2.0 arrays of dtype |u1, <u2, <i2 or <f4 in C order; save with np.save(path, np.ascontiguousarray(a))")
    )]
    Format { path: PathBuf, reason: String },
    #[error("{path}: shape {shape:?} holds {expected} values but {actual} were given")]
    #[diagnostic(code(lvc::npy::shape), help("this is a bug in the caller: the data length must equal the product of the shape"))]
    Shape { path: PathBuf, shape: Vec<usize>, expected: usize, actual: usize },
}

fn shape_text(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// The header of a `.npy` file (format version 1.0) of `descr` elements in
/// C order: magic, version, length and the dict, padded so the data starts
/// 64-byte aligned.
pub fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}", shape_text(shape));
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + padding + 1;
    let mut out = Vec::with_capacity(unpadded + padding);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padding));
    out.push(b'\n');
    out
}

/// The bytes of a `.npy` file holding `array` (format version 1.0).
pub fn to_bytes(array: &NpyArray) -> Vec<u8> {
    let mut out = header(array.data.descr(), &array.shape);
    out.reserve(array.data.len() * 4);
    match &array.data {
        NpyData::U8(v) => out.extend_from_slice(v),
        NpyData::U16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::I16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        NpyData::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
    out
}

/// Writes `array` to `path` atomically.
pub fn write_npy(path: &Path, array: &NpyArray) -> Result<(), NpyError> {
    let expected: usize = array.shape.iter().product();
    if expected != array.data.len() {
        return Err(NpyError::Shape { path: path.into(), shape: array.shape.clone(), expected, actual: array.data.len() });
    }
    write_atomic(path, &to_bytes(array)).map_err(|source| NpyError::Io { path: path.into(), action: "write", source })
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray, NpyError> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io { path: path.into(), action: "read", source })?;
    parse_npy(&bytes).map_err(|reason| NpyError::Format { path: path.into(), reason })
}

/// Parses `.npy` bytes; the error is a reason without the file name.
pub fn parse_npy(bytes: &[u8]) -> Result<NpyArray, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("missing the \\x93NUMPY magic".into());
    }
    let (header_start, header_len) = match bytes[6] {
        1 => (10usize, usize::from(u16::from_le_bytes([bytes[8], bytes[9]]))),
        2 | 3 if bytes.len() >= 12 => (12, u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize),
        v => return Err(format!("format version {v} is not supported")),
    };
    let header = bytes
        .get(header_start..header_start.saturating_add(header_len))
        .ok_or("the header is cut short")?;
    let header = std::str::from_utf8(header).map_err(|_| "the header is not text")?;
    let descr = dict_value(header, "descr").ok_or("no 'descr' in the header")?;
    let fortran = dict_value(header, "fortran_order").ok_or("no 'fortran_order' in the header")?;
    if fortran != "False" {
        return Err("Fortran-order arrays are not supported".into());
    }
    let shape = parse_shape(dict_value(header, "shape").ok_or("no 'shape' in the header")?)?;
    let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or("the shape overflows")?;
    let body = &bytes[header_start + header_len..];
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let Some(dtype) = NpyDtype::from_descr(descr) else {
        let supported: Vec<&str> = NpyDtype::ALL.iter().map(|d| d.descr()).collect();
        return Err(format!("dtype {descr} is not supported ({})", supported.join(", ")));
    };
    let needed = count.checked_mul(dtype.width()).ok_or("the shape overflows")?;
    if body.len() != needed {
        return Err(format!("the data holds {} bytes, shape {shape:?} of {descr} needs {needed}", body.len()));
    }
    let data = match dtype {
        NpyDtype::U8 => NpyData::U8(body.to_vec()),
        NpyDtype::U16 => NpyData::U16(body.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()),
        NpyDtype::I16 => NpyData::I16(body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect()),
        NpyDtype::F32 => NpyData::F32(body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
    };
    Ok(NpyArray { shape, data })
}

/// The raw text of `key`'s value in the header's Python dict literal.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

fn parse_shape(text: &str) -> Result<Vec<usize>, String> {
    let inner = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')).ok_or_else(|| format!("shape {text} is not a tuple"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.trim_end_matches('L').parse::<usize>().map_err(|_| format!("shape entry {t:?} is not a size")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(array: NpyArray) {
        let bytes = to_bytes(&array);
        let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        assert_eq!((10 + header_len) % 64, 0, "data starts 64-byte aligned");
        assert_eq!(parse_npy(&bytes).unwrap(), array);
    }

    #[test]
    fn all_dtypes_round_trip() {
        round_trip(NpyArray { shape: vec![2, 3], data: NpyData::U16(vec![0, 1, 2, 65535, 4, 5]) });
        round_trip(NpyArray { shape: vec![3, 1], data: NpyData::I16(vec![-32768, 0, 32767]) });
        round_trip(NpyArray { shape: vec![4], data: NpyData::U8(vec![0, 1, 254, 255]) });
        round_trip(NpyArray { shape: vec![1, 2, 2], data: NpyData::F32(vec![0.5, -1.25, f32::MAX, 3.0]) });
        round_trip(NpyArray { shape: vec![0, 5], data: NpyData::U8(vec![]) });
    }

    /// Exactly what `np.save(f, np.array([[1, 2, 3]], dtype='<u2'))` writes.
    #[test]
    fn matches_numpy_bytes() {
        let bytes = to_bytes(&NpyArray { shape: vec![1, 3], data: NpyData::U16(vec![1, 2, 3]) });
        let mut expected = b"\x93NUMPY\x01\x00v\x00{'descr': '<u2', 'fortran_order': False, 'shape': (1, 3), }".to_vec();
        expected.resize(127, b' ');
        expected.push(b'\n');
        expected.extend_from_slice(&[1, 0, 2, 0, 3, 0]);
        assert_eq!(bytes, expected);
        let one_d = to_bytes(&NpyArray { shape: vec![3], data: NpyData::U8(vec![1, 2, 3]) });
        assert!(std::str::from_utf8(&one_d[10..74]).unwrap().contains("'shape': (3,)"));
    }

    #[test]
    fn every_dtype_is_found_by_its_descriptor() {
        for dtype in NpyDtype::ALL {
            assert_eq!(NpyDtype::from_descr(dtype.descr()), Some(dtype));
        }
        assert_eq!(NpyDtype::from_descr("<u1"), Some(NpyDtype::U8));
        assert_eq!(NpyDtype::from_descr("u1"), Some(NpyDtype::U8));
        assert_eq!(NpyDtype::from_descr("<f8"), None);
    }

    #[test]
    fn reads_numpy_written_headers() {
        let mut bytes = b"\x93NUMPY\x01\x00F\x00{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }".to_vec();
        bytes.resize(10 + 70 - 1, b' ');
        bytes.push(b'\n');
        bytes.extend_from_slice(&[9, 8, 7, 6]);
        let array = parse_npy(&bytes).unwrap();
        assert_eq!(array, NpyArray { shape: vec![2, 2], data: NpyData::U8(vec![9, 8, 7, 6]) });
    }

    #[test]
    fn bad_files_are_errors() {
        let good = to_bytes(&NpyArray { shape: vec![2, 2], data: NpyData::I16(vec![1, 2, 3, 4]) });
        assert!(parse_npy(b"PK\x03\x04").unwrap_err().contains("magic"));
        assert!(parse_npy(&good[..good.len() - 1]).unwrap_err().contains("needs 8"));
        assert!(parse_npy(&good[..40]).unwrap_err().contains("cut short"));
        let replaced = |from: &[u8], to: &[u8]| {
            let mut bytes = good.clone();
            let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
            bytes[at..at + from.len()].copy_from_slice(to);
            bytes
        };
        assert!(parse_npy(&replaced(b"<i2", b"<f8")).unwrap_err().contains("<f8"));
        let fortran = replaced(b"False", b"True ");
        assert!(parse_npy(&fortran).unwrap_err().contains("Fortran"));
    }

    #[test]
    fn write_checks_shape_and_reports_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let err = write_npy(&path, &NpyArray { shape: vec![2, 2], data: NpyData::U8(vec![1]) }).unwrap_err();
        assert!(err.to_string().contains("a.npy"), "{err}");
        let array = NpyArray { shape: vec![1, 2], data: NpyData::U16(vec![7, 9]) };
        write_npy(&path, &array).unwrap();
        assert_eq!(read_npy(&path).unwrap(), array);
        let missing = read_npy(&dir.path().join("none.npy")).unwrap_err();
        assert!(matches!(missing, NpyError::Io { .. }));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_npy(&bytes);
        }
    }
}
