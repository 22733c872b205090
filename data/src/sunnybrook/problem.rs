//! Problems found while importing a Sunnybrook tree: each names a file, and
//! the importer collects all of them before deciding to stop or skip.

use miette::{Diagnostic, LabeledSpan, SourceCode};
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// One problem with one source file (or folder): the file it is about plus
/// the full diagnostic of whatever found it (contour parser, DICOM reader,
/// pairing).
pub struct Problem {
    file: PathBuf,
    diagnostic: Box<dyn Diagnostic + Send + Sync + 'static>,
}

impl Problem {
    pub fn new(file: &Path, diagnostic: impl Diagnostic + Send + Sync + 'static) -> Self {
        Problem { file: file.to_path_buf(), diagnostic: Box::new(diagnostic) }
    }

    /// The file or folder the problem is about.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

impl fmt::Debug for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.diagnostic, f)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.diagnostic, f)
    }
}

impl std::error::Error for Problem {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.diagnostic.source()
    }
}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic.code()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic.help()
    }
    fn severity(&self) -> Option<miette::Severity> {
        self.diagnostic.severity()
    }
    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic.url()
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.diagnostic.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.diagnostic.labels()
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        self.diagnostic.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.diagnostic.diagnostic_source()
    }
}

/// Problems the importer itself finds (pairing, layout, sizes).
#[derive(Debug, Error, Diagnostic)]
pub enum PairingIssue {
    #[error("no image folder for case {case} (contours in {}) under {}", contours.display(), images.display())]
    #[diagnostic(
        code(lvc::data::import::no_case_folder),
        help("--images must be the folder that holds one folder per case (e.g. challenge_training), padded or unpadded names")
    )]
    NoCaseFolder { case: String, contours: PathBuf, images: PathBuf },

    #[error("image folder {} holds no IM-<series>-<image>.dcm files", folder.display())]
    #[diagnostic(
        code(lvc::data::import::empty_folder),
        help("copy the case's DICOM files into it, or remove its contours")
    )]
    EmptyImageFolder { folder: PathBuf },

    #[error("contour folder {} holds no {kind}-contour files", folder.display())]
    #[diagnostic(
        code(lvc::data::import::empty_folder),
        help("the case has no contours of this kind; remove the folder or add them")
    )]
    EmptyContourFolder { folder: PathBuf, kind: &'static str },

    #[error("case {case}: no series in {} holds all contoured images {wanted}", folder.display())]
    #[diagnostic(
        code(lvc::data::import::no_series),
        help("name the case's short-axis series with --sax-map FILE (lines `CASE SERIES`)")
    )]
    NoSeries { case: String, folder: PathBuf, wanted: String },

    #[error("{}: image {} for this contour does not exist", contour.display(), image.display())]
    #[diagnostic(
        code(lvc::data::import::missing_image),
        help("the SAX series of the case may be wrong (override it with --sax-map FILE), or the image was not copied")
    )]
    MissingImage { contour: PathBuf, image: PathBuf },

    #[error("{}: contour for case {case} image {image} also found at {}", duplicate.display(), first.display())]
    #[diagnostic(
        code(lvc::data::import::duplicate_contour),
        help("point --contours at one copy of the contour tree")
    )]
    DuplicateContour { case: String, image: u32, first: PathBuf, duplicate: PathBuf },

    #[error("{}: image is {got_h}x{got_w}, the dataset's images are {want_h}x{want_w}", path.display())]
    #[diagnostic(
        code(lvc::data::import::size_mismatch),
        help("all images of a dataset must have one size (the most common one wins); leave this case out or use --skip-bad")
    )]
    SizeMismatch { path: PathBuf, got_h: usize, got_w: usize, want_h: usize, want_w: usize },

    #[error("{}: {frames} frame(s) with {samples} sample(s) per pixel; expected one grayscale frame", path.display())]
    #[diagnostic(
        code(lvc::data::import::not_grayscale),
        help("Sunnybrook slices are single-frame grayscale MR; leave this file out")
    )]
    NotSingleGrayscale { path: PathBuf, frames: u32, samples: u16 },
}
