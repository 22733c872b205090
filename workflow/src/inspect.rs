//! What `lvc dataset inspect` shows of a dataset, as a library: the
//! manifest minus its per-record list, with a warning where pixel accuracy
//! says nothing; as JSON ([`Inspection`]) or as text ([`human_inspection`]).
//! `lvc serve`'s dataset page shows the same.

use lvc_data::store::{Manifest, SourceInfo, SplitRule, SplitSummary};
use lvc_data::sunnybrook::import::{Channels, Split};
use serde::Serialize;

/// Below this foreground fraction inspect warns that pixel accuracy says
/// nothing (the LV is < 2% of a Sunnybrook slice).
const LOW_FOREGROUND: f64 = 0.05;

/// What `inspect --format json` prints (the manifest minus the per-record
/// list).
#[derive(Serialize)]
pub struct Inspection<'a> {
    pub dataset: String,
    pub format_version: u32,
    pub created_by: &'a str,
    pub source: &'a SourceInfo,
    pub channels: Channels,
    pub image_shape: [usize; 3],
    pub image_dtype: &'a str,
    pub label_shape: [usize; 3],
    pub classes: &'a [String],
    pub split: &'a SplitRule,
    pub splits: &'a std::collections::BTreeMap<Split, SplitSummary>,
    pub skipped: usize,
    pub warnings: Vec<String>,
}

pub fn low_foreground_warnings(m: &Manifest) -> Vec<String> {
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

impl<'a> Inspection<'a> {
    /// The inspection of the dataset `m`, shown as `name`.
    pub fn of(name: &str, m: &'a Manifest) -> Inspection<'a> {
        let [_, h, w] = m.image_shape;
        Inspection {
            dataset: name.to_string(),
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
            warnings: low_foreground_warnings(m),
        }
    }
}

/// The text `lvc dataset inspect` prints.
pub fn human_inspection(name: &str, m: &Manifest, warnings: &[String]) -> String {
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
