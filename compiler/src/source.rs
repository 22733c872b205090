//! A source file kept whole, so that every span can be turned into a line and
//! column and rendered by miette.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lvc_grammar::Span;

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user gave it (shown in diagnostics).
    pub path: PathBuf,
    pub text: Arc<str>,
}

/// The largest prototxt read: the biggest public nets are a few MB of text.
pub const MAX_SOURCE_BYTES: u64 = 1 << 30;

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        SourceFile { path: path.into(), text: text.into() }
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

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    pub fn snippet(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }

    pub fn named_source(&self) -> miette::NamedSource<Arc<str>> {
        miette::NamedSource::new(self.name(), self.text.clone())
    }
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
    }
}
