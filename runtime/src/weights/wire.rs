//! The protobuf wire format, just enough of it to read and write a
//! `.caffemodel` (a serialized `caffe.NetParameter`) without a protobuf
//! library: varints, fixed 32/64-bit values, length-delimited fields and
//! (deprecated) groups. Every error carries the absolute byte offset in the
//! file where decoding went wrong.

use std::fmt;

/// The wire type in the low three bits of a field key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    Varint,
    Fixed64,
    Len,
    StartGroup,
    EndGroup,
    Fixed32,
}

impl WireType {
    fn from_bits(bits: u64) -> Option<Self> {
        Some(match bits {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::Fixed32,
            _ => return None,
        })
    }
    fn bits(self) -> u64 {
        match self {
            WireType::Varint => 0,
            WireType::Fixed64 => 1,
            WireType::Len => 2,
            WireType::StartGroup => 3,
            WireType::EndGroup => 4,
            WireType::Fixed32 => 5,
        }
    }
}

/// A decoding failure at an absolute byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub offset: usize,
    pub what: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

pub type WireResult<T> = Result<T, WireError>;

/// Groups nest; a hostile file must not be able to overflow the stack.
const MAX_GROUP_DEPTH: usize = 64;

/// A cursor over one message's bytes. `base` is the offset of `buf[0]` in the
/// whole file, so errors and sub-readers report file offsets.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, base: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Absolute file offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn error(&self, at: usize, what: impl Into<String>) -> WireError {
        WireError { offset: at, what: what.into() }
    }

    fn take(&mut self, n: usize, what: &str) -> WireResult<&'a [u8]> {
        let start = self.offset();
        let remaining = self.buf.len() - self.pos;
        if n > remaining {
            return Err(self.error(
                start,
                format!("truncated {what}: needs {n} bytes, only {remaining} left in the enclosing message"),
            ));
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    pub fn varint(&mut self) -> WireResult<u64> {
        let start = self.offset();
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.error(start, "truncated varint"));
            };
            self.pos += 1;
            // The tenth byte may only contribute the top bit of a u64.
            if i == 9 && byte > 1 {
                return Err(self.error(start, "overlong varint (more than 64 bits)"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error(start, "overlong varint (more than 10 bytes)"))
    }

    pub fn fixed32(&mut self) -> WireResult<[u8; 4]> {
        let b = self.take(4, "fixed32 value")?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    pub fn fixed64(&mut self) -> WireResult<[u8; 8]> {
        let b = self.take(8, "fixed64 value")?;
        Ok([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// The payload of a length-delimited field as raw bytes plus its offset.
    pub fn len_bytes(&mut self) -> WireResult<(&'a [u8], usize)> {
        let at = self.offset();
        let len = self.varint()?;
        let len = usize::try_from(len)
            .map_err(|_| self.error(at, format!("length {len} does not fit in memory")))?;
        let payload_at = self.offset();
        let bytes = self.take(len, "length-delimited field")?;
        Ok((bytes, payload_at))
    }

    /// The payload of a length-delimited field as a nested reader.
    pub fn sub_message(&mut self) -> WireResult<Reader<'a>> {
        let (buf, base) = self.len_bytes()?;
        Ok(Reader { buf, pos: 0, base })
    }

    /// A string field. proto2 C++ does not validate UTF-8 in `string`
    /// fields, so neither do we: odd bytes become U+FFFD instead of failing
    /// the whole load.
    pub fn string(&mut self) -> WireResult<String> {
        let (bytes, _) = self.len_bytes()?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// The next field key, or `None` at the end of the message.
    pub fn key(&mut self) -> WireResult<Option<(u32, WireType)>> {
        if self.is_empty() {
            return Ok(None);
        }
        let at = self.offset();
        let key = self.varint()?;
        let field = key >> 3;
        let wire = WireType::from_bits(key & 7)
            .ok_or_else(|| self.error(at, format!("invalid wire type {} in field key", key & 7)))?;
        if field == 0 || field > (1 << 29) - 1 {
            return Err(self.error(at, format!("invalid field number {field}")));
        }
        Ok(Some((field as u32, wire)))
    }

    /// Skips the value of a field whose key was just read: unknown fields of
    /// any wire type (forked Caffe builds add their own) are ignored, as
    /// protobuf does.
    pub fn skip(&mut self, field: u32, wire: WireType) -> WireResult<()> {
        self.skip_at_depth(field, wire, 0)
    }

    fn skip_at_depth(&mut self, field: u32, wire: WireType, depth: usize) -> WireResult<()> {
        match wire {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.fixed64().map(drop),
            WireType::Fixed32 => self.fixed32().map(drop),
            WireType::Len => self.len_bytes().map(drop),
            WireType::StartGroup => {
                if depth >= MAX_GROUP_DEPTH {
                    return Err(self.error(self.offset(), "groups nested too deeply"));
                }
                let start = self.offset();
                loop {
                    match self.key()? {
                        None => {
                            return Err(self.error(start, format!("group {field} is not closed")))
                        }
                        Some((inner, WireType::EndGroup)) if inner == field => return Ok(()),
                        Some((inner, WireType::EndGroup)) => {
                            return Err(self.error(
                                self.offset(),
                                format!("end of group {inner} inside group {field}"),
                            ))
                        }
                        Some((inner, inner_wire)) => {
                            self.skip_at_depth(inner, inner_wire, depth + 1)?
                        }
                    }
                }
            }
            WireType::EndGroup => {
                Err(self.error(self.offset(), format!("end of group {field} without a start")))
            }
        }
    }
}

/// Appends little-endian f32 values to `out`. `bytes.len()` must be a
/// multiple of 4 (checked by the caller, which knows the offset to report).
pub fn extend_f32_le(out: &mut Vec<f32>, bytes: &[u8]) {
    out.reserve(bytes.len() / 4);
    out.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
}

/// Appends little-endian f64 values to `out` as f32 (Caffe's `Blob<float>::FromProto`
/// casts `double_data` the same way).
pub fn extend_f64_le_as_f32(out: &mut Vec<f32>, bytes: &[u8]) {
    out.reserve(bytes.len() / 8);
    out.extend(
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32),
    );
}

/// Encoding side: a growable buffer with protobuf primitives.
#[derive(Debug, Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn key(&mut self, field: u32, wire: WireType) {
        self.varint((u64::from(field) << 3) | wire.bits());
    }

    /// An int32/int64 varint field (negative values sign-extended to 10 bytes).
    pub fn int_field(&mut self, field: u32, v: i64) {
        self.key(field, WireType::Varint);
        self.varint(v as u64);
    }

    pub fn bytes_field(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, WireType::Len);
        self.varint(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
    }

    /// Starts a length-delimited field whose payload is `len` bytes long; the
    /// caller appends exactly that payload next.
    pub fn len_prefix(&mut self, field: u32, len: usize) {
        self.key(field, WireType::Len);
        self.varint(len as u64);
    }
}

/// Bytes a varint of `v` takes.
pub fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Bytes of a length-delimited field with a `len`-byte payload.
pub fn len_field_size(field: u32, len: usize) -> usize {
    varint_len(u64::from(field) << 3) + varint_len(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_including_negative_int32() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX, (-1i64) as u64] {
            let mut w = Writer::new();
            w.varint(v);
            assert_eq!(w.buf.len(), varint_len(v), "length of {v}");
            let mut r = Reader::new(&w.buf);
            assert_eq!(r.varint().unwrap(), v);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn truncated_varint_names_its_start_offset() {
        let mut r = Reader::new(&[0x08, 0x96]);
        assert_eq!(r.key().unwrap(), Some((1, WireType::Varint)));
        let err = r.varint().unwrap_err();
        assert_eq!(err.offset, 1);
        assert!(err.what.contains("truncated varint"), "{err}");
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let bytes = [0xffu8; 11];
        let err = Reader::new(&bytes).varint().unwrap_err();
        assert!(err.what.contains("overlong"), "{err}");
        let ten = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&ten).varint().unwrap_err().what.contains("overlong"));
    }

    #[test]
    fn length_past_the_end_is_an_error_with_offset() {
        // field 1, LEN, length 10, only 2 bytes follow.
        let bytes = [0x0a, 0x0a, 1, 2];
        let mut r = Reader::new(&bytes);
        r.key().unwrap();
        let err = r.sub_message().unwrap_err();
        assert_eq!(err.offset, 2);
        assert!(err.what.contains("needs 10 bytes, only 2 left"), "{err}");
    }

    #[test]
    fn skips_every_wire_type_including_nested_groups() {
        let mut w = Writer::new();
        w.int_field(1, 5);
        w.key(2, WireType::Fixed64);
        w.buf.extend_from_slice(&[0; 8]);
        w.bytes_field(3, b"abc");
        w.key(4, WireType::StartGroup);
        w.int_field(1, 7);
        w.key(5, WireType::StartGroup);
        w.key(5, WireType::EndGroup);
        w.key(4, WireType::EndGroup);
        w.key(6, WireType::Fixed32);
        w.buf.extend_from_slice(&[0; 4]);
        w.int_field(9, 42);
        let mut r = Reader::new(&w.buf);
        let mut last = None;
        while let Some((field, wire)) = r.key().unwrap() {
            if field == 9 {
                last = Some(r.varint().unwrap());
            } else {
                r.skip(field, wire).unwrap();
            }
        }
        assert_eq!(last, Some(42));
    }

    #[test]
    fn unclosed_group_and_stray_end_group_are_errors() {
        let mut w = Writer::new();
        w.key(4, WireType::StartGroup);
        w.int_field(1, 7);
        let mut r = Reader::new(&w.buf);
        let (f, t) = r.key().unwrap().unwrap();
        assert!(r.skip(f, t).unwrap_err().what.contains("not closed"));

        let mut w = Writer::new();
        w.key(4, WireType::EndGroup);
        let mut r = Reader::new(&w.buf);
        let (f, t) = r.key().unwrap().unwrap();
        assert!(r.skip(f, t).unwrap_err().what.contains("without a start"));
    }

    #[test]
    fn invalid_wire_type_and_field_zero_are_errors() {
        assert!(Reader::new(&[0x0e]).key().unwrap_err().what.contains("wire type 6"));
        assert!(Reader::new(&[0x00]).key().unwrap_err().what.contains("field number 0"));
    }

    #[test]
    fn floats_decode_little_endian() {
        let mut out = Vec::new();
        let bytes: Vec<u8> = [1.5f32, -2.25].iter().flat_map(|f| f.to_le_bytes()).collect();
        extend_f32_le(&mut out, &bytes);
        let doubles: Vec<u8> = [0.1f64].iter().flat_map(|f| f.to_le_bytes()).collect();
        extend_f64_le_as_f32(&mut out, &doubles);
        assert_eq!(out, vec![1.5, -2.25, 0.1f64 as f32]);
    }
}
