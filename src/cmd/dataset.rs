//! `lvc dataset create|inspect|export`: Sunnybrook tree → dataset folder,
//! what is in it, and a PNG copy to look at.

use clap::{Args, Subcommand, ValueEnum};
use lvc_data::export::export_pngs;
use lvc_data::store::{write_dataset, Dataset, Manifest};
use lvc_data::sunnybrook::import::{
    import, Channels, ContoursKind, DicomLoader, ImportOptions, SplitKind,
};
use miette::Report;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct DatasetArgs {
    #[command(subcommand)]
    command: DatasetCommand,
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Import a Sunnybrook image + contour tree into a dataset folder.
    #[command(after_help = "Examples:\n  \
        lvc dataset create --images challenge_training \\\n      \
        --contours 'Sunnybrook Cardiac MR Database ContoursPart3' --out lv-ds\n  \
        lvc dataset create --images imgs --contours ctrs --out lv-rgb --channels RGB --split image --seed 1234\n  \
        lvc dataset create --images imgs --contours ctrs --out lv-io --contours-kind io --skip-bad --force")]
    Create(CreateArgs),
    /// Show shapes, counts, cases and class balance per split.
    #[command(
        after_help = "Examples:\n  lvc dataset inspect lv-ds\n  lvc dataset inspect lv-ds --format json"
    )]
    Inspect(InspectArgs),
    /// Write the dataset as PNG pairs: OUTDIR/{train,val}/<case>/IM-<NNNN>.png and IM-<NNNN>_label.png.
    #[command(after_help = "Examples:\n  lvc dataset export lv-ds lv-png")]
    Export(ExportArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum ChannelsArg {
    #[value(name = "L")]
    L,
    #[value(name = "RGB")]
    Rgb,
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    I,
    Io,
}

#[derive(Clone, Copy, ValueEnum)]
enum SplitArg {
    Patient,
    Image,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Human,
    Json,
}

#[derive(Args)]
struct CreateArgs {
    /// Image folder with one folder of IM-<series>-<image>.dcm files per case (e.g. challenge_training).
    #[arg(long)]
    images: PathBuf,
    /// Contour folder, searched recursively for IM-0001-<NNNN>-icontour-manual.txt.
    #[arg(long)]
    contours: PathBuf,
    /// Dataset folder to create.
    #[arg(long)]
    out: PathBuf,
    /// File of `CASE SERIES` lines overriding the built-in SAX series map.
    #[arg(long)]
    sax_map: Option<PathBuf>,
    /// L: one channel (1,H,W); RGB: the plane copied into 3 channels.
    #[arg(long, value_enum, default_value = "L")]
    channels: ChannelsArg,
    /// i: label 1 = LV blood pool; io: also label 2 = myocardium (slices without an o-contour are skipped).
    #[arg(long, value_enum, default_value = "i")]
    contours_kind: KindArg,
    /// Percent of the images for validation.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100))]
    val_pct: u32,
    /// patient: whole cases go to val; image: DIGITS' per-image shuffle (slices of one patient in both splits).
    #[arg(long, value_enum, default_value = "patient")]
    split: SplitArg,
    /// Seed of the split shuffle.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Import what is good and list the bad files (in the manifest too) instead of failing.
    #[arg(long)]
    skip_bad: bool,
    /// Clip contours that leave the image at the border (as cv2.fillPoly would) instead of rejecting them.
    #[arg(long)]
    allow_outside: bool,
    /// Replace an existing dataset at --out (atomically).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct InspectArgs {
    /// Dataset folder.
    dataset: PathBuf,
    #[arg(long, value_enum, default_value = "human")]
    format: FormatArg,
}

#[derive(Args)]
struct ExportArgs {
    /// Dataset folder.
    dataset: PathBuf,
    /// Folder to create.
    outdir: PathBuf,
    /// Replace an earlier export at OUTDIR (atomically).
    #[arg(long)]
    force: bool,
}

pub fn run(args: DatasetArgs) -> u8 {
    match args.command {
        DatasetCommand::Create(a) => create(a),
        DatasetCommand::Inspect(a) => {
            super::dataset_inspect::inspect(&a.dataset, matches!(a.format, FormatArg::Json))
        }
        DatasetCommand::Export(a) => export(a),
    }
}

fn fail(err: impl miette::Diagnostic + Send + Sync + 'static) -> u8 {
    errln!("{:?}", Report::new(err));
    1
}

fn create(a: CreateArgs) -> u8 {
    let opts = ImportOptions {
        images: a.images,
        contours: a.contours,
        sax_map: a.sax_map,
        channels: match a.channels {
            ChannelsArg::L => Channels::L,
            ChannelsArg::Rgb => Channels::RGB,
        },
        kind: match a.contours_kind {
            KindArg::I => ContoursKind::I,
            KindArg::Io => ContoursKind::Io,
        },
        val_pct: a.val_pct,
        split: match a.split {
            SplitArg::Patient => SplitKind::Patient,
            SplitArg::Image => SplitKind::Image,
        },
        seed: a.seed,
        skip_bad: a.skip_bad,
        allow_outside: a.allow_outside,
    };
    let started = Instant::now();
    let imported = match import(&opts, &DicomLoader) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let imported_after = started.elapsed().as_secs_f64();
    for w in &imported.warnings {
        errln!("warning: {w}");
    }
    for n in &imported.notes {
        errln!("note: {n}");
    }
    for p in &imported.problems {
        errln!("skipped: {p}");
    }
    let manifest = match write_dataset(&a.out, &imported, a.force) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let seconds = started.elapsed().as_secs_f64();
    let total = imported.slices.len();
    outln!(
        "wrote {}: {total} images {:?} ({}), {} skipped, {:.2} s (read+rasterise {:.2} s, write {:.2} s; {:.0} images/s)",
        a.out.display(),
        manifest.image_shape,
        split_line(&manifest),
        manifest.skipped.len(),
        seconds,
        imported_after,
        seconds - imported_after,
        total as f64 / seconds.max(1e-9)
    );
    0
}

fn split_line(m: &Manifest) -> String {
    m.splits
        .iter()
        .map(|(split, s)| format!("{} {} from {} case(s)", split.name(), s.count, s.cases.len()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn export(a: ExportArgs) -> u8 {
    let ds = match Dataset::open(&a.dataset) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    match export_pngs(&ds, &a.outdir, a.force) {
        Ok(summary) => {
            let shift = if summary.shift > 0.0 {
                format!(" (values shifted by +{}, see README.txt)", summary.shift)
            } else {
                String::new()
            };
            outln!("wrote {} image/label pairs to {}{shift}", summary.pairs, a.outdir.display());
            0
        }
        Err(e) => fail(e),
    }
}
