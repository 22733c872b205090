//! `RUN/metrics.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::json::{figure, no_figure, present, require_fields};
use crate::scores::EMPTY_RULE;

/// One epoch in `metrics.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EpochRecord {
    pub epoch: u32,
    /// Iterations done after this epoch.
    pub iterations: i64,
    /// Mean training loss over the epoch's iterations.
    #[serde(deserialize_with = "figure")]
    pub train_loss: f64,
    #[serde(deserialize_with = "figure")]
    pub val_loss: f64,
    #[serde(deserialize_with = "figure")]
    pub val_accuracy: f64,
    /// Mean over val images of the foreground-class Dice.
    #[serde(deserialize_with = "figure")]
    pub val_dice: f64,
    /// The same Dice on a fixed sample of training images (no
    /// augmentation), so the gap to `val_dice` shows overfitting; absent in
    /// runs written before it existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_dice: Option<f64>,
    /// Mean over val images of each class's Dice, by label value.
    pub val_class_dice: Vec<f64>,
    /// The learning rate of the epoch's last iteration.
    #[serde(deserialize_with = "figure")]
    pub lr: f64,
    #[serde(deserialize_with = "figure")]
    pub seconds: f64,
}

impl Default for EpochRecord {
    /// An epoch with no figures (what a missing field reads as).
    fn default() -> EpochRecord {
        EpochRecord {
            epoch: 0,
            iterations: 0,
            train_loss: no_figure(),
            val_loss: no_figure(),
            val_accuracy: no_figure(),
            val_dice: no_figure(),
            train_dice: None,
            val_class_dice: Vec::new(),
            lr: no_figure(),
            seconds: no_figure(),
        }
    }
}

/// What every epoch of a metrics.json has (`train_dice` came later).
const EPOCH_REQUIRED: [&str; 9] = [
    "epoch",
    "iterations",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_dice",
    "val_class_dice",
    "lr",
    "seconds",
];

/// `RUN/metrics.json`: the final epoch's figures at the top, every epoch in `history`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metrics {
    pub epochs_done: u32,
    #[serde(deserialize_with = "figure")]
    pub train_loss: f64,
    #[serde(deserialize_with = "figure")]
    pub val_loss: f64,
    #[serde(deserialize_with = "figure")]
    pub val_accuracy: f64,
    #[serde(deserialize_with = "figure")]
    pub val_dice: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_dice: Option<f64>,
    /// 0 when no epoch has finished.
    pub best_epoch: u32,
    #[serde(deserialize_with = "figure")]
    pub best_val_dice: f64,
    pub classes: Vec<String>,
    pub empty_rule: String,
    pub history: Vec<EpochRecord>,
}

impl Default for Metrics {
    /// Metrics with no figures and no epochs (what a missing field reads as).
    fn default() -> Metrics {
        Metrics {
            epochs_done: 0,
            train_loss: no_figure(),
            val_loss: no_figure(),
            val_accuracy: no_figure(),
            val_dice: no_figure(),
            train_dice: None,
            best_epoch: 0,
            best_val_dice: no_figure(),
            classes: Vec::new(),
            empty_rule: String::new(),
            history: Vec::new(),
        }
    }
}

/// What every metrics.json has.
const REQUIRED: [&str; 10] = [
    "epochs_done",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_dice",
    "best_epoch",
    "best_val_dice",
    "classes",
    "empty_rule",
    "history",
];

impl Metrics {
    /// The metrics of `history`: the last epoch's figures and the best
    /// epoch by val Dice (the first of equal ones).
    pub fn new(classes: Vec<String>, history: Vec<EpochRecord>) -> Metrics {
        let last = history.last();
        let best = history.iter().fold(None::<&EpochRecord>, |best, e| match best {
            Some(b) if b.val_dice >= e.val_dice => Some(b),
            _ => Some(e),
        });
        Metrics {
            epochs_done: last.map_or(0, |e| e.epoch),
            train_loss: last.map_or(f64::NAN, |e| e.train_loss),
            val_loss: last.map_or(f64::NAN, |e| e.val_loss),
            val_accuracy: last.map_or(0.0, |e| e.val_accuracy),
            val_dice: last.map_or(0.0, |e| e.val_dice),
            train_dice: last.and_then(|e| e.train_dice),
            best_epoch: best.map_or(0, |e| e.epoch),
            best_val_dice: best.map_or(0.0, |e| e.val_dice),
            classes,
            empty_rule: EMPTY_RULE.to_string(),
            history,
        }
    }

    /// Parses a metrics.json leniently (a report of any run: missing
    /// figures read as NaN, missing lists as empty).
    pub fn from_json_lenient(text: &[u8]) -> Result<Metrics, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// Parses a metrics.json for the workflow (a resume continues its
    /// history): every field of it and of each epoch must be there.
    pub fn from_json(text: &[u8], path: &Path) -> Result<Metrics, String> {
        let damaged = |e: String| format!("{} is damaged: {e}", path.display());
        let value: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| damaged(e.to_string()))?;
        require_fields(&value, &REQUIRED).map_err(damaged)?;
        for epoch in value["history"].as_array().into_iter().flatten() {
            require_fields(epoch, &EPOCH_REQUIRED).map_err(damaged)?;
        }
        serde_json::from_value(value).map_err(|e| damaged(e.to_string()))
    }

    /// Wall time of the finished epochs (`None` when no epoch records one).
    pub fn seconds(&self) -> Option<f64> {
        let times: Vec<f64> = self.history.iter().filter_map(|e| present(e.seconds)).collect();
        (!times.is_empty()).then(|| times.iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: u32, val_dice: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            iterations: i64::from(epoch) * 10,
            train_loss: 1.0 / f64::from(epoch),
            val_loss: 0.5,
            val_accuracy: 0.9,
            val_dice,
            train_dice: Some(val_dice + 0.05),
            val_class_dice: vec![0.99, val_dice],
            lr: 0.01,
            seconds: 1.0,
        }
    }

    #[test]
    fn metrics_report_the_last_epoch_and_the_best_one() {
        let m = Metrics::new(
            vec!["background".into(), "left ventricle".into()],
            vec![record(1, 0.5), record(2, 0.8), record(3, 0.7)],
        );
        assert_eq!((m.epochs_done, m.val_dice, m.best_epoch, m.best_val_dice), (3, 0.7, 2, 0.8));
        assert!((m.train_loss - 1.0 / 3.0).abs() < 1e-12);
        let json = serde_json::to_value(&m).unwrap_or_default();
        for key in ["val_dice", "val_accuracy", "train_loss", "history"] {
            assert!(json.get(key).is_some(), "metrics.json lacks {key}");
        }
        assert_eq!(json["history"][1]["val_class_dice"][1].as_f64(), Some(0.8));
        assert_eq!(json["train_dice"].as_f64(), Some(0.75));
        // metrics.json of a run from before the train Dice still reads.
        let mut old = json.clone();
        old.as_object_mut().map(|o| o.remove("train_dice"));
        old["history"].as_array_mut().into_iter().flatten().for_each(|e| {
            e.as_object_mut().map(|o| o.remove("train_dice"));
        });
        let text = serde_json::to_vec(&old).unwrap_or_default();
        let read =
            Metrics::from_json(&text, Path::new("metrics.json")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.history[0].train_dice, None);
        assert_eq!(read.history[1], EpochRecord { train_dice: None, ..record(2, 0.8) });
    }

    #[test]
    fn the_workflow_refuses_what_a_report_reads_leniently() {
        let partial = br#"{"val_dice": null, "future_field": 3, "history": [{"epoch": 1, "train_loss": null, "seconds": 2.5}, {"epoch": 2, "seconds": 3}]}"#;
        let m = Metrics::from_json_lenient(partial).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.val_dice.is_nan() && m.history[0].train_loss.is_nan());
        assert_eq!((m.history.len(), m.seconds()), (2, Some(5.5)));
        let err = Metrics::from_json(partial, Path::new("RUN/metrics.json")).unwrap_err();
        assert!(err.starts_with("RUN/metrics.json is damaged: missing field"), "{err}");
    }

    #[test]
    fn a_nan_figure_is_written_as_null_and_reads_back_as_nan() {
        let m = Metrics::new(vec![], vec![EpochRecord { val_loss: f64::NAN, ..record(1, 0.5) }]);
        let text = serde_json::to_vec(&m).unwrap_or_default();
        let read = Metrics::from_json(&text, Path::new("m")).unwrap_or_else(|e| panic!("{e}"));
        assert!(read.val_loss.is_nan() && read.history[0].val_loss.is_nan());
    }
}
