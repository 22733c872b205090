//! `RUN/curves.png`: loss (train and val) and Dice (val, and train when the
//! run has it, with val pixel accuracy) per epoch, in two panels.
//!
//! Drawn with plotters' bitmap backend into a buffer and encoded with the
//! `image` crate. Text goes through ab_glyph with DejaVu Sans embedded in the
//! binary, so the picture is the same on a machine without fonts.

use std::path::Path;
use std::sync::OnceLock;

use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use lvc_workflow::run_folder::{present, EpochRecord, Metrics};

use super::{read_metrics, write_file, ReportError};

pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 600;

/// The family name plotters looks our embedded font up by.
const FONT_FAMILY: &str = "lvc-sans";
static FONT_BYTES: &[u8] = include_bytes!("DejaVuSans.ttf");

/// Registers the embedded font once; the error says why it cannot be used.
fn font_ready() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES)
                .map_err(|_| "the embedded DejaVu Sans font does not parse".to_string())
        })
        .clone()
}

/// Colours that stay apart for colour-blind readers (Okabe–Ito).
const TRAIN: RGBColor = RGBColor(0, 114, 178);
const VAL: RGBColor = RGBColor(213, 94, 0);
const ACCURACY: RGBColor = RGBColor(0, 158, 115);

/// One line of a panel.
struct Series {
    name: &'static str,
    colour: RGBColor,
    points: Vec<(f64, f64)>,
}

impl Series {
    fn of(
        name: &'static str,
        colour: RGBColor,
        history: &[EpochRecord],
        value: fn(&EpochRecord) -> Option<f64>,
    ) -> Series {
        let points = history
            .iter()
            .filter_map(|e| value(e).filter(|v| v.is_finite()).map(|v| (f64::from(e.epoch), v)))
            .collect();
        Series { name, colour, points }
    }
}

/// Reads `metrics_json` and writes the curves PNG to `out_png` (atomically).
pub fn write_curves(metrics_json: &Path, out_png: &Path) -> Result<(), ReportError> {
    let metrics = read_metrics(metrics_json)?;
    if metrics.history.is_empty() {
        return Err(ReportError::NoEpochs { path: metrics_json.to_path_buf() });
    }
    write_file(out_png, &render_curves(&metrics, out_png)?)
}

/// The curves as PNG bytes (`target` only names the picture in errors).
pub fn render_curves(metrics: &Metrics, target: &Path) -> Result<Vec<u8>, ReportError> {
    let draw_error = |reason: String| ReportError::Draw { path: target.to_path_buf(), reason };
    font_ready().map_err(draw_error)?;
    let history = &metrics.history;
    let losses = [
        Series::of("train loss", TRAIN, history, |e| present(e.train_loss)),
        Series::of("val loss", VAL, history, |e| present(e.val_loss)),
    ];
    let scores = [
        Series::of("train Dice", TRAIN, history, |e| e.train_dice),
        Series::of("val Dice", VAL, history, |e| present(e.val_dice)),
        Series::of("val pixel accuracy", ACCURACY, history, |e| present(e.val_accuracy)),
    ];
    let first = history.iter().map(|e| e.epoch).min().unwrap_or(0);
    let last = history.iter().map(|e| e.epoch).max().unwrap_or(0);
    let epochs = epoch_range(first, last);
    let mut pixels = vec![255u8; WIDTH as usize * HEIGHT as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(e.to_string()))?;
        let (left, right) = root.split_horizontally(WIDTH / 2);
        let loss_top =
            losses.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0f64, f64::max);
        let loss_bottom =
            losses.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0f64, f64::min);
        let loss_range =
            loss_bottom..if loss_top > loss_bottom { loss_top * 1.08 } else { loss_bottom + 1.0 };
        panel(&left, "Loss per epoch", "loss", epochs.clone(), loss_range, &losses)
            .map_err(draw_error)?;
        panel(&right, "Dice and pixel accuracy per epoch", "score", epochs, 0.0..1.0, &scores)
            .map_err(draw_error)?;
        root.present().map_err(|e| draw_error(e.to_string()))?;
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&pixels, WIDTH, HEIGHT, image::ExtendedColorType::Rgb8)
        .map_err(|e| draw_error(e.to_string()))?;
    Ok(png)
}

/// The x axis: the epochs with half an epoch of margin (one epoch still gets
/// a readable axis).
fn epoch_range(first: u32, last: u32) -> std::ops::Range<f64> {
    (f64::from(first) - 0.5)..(f64::from(last.max(first)) + 0.5)
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    y_label: &str,
    epochs: std::ops::Range<f64>,
    values: std::ops::Range<f64>,
    series: &[Series],
) -> Result<(), String> {
    let text = |size: f64| (FONT_FAMILY, size).into_font();
    let mut chart = ChartBuilder::on(area)
        .caption(title, text(24.0))
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(epochs.clone(), values)
        .map_err(|e| e.to_string())?;
    // Whole epochs only: at most ~10 labels.
    let span = (epochs.end - epochs.start).ceil().max(1.0) as usize;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_label)
        .x_labels(span.min(10) + 1)
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-9 {
                format!("{}", x.round())
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.2}"))
        .label_style(text(16.0))
        .axis_desc_style(text(18.0))
        .light_line_style(RGBColor(238, 238, 238))
        .max_light_lines(2)
        .draw()
        .map_err(|e| e.to_string())?;
    for s in series.iter().filter(|s| !s.points.is_empty()) {
        let colour = s.colour;
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), colour.stroke_width(3)))
            .map_err(|e| e.to_string())?
            .label(s.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3))
            });
        chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .label_font(text(16.0))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .position(SeriesLabelPosition::MiddleRight)
        .draw()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing;

    fn render(epochs: u32) -> image::RgbImage {
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("metrics.json");
        std::fs::write(&metrics, testing::metrics_json(epochs)).unwrap();
        let out = dir.path().join("curves.png");
        write_curves(&metrics, &out).unwrap();
        image::open(&out).unwrap().to_rgb8()
    }

    fn count(picture: &image::RgbImage, colour: RGBColor) -> usize {
        picture.pixels().filter(|p| p.0 == [colour.0, colour.1, colour.2]).count()
    }

    #[test]
    fn both_panels_carry_their_lines_and_text() {
        let picture = render(8);
        assert_eq!(picture.dimensions(), (WIDTH, HEIGHT));
        let half =
            |x0: u32| image::imageops::crop_imm(&picture, x0, 0, WIDTH / 2, HEIGHT).to_image();
        let (left, right) = (half(0), half(WIDTH / 2));
        // Train and val loss on the left; val Dice and accuracy on the right.
        for (panel, colour, name) in [
            (&left, TRAIN, "train loss"),
            (&left, VAL, "val loss"),
            (&right, VAL, "val Dice"),
            (&right, ACCURACY, "accuracy"),
        ] {
            assert!(count(panel, colour) > 300, "{name}: {} pixels", count(panel, colour));
        }
        assert_eq!(count(&right, TRAIN), 0, "no train Dice in this run");
        // Text: dark anti-aliased pixels well beyond the axes' lines.
        let dark = picture.pixels().filter(|p| p.0.iter().all(|&c| c < 100)).count();
        assert!(dark > 5000, "{dark} dark pixels: labels and titles missing?");
    }

    #[test]
    fn one_epoch_and_gaps_still_draw() {
        let picture = render(1);
        assert!(count(&picture, VAL) > 20, "the single epoch shows as points");
        let metrics = Metrics {
            history: vec![
                EpochRecord {
                    epoch: 1,
                    train_loss: f64::NAN,
                    val_dice: 0.4,
                    ..EpochRecord::default()
                },
                EpochRecord {
                    epoch: 2,
                    train_loss: 0.5,
                    train_dice: Some(0.6),
                    ..EpochRecord::default()
                },
            ],
            ..Metrics::default()
        };
        let png = render_curves(&metrics, Path::new("curves.png")).unwrap();
        let picture = image::load_from_memory(&png).unwrap().to_rgb8();
        let right = image::imageops::crop_imm(&picture, WIDTH / 2, 0, WIDTH / 2, HEIGHT).to_image();
        assert!(count(&right, TRAIN) > 20, "train Dice is drawn when present");
    }

    #[test]
    fn metrics_without_epochs_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("metrics.json");
        std::fs::write(&metrics, r#"{"history": []}"#).unwrap();
        let err = write_curves(&metrics, &dir.path().join("curves.png")).unwrap_err();
        assert!(matches!(err, ReportError::NoEpochs { .. }), "{err}");
        assert!(!dir.path().join("curves.png").exists());
    }
}
