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
    #[diagnostic(
        code(lvc::npy::io),
        help("check that the path exists and that its folder is writable")
    )]
    Io { path: PathBuf, action: &'static str, source: std::io::Error },
    #[error("{path}: not a supported .npy file: {reason}")]
    #[diagnostic(
        code(lvc::npy::format),
        help("lvc reads NumPy format 1.0/2.0 arrays of dtype |u1, <u2, <i2 or <f4 in C order; save with np.save(path, np.ascontiguousarray(a))")
    )]
    Format { path: PathBuf, reason: String },
    #[error("{path} {reason}")]
    #[diagnostic(code(lvc::npy::raw), help("a raw input is little-endian float32 values in C order; give the shape it was written with (FILE.f32:NxCxHxW)"))]
    Raw { path: PathBuf, reason: String },
    #[error("{path}: shape {shape:?} holds {expected} values but {actual} were given")]
    #[diagnostic(
        code(lvc::npy::shape),
        help("this is a bug in the caller: the data length must equal the product of the shape")
    )]
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
    let dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}", shape_text(shape));
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
        return Err(NpyError::Shape {
            path: path.into(),
            shape: array.shape.clone(),
            expected,
            actual: array.data.len(),
        });
    }
    write_atomic(path, &to_bytes(array)).map_err(|source| NpyError::Io {
        path: path.into(),
        action: "write",
        source,
    })
}

/// The longest header this reader accepts. NumPy writes a few hundred bytes
/// (format 2.0 allows 4 GiB); a header past this is hostile or broken, and
/// is refused before it is read.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// How an element is stored: kind (`b` bool, `i` signed, `u` unsigned,
/// `f` float), width in bytes, byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElementType {
    pub kind: char,
    pub width: usize,
    pub big_endian: bool,
}

impl ElementType {
    /// The element type a descriptor (`<f4`, `>i2`, `|u1`, `?`, `f8`)
    /// names, if it is a plain number type this reader converts.
    pub fn from_descr(descr: &str) -> Option<ElementType> {
        let (big_endian, rest) = match descr.as_bytes().first()? {
            b'<' | b'=' => (false, &descr[1..]),
            b'>' => (true, &descr[1..]),
            b'|' => (false, &descr[1..]),
            _ => (false, descr),
        };
        let (kind, width) = match rest {
            "?" | "b1" => ('b', 1),
            _ => {
                let mut chars = rest.chars();
                let kind = chars.next()?;
                let width: usize = chars.as_str().parse().ok()?;
                (kind, width)
            }
        };
        let known = match kind {
            'b' => width == 1,
            'i' | 'u' => matches!(width, 1 | 2 | 4 | 8),
            'f' => matches!(width, 2 | 4 | 8),
            _ => false,
        };
        known.then_some(ElementType { kind, width, big_endian: big_endian && width > 1 })
    }

    /// One element's bytes as f32 (rounded for 32/64-bit integers and f64,
    /// exact for the rest).
    fn to_f32(self, b: &[u8]) -> f32 {
        macro_rules! num {
            ($t:ty) => {{
                // `b` is one `chunks_exact(width)` chunk and `width` is this
                // type's size (`from_descr`), so it fills `a` exactly; were it
                // ever shorter, the rest would read as zeros, not panic.
                let mut a = [0u8; std::mem::size_of::<$t>()];
                let n = a.len().min(b.len());
                a[..n].copy_from_slice(&b[..n]);
                if self.big_endian {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                }
            }};
        }
        match (self.kind, self.width) {
            ('b', _) => f32::from(u8::from(b[0] != 0)),
            ('u', 1) => f32::from(b[0]),
            ('i', 1) => f32::from(b[0] as i8),
            ('u', 2) => f32::from(num!(u16)),
            ('i', 2) => f32::from(num!(i16)),
            ('u', 4) => num!(u32) as f32,
            ('i', 4) => num!(i32) as f32,
            ('u', 8) => num!(u64) as f32,
            ('i', 8) => num!(i64) as f32,
            ('f', 2) => f16_to_f32(num!(u16)),
            ('f', 4) => num!(f32),
            ('f', 8) => num!(f64) as f32,
            _ => unreachable!("from_descr admits only the types above"),
        }
    }
}

/// IEEE 754 half precision to single (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exponent = u32::from((h >> 10) & 0x1f);
    let mantissa = u32::from(h & 0x3ff);
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        // Subnormal: value = mantissa · 2^-24.
        (0, m) => {
            return if sign != 0 { -(m as f32) * 2f32.powi(-24) } else { m as f32 * 2f32.powi(-24) }
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// What a `.npy` header says, checked against the file's length.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyHeader {
    pub descr: String,
    pub element: ElementType,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Where the data starts.
    pub data_offset: usize,
    /// Bytes of data the shape needs (checked arithmetic).
    pub data_len: u64,
}

impl NpyHeader {
    /// The number of elements.
    pub fn count(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Where the header's dict starts and how long it is, from the fixed part
/// (magic, version, length): the first 10 or 12 bytes of the file.
fn header_extent(bytes: &[u8]) -> Result<(usize, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("missing the \\x93NUMPY magic".into());
    }
    let (start, len) = match bytes[6] {
        1 => (10usize, usize::from(u16::from_le_bytes([bytes[8], bytes[9]]))),
        2 | 3 if bytes.len() >= 12 => {
            (12, u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize)
        }
        2 | 3 => return Err("the header is cut short".into()),
        v => return Err(format!("format version {v} is not supported")),
    };
    if len > MAX_HEADER_BYTES {
        return Err(format!(
            "the header declares {len} bytes, more than the {MAX_HEADER_BYTES} a header can need"
        ));
    }
    Ok((start, len))
}

/// Parses the header at the start of `bytes` (which need hold no more than
/// the header) and checks it against a file of `file_len` bytes: the data
/// must be exactly as long as the shape and dtype need. Nothing is
/// allocated from the header's numbers before this check passes.
pub fn parse_header(bytes: &[u8], file_len: u64) -> Result<NpyHeader, String> {
    let (header_start, header_len) = header_extent(bytes)?;
    let data_offset = header_start + header_len;
    let header = bytes.get(header_start..data_offset).ok_or("the header is cut short")?;
    let header = std::str::from_utf8(header).map_err(|_| "the header is not text")?;
    let dict = parse_dict(header)?;
    let find = |key: &str| dict.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let descr = match find("descr").ok_or("no 'descr' in the header")? {
        Value::Str(s) => s.clone(),
        _ => return Err("structured dtypes are not supported (the 'descr' is not a string)".into()),
    };
    let fortran_order = match find("fortran_order").ok_or("no 'fortran_order' in the header")? {
        Value::Bool(b) => *b,
        _ => return Err("'fortran_order' is not True or False".into()),
    };
    let shape = match find("shape").ok_or("no 'shape' in the header")? {
        Value::Tuple(dims) => dims.clone(),
        _ => return Err("'shape' is not a tuple".into()),
    };
    let element = ElementType::from_descr(&descr).ok_or_else(|| {
        format!("dtype {descr} is not supported (bool, int8–64, uint8–64, float16/32/64, either byte order)")
    })?;
    let count = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or("the shape overflows")?;
    let data_len = count.checked_mul(element.width as u64).ok_or("the shape overflows")?;
    let body = file_len.saturating_sub(data_offset as u64);
    if file_len < data_offset as u64 || body != data_len {
        return Err(format!(
            "the data holds {body} bytes, shape {} of {descr} needs {data_len}",
            shape_text(&shape)
        ));
    }
    usize::try_from(data_len).map_err(|_| "the data does not fit in memory on this machine")?;
    Ok(NpyHeader { descr, element, fortran_order, shape, data_offset, data_len })
}

/// A value of the header's Python literal.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
    /// Anything else (a list for structured dtypes, numbers): kept only to
    /// report a clear error.
    Other,
}

/// The header's dict literal `{'descr': '<f4', 'fortran_order': False,
/// 'shape': (2, 3), }`, parsed as a literal (keys in any order, either
/// quote, trailing commas, spaces), so that a key inside another value's
/// string can never be taken for a key.
fn parse_dict(text: &str) -> Result<Vec<(String, Value)>, String> {
    let mut p = Lexer { rest: text.trim_end_matches(['\n', ' ', '\0']).trim_start() };
    p.require('{')?;
    let mut out = Vec::new();
    loop {
        if p.eat('}') {
            break;
        }
        let Value::Str(key) = p.value()? else { return Err("a header key is not a string".into()) };
        p.require(':')?;
        let value = p.value()?;
        if out.iter().any(|(k, _)| *k == key) {
            return Err(format!("the header names '{key}' twice"));
        }
        out.push((key, value));
        if !p.eat(',') {
            p.require('}')?;
            break;
        }
    }
    if !p.rest.trim().is_empty() {
        return Err("text after the header's dict".into());
    }
    Ok(out)
}

struct Lexer<'a> {
    rest: &'a str,
}

impl Lexer<'_> {
    fn eat(&mut self, c: char) -> bool {
        self.rest = self.rest.trim_start();
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    /// Consumes `c` or reports a header that is not a dict literal (a
    /// `Result`, not `Option::expect`: bad input is an error, never a panic).
    fn require(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("the header is not a dict literal (expected '{c}')"))
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.rest = self.rest.trim_start();
        let first = self.rest.chars().next().ok_or("the header ends inside the dict")?;
        match first {
            '\'' | '"' => {
                let body = &self.rest[1..];
                let end = body.find(first).ok_or("an unterminated string in the header")?;
                let s = body[..end].to_string();
                self.rest = &body[end + 1..];
                Ok(Value::Str(s))
            }
            '(' => {
                self.rest = &self.rest[1..];
                let mut dims = Vec::new();
                loop {
                    if self.eat(')') {
                        return Ok(Value::Tuple(dims));
                    }
                    self.rest = self.rest.trim_start();
                    let digits = self.rest.bytes().take_while(u8::is_ascii_digit).count();
                    let text = &self.rest[..digits];
                    let dim = text.parse::<usize>().map_err(|_| {
                        let shown: String = self.rest.chars().take(12).collect();
                        format!("shape entry {shown:?} is not a size")
                    })?;
                    self.rest = &self.rest[digits..];
                    // Python 2 wrote long integers with an L.
                    let _ = self.eat('L');
                    dims.push(dim);
                    if !self.eat(',') {
                        self.require(')')?;
                        return Ok(Value::Tuple(dims));
                    }
                }
            }
            _ => {
                let word_len = self.rest.find([',', '}', ':']).unwrap_or(self.rest.len());
                let word = self.rest[..word_len].trim();
                let value = match word {
                    "True" => Value::Bool(true),
                    "False" => Value::Bool(false),
                    _ if first == '[' => {
                        return Err(
                            "structured dtypes are not supported (the 'descr' is a list)".into()
                        )
                    }
                    _ => Value::Other,
                };
                self.rest = &self.rest[word_len..];
                Ok(value)
            }
        }
    }
}

fn read_err(path: &Path, source: std::io::Error) -> NpyError {
    NpyError::Io { path: path.into(), action: "read", source }
}

/// Opens `path` (a regular file only), reads and checks its header, and
/// returns the header with the file positioned at the data.
fn open_checked(path: &Path) -> Result<(NpyHeader, std::fs::File), NpyError> {
    use std::io::{Read, Seek, SeekFrom};
    let (file, file_len) = lvc_fsio::open_regular(path).map_err(|e| read_err(path, e))?;
    let format = |reason| NpyError::Format { path: path.into(), reason };
    // The fixed part tells the header's length; then read exactly that.
    let mut file = file;
    let mut fixed = Vec::with_capacity(12);
    (&mut file).take(12).read_to_end(&mut fixed).map_err(|e| read_err(path, e))?;
    let (start, len) = header_extent(&fixed).map_err(format)?;
    let mut bytes = Vec::with_capacity(start + len);
    file.seek(SeekFrom::Start(0)).map_err(|e| read_err(path, e))?;
    (&mut file)
        .take((start + len) as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| read_err(path, e))?;
    let header = parse_header(&bytes, file_len).map_err(format)?;
    file.seek(SeekFrom::Start(header.data_offset as u64)).map_err(|e| read_err(path, e))?;
    Ok((header, file))
}

/// Reads the data after a checked header: exactly `data_len` bytes, which
/// the header check matched against the file's length.
fn read_data(path: &Path, header: &NpyHeader, file: std::fs::File) -> Result<Vec<u8>, NpyError> {
    use std::io::Read;
    let len = header.data_len as usize;
    let mut body = Vec::with_capacity(len);
    file.take(header.data_len).read_to_end(&mut body).map_err(|e| read_err(path, e))?;
    if body.len() != len {
        // The file shrank after the check.
        return Err(NpyError::Format {
            path: path.into(),
            reason: format!(
                "the data holds {} bytes, shape {} of {} needs {len}",
                body.len(),
                shape_text(&header.shape),
                header.descr
            ),
        });
    }
    Ok(body)
}

/// Reads a `.npy` file of one of the storage dtypes ([`NpyDtype`], C
/// order), as datasets hold them: only a regular file, its header checked
/// against its length before the data is read.
pub fn read_npy(path: &Path) -> Result<NpyArray, NpyError> {
    let (header, file) = open_checked(path)?;
    let format = |reason| NpyError::Format { path: path.into(), reason };
    if header.fortran_order {
        return Err(format("Fortran-order arrays are not supported".into()));
    }
    if NpyDtype::from_descr(&header.descr).is_none() {
        let supported: Vec<&str> = NpyDtype::ALL.iter().map(|d| d.descr()).collect();
        return Err(format(format!(
            "dtype {} is not supported ({})",
            header.descr,
            supported.join(", ")
        )));
    }
    let body = read_data(path, &header, file)?;
    array_from(header, &body).map_err(format)
}

/// Reads a `.npy` file of any bool, integer or float dtype, in either byte
/// order and either memory order, as float32 values in C order: net inputs
/// (`lvc forward --input`, `lvc train --feed`).
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), NpyError> {
    let (header, file) = open_checked(path)?;
    let body = read_data(path, &header, file)?;
    Ok(values_f32(&header, &body))
}

/// [`read_npy_f32`] on the bytes of a whole file.
pub fn parse_npy_f32(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>), String> {
    let header = parse_header(bytes, bytes.len() as u64)?;
    Ok(values_f32(&header, &bytes[header.data_offset..]))
}

fn values_f32(header: &NpyHeader, body: &[u8]) -> (Vec<usize>, Vec<f32>) {
    let element = header.element;
    let stored: Vec<f32> = body.chunks_exact(element.width).map(|b| element.to_f32(b)).collect();
    let values = if header.fortran_order && header.shape.len() > 1 {
        fortran_to_c(&stored, &header.shape)
    } else {
        stored
    };
    (header.shape.clone(), values)
}

/// Reorders column-major values into row-major ones.
fn fortran_to_c(values: &[f32], shape: &[usize]) -> Vec<f32> {
    // The stride, in the column-major data, of each axis.
    let mut strides = vec![1usize; shape.len()];
    for axis in 1..shape.len() {
        strides[axis] = strides[axis - 1] * shape[axis - 1];
    }
    let mut out = Vec::with_capacity(values.len());
    let mut index = vec![0usize; shape.len()];
    for _ in 0..values.len() {
        out.push(values[index.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]);
        // Next C-order index: the last axis runs fastest.
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

/// Parses `.npy` bytes of a storage dtype; the error is a reason without
/// the file name.
pub fn parse_npy(bytes: &[u8]) -> Result<NpyArray, String> {
    let header = parse_header(bytes, bytes.len() as u64)?;
    if header.fortran_order {
        return Err("Fortran-order arrays are not supported".into());
    }
    let body = &bytes[header.data_offset..];
    array_from(header, body)
}

fn array_from(header: NpyHeader, body: &[u8]) -> Result<NpyArray, String> {
    let Some(dtype) = NpyDtype::from_descr(&header.descr) else {
        let supported: Vec<&str> = NpyDtype::ALL.iter().map(|d| d.descr()).collect();
        return Err(format!("dtype {} is not supported ({})", header.descr, supported.join(", ")));
    };
    let data = match dtype {
        NpyDtype::U8 => NpyData::U8(body.to_vec()),
        NpyDtype::U16 => {
            NpyData::U16(body.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect())
        }
        NpyDtype::I16 => {
            NpyData::I16(body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect())
        }
        NpyDtype::F32 => NpyData::F32(
            body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        ),
    };
    Ok(NpyArray { shape: header.shape, data })
}

/// Reads a raw little-endian float32 file of the given shape, checking its
/// length against the shape before reading it.
pub fn read_raw_f32(path: &Path, shape: &[usize]) -> Result<Vec<f32>, NpyError> {
    use std::io::Read;
    let (file, file_len) = lvc_fsio::open_regular(path).map_err(|e| read_err(path, e))?;
    let shown = shape.iter().map(usize::to_string).collect::<Vec<_>>().join("x");
    let needed = shape.iter().try_fold(4u64, |acc, &d| acc.checked_mul(d as u64));
    let fail = |reason| Err(NpyError::Raw { path: path.into(), reason });
    let Some(needed) = needed.filter(|&n| usize::try_from(n).is_ok()) else {
        return fail(format!("cannot hold shape {shown}: its size overflows"));
    };
    if file_len != needed {
        return fail(format!(
            "holds {file_len} bytes, but shape {shown} needs {} float32 values ({needed} bytes)",
            needed / 4
        ));
    }
    let mut bytes = Vec::with_capacity(needed as usize);
    file.take(needed).read_to_end(&mut bytes).map_err(|e| read_err(path, e))?;
    if bytes.len() as u64 != needed {
        return fail(format!("holds {} bytes, but shape {shown} needs {needed}", bytes.len()));
    }
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
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
        round_trip(NpyArray {
            shape: vec![1, 2, 2],
            data: NpyData::F32(vec![0.5, -1.25, f32::MAX, 3.0]),
        });
        round_trip(NpyArray { shape: vec![0, 5], data: NpyData::U8(vec![]) });
    }

    /// Exactly what `np.save(f, np.array([[1, 2, 3]], dtype='<u2'))` writes.
    #[test]
    fn matches_numpy_bytes() {
        let bytes = to_bytes(&NpyArray { shape: vec![1, 3], data: NpyData::U16(vec![1, 2, 3]) });
        let mut expected =
            b"\x93NUMPY\x01\x00v\x00{'descr': '<u2', 'fortran_order': False, 'shape': (1, 3), }"
                .to_vec();
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
        let mut bytes =
            b"\x93NUMPY\x01\x00F\x00{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }"
                .to_vec();
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
        let err = write_npy(&path, &NpyArray { shape: vec![2, 2], data: NpyData::U8(vec![1]) })
            .unwrap_err();
        assert!(err.to_string().contains("a.npy"), "{err}");
        let array = NpyArray { shape: vec![1, 2], data: NpyData::U16(vec![7, 9]) };
        write_npy(&path, &array).unwrap();
        assert_eq!(read_npy(&path).unwrap(), array);
        let missing = read_npy(&dir.path().join("none.npy")).unwrap_err();
        assert!(matches!(missing, NpyError::Io { .. }));
    }

    /// A header for `descr` and `shape` followed by `data`.
    fn file_bytes(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
        let mut bytes = header(descr, shape);
        if fortran {
            let at = bytes.windows(5).position(|w| w == b"False").unwrap();
            bytes[at..at + 5].copy_from_slice(b"True ");
        }
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn data_shorter_or_longer_than_the_header_declares_is_refused_before_reading() {
        // 1×1×256×256 float32 declared, 16 bytes present.
        let short = file_bytes("<f4", false, &[1, 1, 256, 256], &[0; 16]);
        let err = parse_npy_f32(&short).unwrap_err();
        assert!(err.contains("holds 16 bytes") && err.contains("needs 262144"), "{err}");
        let long = file_bytes("<f4", false, &[2], &[0; 12]);
        assert!(parse_npy_f32(&long).unwrap_err().contains("holds 12 bytes"));
        // Through the file reader: the check comes from the file's length.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.npy");
        std::fs::write(&path, &short).unwrap();
        let err = read_npy_f32(&path).unwrap_err().to_string();
        assert!(err.contains("short.npy") && err.contains("needs 262144"), "{err}");
        assert!(read_npy(&path).unwrap_err().to_string().contains("needs 262144"));
    }

    #[test]
    fn huge_declared_shapes_fail_without_allocating() {
        // 10^12 × 10^6 floats: overflows no u64 but no file holds it.
        let huge = file_bytes("<f4", false, &[1_000_000_000_000, 1_000_000], &[]);
        assert!(parse_npy_f32(&huge).unwrap_err().contains("needs 4000000000000000000"));
        let overflow = file_bytes("<f4", false, &[usize::MAX, 3], &[]);
        assert!(parse_npy_f32(&overflow).unwrap_err().contains("overflows"));
        let mut big_header = b"\x93NUMPY\x02\x00".to_vec();
        big_header.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_npy_f32(&big_header).unwrap_err().contains("more than"));
    }

    #[test]
    fn inputs_of_any_number_dtype_and_order_convert_to_f32() {
        let le = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("|u1", vec![1, 2, 255]),
            ("|i1", vec![1, 2, 0xff]),
            ("|b1", vec![1, 0, 7]),
            ("<i2", [1i16, 2, -1].iter().flat_map(|x| x.to_le_bytes()).collect()),
            (">i2", [1i16, 2, -1].iter().flat_map(|x| x.to_be_bytes()).collect()),
            ("<u4", [1u32, 2, 255].iter().flat_map(|x| x.to_le_bytes()).collect()),
            ("<i8", [1i64, 2, -1].iter().flat_map(|x| x.to_le_bytes()).collect()),
            ("<f2", [0x3c00u16, 0x4000, 0xbc00].iter().flat_map(|x| x.to_le_bytes()).collect()),
            ("<f4", le(&[1.0, 2.0, -1.0])),
            (">f8", [1f64, 2.0, -1.0].iter().flat_map(|x| x.to_be_bytes()).collect()),
        ];
        for (descr, data) in cases {
            let (shape, values) = parse_npy_f32(&file_bytes(descr, false, &[3], &data)).unwrap();
            assert_eq!(shape, [3]);
            let want: &[f32] = match descr {
                "|u1" | "<u4" => &[1.0, 2.0, 255.0],
                "|b1" => &[1.0, 0.0, 1.0],
                _ => &[1.0, 2.0, -1.0],
            };
            assert_eq!(values, want, "{descr}");
        }
        assert!(parse_npy_f32(&file_bytes("<c8", false, &[1], &[0; 8]))
            .unwrap_err()
            .contains("<c8"));
        // Fortran order: the 2×3 matrix [[0, 1, 2], [3, 4, 5]] stored by columns.
        let by_columns = le(&[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let (_, values) = parse_npy_f32(&file_bytes("<f4", true, &[2, 3], &by_columns)).unwrap();
        assert_eq!(values, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn header_literals_are_parsed_not_searched() {
        let with = |dict: &str| {
            let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
            bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            bytes.extend_from_slice(dict.as_bytes());
            bytes.extend_from_slice(&[0; 2]);
            parse_npy_f32(&bytes)
        };
        assert_eq!(
            with("{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"|u1\"}\n").unwrap(),
            (vec![2], vec![0.0, 0.0])
        );
        // A key inside a string is not a key.
        assert!(with("{'descr': '|u1', 'x': \"'shape': (2,)\", 'fortran_order': False}")
            .unwrap_err()
            .contains("no 'shape'"));
        assert!(with("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}")
            .unwrap_err()
            .contains("structured"));
        assert!(with("{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': (2,)}")
            .unwrap_err()
            .contains("twice"));
        assert!(with("{'descr': '|u1', 'fortran_order': False, 'shape': (-2,)}")
            .unwrap_err()
            .contains("not a size"));
    }

    #[test]
    fn raw_float32_files_check_their_length_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.f32");
        std::fs::write(&path, [0u8; 12]).unwrap();
        assert_eq!(read_raw_f32(&path, &[1, 3]).unwrap(), [0.0; 3]);
        assert!(read_raw_f32(&path, &[1, 4]).unwrap_err().to_string().contains("holds 12 bytes"));
        assert!(read_raw_f32(&path, &[usize::MAX, 4])
            .unwrap_err()
            .to_string()
            .contains("overflows"));
    }

    #[cfg(unix)]
    #[test]
    fn inputs_that_are_not_regular_files_are_refused() {
        let err = read_npy_f32(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(err.contains("character device"), "{err}");
        assert!(read_raw_f32(Path::new("/dev/zero"), &[4]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_input_parser_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_npy_f32(&bytes);
        }
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_npy(&bytes);
        }
    }
}
