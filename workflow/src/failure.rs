//! The error type of the workflow: a failure already reported on stderr,
//! with the exit code the command line ends with (1: running failed, 2: an
//! input could not be read or does not fit).

/// A failure already reported to stderr, with its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed(pub u8);

/// Reports `message` as `error: …` and fails with `code`.
pub fn fail(code: u8, message: impl std::fmt::Display) -> Failed {
    errln!("error: {message}");
    Failed(code)
}

/// Reports a diagnostic (miette's rendering) and fails with `code`.
pub fn report(code: u8, err: impl miette::Diagnostic + Send + Sync + 'static) -> Failed {
    errln!("{:?}", miette::Report::new(err));
    Failed(code)
}
