//! `lvc set-classes N FILE`: change a segmentation net's class count in place,
//! editing only the coupled values so comments and formatting stay.

use std::path::PathBuf;

use lvc_compiler::classes::{apply_edits, plan_class_change};
use lvc_compiler::SourceFile;

use super::netargs::render;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc set-classes 3 models/fcn8s.prototxt            # background, LV blood pool, myocardium
  lvc set-classes 2 --dry-run models/fcn_alexnet.prototxt

Changes `num_output` of every layer that produces class scores (found by following the
score bottom of SoftmaxWithLoss/Softmax/Accuracy/Dice/DiceLoss/ArgMax back through Crop,
Eltwise and per-class Deconvolutions) and `group` of the per-class (bilinear)
Deconvolutions, in every stage and phase of the file. The file is replaced atomically.")]
pub struct SetClassesArgs {
    /// Number of classes, background included.
    #[arg(value_name = "N")]
    pub classes: i64,
    /// Net prototxt file, rewritten in place.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Show what would change without writing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: SetClassesArgs) -> u8 {
    let source = match SourceFile::read(&args.file) {
        Ok(s) => s,
        Err(e) => {
            errln!("error[lvc::io::read]: cannot read {}: {e}", args.file.display());
            return 2;
        }
    };
    let change = plan_class_change(&source, args.classes);
    for d in change.diags.iter() {
        err!("{}", render(d, &source));
    }
    if change.diags.has_errors() {
        return 1;
    }
    if change.edits.is_empty() {
        outln!("{}: already {} classes, nothing to change", args.file.display(), args.classes);
        return 0;
    }
    for edit in &change.edits {
        let (line, _) = source.line_col(edit.span.start);
        outln!("{}:{line}: {}", args.file.display(), edit.description);
    }
    if args.dry_run {
        return 0;
    }
    match lvc_fsio::write_atomic(&args.file, apply_edits(&source.text, &change.edits).as_bytes()) {
        Ok(()) => 0,
        Err(e) => {
            errln!("error[lvc::io::write]: cannot write {}: {e}", args.file.display());
            2
        }
    }
}
