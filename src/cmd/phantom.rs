//! `lvc phantom`: a synthetic Sunnybrook-layout cine-MRI study set with
//! contours, for tests and demos without the real data.

use clap::Args;
use lvc_data::phantom::{generate, PhantomOptions, CONTOURS_DIR, IMAGES_DIR};
use miette::Report;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    lvc phantom --out phantom\n  \
    lvc phantom --out phantom --cases 3 --seed 7\n  \
    lvc dataset create --images phantom/challenge_training \\\n      \
    --contours 'phantom/Sunnybrook Cardiac MR Database ContoursPart3' --out lv-ds\n\n\
    Cases take the Sunnybrook ids in SAX-map order: the first 15 are the training part;\n\
    more continue with validation/online ids, all in challenge_training and ContoursPart3.")]
pub struct PhantomArgs {
    /// Output folder (created; existing phantom files are overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Number of patients (1..=45).
    #[arg(long, default_value_t = 15)]
    cases: usize,
    /// Seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 2009)]
    seed: u64,
}

pub fn run(args: PhantomArgs) -> u8 {
    let start = Instant::now();
    match generate(&args.out, &PhantomOptions { cases: args.cases, seed: args.seed }) {
        Ok(summary) => {
            outln!(
                "wrote {} case(s) to {} in {:.2} s: {} DICOM files in {IMAGES_DIR}/, {} i-contours and {} o-contours in '{CONTOURS_DIR}/'",
                summary.cases.len(),
                args.out.display(),
                start.elapsed().as_secs_f64(),
                summary.dicom_files,
                summary.icontour_files,
                summary.ocontour_files,
            );
            0
        }
        Err(e) => {
            errln!("{:?}", Report::new(e));
            1
        }
    }
}
