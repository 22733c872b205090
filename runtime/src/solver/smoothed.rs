//! The smoothed loss of the training log.

/// Caffe's `UpdateSmoothedLoss`: the mean of the last `average_loss` losses.
#[derive(Debug, Clone, PartialEq)]
pub struct SmoothedLoss {
    pub(super) window: usize,
    pub(super) losses: Vec<f64>,
    pub(super) next: usize,
    pub(super) value: f64,
}

impl SmoothedLoss {
    pub(super) fn new(window: i64) -> Self {
        SmoothedLoss {
            window: usize::try_from(window).unwrap_or(1).max(1),
            losses: Vec::new(),
            next: 0,
            value: 0.0,
        }
    }
    pub(super) fn push(&mut self, loss: f64) -> f64 {
        if self.losses.len() < self.window {
            self.losses.push(loss);
            let n = self.losses.len() as f64;
            self.value = (self.value * (n - 1.0) + loss) / n;
        } else {
            self.value += (loss - self.losses[self.next]) / self.window as f64;
            self.losses[self.next] = loss;
            self.next = (self.next + 1) % self.window;
        }
        self.value
    }
}
