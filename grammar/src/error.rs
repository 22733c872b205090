//! Parse errors: one kind per way a prototxt can be malformed, each with a
//! stable code, labelled byte spans and a help line.
//!
//! A [`ParseError`] does not own the source text: whoever renders it attaches
//! the source (the compiler's `SourceFile`, or a `miette::NamedSource`).

use std::fmt;

use crate::tree::Span;

/// What went wrong, coarsely; each kind has a stable diagnostic code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseErrorKind {
    /// An unexpected token.
    Syntax,
    /// A `{`, `<` or `[` that is never closed.
    Unclosed,
    /// A `}`, `>` or `]` that closes nothing, or the wrong kind of block.
    Unmatched,
    /// An unterminated string or a bad escape sequence.
    String,
    /// A malformed or out-of-range number.
    Number,
    /// Blocks nested deeper than [`crate::MAX_DEPTH`].
    Depth,
}

impl ParseErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            ParseErrorKind::Syntax => "lvc::parse::syntax",
            ParseErrorKind::Unclosed => "lvc::parse::unclosed",
            ParseErrorKind::Unmatched => "lvc::parse::unmatched",
            ParseErrorKind::String => "lvc::parse::string",
            ParseErrorKind::Number => "lvc::parse::number",
            ParseErrorKind::Depth => "lvc::parse::depth",
        }
    }
}

/// A span with the text to show next to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLabel {
    pub span: Span,
    pub text: String,
}

/// A prototxt that is not valid protobuf text format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    kind: ParseErrorKind,
    message: String,
    /// Never empty; the first label is the primary one.
    labels: Vec<ParseLabel>,
    help: String,
}

impl ParseError {
    pub(crate) fn new(
        kind: ParseErrorKind,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        ParseError {
            kind,
            message: message.into(),
            labels: vec![ParseLabel { span, text: label.into() }],
            help: help.into(),
        }
    }

    pub(crate) fn with_label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(ParseLabel { span, text: text.into() });
        self
    }

    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }
    /// Stable code, e.g. `lvc::parse::syntax`.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
    /// One line saying what is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The span of the offending token (the primary label).
    pub fn span(&self) -> Span {
        self.labels[0].span
    }
    /// All labels, primary first.
    pub fn labels(&self) -> &[ParseLabel] {
        &self.labels
    }
    /// What to do about it.
    pub fn help(&self) -> &str {
        &self.help
    }
}

impl miette::Diagnostic for ParseError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code()))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.help))
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().enumerate().map(|(i, label)| {
            let text = (!label.text.is_empty()).then(|| label.text.clone());
            if i == 0 {
                miette::LabeledSpan::new_primary_with_span(text, label.span)
            } else {
                miette::LabeledSpan::new_with_span(text, label.span)
            }
        })))
    }
}
