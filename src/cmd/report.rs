//! `lvc report --run RUN`: (re)writes RUN/curves.png and RUN/report.html
//! from what the run folder holds.

use std::path::PathBuf;

use crate::report::write_run_report;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc report --run runs/demo
  lvc report --run runs/demo --evaluation runs/demo/evaluation.json --overlays runs/demo/overlays

Reads RUN/metrics.json (required; written by `lvc train --dataset DS --out RUN`), RUN/run.json,
the evaluation JSON of `lvc evaluate --out` and the overlays of `lvc infer --all-val --out`.
Writes RUN/curves.png (loss and Dice per epoch, 1200×600) and RUN/report.html (one self-contained
page: run summary, curves, per-patient Dice, best and worst validation overlays). Parts without
data are named on the page and on stderr.

Exit status: 0 written, 2 metrics.json (or a present side file) could not be read or another lvc
process writes into the run, 1 writing failed.")]
pub struct ReportArgs {
    /// Run folder written by `lvc train --dataset … --out RUN`.
    #[arg(long, value_name = "RUN")]
    pub run: PathBuf,
    /// Evaluation JSON (default: RUN/evaluation.json).
    #[arg(long, value_name = "FILE.json")]
    pub evaluation: Option<PathBuf>,
    /// Folder of `lvc infer --all-val` outputs (default: RUN/overlays).
    #[arg(long, value_name = "DIR")]
    pub overlays: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> u8 {
    // report.html and curves.png go into the run: one writer at a time
    // (lvc_workflow::run_lock). A folder with neither record is no run; the report's
    // own error says so, without a lock file left in it.
    let is_run = [crate::report::RUN_JSON, crate::report::METRICS_JSON]
        .iter()
        .any(|f| args.run.join(f).is_file());
    let _lock = match is_run.then(|| lvc_workflow::run_lock::lock_run(&args.run)).transpose() {
        Ok(lock) => lock,
        Err(message) => {
            errln!("error: {message}");
            return 2;
        }
    };
    match write_run_report(&args.run, args.evaluation.as_deref(), args.overlays.as_deref()) {
        Ok(written) => {
            for part in &written.missing {
                errln!("warning: no {part}");
            }
            if let Some(curves) = &written.curves {
                outln!("{}", curves.display());
            }
            outln!("{}", written.report.display());
            0
        }
        Err(err) => {
            let code = match err {
                crate::report::ReportError::Write { .. }
                | crate::report::ReportError::Draw { .. } => 1,
                _ => 2,
            };
            errln!("{:?}", miette::Report::new(err));
            code
        }
    }
}
