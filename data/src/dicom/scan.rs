//! A length check over the raw element stream, before dicom-object parses it.
//!
//! dicom-parser allocates and zero-fills each value to its declared length
//! before reading it, so one corrupt length field (up to 4 GiB) in a 1 kB
//! file costs gigabytes of memory. This walk follows the element headers of
//! the file meta group and the data set and rejects any element, item or
//! fragment whose length runs past the end of the file.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::VR;
use dicom_dictionary_std::{uids, StandardDataDictionary};
use dicom_object::Tag;

/// Where the walk stops: a declared length runs past the file end, or the
/// header itself is cut: the element's tag and a message with the numbers.
pub(crate) type ScanResult = Result<(), (Tag, String)>;

struct Walker<'a> {
    bytes: &'a [u8],
    pos: usize,
    big_endian: bool,
    explicit: bool,
}

const UNDEFINED: u32 = u32::MAX;

impl Walker<'_> {
    fn u16_at(&self, at: usize) -> u16 {
        let b = [self.bytes[at], self.bytes[at + 1]];
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b = [self.bytes[at], self.bytes[at + 1], self.bytes[at + 2], self.bytes[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Walks elements until `stop(tag)` or the end of the bytes.
    /// Returns the position where it stopped.
    fn walk(&mut self, stop: impl Fn(Tag) -> bool) -> Result<usize, (Tag, String)> {
        let len = self.bytes.len();
        // Inside encapsulated pixel data, whose items are opaque fragments.
        let mut in_fragments = false;
        while self.pos + 8 <= len {
            let at = self.pos;
            let tag = Tag(self.u16_at(at), self.u16_at(at + 2));
            if stop(tag) {
                return Ok(at);
            }
            if tag.group() == 0xFFFE {
                let length = self.u32_at(at + 4);
                self.pos = at + 8;
                match tag.element() {
                    0xE0DD => in_fragments = false,
                    0xE000 if length != UNDEFINED => {
                        check(tag, length, self.pos, len)?;
                        if in_fragments {
                            self.pos += length as usize;
                        }
                    }
                    _ => {}
                }
                continue;
            }
            let (vr, length, header) = if self.explicit {
                // Like the parser: an unrecognised VR is read as UN.
                let vr = VR::from_binary([self.bytes[at + 4], self.bytes[at + 5]]).unwrap_or(VR::UN);
                match vr {
                    VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::SQ | VR::UC | VR::UR | VR::UT | VR::UN | VR::SV | VR::UV => {
                        if at + 12 > len {
                            return Err((tag, format!("element {tag} header is cut off at byte {at}")));
                        }
                        (Some(vr), self.u32_at(at + 8), 12)
                    }
                    _ => (Some(vr), u32::from(self.u16_at(at + 6)), 8),
                }
            } else {
                let vr = StandardDataDictionary.by_tag(tag).map(|e| e.vr().relaxed());
                (vr, self.u32_at(at + 4), 8)
            };
            self.pos = at + header;
            if length == UNDEFINED {
                // A sequence or encapsulated pixel data: items follow.
                in_fragments = tag == dicom_dictionary_std::tags::PIXEL_DATA;
                continue;
            }
            check(tag, length, self.pos, len)?;
            if vr != Some(VR::SQ) {
                // Sequences with a defined length are walked into.
                self.pos += length as usize;
            }
        }
        Ok(self.pos)
    }
}

fn check(tag: Tag, length: u32, value_start: usize, file_len: usize) -> ScanResult {
    if value_start as u64 + u64::from(length) > file_len as u64 {
        return Err((
            tag,
            format!("element {tag} declares {length} bytes at offset {value_start}, past the end of the {file_len}-byte file"),
        ));
    }
    Ok(())
}

/// Checks the lengths of a Part 10 file (preamble optional). `header_only`
/// stops at Pixel Data. Files that are not Part 10, and deflated data sets,
/// are left to the parser (which reports them).
pub(crate) fn check_lengths(bytes: &[u8], header_only: bool) -> ScanResult {
    let start = if bytes.get(128..132) == Some(b"DICM") {
        132
    } else if bytes.get(..4) == Some(b"DICM") {
        4
    } else {
        return Ok(());
    };
    // The meta group is read as one block of (0002,0000) Group Length bytes.
    if bytes.get(start..start + 8) == Some(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]) {
        if let Some(v) = bytes.get(start + 8..start + 12) {
            let group_length = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            check(Tag(0x0002, 0x0000), group_length, start + 12, bytes.len())?;
        }
    }
    let mut meta = Walker { bytes, pos: start, big_endian: false, explicit: true };
    let data_start = meta.walk(|tag| tag.group() != 0x0002)?;
    let syntax = transfer_syntax(&bytes[start..data_start]);
    let (explicit, big_endian) = match syntax.as_deref() {
        Some(uids::IMPLICIT_VR_LITTLE_ENDIAN) => (false, false),
        Some("1.2.840.10008.1.2.2") => (true, true),
        Some(uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN) | None => return Ok(()),
        Some(_) => (true, false),
    };
    let mut data = Walker { bytes, pos: data_start, big_endian, explicit };
    data.walk(|tag| header_only && tag == dicom_dictionary_std::tags::PIXEL_DATA)?;
    Ok(())
}

/// The Transfer Syntax UID value in an explicit VR LE meta group.
fn transfer_syntax(meta: &[u8]) -> Option<String> {
    let at = meta.windows(6).position(|w| w == [0x02, 0x00, 0x10, 0x00, b'U', b'I'])?;
    let length = usize::from(u16::from_le_bytes([*meta.get(at + 6)?, *meta.get(at + 7)?]));
    let value = meta.get(at + 8..at + 8 + length)?;
    Some(String::from_utf8_lossy(value).trim_end_matches(['\0', ' ']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Preamble, magic, and a meta group naming explicit VR little endian.
    fn part10(dataset: &[u8]) -> Vec<u8> {
        let uid = b"1.2.840.10008.1.2.1\0";
        let mut out = vec![0u8; 128];
        out.extend_from_slice(b"DICM");
        out.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I']);
        out.extend_from_slice(&(uid.len() as u16).to_le_bytes());
        out.extend_from_slice(uid);
        out.extend_from_slice(dataset);
        out
    }

    #[test]
    fn lengths_past_the_end_are_found() {
        // (0010,0010) PN "AB", then (0009,0010) with an unknown VR "ZZ": read as UN with a 4-byte length.
        let ok = part10(&[0x10, 0x00, 0x10, 0x00, b'P', b'N', 2, 0, b'A', b'B']);
        assert_eq!(check_lengths(&ok, false), Ok(()));
        let mut unknown_vr = ok.clone();
        unknown_vr.extend_from_slice(&[0x09, 0x00, 0x10, 0x00, b'Z', b'Z', 0, 0, 0xF0, 0xFF, 0xFF, 0x0F]);
        let (tag, message) = check_lengths(&unknown_vr, false).unwrap_err();
        assert_eq!(tag, Tag(0x0009, 0x0010));
        assert!(message.contains("268435440 bytes"), "{message}");
        let mut short = ok.clone();
        short.truncate(short.len() - 1);
        assert_eq!(check_lengths(&short, false).unwrap_err().0, Tag(0x0010, 0x0010));
        assert_eq!(check_lengths(b"plain text, not DICOM", false), Ok(()), "left to the parser");
    }

    #[test]
    fn header_only_stops_at_pixel_data() {
        let mut file = part10(&[]);
        file.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0, 0x00, 0x10, 0, 0]);
        assert!(check_lengths(&file, false).is_err());
        assert_eq!(check_lengths(&file, true), Ok(()));
    }
}
