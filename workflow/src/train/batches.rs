//! What one epoch feeds and measures: the train split in a seeded
//! per-epoch order, batch by batch, and the loss, accuracy and Dice of a
//! split with the current weights.

use lvc_compiler::schema::Phase;
use lvc_data::store::SplitData;
use lvc_runtime::error::RuntimeError;
use lvc_runtime::solver::DataSource;
use lvc_runtime::tch::{self, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::scores::{mean, Overlap};
use crate::segmenter::Segmenter;

/// The train split in a per-epoch shuffled order, one batch per call.
pub(crate) struct EpochBatches<'a> {
    split: &'a SplitData,
    order: Vec<usize>,
    next: usize,
    batch: usize,
    device: tch::Device,
}

impl<'a> EpochBatches<'a> {
    /// Epoch `epoch`'s order: a shuffle seeded by the run seed and the epoch,
    /// so a resumed run sees the same order it would have seen.
    pub(crate) fn new(
        split: &'a SplitData,
        seed: u64,
        epoch: u32,
        batch: usize,
        device: tch::Device,
    ) -> Self {
        let mut order: Vec<usize> = (0..split.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            seed ^ u64::from(epoch).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ));
        EpochBatches { split, order, next: 0, batch, device }
    }
}

impl DataSource for EpochBatches<'_> {
    fn next_batch(&mut self, phase: Phase) -> Result<Vec<(String, Tensor)>, RuntimeError> {
        if phase != Phase::Train {
            return Err(RuntimeError::Input {
                name: "data".to_string(),
                reason: "the dataset's train batches only feed the train net".to_string(),
                help: "validation runs on the val split after each epoch; remove test nets' test_interval from the solver".to_string(),
            });
        }
        let [_, c, h, w] = self.split.shape;
        let mut images = Vec::with_capacity(self.batch * c * h * w);
        let mut labels = Vec::with_capacity(self.batch * h * w);
        for k in 0..self.batch {
            let index = self.order[(self.next * self.batch + k) % self.order.len()];
            images.extend_from_slice(self.split.image(index));
            labels.extend(self.split.label(index).iter().map(|&v| f32::from(v)));
        }
        self.next += 1;
        let b = self.batch as i64;
        Ok(vec![
            (
                "data".to_string(),
                Tensor::from_slice(&images)
                    .reshape([b, c as i64, h as i64, w as i64])
                    .to_device(self.device),
            ),
            (
                "label".to_string(),
                Tensor::from_slice(&labels)
                    .reshape([b, 1, h as i64, w as i64])
                    .to_device(self.device),
            ),
        ])
    }
}

/// Loss, accuracy and Dice of some images of a split with the current weights.
pub(crate) struct Validation {
    pub loss: f64,
    pub accuracy: f64,
    pub dice: f64,
    pub class_dice: Vec<f64>,
}

/// Scores `images` of `split` (every image for the val split; the
/// [`train_sample`] for the train Dice).
pub(crate) fn score(
    segmenter: &Segmenter,
    split: &SplitData,
    images: impl Iterator<Item = usize>,
) -> Result<Validation, RuntimeError> {
    let mut overlaps = Vec::with_capacity(split.len());
    let mut losses = Vec::with_capacity(split.len());
    for i in images {
        let (predicted, loss) = segmenter.segment(split.image(i), Some(split.label(i)))?;
        overlaps.push(Overlap::of(&predicted, split.label(i), segmenter.classes));
        losses.extend(loss);
    }
    Ok(Validation {
        loss: mean(losses),
        accuracy: mean(overlaps.iter().map(Overlap::accuracy)),
        dice: mean(overlaps.iter().map(Overlap::foreground_dice)),
        class_dice: (0..segmenter.classes)
            .map(|c| mean(overlaps.iter().map(|o| o.dice(c))))
            .collect(),
    })
}

/// The training images the train Dice is measured on each epoch: as many
/// as the val split has (at least 16, at most all), evenly spaced over the
/// split (which is ordered by case), so every patient is represented and
/// the cost stays that of one validation pass.
pub(crate) fn train_sample(train_len: usize, val_len: usize) -> Vec<usize> {
    let n = val_len.max(16).min(train_len);
    (0..n).map(|k| k * train_len / n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_sample_spans_the_split_at_the_size_of_val() {
        assert_eq!(train_sample(236, 52).len(), 52);
        assert_eq!(train_sample(236, 52).last(), Some(&(51 * 236 / 52)));
        assert_eq!(train_sample(100, 4), (0..16).map(|k| k * 100 / 16).collect::<Vec<_>>());
        assert_eq!(train_sample(5, 52), vec![0, 1, 2, 3, 4]);
        assert!(train_sample(0, 3).is_empty());
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation_that_changes_per_epoch() {
        let split = SplitData {
            split: lvc_data::sunnybrook::import::Split::Train,
            shape: [10, 1, 2, 2],
            images: (0..40).map(|v| v as f32).collect(),
            labels: vec![0; 40],
            records: Vec::new(),
        };
        let first = EpochBatches::new(&split, 7, 1, 2, tch::Device::Cpu).order;
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_eq!(first, EpochBatches::new(&split, 7, 1, 2, tch::Device::Cpu).order);
        assert_ne!(first, EpochBatches::new(&split, 7, 2, 2, tch::Device::Cpu).order);
    }

    #[test]
    fn batches_hold_the_shuffled_images_and_their_labels() {
        let split = SplitData {
            split: lvc_data::sunnybrook::import::Split::Train,
            shape: [3, 1, 1, 2],
            images: vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0],
            labels: vec![0, 1, 1, 1, 0, 0],
            records: Vec::new(),
        };
        let mut batches = EpochBatches::new(&split, 3, 1, 2, tch::Device::Cpu);
        let order = batches.order.clone();
        let inputs = batches.next_batch(Phase::Train).unwrap_or_default();
        assert_eq!(inputs[0].1.size(), vec![2, 1, 1, 2]);
        let data = Vec::<f32>::try_from(inputs[0].1.flatten(0, -1)).unwrap_or_default();
        assert_eq!(data[..2], split.image(order[0]).to_vec()[..]);
        let label = Vec::<f32>::try_from(inputs[1].1.flatten(0, -1)).unwrap_or_default();
        assert_eq!(
            label[2..],
            split.label(order[1]).iter().map(|&v| f32::from(v)).collect::<Vec<_>>()[..]
        );
        assert!(batches.next_batch(Phase::Test).is_err());
    }
}
