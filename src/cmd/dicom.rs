//! `lvc dicom info|export`: what a DICOM file holds, and its stored pixel
//! values as .npy or PNG.

use clap::{Args, Subcommand, ValueEnum};
use lvc_data::dicom::export::{export_image, ExportFormat};
use lvc_data::dicom::{read_image, read_info, DicomInfo};
use miette::Report;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Args)]
pub struct DicomArgs {
    #[command(subcommand)]
    command: DicomCommand,
}

#[derive(Subcommand)]
enum DicomCommand {
    /// Print the header: size, pixel format, transfer syntax, geometry, series/instance.
    #[command(after_help = "Examples:\n  \
        lvc dicom info challenge_training/SC-HF-I-1/IM-0004-0001.dcm\n  \
        lvc dicom info IM-0004-0001.dcm --format json")]
    Info(InfoArgs),
    /// Decode the first frame and write its stored values exactly (.npy or 16-bit PNG).
    #[command(after_help = "Examples:\n  \
        lvc dicom export IM-0004-0001.dcm slice.npy   # <u2/<i2/|u1, shape (rows, cols)\n  \
        lvc dicom export IM-0004-0001.dcm slice.png   # 16-bit grayscale, raw values (looks dark)")]
    Export(ExportArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Human,
    Json,
}

#[derive(Args)]
struct InfoArgs {
    /// The DICOM file.
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: FormatArg,
}

#[derive(Args)]
struct ExportArgs {
    /// The DICOM file.
    file: PathBuf,
    /// Output file; the extension (.npy or .png) picks the format.
    out: PathBuf,
}

pub fn run(args: DicomArgs) -> u8 {
    match args.command {
        DicomCommand::Info(a) => info(a),
        DicomCommand::Export(a) => export(a),
    }
}

fn fail(err: impl miette::Diagnostic + Send + Sync + 'static) -> u8 {
    errln!("{:?}", Report::new(err));
    1
}

fn info(a: InfoArgs) -> u8 {
    let info = match read_info(&a.file) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    match a.format {
        FormatArg::Json => match serde_json::to_string_pretty(&info) {
            Ok(text) => outln!("{text}"),
            Err(e) => {
                errln!("error: cannot serialise the header of {}: {e}", a.file.display());
                return 1;
            }
        },
        FormatArg::Human => out!("{}", human(&info)),
    }
    0
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

fn list(v: &[f64]) -> String {
    v.iter().map(f64::to_string).collect::<Vec<_>>().join(" \\ ")
}

fn human(i: &DicomInfo) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "{key:<20} {value}");
    };
    line("size", format!("{} x {} (rows x columns), {} frame(s)", i.rows, i.columns, i.frames));
    line(
        "pixels",
        format!(
            "{} sample(s), {} bits allocated, {} stored, high bit {}, {}",
            i.samples_per_pixel,
            i.bits_allocated,
            i.bits_stored,
            i.high_bit,
            if i.signed { "signed" } else { "unsigned" }
        ),
    );
    line("photometric", i.photometric.clone());
    line("transfer syntax", format!("{} ({})", i.transfer_syntax_name, i.transfer_syntax_uid));
    line("modality", opt(&i.modality));
    line("sop class", opt(&i.sop_class_uid));
    line("patient id", opt(&i.patient_id));
    line(
        "series",
        format!("{} {}", opt(&i.series_number), i.series_description.as_deref().unwrap_or(""))
            .trim_end()
            .to_string(),
    );
    line("instance", opt(&i.instance_number));
    line("pixel spacing (mm)", i.pixel_spacing.map_or("-".into(), |p| list(&p)));
    line("slice thickness", opt(&i.slice_thickness));
    line("slice location", opt(&i.slice_location));
    line("position (mm)", i.image_position_patient.map_or("-".into(), |p| list(&p)));
    line("orientation", i.image_orientation_patient.map_or("-".into(), |p| list(&p)));
    line("trigger time (ms)", opt(&i.trigger_time));
    line(
        "rescale",
        format!("slope {} intercept {}", opt(&i.rescale_slope), opt(&i.rescale_intercept)),
    );
    line("window", format!("center {} width {}", opt(&i.window_center), opt(&i.window_width)));
    out
}

fn export(a: ExportArgs) -> u8 {
    let image = match read_image(&a.file) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    match export_image(&image, &a.out) {
        Ok(format) => {
            let what = match format {
                ExportFormat::Npy(descr) => format!("npy {descr}"),
                ExportFormat::Png(depth) => format!("{depth}-bit PNG"),
            };
            outln!(
                "wrote {} ({what}, {} x {}, stored values)",
                a.out.display(),
                image.info.rows,
                image.info.columns
            );
            0
        }
        Err(e) => fail(e),
    }
}
