//! A source file kept whole, so that every span can be turned into a line and
//! column and rendered by miette.
//!
//! The line starts are indexed once, so that turning a span into a line
//! (JSON's `line`/`column`) and cutting the lines around it for miette
//! ([`IndexedSource`]) cost a binary search and the lines shown, not a scan
//! from the start of the file: with one scan per label, a file with 8,000
//! errors took seconds to report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lvc_grammar::Span;
use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user gave it (shown in diagnostics).
    pub path: PathBuf,
    pub text: Arc<str>,
    /// Byte offset of the start of every line of `text`, for the `text`
    /// it was built from (rebuilt if `text` is replaced).
    lines: Arc<LineIndex>,
}

/// Line starts of one text. A line ends at `\n`, at `\r\n` or at a lone
/// `\r`, as miette counts them, so that line numbers agree with its output.
#[derive(Debug)]
struct LineIndex {
    text: Arc<str>,
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: Arc<str>) -> Self {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => starts.push(i + 1),
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                    starts.push(i + 2);
                    i += 1;
                }
                b'\r' => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        LineIndex { text, starts }
    }

    /// 0-based line holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).saturating_sub(1)
    }
}

/// The largest prototxt read: the biggest public nets are a few MB of text.
pub const MAX_SOURCE_BYTES: u64 = 1 << 30;

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let lines = Arc::new(LineIndex::new(text.clone()));
        SourceFile { path: path.into(), text, lines }
    }

    /// Reads a file (a regular file only: a FIFO would block, a device
    /// never end); the error names the path.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let bytes = lvc_fsio::read_regular(path, MAX_SOURCE_BYTES)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(SourceFile::new(path, text))
    }

    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// The line index of `text` (rebuilt when `text` was replaced after
    /// construction, which nothing in lvc does).
    fn index(&self) -> Arc<LineIndex> {
        if Arc::ptr_eq(&self.lines.text, &self.text) {
            self.lines.clone()
        } else {
            Arc::new(LineIndex::new(self.text.clone()))
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let index = self.index();
        let line = index.line_of(offset);
        let start = index.starts[line].min(offset);
        let column = self.text[start..offset].chars().count() + 1;
        (line + 1, column)
    }

    pub fn snippet(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }

    pub fn named_source(&self) -> miette::NamedSource<Arc<str>> {
        miette::NamedSource::new(self.name(), self.text.clone())
    }

    /// The file as miette's [`SourceCode`], reading only the lines around
    /// each span.
    pub fn indexed_source(&self) -> IndexedSource {
        IndexedSource { name: self.name(), index: self.index() }
    }
}

/// A [`SourceCode`] that hands miette only the lines a span needs: miette's
/// own `str` implementation scans from the start of the text for every
/// label it renders. It runs miette's own reader on those lines, so the
/// rendering is the same byte for byte.
#[derive(Debug, Clone)]
pub struct IndexedSource {
    name: String,
    index: Arc<LineIndex>,
}

impl IndexedSource {
    /// The lines miette reads for `span` (a span inside the text): its
    /// first line, and the byte range from the first context line before
    /// the span to the line after the last context line after it (miette
    /// stops on that line's newline). miette compares positions with the
    /// span's last byte, `end - 1`, which for an empty span lies before it:
    /// the window starts above both.
    fn window(&self, span: &SourceSpan, before: usize, after: usize) -> (usize, usize, usize) {
        let end = span.offset() + span.len();
        let anchor = span.offset().min(end.saturating_sub(1));
        let first_line = self.index.line_of(anchor).saturating_sub(before);
        let last_line = self.index.line_of(end.saturating_sub(1).max(span.offset()));
        let starts = &self.index.starts;
        let window_end =
            starts.get(last_line + after + 2).copied().unwrap_or(self.index.text.len());
        (first_line, starts[first_line], window_end)
    }
}

impl SourceCode for IndexedSource {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let text: &'a str = &self.index.text;
        let end = span.offset().saturating_add(span.len());
        if end > text.len() {
            // Out of bounds: miette's own reader says so.
            return named(
                &self.name,
                text.read_span(span, context_lines_before, context_lines_after)?,
                0,
                0,
                0,
            );
        }
        let (first_line, window_start, window_end) =
            self.window(span, context_lines_before, context_lines_after);
        let window = &text[window_start..window_end];
        let local = SourceSpan::new((span.offset() - window_start).into(), span.len());
        let contents = window.read_span(&local, context_lines_before, context_lines_after)?;
        named(&self.name, contents, window_start, first_line, first_line)
    }
}

/// `contents` (read from a window of the text starting at byte `shift`,
/// line `lines`) as contents of the whole text, with the file's name.
fn named<'a>(
    name: &str,
    contents: Box<dyn SpanContents<'a> + 'a>,
    shift: usize,
    lines: usize,
    counted: usize,
) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
    let span = SourceSpan::new((contents.span().offset() + shift).into(), contents.span().len());
    Ok(Box::new(MietteSpanContents::new_named(
        name.to_string(),
        contents.data(),
        span,
        contents.line() + lines,
        contents.column(),
        contents.line_count() + counted,
    )))
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let f = SourceFile::new("x.prototxt", "ab\ncd\n\u{e9}f");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(4), (2, 2));
        assert_eq!(f.line_col(8), (3, 2));
        assert_eq!(f.line_col(100), (3, 3));
    }

    /// The work per label is the lines around it, wherever it is in the
    /// file: a report of N labels reads O(N) lines, not O(N · file).
    #[test]
    fn a_read_looks_only_at_the_lines_around_the_span() {
        let line = "layer { name: \"x\" type: \"ReLU\" bottom: \"a\" top: \"a\" }\n";
        let text = line.repeat(100_000);
        let file = SourceFile::new("big.prototxt", text.as_str());
        let indexed = file.indexed_source();
        let last = text.len() - line.len() + 8;
        let span = SourceSpan::new(last.into(), 4);
        let (first_line, start, end) = indexed.window(&span, 1, 1);
        assert_eq!(first_line, 99_998);
        assert!(end - start <= 3 * line.len(), "{} bytes", end - start);
        let contents = indexed.read_span(&span, 1, 1).expect("in bounds");
        assert_eq!(contents.line(), 99_998);
        assert_eq!(file.line_col(last), (100_000, 9));
    }

    /// The indexed reader gives miette exactly what its own `str` reader
    /// does, for every span of a text with `\n`, `\r\n`, lone `\r`, blank
    /// lines and multi-byte characters, and every context size.
    #[test]
    fn indexed_reads_match_miettes_own() {
        let piece = "a: 1\n\nlayer {\r\n  name: \"é\"\r\n  type: \"X\"\r}\nb\n\n\n";
        let text = format!("{piece}{piece}{piece}last");
        let text = text.as_str();
        let file = SourceFile::new("t.prototxt", text);
        let indexed = file.indexed_source();
        for start in 0..=text.len() {
            for len in 0..=(text.len() - start).min(12) {
                for context in 0..3 {
                    let span = SourceSpan::new(start.into(), len);
                    let ours = indexed.read_span(&span, context, context);
                    let theirs = text.read_span(&span, context, context);
                    match (ours, theirs) {
                        (Ok(a), Ok(b)) => {
                            let what = format!("span {start}+{len}, context {context}");
                            assert_eq!(a.data(), b.data(), "{what}");
                            assert_eq!(a.span(), b.span(), "{what}");
                            assert_eq!(
                                (a.line(), a.column(), a.line_count()),
                                (b.line(), b.column(), b.line_count()),
                                "{what}"
                            );
                            assert_eq!(a.name(), Some("t.prototxt"));
                        }
                        (Err(_), Err(_)) => {}
                        (a, b) => panic!(
                            "span {start}+{len}, context {context}: {:?} vs {:?}",
                            a.is_ok(),
                            b.is_ok()
                        ),
                    }
                }
            }
        }
    }
}
