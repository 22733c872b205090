//! The one error type of the DICOM reader and writer.

use miette::Diagnostic;
use std::fmt;
use std::path::{Path, PathBuf};

/// What went wrong, as a stable machine-readable kind (the diagnostic code is
/// `lvc::dicom::<kind>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DicomErrorKind {
    /// The file could not be opened, read or written.
    Io,
    /// The path is a FIFO, device, socket or folder, refused before it is
    /// read (a FIFO would block, a device never ends).
    NotAFile,
    /// The file, its inflated data set or its element count is beyond what
    /// lvc reads as one DICOM file.
    TooLarge,
    /// Sequences nested deeper than lvc reads (`scan::MAX_NESTING`).
    Nesting,
    /// The bytes are not a parseable DICOM file (no `DICM`, broken element).
    Parse,
    /// A tag needed to interpret the pixels is absent.
    MissingTag,
    /// Header values contradict each other or are out of range.
    InvalidHeader,
    /// The transfer syntax is unknown or has no decoder here.
    UnsupportedSyntax,
    /// A legal but unsupported pixel layout (e.g. 32-bit, palette colour).
    UnsupportedFormat,
    /// Pixel data holds fewer bytes than the header promises.
    TruncatedPixelData,
    /// The codec rejected the compressed pixel data.
    Decode,
    /// The codec crashed (a panic inside the decoding crates, caught).
    DecoderPanic,
    /// The data to write is inconsistent (writer side).
    InvalidInput,
}

impl DicomErrorKind {
    /// The kind as it appears in the diagnostic code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Io => "io",
            Self::NotAFile => "not_a_file",
            Self::TooLarge => "too_large",
            Self::Nesting => "nesting",
            Self::Parse => "parse",
            Self::MissingTag => "missing_tag",
            Self::InvalidHeader => "invalid_header",
            Self::UnsupportedSyntax => "unsupported_syntax",
            Self::UnsupportedFormat => "unsupported_format",
            Self::TruncatedPixelData => "truncated_pixel_data",
            Self::Decode => "decode",
            Self::DecoderPanic => "decoder_panic",
            Self::InvalidInput => "invalid_input",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Self::Io => "check that the path exists and is readable (or its folder writable)",
            Self::NotAFile => {
                "name the DICOM file itself: FIFOs, devices, sockets and folders are not read \
                 (copy what a pipe delivers into a file first)"
            }
            Self::TooLarge => {
                "this is not a single image lvc can read (corrupt, or a huge multi-frame object); \
                 export the frames you need as single-frame files, or leave the file out"
            }
            Self::Nesting => {
                "no real DICOM file nests sequences this deep, so the file is corrupt or crafted; \
                 re-export it from the source, or leave it out (`--skip-bad` in `lvc dataset create`)"
            }
            Self::Parse => {
                "the file is not valid DICOM Part 10 (or is cut short); re-export it from the \
                 source, or check it with `dcmdump`"
            }
            Self::MissingTag => {
                "the image module is incomplete; re-export the image with a full header \
                 (`lvc dicom info FILE` shows what is there)"
            }
            Self::InvalidHeader => {
                "the header contradicts itself; `lvc dicom info FILE` shows the values — fix \
                 them with a DICOM editor (e.g. `dcmodify`) or re-export the image"
            }
            Self::UnsupportedSyntax => {
                "transcode the file to an uncompressed or lossless syntax first, e.g. \
                 `dcmdjpeg in.dcm out.dcm` or `gdcmconv --raw in.dcm out.dcm`"
            }
            Self::UnsupportedFormat => {
                "lvc reads 8/16-bit grayscale (and the first sample of RGB/YBR) images only; \
                 convert the image to 16-bit MONOCHROME2"
            }
            Self::TruncatedPixelData => {
                "the file was cut short (incomplete copy or download?); copy it again"
            }
            Self::Decode => {
                "the compressed pixel data is corrupt or does not match the header; transcode \
                 it with `gdcmconv --raw` to see whether another decoder accepts it"
            }
            Self::DecoderPanic => {
                "the decoder crashed on this file, which means it is malformed; transcode it \
                 with `gdcmconv --raw` or `dcmdjpeg`, or leave it out"
            }
            Self::InvalidInput => "this is a bug in the caller of the DICOM writer",
        }
    }
}

/// A DICOM read/write failure: names the file, says why and what to do.
#[derive(Debug, Clone)]
pub struct DicomError {
    /// The file involved.
    pub path: PathBuf,
    /// The category (diagnostic code `lvc::dicom::<kind>`).
    pub kind: DicomErrorKind,
    /// Human-readable reason.
    pub reason: String,
}

impl DicomError {
    pub(crate) fn new(path: &Path, kind: DicomErrorKind, reason: impl Into<String>) -> Self {
        Self { path: path.to_path_buf(), kind, reason: reason.into() }
    }
}

impl fmt::Display for DicomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for DicomError {}

impl Diagnostic for DicomError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("lvc::dicom::{}", self.kind.as_str())))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.help()))
    }
}
