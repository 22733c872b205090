//! Segmentation scores: per-class pixel overlap of a prediction with its
//! ground truth, Dice, Jaccard and pixel accuracy, and the mean and sample
//! standard deviation the reports aggregate them with.

/// The empty-mask rule of every Dice and Jaccard lvc reports.
pub const EMPTY_RULE: &str =
    "a class absent from both the prediction and the ground truth scores Dice 1 and Jaccard 1 on that image";

/// Pixel counts of one prediction against its ground truth, per class.
#[derive(Clone, Debug, PartialEq)]
pub struct Overlap {
    pub predicted: Vec<u64>,
    pub truth: Vec<u64>,
    pub both: Vec<u64>,
    /// Pixels scored (ground truth < class count; others are ignored).
    pub pixels: u64,
}

impl Overlap {
    /// Counts `predicted` against `truth` (one label per pixel each) for
    /// `classes` classes.
    pub fn of(predicted: &[u8], truth: &[u8], classes: usize) -> Overlap {
        let mut o = Overlap {
            predicted: vec![0; classes],
            truth: vec![0; classes],
            both: vec![0; classes],
            pixels: 0,
        };
        for (&p, &t) in predicted.iter().zip(truth) {
            let (p, t) = (usize::from(p), usize::from(t));
            if t >= classes {
                continue;
            }
            o.pixels += 1;
            o.truth[t] += 1;
            if p < classes {
                o.predicted[p] += 1;
                if p == t {
                    o.both[t] += 1;
                }
            }
        }
        o
    }

    /// The number of classes counted.
    pub fn classes(&self) -> usize {
        self.truth.len()
    }

    /// 2|P∩T| / (|P|+|T|); see [`EMPTY_RULE`].
    pub fn dice(&self, class: usize) -> f64 {
        let sum = self.predicted[class] + self.truth[class];
        if sum == 0 {
            1.0
        } else {
            2.0 * self.both[class] as f64 / sum as f64
        }
    }

    /// |P∩T| / |P∪T|; see [`EMPTY_RULE`].
    pub fn jaccard(&self, class: usize) -> f64 {
        let union = self.predicted[class] + self.truth[class] - self.both[class];
        if union == 0 {
            1.0
        } else {
            self.both[class] as f64 / union as f64
        }
    }

    /// The share of scored pixels labelled right (1 for none scored).
    pub fn accuracy(&self) -> f64 {
        if self.pixels == 0 {
            1.0
        } else {
            self.both.iter().sum::<u64>() as f64 / self.pixels as f64
        }
    }

    /// The mean Dice of the foreground classes (1..C); the LV Dice for two classes.
    pub fn foreground_dice(&self) -> f64 {
        mean((1..self.classes()).map(|c| self.dice(c)))
    }

    /// The mean Jaccard of the foreground classes (1..C).
    pub fn foreground_jaccard(&self) -> f64 {
        mean((1..self.classes()).map(|c| self.jaccard(c)))
    }
}

/// The arithmetic mean (0 for no values).
pub fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values.into_iter().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Sample standard deviation (0 for fewer than two values).
pub fn sd(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values.iter().copied());
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_and_jaccard_count_overlap_per_class() {
        // truth: 4 LV pixels; prediction: 3 of them plus 1 false positive.
        let truth = [1, 1, 1, 1, 0, 0, 0, 0];
        let predicted = [1, 1, 1, 0, 1, 0, 0, 0];
        let o = Overlap::of(&predicted, &truth, 2);
        assert_eq!(o.both, vec![3, 3]);
        assert!((o.dice(1) - 6.0 / 8.0).abs() < 1e-12);
        assert!((o.jaccard(1) - 3.0 / 5.0).abs() < 1e-12);
        assert!((o.accuracy() - 6.0 / 8.0).abs() < 1e-12);
        assert_eq!(o.foreground_dice(), o.dice(1));
    }

    #[test]
    fn both_empty_scores_one_and_a_missed_mask_scores_zero() {
        let background = [0u8; 6];
        assert_eq!(Overlap::of(&background, &background, 2).dice(1), 1.0);
        assert_eq!(Overlap::of(&background, &background, 2).jaccard(1), 1.0);
        let truth = [0, 1, 1, 0, 0, 0];
        assert_eq!(Overlap::of(&background, &truth, 2).dice(1), 0.0);
    }

    #[test]
    fn ignored_labels_are_not_scored() {
        let o = Overlap::of(&[1, 0, 1], &[1, 255, 0], 2);
        assert_eq!(o.pixels, 2);
        assert_eq!(o.accuracy(), 0.5);
    }

    #[test]
    fn mean_and_sample_sd() {
        assert_eq!(mean([1.0, 2.0, 3.0]), 2.0);
        assert_eq!(mean(std::iter::empty()), 0.0);
        assert!((sd(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        assert_eq!(sd(&[5.0]), 0.0);
    }
}
