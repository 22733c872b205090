//! `lvc set-classes N FILE`: change a segmentation net's class count in place,
//! editing only the coupled values so comments and formatting stay.

use std::path::PathBuf;

use lvc_compiler::classes::{check_class_count, errors_after_change, plan_class_change};
use lvc_compiler::SourceFile;

use super::netargs::render;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc set-classes 3 models/fcn8s.prototxt            # background, LV blood pool, myocardium
  lvc set-classes 2 --dry-run models/fcn_alexnet.prototxt

Changes `num_output` of every layer that produces class scores (found by following the
score bottom of SoftmaxWithLoss/Softmax/Accuracy/Dice/DiceLoss/ArgMax back through Crop,
Eltwise and per-class Deconvolutions) and `group` of the per-class (bilinear)
Deconvolutions, in every stage and phase of the file. The file is replaced atomically, and only
when the changed net still checks: a count outside 1..=2147483647 (a channel of a Caffe blob) or
one that makes a score blob too large is refused with exit status 2 and the file left as it was.")]
pub struct SetClassesArgs {
    /// Number of classes, background included (1 to 2147483647).
    #[arg(value_name = "N", allow_negative_numbers = true)]
    pub classes: i64,
    /// Net prototxt file, rewritten in place.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Show what would change without writing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: SetClassesArgs) -> u8 {
    // A count no net can have is a bad argument: refused before the file is
    // read, as clap refuses a malformed one.
    if let Err(d) = check_class_count(args.classes) {
        err!("{}", render(&d, &SourceFile::new(&args.file, "")));
        return 2;
    }
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
    // Never write a file `lvc check` would reject: the count may fit
    // num_output and still make a score blob larger than Caffe allows.
    let (edited, errors) = errors_after_change(&source, &change);
    if !errors.is_empty() {
        for d in errors.iter() {
            err!("{}", render(d, &edited));
        }
        errln!(
            "error[lvc::classes::count]: with {} classes {} would have the errors above; nothing was written",
            args.classes,
            args.file.display()
        );
        return 2;
    }
    for edit in &change.edits {
        let (line, _) = source.line_col(edit.span.start);
        outln!("{}:{line}: {}", args.file.display(), edit.description);
    }
    if args.dry_run {
        return 0;
    }
    match lvc_fsio::write_atomic(&args.file, edited.text.as_bytes()) {
        Ok(()) => 0,
        Err(e) => {
            errln!("error[lvc::io::write]: cannot write {}: {e}", args.file.display());
            2
        }
    }
}
