//! Compiler diagnostics rendered for people (the nets and solvers the
//! workflow reads print theirs on stderr before it gives up on them).

use std::io::IsTerminal;

use lvc_compiler::{Diagnostic, SourceFile};

/// miette's graphical rendering of one diagnostic; plain (no colours) when
/// stdout is not a terminal, so that files and tests get stable text.
pub fn render(diag: &Diagnostic, source: &SourceFile) -> String {
    let theme = if std::io::stdout().is_terminal() {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler =
        miette::GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let mut out = String::new();
    let rendered = diag.render(source);
    if handler.render_report(&mut out, &rendered).is_err() {
        // Rendering only fails on a formatter error; fall back to one line.
        out = format!("{}: {}\n", diag.code, diag.message);
    }
    out
}
