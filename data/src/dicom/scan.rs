//! A walk over the raw element stream, before dicom-object parses it.
//!
//! Two things in dicom-object / dicom-parser 0.10 turn a small hostile file
//! into a crash, so this walk refuses such files first:
//!
//! * the parser allocates and zero-fills each value to its declared length
//!   before reading it, so one corrupt length field (up to 4 GiB) in a 1 kB
//!   file costs gigabytes of memory: every element, item and fragment must
//!   fit in the file;
//! * dicom-object builds a nested sequence by recursion (`build_object` →
//!   `build_sequence` → `build_object` per level, and dropping the object
//!   recurses the same way), so 10,000 nested sequences overflow the stack
//!   and abort the process, which no `catch_unwind` survives: the nesting
//!   is bounded by [`MAX_NESTING`].
//!
//! The walk is iterative and reads the stream exactly as dicom-parser's
//! `DataSetReader` does: the element-header decoders of the file's
//! transfer syntax from the same registry (so implicit VR resolves through
//! the same dictionary), the same stack of open sequences and items with
//! defined or undefined lengths, the file meta group read by its group
//! length. A walk that read the stream differently could miss nesting that
//! the parser then recurses into. Deflated data sets are inflated here (up
//! to [`super::MAX_FILE_BYTES`]) and the inflated stream is walked.
//!
//! The walk also works on the first bytes of a file whose whole length is
//! known ([`walk_file`]): it asks for more ([`Walked::NeedMore`]) until it
//! reaches the end of what the parser will read, so a header can be checked
//! and parsed without reading the pixel data.

use super::DicomErrorKind;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::decode::DecodeFrom;
use dicom_encoding::transfer_syntax::{Codec, Endianness};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use std::io::Read;

/// Sequences nested deeper than this are refused. DICOM sets no limit, but
/// real files stay far below it: enhanced multi-frame headers nest 3–4
/// levels (functional group → macro → code sequence), structured reports
/// rarely more than 10–15. Each level costs dicom-object two stack frames
/// to build and two to drop, so 64 levels stay far inside the 2 MiB stack
/// of a worker thread.
pub(crate) const MAX_NESTING: usize = 64;

/// Open sequences and items together (a malformed stream can stack items
/// on items without a sequence between them): two per level, plus
/// encapsulated pixel data and its open fragment.
const MAX_OPEN: usize = 2 * MAX_NESTING + 2;

/// Data elements, items and delimiters in one file. dicom-object keeps each
/// element and item in memory at some 100 bytes whatever its length, so a
/// file of millions of empty 8-byte items would cost gigabytes; real
/// headers hold well under 10⁵ (an enhanced multi-frame object with
/// thousands of frames), and this caps the parser near 200 MB.
pub(crate) const MAX_ELEMENTS: usize = 2_000_000;

/// What the walk found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Walked {
    /// The walk is complete; the parser needs `bytes[..end]` (the whole
    /// file, or in header-only mode up to and including the header of the
    /// top-level element that stops the parser).
    Done { end: usize },
    /// The bytes end before the walk does: read at least `want` bytes of
    /// the file and walk again.
    NeedMore { want: u64 },
}

/// Why the walk refused the file: the error kind and the whole message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub kind: DicomErrorKind,
    pub message: String,
}

type WalkResult = Result<Walked, Refused>;

fn refuse<T>(kind: DicomErrorKind, message: String) -> Result<T, Refused> {
    Err(Refused { kind, message })
}

fn cut_short<T>(pixel: bool, message: String) -> Result<T, Refused> {
    let kind = if pixel { DicomErrorKind::TruncatedPixelData } else { DicomErrorKind::Parse };
    refuse(kind, format!("the file is cut short or corrupt: {message}"))
}

fn unreadable<T>(message: String) -> Result<T, Refused> {
    refuse(DicomErrorKind::Parse, format!("not a readable DICOM file: {message}"))
}

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_END: Tag = Tag(0xFFFE, 0xE0DD);
const UNDEFINED: u32 = u32::MAX;

/// Checks a Part 10 file (preamble optional) of which `bytes` are the
/// first bytes and `file_len` the whole length. `header_only` stops where
/// dicom-object's `read_until(Pixel Data)` stops.
pub(crate) fn walk_file(bytes: &[u8], file_len: u64, header_only: bool) -> WalkResult {
    // As `super::parse` reads it: the preamble is skipped when `DICM`
    // follows it, absent when the bytes start with `DICM`.
    let start = if bytes.get(128..132) == Some(b"DICM") {
        132
    } else if bytes.get(..4) == Some(b"DICM") {
        4
    } else if (bytes.len() as u64) < file_len.min(132) {
        return Ok(Walked::NeedMore { want: file_len.min(132) });
    } else {
        return unreadable(
            "there is no `DICM` marker at byte 128 (nor at 0), so it is not DICOM Part 10"
                .to_string(),
        );
    };
    let (data_start, syntax) = match walk_meta(bytes, start, file_len)? {
        Ok(found) => found,
        Err(more) => return Ok(more),
    };
    // Meta elements other than the group length and the syntax are
    // skipped unread, but the parser reads them.
    if bytes.len() < data_start {
        return Ok(Walked::NeedMore { want: data_start as u64 });
    }
    // The parser refuses an unknown transfer syntax, or one whose data set
    // it cannot decode, before it reads the data set.
    let Some(ts) = TransferSyntaxRegistry.get(&syntax) else {
        return Ok(Walked::Done { end: data_start });
    };
    let big_endian = ts.endianness() == Endianness::Big;
    match ts.codec() {
        Codec::Dataset(None) => Ok(Walked::Done { end: data_start }),
        Codec::Dataset(Some(_)) => {
            // Deflated: the whole stream is needed to inflate it.
            if (bytes.len() as u64) < file_len {
                return Ok(Walked::NeedMore { want: file_len });
            }
            let inflated = inflate(&bytes[data_start..], super::MAX_FILE_BYTES)?;
            let Some(decoder) = ts.decoder() else { return Ok(Walked::Done { end: data_start }) };
            let walker = Walker {
                bytes: &inflated,
                file_len: inflated.len() as u64,
                decoder: &*decoder,
                big_endian,
            };
            let in_inflated = |r: Refused| Refused {
                kind: r.kind,
                message: format!("{} (bytes counted in the inflated data set)", r.message),
            };
            match walker.walk(0, header_only).map_err(in_inflated)? {
                Walked::Done { .. } => Ok(Walked::Done { end: bytes.len() }),
                Walked::NeedMore { .. } => walk_past_the_end(),
            }
        }
        _ => {
            let Some(decoder) = ts.decoder() else { return Ok(Walked::Done { end: data_start }) };
            Walker { bytes, file_len, decoder: &*decoder, big_endian }.walk(data_start, header_only)
        }
    }
}

/// Checks the complete bytes of a file; returns where the parser's part
/// of them ends.
pub(crate) fn check_bytes(bytes: &[u8], header_only: bool) -> Result<usize, Refused> {
    match walk_file(bytes, bytes.len() as u64, header_only)? {
        Walked::Done { end } => Ok(end),
        Walked::NeedMore { .. } => walk_past_the_end(),
    }
}

/// A walk over the whole stream never needs more of it; an error rather
/// than a panic should that ever be wrong.
fn walk_past_the_end<T>() -> Result<T, Refused> {
    refuse(
        DicomErrorKind::Parse,
        "the DICOM check asked for bytes past the end of the file (a bug in lvc)".to_string(),
    )
}

/// Inflates a deflated data set (raw deflate, PS3.5 A.5), refusing it when
/// it inflates to more than `max` bytes: a few MB of deflated zeros
/// inflate to gigabytes.
fn inflate(deflated: &[u8], max: u64) -> Result<Vec<u8>, Refused> {
    let max_len = usize::try_from(max).unwrap_or(usize::MAX);
    let mut decoder = flate2::read::DeflateDecoder::new(deflated);
    let mut inflated = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => return Ok(inflated),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return unreadable(format!("its deflated data set does not inflate: {e}")),
        };
        if inflated.len() + n > max_len {
            return refuse(
                DicomErrorKind::TooLarge,
                format!(
                    "its deflated data set inflates to more than {}, the most lvc reads as one DICOM file",
                    lvc_fsio::read::human_bytes(max)
                ),
            );
        }
        if inflated.len() + n > inflated.capacity() {
            // Doubling, but never past the bound (a 2 GiB buffer must not
            // become 4 GiB), and a refused allocation is an error here.
            let cap = (inflated.capacity() * 2).max(inflated.len() + n).min(max_len);
            if inflated.try_reserve_exact(cap - inflated.len()).is_err() {
                let at = lvc_fsio::read::human_bytes(cap as u64);
                return refuse(
                    DicomErrorKind::TooLarge,
                    format!("its deflated data set inflates to more than memory holds ({at})"),
                );
            }
        }
        inflated.extend_from_slice(&chunk[..n]);
    }
}

/// Walks the file meta group as dicom-object reads it: (0002,0000) first,
/// then explicit VR little endian elements until its group length is
/// consumed (whatever their group). Gives where the data set starts and
/// the Transfer Syntax UID, or what more to read.
fn walk_meta(
    bytes: &[u8],
    start: usize,
    file_len: u64,
) -> Result<Result<(usize, String), Walked>, Refused> {
    let decoder = dicom_encoding::decode::explicit_le::ExplicitVRLittleEndianDecoder::default();
    let mut pos = start;
    let mut syntax = String::new();
    let mut group_length = None;
    let mut consumed = 0u32;
    while group_length.is_none_or(|length| consumed < length) {
        let need = (pos as u64 + 12).min(file_len);
        if (bytes.len() as u64) < need {
            return Ok(Err(Walked::NeedMore { want: need }));
        }
        let mut source = &bytes[pos..];
        let Ok((header, header_len)) = DecodeFrom::<&[u8]>::decode_header(&decoder, &mut source)
        else {
            return cut_short(
                false,
                format!("the file meta group ends inside an element header at byte {pos}"),
            );
        };
        let Some(len) = header.len.get() else {
            return unreadable(format!("file meta element {} has an undefined length", header.tag));
        };
        let value_start = pos + header_len;
        fits(header.tag, len, value_start as u64, file_len, false)?;
        let value_end = value_start + len as usize;
        let wanted = group_length.is_none() || header.tag == tags::TRANSFER_SYNTAX_UID;
        if wanted && bytes.len() < value_end {
            return Ok(Err(Walked::NeedMore { want: value_end as u64 }));
        }
        match group_length {
            None => {
                if header.tag != tags::FILE_META_INFORMATION_GROUP_LENGTH || len != 4 {
                    return unreadable(format!(
                        "its file meta group starts with {}, not (0002,0000) File Meta Information Group Length",
                        header.tag
                    ));
                }
                let v = &bytes[value_start..value_end];
                group_length = Some(u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
            }
            Some(_) => {
                if header.tag == tags::TRANSFER_SYNTAX_UID {
                    // The meta table keeps the last one and trims it so.
                    let value = String::from_utf8_lossy(&bytes[value_start..value_end]);
                    syntax = value
                        .trim_end_matches(|c: char| c.is_whitespace() || c == '\0')
                        .to_string();
                }
                consumed = consumed.saturating_add(header_len as u32).saturating_add(len);
            }
        }
        pos = value_end;
    }
    Ok(Ok((pos, syntax)))
}

/// Refuses a value of `len` bytes at `value_start` that runs past the end.
fn fits(tag: Tag, len: u32, value_start: u64, file_len: u64, pixel: bool) -> Result<(), Refused> {
    if value_start + u64::from(len) > file_len {
        return cut_short(
            pixel,
            format!("element {tag} declares {len} bytes at offset {value_start}, past the end of the {file_len}-byte file"),
        );
    }
    Ok(())
}

/// An open sequence or item, as dicom-parser stacks them.
struct Open {
    item: bool,
    /// Encapsulated pixel data, or one of its fragments.
    pixel: bool,
    /// Where a defined length ends it.
    end: Option<u64>,
}

struct Walker<'a, 'd> {
    /// The first bytes of the stream (all of them when their length is
    /// `file_len`).
    bytes: &'a [u8],
    file_len: u64,
    /// The transfer syntax's element-header decoder, reading from `bytes`.
    decoder: &'d dyn DecodeFrom<dyn Read + 'a>,
    big_endian: bool,
}

/// The stack of open sequences and items, with the count of nesting
/// levels (sequences that are not encapsulated pixel data).
#[derive(Default)]
struct Stack {
    open: Vec<Open>,
    levels: usize,
}

impl Stack {
    fn push(&mut self, open: Open) {
        if !open.item && !open.pixel {
            self.levels += 1;
        }
        self.open.push(open);
    }

    fn pop(&mut self) {
        if let Some(o) = self.open.pop() {
            if !o.item && !o.pixel {
                self.levels -= 1;
            }
        }
    }

    fn top(&self) -> Option<&Open> {
        self.open.last()
    }
}

impl Walker<'_, '_> {
    /// `Some(NeedMore)` when the bytes stop before `need` (or the end of
    /// the file, if that comes first).
    fn more(&self, need: u64) -> Option<Walked> {
        let need = need.min(self.file_len);
        ((self.bytes.len() as u64) < need).then_some(Walked::NeedMore { want: need })
    }

    /// The walk ends with the stream, which the parser then reads whole:
    /// values skipped on the way must be in the bytes too.
    fn done_at_end(&self) -> Walked {
        self.more(self.file_len).unwrap_or(Walked::Done { end: self.file_len as usize })
    }

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

    /// Walks the data set from `start`, step by step as
    /// `DataSetReader::next` reads it.
    fn walk(&self, start: usize, header_only: bool) -> WalkResult {
        let mut pos = start as u64;
        let mut stack = Stack::default();
        let mut count = 0usize;
        // The first top-level tag from Pixel Data on. A data set's elements
        // come in ascending order (PS3.5 §7.1); lvc tolerates disorder
        // except across Pixel Data, where it makes the two readers
        // disagree: `read_until(Pixel Data)` stops at a stray (FF10,xxxx)
        // before Rows (or at Pixel Data before a misplaced Rows) that a
        // whole-file read goes past.
        let mut past_pixel_data: Option<Tag> = None;
        // At sequence level: an item header or a delimiter comes next.
        let mut in_sequence = false;
        // Encapsulated pixel data has just started: its first item comes next.
        let mut pixel_start = false;
        // A value, item or sequence has just ended: defined lengths may end
        // the open items and sequences here.
        let mut pending = false;
        loop {
            if pending {
                while let Some(&Open { end: Some(end), item, .. }) = stack.top() {
                    if pos < end {
                        break;
                    }
                    if pos > end {
                        let what = if item { "sequence item" } else { "sequence" };
                        return unreadable(format!("a {what} that its length ends at byte {end} holds data up to byte {pos}"));
                    }
                    stack.pop();
                    in_sequence = item;
                }
                pending = false;
            }
            if in_sequence || pixel_start {
                if let Some(more) = self.more(pos + 8) {
                    return Ok(more);
                }
                let in_pixels = stack.top().is_some_and(|o| o.pixel);
                if pos + 8 > self.file_len {
                    // dicom-parser ends a file that stops between the
                    // fragments of encapsulated pixel data without complaint.
                    if in_sequence && in_pixels {
                        return Ok(self.done_at_end());
                    }
                    return cut_short(
                        in_pixels,
                        format!("an item header is cut off at byte {pos}"),
                    );
                }
                let at = pos as usize;
                let tag = Tag(self.u16_at(at), self.u16_at(at + 2));
                let len = self.u32_at(at + 4);
                count += 1;
                if count > MAX_ELEMENTS {
                    return too_many(pos);
                }
                pos += 8;
                match tag {
                    ITEM => {
                        let Some(parent) = stack.top() else {
                            return misplaced(tag, at, "outside any sequence");
                        };
                        let pixel = parent.pixel;
                        let end = if len == UNDEFINED {
                            if pixel {
                                return misplaced(
                                    tag,
                                    at,
                                    "with an undefined length inside encapsulated pixel data",
                                );
                            }
                            None
                        } else {
                            fits(tag, len, pos, self.file_len, pixel)?;
                            Some(pos + u64::from(len))
                        };
                        if stack.open.len() >= MAX_OPEN {
                            return too_deep(tag, at, stack.levels + 1);
                        }
                        stack.push(Open { item: true, pixel, end });
                        in_sequence = false;
                        pixel_start = false;
                        pending = len == 0;
                    }
                    ITEM_END if !pixel_start => {
                        stack.pop();
                        in_sequence = true;
                        pending = true;
                    }
                    SEQUENCE_END => {
                        stack.pop();
                        in_sequence = false;
                        // dicom-parser checks no defined lengths after
                        // empty encapsulated pixel data.
                        pending = !pixel_start;
                        pixel_start = false;
                    }
                    _ => return misplaced(tag, at, "where a sequence item or delimiter must come"),
                }
                continue;
            }
            if let Some(&Open { item: true, pixel: true, end: Some(end) }) = stack.top() {
                // A fragment (or the offset table): opaque bytes, known to fit.
                pos = end;
                pending = true;
                continue;
            }
            // A data element header, or an item delimiter.
            if self.file_len - pos < 4 {
                // Too short for a tag: dicom-parser ends the data set here.
                return Ok(self.done_at_end());
            }
            if let Some(more) = self.more(pos + 12) {
                return Ok(more);
            }
            let at = pos as usize;
            let mut source = &self.bytes[at..];
            let Ok((header, header_len)) = self.decoder.decode_header(&mut source) else {
                let tag = Tag(self.u16_at(at), self.u16_at(at + 2));
                return cut_short(false, format!("element {tag} header is cut off at byte {at}"));
            };
            let (tag, len) = (header.tag, header.len.0);
            count += 1;
            if count > MAX_ELEMENTS {
                return too_many(pos);
            }
            let sequence = header.vr == VR::SQ;
            if stack.open.is_empty() && tag.group() != 0xFFFE {
                match past_pixel_data {
                    Some(past) if tag < tags::PIXEL_DATA => {
                        return unreadable(format!(
                            "{tag} at byte {at} comes after {past}: the data set's elements are not in ascending tag order, and an image header element after Pixel Data is read by some readers and not by others"
                        ));
                    }
                    None if tag >= tags::PIXEL_DATA => past_pixel_data = Some(tag),
                    _ => {}
                }
            }
            if header_only
                && stack.open.is_empty()
                && tag >= tags::PIXEL_DATA
                && (sequence || tag != ITEM_END)
            {
                // `read_until(Pixel Data)` stops at the first top-level
                // element from Pixel Data on (an item delimiter there is
                // skipped, not returned).
                return Ok(Walked::Done { end: at + header_len });
            }
            let value_start = pos + header_len as u64;
            if !sequence && tag == ITEM_END {
                pos = value_start;
                if !stack.open.is_empty() {
                    stack.pop();
                    in_sequence = true;
                    pending = true;
                }
                continue;
            }
            if sequence || len == UNDEFINED {
                if stack.open.len() >= MAX_OPEN {
                    return too_deep(tag, at, stack.levels + 1);
                }
                if !sequence && tag == tags::PIXEL_DATA {
                    stack.push(Open { item: false, pixel: true, end: None });
                    pixel_start = true;
                } else {
                    let end = if len == UNDEFINED {
                        None
                    } else {
                        fits(tag, len, value_start, self.file_len, false)?;
                        Some(value_start + u64::from(len))
                    };
                    if stack.levels + 1 > MAX_NESTING {
                        return too_deep(tag, at, stack.levels + 1);
                    }
                    stack.push(Open { item: false, pixel: false, end });
                    in_sequence = true;
                    pending = len == 0;
                }
                pos = value_start;
                continue;
            }
            fits(tag, len, value_start, self.file_len, tag == tags::PIXEL_DATA)?;
            let unit = value_unit(tag, header.vr);
            if len % unit != 0 {
                return unreadable(format!(
                    "element {tag} {} at byte {at} holds {len} bytes, not a whole number of {unit}-byte values",
                    header.vr.to_string()
                ));
            }
            pos = value_start + u64::from(len);
            pending = true;
        }
    }
}

/// The size of one value of a binary VR (1 for text and bytes).
///
/// dicom-parser reads a binary value as `len / unit` whole values and
/// leaves the remainder unread, so a length that is not a multiple of the
/// unit puts it a few bytes behind this walk, and it then reads a header
/// out of the middle of a value (a 795-byte file asked it for 2.7 GB). PS3.5
/// §6.2 fixes the size of these values, so such a length is corrupt and
/// the file is refused. A tag the dictionary lists as "US or SS" is read as
/// SS once Pixel Representation says the pixels are signed, whatever VR
/// its header names, so it must be a whole number of 2-byte values too.
fn value_unit(tag: Tag, vr: VR) -> u32 {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
    let unit = match vr {
        VR::US | VR::SS | VR::OW => 2,
        VR::UL | VR::SL | VR::FL | VR::OF | VR::OL | VR::AT => 4,
        VR::FD | VR::OD | VR::SV | VR::UV | VR::OV => 8,
        _ => 1,
    };
    let either_sign = dicom_dictionary_std::StandardDataDictionary
        .by_tag(tag)
        .is_some_and(|e| e.vr() == VirtualVr::Xs);
    if either_sign {
        unit.max(2)
    } else {
        unit
    }
}

fn misplaced<T>(tag: Tag, at: usize, what: &str) -> Result<T, Refused> {
    unreadable(format!("{tag} at byte {at} {what}"))
}

fn too_deep<T>(tag: Tag, at: usize, depth: usize) -> Result<T, Refused> {
    refuse(
        DicomErrorKind::Nesting,
        format!("{tag} at byte {at} opens nesting level {depth}; lvc reads at most {MAX_NESTING} levels of sequences within sequences"),
    )
}

fn too_many<T>(at: u64) -> Result<T, Refused> {
    refuse(
        DicomErrorKind::TooLarge,
        format!("it holds more than {MAX_ELEMENTS} data elements and items (at byte {at}); no image header needs that many"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Preamble, magic, and a meta group naming explicit VR little endian.
    fn part10(dataset: &[u8]) -> Vec<u8> {
        let uid = b"1.2.840.10008.1.2.1\0";
        let mut meta = vec![0x02, 0x00, 0x10, 0x00, b'U', b'I'];
        meta.extend_from_slice(&(uid.len() as u16).to_le_bytes());
        meta.extend_from_slice(uid);
        let mut out = vec![0u8; 128];
        out.extend_from_slice(b"DICM");
        out.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
        out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(dataset);
        out
    }

    fn refused(bytes: &[u8], header_only: bool) -> Refused {
        check_bytes(bytes, header_only).expect_err("the walk must refuse this")
    }

    #[test]
    fn lengths_past_the_end_are_found() {
        // (0010,0010) PN "AB", then (0009,0010) with an unknown VR "ZZ": read as UN with a 4-byte length.
        let ok = part10(&[0x10, 0x00, 0x10, 0x00, b'P', b'N', 2, 0, b'A', b'B']);
        assert_eq!(check_bytes(&ok, false), Ok(ok.len()));
        let mut unknown_vr = ok.clone();
        unknown_vr
            .extend_from_slice(&[0x09, 0x00, 0x10, 0x00, b'Z', b'Z', 0, 0, 0xF0, 0xFF, 0xFF, 0x0F]);
        let err = refused(&unknown_vr, false);
        assert!(err.message.contains("(0009,0010) declares 268435440 bytes"), "{err:?}");
        let mut short = ok.clone();
        short.truncate(short.len() - 1);
        assert!(refused(&short, false).message.contains("(0010,0010) declares 2 bytes"));
        let text = refused(b"plain text, not DICOM", false);
        assert_eq!(text.kind, DicomErrorKind::Parse);
        assert!(text.message.contains("no `DICM` marker"), "{text:?}");
    }

    #[test]
    fn binary_values_must_be_whole() {
        // (0018,1310) US of 3 bytes: dicom-parser reads one value and
        // would take the third byte as the start of the next header.
        let mut odd_us = vec![0x18, 0x00, 0x10, 0x13, b'U', b'S', 3, 0, 1, 2, 3];
        odd_us.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, b'P', b'N', 2, 0, b'A', b'B']);
        let err = refused(&part10(&odd_us), false);
        assert_eq!(err.kind, DicomErrorKind::Parse);
        assert!(
            err.message.contains(
                "(0018,1310) US at byte 172 holds 3 bytes, not a whole number of 2-byte values"
            ),
            "{err:?}"
        );
        assert_eq!(refused(&part10(&odd_us), true), err, "the header walk reads it too");
        // (0028,0120) Pixel Padding Value is "US or SS": written as OB, it
        // is still read as 2-byte values once the pixels are signed.
        let padding = part10(&[0x28, 0x00, 0x20, 0x01, b'O', b'B', 0, 0, 1, 0, 0, 0, 9]);
        assert!(refused(&padding, false).message.contains("not a whole number of 2-byte values"));
        // Whole values, and odd-length text and bytes, are read as they are.
        let whole = part10(&[
            0x18, 0x00, 0x10, 0x13, b'U', b'S', 4, 0, 1, 2, 3, 4, //
            0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0, 1, 0, 0, 0, 7, //
            0x10, 0x00, 0x10, 0x00, b'P', b'N', 3, 0, b'A', b'B', b'C',
        ]);
        assert_eq!(check_bytes(&whole, false), Ok(whole.len()));
    }

    #[test]
    fn header_only_stops_at_pixel_data() {
        let pixel_header = [0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0, 0x00, 0x10, 0, 0];
        let file = part10(&pixel_header);
        assert_eq!(refused(&file, false).kind, DicomErrorKind::TruncatedPixelData);
        assert_eq!(
            check_bytes(&file, true),
            Ok(file.len()),
            "up to and including the Pixel Data header"
        );
    }

    #[test]
    fn inflating_stops_at_the_bound() {
        use std::io::Write;
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&vec![0u8; 3 << 20]).unwrap();
        let deflated = encoder.finish().unwrap();
        assert!(deflated.len() < 20_000, "3 MB of zeros deflate to {} bytes", deflated.len());
        assert_eq!(inflate(&deflated, 3 << 20).unwrap().len(), 3 << 20);
        let err = inflate(&deflated, 1 << 20).unwrap_err();
        assert_eq!(err.kind, DicomErrorKind::TooLarge);
        assert!(err.message.contains("inflates to more than 1.0 MB"), "{err:?}");
        assert_eq!(inflate(b"\xff\xff not deflate", 100).unwrap_err().kind, DicomErrorKind::Parse);
    }

    #[test]
    fn a_prefix_asks_for_what_the_walk_needs() {
        // (0009,1010) OB of 4000 bytes, then (0010,0010), then Pixel Data of 1 GB.
        let mut dataset = vec![0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0];
        dataset.extend_from_slice(&4000u32.to_le_bytes());
        dataset.extend(std::iter::repeat_n(7u8, 4000));
        dataset.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, b'P', b'N', 2, 0, b'A', b'B']);
        dataset.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0]);
        dataset.extend_from_slice(&1_000_000_000u32.to_le_bytes());
        let file = part10(&dataset);
        let file_len = file.len() as u64 + 1_000_000_000;
        let private_end = file.len() - 12 - 10;
        // The private element is skipped unread; the next header is needed.
        assert_eq!(
            walk_file(&file[..200], file_len, true),
            Ok(Walked::NeedMore { want: private_end as u64 + 12 })
        );
        assert_eq!(walk_file(&file, file_len, true), Ok(Walked::Done { end: file.len() }));
        // A whole walk skips the pixel data too, but the parser then reads it.
        assert_eq!(walk_file(&file, file_len, false), Ok(Walked::NeedMore { want: file_len }));
        // The preamble, then the meta group's first element.
        assert_eq!(walk_file(&file[..100], file_len, true), Ok(Walked::NeedMore { want: 132 }));
        assert_eq!(walk_file(&file[..132], file_len, true), Ok(Walked::NeedMore { want: 144 }));
    }
}
