//! `RUN/report.html`: one page that opens anywhere without a network —
//! CSS inline, every picture a base64 `data:` URI.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use lvc_workflow::html::escape;
use lvc_workflow::run_folder::{
    present, Evaluation, InferResult, Metrics, RunConfig, OVERLAY_PNG, RESULT_JSON,
};

use super::{read_bytes, read_json, ReportError, RUN_JSON};

/// One validation overlay: its folder name, Dice and PNG bytes.
#[derive(Debug, Clone)]
pub struct Overlay {
    pub name: String,
    pub source: Option<String>,
    pub dice: f64,
    pub png: Vec<u8>,
}

/// Everything the page shows, gathered from the run folder.
#[derive(Debug)]
pub struct RunPage {
    pub run: PathBuf,
    pub metrics: Metrics,
    /// `run.json`, read leniently (a field it lacks is shown as `—`).
    pub config: Option<RunConfig>,
    pub curves: Option<Vec<u8>>,
    pub evaluation: Option<Evaluation>,
    pub evaluation_path: PathBuf,
    /// Validation overlays with a Dice, best first.
    pub overlays: Vec<Overlay>,
    pub overlays_path: PathBuf,
}

impl RunPage {
    /// Reads run.json, the evaluation and the overlays when they exist; a
    /// file that exists but does not parse is an error naming it.
    pub fn gather(
        run: &Path,
        metrics: Metrics,
        curves: Option<Vec<u8>>,
        evaluation: &Path,
        overlays: &Path,
    ) -> Result<RunPage, ReportError> {
        let config_path = run.join(RUN_JSON);
        let config = config_path
            .is_file()
            .then(|| read_json(&config_path, "run record", "lvc train --dataset DS --out RUN"))
            .transpose()?;
        let evaluation_found = evaluation
            .is_file()
            .then(|| read_json(evaluation, "evaluation", "lvc evaluate --run RUN --out FILE.json"))
            .transpose()?;
        Ok(RunPage {
            run: run.to_path_buf(),
            metrics,
            config,
            curves,
            evaluation: evaluation_found,
            evaluation_path: evaluation.to_path_buf(),
            overlays: read_overlays(overlays)?,
            overlays_path: overlays.to_path_buf(),
        })
    }

    /// The parts with no data, in words (for the command's summary).
    pub fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if self.config.is_none() {
            missing.push(format!("run summary ({} not found)", self.run.join(RUN_JSON).display()));
        }
        if self.curves.is_none() {
            missing.push("curves (no finished epoch)".to_string());
        }
        if self.evaluation.is_none() {
            missing.push(format!("evaluation ({} not found)", self.evaluation_path.display()));
        }
        if self.overlays.is_empty() {
            missing
                .push(format!("overlays (no scored overlay in {})", self.overlays_path.display()));
        }
        missing
    }

    pub fn render(&self) -> String {
        let title = format!(
            "lvc run report: {}",
            self.run.file_name().map_or_else(
                || self.run.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        );
        let mut page = String::new();
        let _ = write!(
            page,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            escape(&title),
            escape(&title)
        );
        self.summary(&mut page);
        self.curves_section(&mut page);
        self.evaluation_section(&mut page);
        self.overlays_section(&mut page);
        page.push_str("<footer>Written by <code>lvc report</code>; images are inlined, the page needs no network.</footer>\n</body>\n</html>\n");
        page
    }

    fn summary(&self, page: &mut String) {
        page.push_str("<section id=\"summary\">\n<h2>Run</h2>\n");
        let mut rows: Vec<(&str, String)> = Vec::new();
        match &self.config {
            Some(config) => {
                let path = |p: &Path| {
                    let text = p.display().to_string();
                    if text.is_empty() {
                        "—".to_string()
                    } else {
                        text
                    }
                };
                let text = |t: &str| if t.is_empty() { "—".to_string() } else { t.to_string() };
                rows.push(("Model", config.model.as_deref().map_or_else(|| "—".to_string(), path)));
                rows.push(("Solver", path(&config.solver)));
                rows.push(("Dataset", path(&config.dataset)));
                rows.push((
                    "Initial weights",
                    config.weights.as_deref().map_or_else(|| "—".to_string(), path),
                ));
                rows.push(("Seed", config.seed.to_string()));
                rows.push(("Batch size", config.batch_size.to_string()));
                rows.push(("Device", text(&config.device)));
                let versions = [
                    (!config.lvc_version.is_empty()).then(|| format!("lvc {}", config.lvc_version)),
                    config.torch.libtorch.as_ref().map(|v| format!("libtorch {v}")),
                ];
                rows.push((
                    "Software",
                    versions.into_iter().flatten().collect::<Vec<_>>().join(", "),
                ));
                let planned = if config.epochs == 0 {
                    String::new()
                } else {
                    format!(" of {}", config.epochs)
                };
                rows.push(("Epochs", format!("{}{planned}", self.metrics.epochs_done)));
                // Settings a resume changed (run.json `changes`; absent in
                // runs that were never resumed with another solver).
                let changes: Vec<String> = config
                    .changes
                    .iter()
                    .map(|c| {
                        format!(
                            "from epoch {}: {} {} → {}",
                            c.epoch,
                            text(&c.field),
                            json_text(&c.from),
                            json_text(&c.to)
                        )
                    })
                    .collect();
                if !changes.is_empty() {
                    rows.push(("Changed on resume", changes.join("; ")));
                }
            }
            None => rows.push(("Epochs", self.metrics.epochs_done.to_string())),
        }
        rows.push((
            "Training time",
            self.metrics.seconds().map_or_else(|| "—".to_string(), duration),
        ));
        rows.push(("Final val Dice", number(present(self.metrics.val_dice))));
        rows.push(("Final val pixel accuracy", number(present(self.metrics.val_accuracy))));
        // Epochs count from 1: best_epoch 0 is a metrics.json without one.
        let best = match (present(self.metrics.best_val_dice), self.metrics.best_epoch) {
            (Some(dice), epoch) if epoch > 0 => format!("{} (epoch {epoch})", number(Some(dice))),
            (dice, _) => number(dice),
        };
        rows.push(("Best val Dice", best));
        page.push_str("<table class=\"summary\">\n");
        for (label, value) in rows {
            let _ =
                writeln!(page, "<tr><th>{}</th><td>{}</td></tr>", escape(label), escape(&value));
        }
        page.push_str("</table>\n");
        if self.config.is_none() {
            let _ = writeln!(
                page,
                "<p class=\"missing\">No run record: {} was not found.</p>",
                escape(&self.run.join(RUN_JSON).display().to_string())
            );
        }
        page.push_str("</section>\n");
    }

    fn curves_section(&self, page: &mut String) {
        page.push_str("<section id=\"curves\">\n<h2>Training curves</h2>\n");
        match &self.curves {
            Some(png) => {
                let _ = writeln!(page, "<img class=\"curves\" alt=\"loss and Dice per epoch\" src=\"{}\">", data_uri(png));
            }
            None => page.push_str("<p class=\"missing\">No finished epoch yet: metrics.json has an empty history.</p>\n"),
        }
        page.push_str("</section>\n");
    }

    fn evaluation_section(&self, page: &mut String) {
        page.push_str("<section id=\"evaluation\">\n<h2>Evaluation per patient</h2>\n");
        let Some(e) = &self.evaluation else {
            let _ = writeln!(
                page,
                "<p class=\"missing\">No evaluation data: {} was not found. Run <code>lvc evaluate --run RUN --out RUN/evaluation.json</code>, then <code>lvc report --run RUN</code>.</p>\n</section>",
                escape(&self.evaluation_path.display().to_string())
            );
            return;
        };
        let known = |t: &str| if t.is_empty() { "?".to_string() } else { t.to_string() };
        let split = known(&e.split);
        let _ = writeln!(
            page,
            "<p>Split <b>{}</b>, {} images, weights <code>{}</code>: mean Dice <b>{}</b> ± {}, mean Jaccard {}, pixel accuracy {}.</p>",
            escape(&split),
            e.images,
            escape(&known(&e.weights)),
            number(present(e.mean_dice)),
            number(present(e.sd_dice)),
            number(present(e.mean_jaccard)),
            number(present(e.pixel_accuracy))
        );
        if e.per_patient.is_empty() {
            page.push_str("<p class=\"missing\">The evaluation lists no patients.</p>\n");
        } else {
            page.push_str("<table id=\"per-patient\">\n<thead><tr><th>Patient</th><th>Images</th><th>Dice</th></tr></thead>\n<tbody>\n");
            for row in &e.per_patient {
                let _ = writeln!(
                    page,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    escape(&row.case),
                    row.images,
                    number(present(row.dice))
                );
            }
            page.push_str("</tbody>\n</table>\n");
        }
        if !e.empty_rule.is_empty() {
            let _ = writeln!(page, "<p class=\"note\">Empty masks: {}</p>", escape(&e.empty_rule));
        }
        page.push_str("</section>\n");
    }

    fn overlays_section(&self, page: &mut String) {
        page.push_str("<section id=\"overlays\">\n<h2>Best and worst validation images</h2>\n");
        let picks: Vec<(&str, &Overlay)> = match (self.overlays.first(), self.overlays.last()) {
            (Some(best), Some(worst)) if self.overlays.len() > 1 => {
                vec![("best", best), ("worst", worst)]
            }
            (Some(only), _) => vec![("only", only)],
            _ => Vec::new(),
        };
        if picks.is_empty() {
            let _ = writeln!(
                page,
                "<p class=\"missing\">No overlays: {} holds no scored <code>overlay.png</code>. Run <code>lvc infer --run RUN --all-val --out RUN/overlays</code>.</p>",
                escape(&self.overlays_path.display().to_string())
            );
        } else {
            page.push_str("<div class=\"overlays\">\n");
            for (rank, overlay) in picks {
                let _ = writeln!(
                    page,
                    "<figure class=\"{rank}\"><img alt=\"{rank} overlay {}\" src=\"{}\"><figcaption>{rank}: {} — Dice {}</figcaption></figure>",
                    escape(&overlay.name),
                    data_uri(&overlay.png),
                    escape(overlay.source.as_deref().unwrap_or(&overlay.name)),
                    number(Some(overlay.dice))
                );
            }
            let _ = writeln!(page, "</div>\n<p class=\"note\">Of {} scored validation images. Prediction filled, ground-truth contour in green.</p>", self.overlays.len());
        }
        page.push_str("</section>\n");
    }
}

/// Every `<dir>/result.json` + `<dir>/overlay.png` under `folder` with a
/// Dice, best first (ties by name). A missing folder has none.
fn read_overlays(folder: &Path) -> Result<Vec<Overlay>, ReportError> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Ok(Vec::new()) };
    let mut overlays = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        let (result_path, png_path) = (dir.join(RESULT_JSON), dir.join(OVERLAY_PNG));
        if !result_path.is_file() || !png_path.is_file() {
            continue;
        }
        let result: InferResult =
            read_json(&result_path, "inference result", "lvc infer --run RUN --all-val --out DIR")?;
        let Some(dice) = result.dice.filter(|d| d.is_finite()) else { continue };
        let png = read_bytes(&png_path, "it is written by `lvc infer`")?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let source = (!result.source.is_empty()).then_some(result.source);
        overlays.push(Overlay { name, source, dice, png });
    }
    overlays.sort_by(|a, b| b.dice.total_cmp(&a.dice).then_with(|| a.name.cmp(&b.name)));
    Ok(overlays)
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1240px;margin:24px auto;padding:0 16px;color:#222}\
h1{font-size:26px;border-bottom:2px solid #0072b2;padding-bottom:6px}h2{font-size:20px;margin-top:28px}\
table{border-collapse:collapse}th,td{padding:4px 12px;border-bottom:1px solid #ddd;text-align:left}\
table.summary th{color:#555;font-weight:normal}td.num{text-align:right;font-variant-numeric:tabular-nums}\
#per-patient thead th{background:#eef4fa}img.curves{width:100%;max-width:1200px;border:1px solid #ddd}\
.overlays{display:flex;gap:24px;flex-wrap:wrap}figure{margin:0}figure img{width:360px;image-rendering:pixelated;border:1px solid #ddd}\
figcaption{margin-top:4px}.missing{color:#a33;background:#fff4f4;padding:8px 12px;border-left:4px solid #d55e00}\
.note{color:#666;font-size:14px}footer{margin-top:36px;color:#888;font-size:13px}";

fn data_uri(png: &[u8]) -> String {
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))
}

fn number(value: Option<f64>) -> String {
    value.filter(|v| v.is_finite()).map_or_else(|| "—".to_string(), |v| format!("{v:.4}"))
}

/// A JSON scalar as text (strings without their quotes).
fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn duration(seconds: f64) -> String {
    let whole = seconds.round() as u64;
    match whole {
        0..=59 => format!("{seconds:.1} s"),
        60..=3599 => format!("{} min {} s", whole / 60, whole % 60),
        _ => format!("{} h {} min", whole / 3600, whole % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing;

    fn page_of(run: &Path) -> RunPage {
        let metrics = super::super::read_metrics(&run.join(super::super::METRICS_JSON)).unwrap();
        RunPage::gather(
            run,
            metrics,
            Some(vec![1, 2, 3]),
            &run.join("evaluation.json"),
            &run.join("overlays"),
        )
        .unwrap()
    }

    #[test]
    fn the_page_shows_summary_table_and_best_and_worst_overlays() {
        let dir = tempfile::tempdir().unwrap();
        testing::write_run(dir.path());
        let page = page_of(dir.path());
        assert_eq!(
            page.overlays.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
            ["SC-HF-I-01-0002", "SC-N-03-0009", "SC-N-03-0007"]
        );
        let html = page.render();
        for expected in [
            "/work/models/demo.prototxt",
            "/work/models/demo_solver.prototxt",
            "<td>6 of 6</td>",
            "<td>1 min 15 s</td>",
            "libtorch 2.11.0",
            "<td>SC-HF-I-01</td><td class=\"num\">1</td><td class=\"num\">0.9100</td>",
            "<td>SC-N-03</td>",
            "best: val/SC-HF-I-01-0002 — Dice 0.9100",
            "worst: val/SC-N-03-0007 — Dice 0.3500",
            "src=\"data:image/png;base64,AQID\"",
        ] {
            assert!(html.contains(expected), "missing {expected:?} in\n{html}");
        }
        assert!(!html.contains("http://") && !html.contains("https://"), "no external fetches");
        assert!(page.missing().is_empty());
        assert!(!html.contains("Changed on resume"), "the fixture's run.json predates `changes`");
    }

    #[test]
    fn settings_changed_on_resume_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        testing::write_run(dir.path());
        let path = dir.path().join(RUN_JSON);
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        config["changes"] = serde_json::json!([
            {"epoch": 4, "field": "base_lr", "from": 0.002, "to": 0.0005},
            {"epoch": 4, "field": "lr_policy", "from": "poly", "to": "step"}
        ]);
        std::fs::write(&path, config.to_string()).unwrap();
        let html = page_of(dir.path()).render();
        let row = "<tr><th>Changed on resume</th><td>from epoch 4: base_lr 0.002 → 0.0005; from epoch 4: lr_policy poly → step</td></tr>";
        assert!(html.contains(row), "{html}");
    }

    #[test]
    fn absent_parts_are_said_so() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.json"), testing::metrics_json(2)).unwrap();
        let page = page_of(dir.path());
        let html = page.render();
        for expected in ["No evaluation data", "No overlays", "No run record"] {
            assert!(html.contains(expected), "missing {expected:?}");
        }
        assert_eq!(page.missing().len(), 3, "{:?}", page.missing());
    }

    #[test]
    fn broken_side_files_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        testing::write_run(dir.path());
        let evaluation = std::fs::read(dir.path().join("evaluation.json")).unwrap();
        std::fs::write(dir.path().join("evaluation.json"), "[1,").unwrap();
        let metrics = super::super::read_metrics(&dir.path().join("metrics.json")).unwrap();
        let err = RunPage::gather(
            dir.path(),
            metrics.clone(),
            None,
            &dir.path().join("evaluation.json"),
            &dir.path().join("overlays"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("evaluation.json"), "{err}");
        std::fs::write(dir.path().join("evaluation.json"), evaluation).unwrap();
        std::fs::write(
            dir.path().join("overlays/SC-N-03-0007/result.json"),
            "{\"dice\": \"high\"}",
        )
        .unwrap();
        let err = RunPage::gather(
            dir.path(),
            metrics,
            None,
            &dir.path().join("evaluation.json"),
            &dir.path().join("overlays"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("result.json"), "{err}");
    }

    #[test]
    fn text_from_files_is_escaped() {
        assert_eq!(escape("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
        let dir = tempfile::tempdir().unwrap();
        testing::write_run(dir.path());
        let evaluation = std::fs::read_to_string(dir.path().join("evaluation.json"))
            .unwrap()
            .replace("SC-N-03", "<script>alert(1)</script>");
        std::fs::write(dir.path().join("evaluation.json"), evaluation).unwrap();
        let html = page_of(dir.path()).render();
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(12.34), "12.3 s");
        assert_eq!(duration(125.0), "2 min 5 s");
        assert_eq!(duration(7260.0), "2 h 1 min");
    }
}
