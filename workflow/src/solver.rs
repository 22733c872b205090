//! Reading a solver prototxt for the workflow.

use std::path::Path;

use lvc_compiler::schema::solver::SolverDef;
use lvc_compiler::schema::{load_solver, LoadOptions};
use lvc_compiler::SourceFile;

use crate::diagnostics::render;
use crate::failure::{fail, Failed};

/// Reads and checks a solver prototxt, printing its diagnostics.
pub fn read_solver(path: &Path) -> Result<(SourceFile, SolverDef), Failed> {
    let source = SourceFile::read(path)
        .map_err(|e| fail(2, format!("cannot read {}: {e}", path.display())))?;
    let (def, diags) = load_solver(&source, &LoadOptions::default());
    diags.iter().for_each(|d| err!("{}", render(d, &source)));
    match def.filter(|_| !diags.has_errors()) {
        Some(def) => Ok((source, def)),
        None => Err(fail(
            2,
            format!("{} is not a usable solver (see the errors above)", path.display()),
        )),
    }
}
