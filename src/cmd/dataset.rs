//! `lvc dataset create|inspect|export`: Sunnybrook tree → dataset folder,
//! what is in it, and a PNG copy to look at.

use clap::{Args, Subcommand, ValueEnum};
use lvc_data::export::export_pngs;
use lvc_data::store::{write_dataset, Dataset, Manifest};
use lvc_data::sunnybrook::import::{
    import, Channels, ContoursKind, DicomLoader, ImportOptions, Split, SplitKind,
};
use miette::Report;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Below this foreground fraction inspect warns that pixel accuracy says
/// nothing (the LV is < 2% of a Sunnybrook slice).
const LOW_FOREGROUND: f64 = 0.05;

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
        DatasetCommand::Inspect(a) => inspect(a),
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

/// What `inspect --format json` prints (the manifest minus the per-record
/// list).
#[derive(Serialize)]
struct Inspection<'a> {
    dataset: String,
    format_version: u32,
    created_by: &'a str,
    source: &'a lvc_data::store::SourceInfo,
    channels: Channels,
    image_shape: [usize; 3],
    image_dtype: &'a str,
    label_shape: [usize; 3],
    classes: &'a [String],
    split: &'a lvc_data::store::SplitRule,
    splits: &'a std::collections::BTreeMap<Split, lvc_data::store::SplitSummary>,
    skipped: usize,
    warnings: Vec<String>,
}

fn low_foreground_warnings(m: &Manifest) -> Vec<String> {
    let mut warnings = Vec::new();
    for (split, s) in &m.splits {
        if s.count == 0 {
            continue;
        }
        let foreground: f64 = s.class_fraction.iter().skip(1).sum();
        if foreground < LOW_FOREGROUND {
            warnings.push(format!(
                "{}: foreground is {:.2}% of the pixels (< {:.0}%): pixel accuracy is meaningless here, judge models by Dice",
                split.name(),
                foreground * 100.0,
                LOW_FOREGROUND * 100.0
            ));
        }
    }
    warnings
}

fn inspect(a: InspectArgs) -> u8 {
    let ds = match Dataset::open(&a.dataset) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let m = &ds.manifest;
    let warnings = low_foreground_warnings(m);
    match a.format {
        FormatArg::Json => {
            let [_, h, w] = m.image_shape;
            let view = Inspection {
                dataset: a.dataset.display().to_string(),
                format_version: m.format_version,
                created_by: &m.created_by,
                source: &m.source,
                channels: m.channels,
                image_shape: m.image_shape,
                image_dtype: &m.image_dtype,
                label_shape: [1, h, w],
                classes: &m.classes,
                split: &m.split,
                splits: &m.splits,
                skipped: m.skipped.len(),
                warnings,
            };
            match serde_json::to_string_pretty(&view) {
                Ok(s) => outln!("{s}"),
                Err(e) => {
                    errln!("error: cannot encode JSON: {e}");
                    return 1;
                }
            }
        }
        FormatArg::Human => {
            out!("{}", human_inspection(&a.dataset.display().to_string(), m, &warnings))
        }
    }
    0
}

fn human_inspection(name: &str, m: &Manifest, warnings: &[String]) -> String {
    use std::fmt::Write;
    let [c, h, w] = m.image_shape;
    let mut out = String::new();
    let _ =
        writeln!(out, "dataset   {name} ({} v{}, {})", m.format, m.format_version, m.created_by);
    let _ = writeln!(
        out,
        "images    {c}x{h}x{w} {}, channels {:?}; labels 1x{h}x{w} {}",
        m.image_dtype, m.channels, m.label_dtype
    );
    let classes: Vec<String> =
        m.classes.iter().enumerate().map(|(i, n)| format!("{i} {n}")).collect();
    let _ = writeln!(out, "classes   {}", classes.join(", "));
    let lower = |debug: String| debug.to_lowercase();
    let _ = writeln!(
        out,
        "contours  {}, from {}",
        lower(format!("{:?}", m.source.contours_kind)),
        m.source.contours
    );
    let _ = writeln!(
        out,
        "split     by {}, {}% val, seed {}",
        lower(format!("{:?}", m.split.kind)),
        m.split.val_pct,
        m.split.seed
    );
    let _ = writeln!(out);
    let mut header = format!("{:<6} {:>7} {:>6}", "split", "images", "cases");
    for class in &m.classes {
        let _ = write!(header, " {:>15}", class);
    }
    let _ = writeln!(out, "{header}");
    for (split, s) in &m.splits {
        let mut row = format!("{:<6} {:>7} {:>6}", split.name(), s.count, s.cases.len());
        for f in &s.class_fraction {
            let _ = write!(row, " {:>14.3}%", f * 100.0);
        }
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out);
    for (split, s) in &m.splits {
        let _ = writeln!(
            out,
            "{} cases: {}",
            split.name(),
            if s.cases.is_empty() { "-".to_string() } else { s.cases.join(" ") }
        );
    }
    if !m.skipped.is_empty() {
        let _ = writeln!(
            out,
            "skipped   {} file(s) at import (listed in manifest.json)",
            m.skipped.len()
        );
    }
    for warning in m.warnings.iter().chain(warnings) {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
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
