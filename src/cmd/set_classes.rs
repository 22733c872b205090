//! `lvc set-classes N FILE`: change a segmentation net's class count in place,
//! editing only the coupled values so comments and formatting stay.

use std::path::{Path, PathBuf};

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
            eprintln!("error[lvc::io::read]: cannot read {}: {e}", args.file.display());
            return 2;
        }
    };
    let change = plan_class_change(&source, args.classes);
    for d in change.diags.iter() {
        eprint!("{}", render(d, &source));
    }
    if change.diags.has_errors() {
        return 1;
    }
    if change.edits.is_empty() {
        println!("{}: already {} classes, nothing to change", args.file.display(), args.classes);
        return 0;
    }
    for edit in &change.edits {
        let (line, _) = source.line_col(edit.span.start);
        println!("{}:{line}: {}", args.file.display(), edit.description);
    }
    if args.dry_run {
        return 0;
    }
    match write_atomically(&args.file, &apply_edits(&source.text, &change.edits)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error[lvc::io::write]: cannot write {}: {e}", args.file.display());
            2
        }
    }
}

/// Writes next to the target and renames, so the file is never half-written.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.lvc-tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(&tmp, meta.permissions())?;
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
