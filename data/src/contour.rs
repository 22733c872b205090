//! The Sunnybrook challenge contour format: one `x y` point per line
//! (x = column, y = row, pixel coordinates, usually two decimals on a
//! 0.5-pixel grid), the polygon implicitly closed.
//!
//! Accepted: any whitespace between the two numbers, `\n` or `\r\n` line
//! ends, an optional trailing newline, and whitespace-only lines anywhere
//! (skipped, as `np.loadtxt` does). Rejected with a diagnostic that points at
//! the line: a line that is not exactly two finite numbers, and a file with
//! fewer than 3 points.
//!
//! Only regular files are read (a FIFO would block, a device never ends),
//! and only up to [`MAX_CONTOUR_BYTES`].
//!
//! Points outside the image are checked separately ([`Contour::check_inside`])
//! because only the importer knows the image size: a point is inside when the
//! pixel it truncates to (`astype(int)`, toward zero) lies in the image, so
//! `-0.5` is column 0 and `255.5` is column 255 of a 256-wide image.

use lvc_fsio::read::human_bytes;
use miette::{Diagnostic, NamedSource, SourceSpan};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// The largest contour file read. A contour is a few hundred `x y` lines
/// of some 14 bytes (2–8 kB in Sunnybrook); the outline of a 4096 × 4096
/// image on a 0.5-pixel grid is 32,768 points, about 0.5 MB. Anything
/// larger is not a contour, and reading it whole would only cost memory.
pub const MAX_CONTOUR_BYTES: u64 = 16 << 20;

/// One contour point and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct ContourPoint {
    pub x: f64,
    pub y: f64,
    /// 1-based line number in the file.
    pub line: usize,
    /// Byte range of the line in the file text (for diagnostics).
    span: (usize, usize),
}

/// A parsed contour file. Keeps its text so later checks (bounds) can point
/// into it.
#[derive(Clone, Debug)]
pub struct Contour {
    pub path: PathBuf,
    pub points: Vec<ContourPoint>,
    text: String,
}

#[derive(Debug, Error, Diagnostic)]
pub enum ContourError {
    #[error("cannot read contour file {}", path.display())]
    #[diagnostic(code(lvc::data::contour), help("check that the file exists and is readable"))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read contour file {}: it is {what}, not a regular file", path.display())]
    #[diagnostic(
        code(lvc::data::contour::not_a_file),
        help(
            "a contour must be a regular text file: replace the FIFO or device with the file itself, or move it out of the contour folder"
        )
    )]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("cannot read contour file {}: it holds {len} bytes, more than the {} a contour file can need", path.display(), human_bytes(*max))]
    #[diagnostic(
        code(lvc::data::contour::too_large),
        help("this is not a contour (those are a few kB of `x y` lines); remove it from the contour folder")
    )]
    TooLarge { path: PathBuf, len: u64, max: u64 },
    #[error("{}:{line}: {problem}", path.display())]
    #[diagnostic(
        code(lvc::data::contour),
        help("each line of a contour file must be two numbers, `x y` (column row), e.g. `109.50 146.00`")
    )]
    BadLine {
        path: PathBuf,
        line: usize,
        problem: String,
        #[source_code]
        src: Arc<NamedSource<String>>,
        #[label("this line")]
        span: SourceSpan,
    },
    #[error("{}: a contour needs at least 3 points, found {count}", path.display())]
    #[diagnostic(
        code(lvc::data::contour),
        help("the file is truncated or not a contour; remove it or re-export it")
    )]
    TooFewPoints { path: PathBuf, count: usize },
    #[error("{}:{line}: point ({x}, {y}) lies outside the {width}x{height} image", path.display())]
    #[diagnostic(
        code(lvc::data::contour),
        help("the contour does not belong to this image (wrong series?), or pass --allow-outside to clip it at the border as cv2.fillPoly does")
    )]
    OutsideImage {
        path: PathBuf,
        line: usize,
        x: f64,
        y: f64,
        width: usize,
        height: usize,
        #[source_code]
        src: Arc<NamedSource<String>>,
        #[label("outside the image")]
        span: SourceSpan,
    },
}

impl ContourError {
    /// The file the problem is in.
    pub fn path(&self) -> &Path {
        match self {
            ContourError::Read { path, .. }
            | ContourError::NotAFile { path, .. }
            | ContourError::TooLarge { path, .. }
            | ContourError::BadLine { path, .. }
            | ContourError::TooFewPoints { path, .. }
            | ContourError::OutsideImage { path, .. } => path,
        }
    }
}

/// Reads and parses a contour file.
pub fn read_contour(path: &Path) -> Result<Contour, ContourError> {
    read_contour_and_bytes(path).map(|(contour, _)| contour)
}

/// Reads and parses a contour file, handing back its bytes too (e.g. to
/// checksum exactly what was parsed).
pub fn read_contour_and_bytes(path: &Path) -> Result<(Contour, Vec<u8>), ContourError> {
    let bytes = lvc_fsio::read::read_regular(path, MAX_CONTOUR_BYTES).map_err(|source| {
        let path = path.to_path_buf();
        if let Some(refused) = lvc_fsio::read::not_regular_in(&source) {
            ContourError::NotAFile { path, what: refused.what }
        } else if let Some(refused) = lvc_fsio::read::too_large_in(&source) {
            ContourError::TooLarge { path, len: refused.len, max: refused.max_bytes }
        } else {
            ContourError::Read { path, source }
        }
    })?;
    Ok((contour_from_bytes(path, &bytes)?, bytes))
}

/// Parses the bytes of contour file `path` (read by the caller, e.g. to
/// checksum them too), with the size bound [`read_contour`] applies.
pub fn contour_from_bytes(path: &Path, bytes: &[u8]) -> Result<Contour, ContourError> {
    if bytes.len() as u64 > MAX_CONTOUR_BYTES {
        return Err(ContourError::TooLarge {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
            max: MAX_CONTOUR_BYTES,
        });
    }
    // Contour files are ASCII; anything else shows up as a bad line below.
    parse_contour(path, String::from_utf8_lossy(bytes).into_owned())
}

/// Parses contour text; `path` only names the source in diagnostics.
pub fn parse_contour(path: &Path, text: String) -> Result<Contour, ContourError> {
    let mut points = Vec::new();
    let mut offset = 0;
    for (index, raw_line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let span = (start, line.len());
        let bad = |problem: String| ContourError::BadLine {
            path: path.to_path_buf(),
            line: index + 1,
            problem,
            src: Arc::new(NamedSource::new(path.display().to_string(), text.clone())),
            span: span.into(),
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 2 {
            return Err(bad(format!(
                "expected 2 numbers `x y`, found {} field(s): {:?}",
                fields.len(),
                line.trim()
            )));
        }
        let mut coords = [0.0f64; 2];
        for (slot, field) in coords.iter_mut().zip(&fields) {
            match field.parse::<f64>() {
                Ok(v) if v.is_finite() => *slot = v,
                Ok(_) => return Err(bad(format!("`{field}` is not a finite number"))),
                Err(_) => return Err(bad(format!("`{field}` is not a number"))),
            }
        }
        points.push(ContourPoint { x: coords[0], y: coords[1], line: index + 1, span });
    }
    if points.len() < 3 {
        return Err(ContourError::TooFewPoints { path: path.to_path_buf(), count: points.len() });
    }
    Ok(Contour { path: path.to_path_buf(), points, text })
}

impl Contour {
    /// Errors on the first point whose truncated pixel lies outside a
    /// `width`×`height` image.
    pub fn check_inside(&self, width: usize, height: usize) -> Result<(), ContourError> {
        let inside = |v: f64, size: usize| {
            let t = v.trunc();
            t >= 0.0 && t < size as f64
        };
        match self.points.iter().find(|p| !inside(p.x, width) || !inside(p.y, height)) {
            None => Ok(()),
            Some(p) => Err(ContourError::OutsideImage {
                path: self.path.clone(),
                line: p.line,
                x: p.x,
                y: p.y,
                width,
                height,
                src: Arc::new(NamedSource::new(self.path.display().to_string(), self.text.clone())),
                span: p.span.into(),
            }),
        }
    }

    /// The points as `[x, y]` pairs.
    pub fn xy(&self) -> Vec<[f64; 2]> {
        self.points.iter().map(|p| [p.x, p.y]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Contour, ContourError> {
        parse_contour(Path::new("case/IM-0001-0048-icontour-manual.txt"), text.to_string())
    }

    #[test]
    fn parses_the_challenge_format() {
        let c = parse("109.50 146.00\n110.00 146.50\n111.00 147.00\n").unwrap();
        assert_eq!(c.xy(), vec![[109.5, 146.0], [110.0, 146.5], [111.0, 147.0]]);
        assert_eq!(c.points[2].line, 3);
    }

    #[test]
    fn tolerates_missing_newline_crlf_tabs_and_blank_lines() {
        let c = parse("1 2\r\n3\t4\n\n5   6").unwrap();
        assert_eq!(c.xy(), vec![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
        let c = parse("1 2\n3 4\n5 6\n\n  \n\n").unwrap();
        assert_eq!(c.points.len(), 3);
    }

    #[test]
    fn junk_line_is_an_error_naming_file_and_line() {
        let text = "1 2\n3 4\nhello world\n5 6\n";
        let err = parse(text).unwrap_err();
        match &err {
            ContourError::BadLine { line, span, .. } => {
                assert_eq!(*line, 3);
                assert_eq!(&text[span.offset()..span.offset() + span.len()], "hello world");
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("IM-0001-0048-icontour-manual.txt:3"), "{msg}");
        assert_eq!(err.code().map(|c| c.to_string()).as_deref(), Some("lvc::data::contour"));
    }

    #[test]
    fn wrong_field_count_nan_and_inf_are_errors() {
        for (text, line) in [
            ("1 2\n3\n4 5\n6 7", 2),
            ("1 2 3\n4 5\n6 7", 1),
            ("1 2\nNaN 4\n5 6", 2),
            ("1 2\n3 4\n5 inf", 3),
        ] {
            match parse(text) {
                Err(ContourError::BadLine { line: got, .. }) => assert_eq!(got, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn fewer_than_three_points_is_an_error() {
        assert!(matches!(parse("1 2\n3 4\n"), Err(ContourError::TooFewPoints { count: 2, .. })));
        assert!(matches!(parse(""), Err(ContourError::TooFewPoints { count: 0, .. })));
    }

    #[test]
    fn bounds_use_the_truncated_pixel() {
        let c = parse("-0.5 0\n255.5 10\n10 255.9\n").unwrap();
        assert!(c.check_inside(256, 256).is_ok());
        let c = parse("1 1\n256.0 3\n4 5\n").unwrap();
        match c.check_inside(256, 256) {
            Err(ContourError::OutsideImage { line: 2, x, .. }) => assert_eq!(x, 256.0),
            other => panic!("{other:?}"),
        }
        let c = parse("1 1\n2 3\n4 -1\n").unwrap();
        assert!(matches!(c.check_inside(8, 8), Err(ContourError::OutsideImage { line: 3, .. })));
    }

    #[cfg(unix)]
    #[test]
    fn fifos_devices_folders_and_huge_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("IM-0001-0048-icontour-manual.txt");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Opening a FIFO for reading blocks until a writer comes: read on
        // another thread, and fail (giving it a writer) after 5 s.
        let (send, receive) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || send.send(read_contour(&path)));
        let Ok(from_fifo) = receive.recv_timeout(std::time::Duration::from_secs(5)) else {
            use std::os::unix::fs::OpenOptionsExt;
            let _writer =
                std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo);
            panic!("reading the FIFO {} blocked for 5 s", fifo.display());
        };
        let mut results = vec![(from_fifo, fifo.as_path(), "a FIFO (named pipe)")];
        results.push((
            read_contour(Path::new("/dev/zero")),
            Path::new("/dev/zero"),
            "a character device",
        ));
        results.push((read_contour(dir.path()), dir.path(), "a folder"));
        for (result, path, what) in results {
            let err = result.unwrap_err();
            assert!(matches!(err, ContourError::NotAFile { what: w, .. } if w == what), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!(
                    "cannot read contour file {}: it is {what}, not a regular file",
                    path.display()
                )
            );
            assert_eq!(
                err.code().map(|c| c.to_string()).as_deref(),
                Some("lvc::data::contour::not_a_file")
            );
            assert_eq!(err.path(), path);
        }
        let big = dir.path().join("IM-0001-0049-icontour-manual.txt");
        std::fs::File::create(&big).unwrap().set_len(MAX_CONTOUR_BYTES + 1).unwrap();
        let err = read_contour(&big).unwrap_err();
        assert!(
            matches!(err, ContourError::TooLarge { len, .. } if len == MAX_CONTOUR_BYTES + 1),
            "{err:?}"
        );
        assert!(
            err.to_string().ends_with(
                "it holds 16777217 bytes, more than the 16.8 MB a contour file can need"
            ),
            "{err}"
        );
        let bytes = vec![b' '; MAX_CONTOUR_BYTES as usize + 1];
        assert!(matches!(contour_from_bytes(&big, &bytes), Err(ContourError::TooLarge { .. })));
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let err = read_contour(Path::new("/nonexistent/x-icontour-manual.txt")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x-icontour-manual.txt"));
        assert_eq!(err.path(), Path::new("/nonexistent/x-icontour-manual.txt"));
    }
}
