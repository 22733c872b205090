//! `Augment` (lvc extension): TRAIN-time augmentation of an image batch and
//! its label map, drawn per image.
//!
//! Order per image: geometric transforms (flips, a 90° rotation, then one
//! resampling through a grid that combines the affine map and the elastic
//! displacement), applied identically to the image and the label; then the
//! intensity transforms on the image only (scale/shift, gamma, contrast,
//! Gaussian noise).
//!
//! Resampling uses `grid_sample` with `align_corners = false` (pixel centres
//! at (2i + 1)/W − 1, so a whole-pixel shift lands on pixel centres) and zero
//! padding for both bottoms (the label's 0 is background). The image is
//! sampled bilinearly, the label with nearest neighbour so that it keeps its
//! class values.
//!
//! Randomness never touches libtorch's global generator: each forward pass
//! seeds a ChaCha8 stream from (`augment_param.seed`, the net's seed — the
//! solver's `random_seed` in training —, the number of augmented batches so
//! far), so a run is reproducible call for call. Noise and elastic fields are
//! drawn on the host from per-image sub-streams and uploaded.

use std::sync::Mutex;

use lvc_compiler::ops::data::{AugmentOp, AugmentParams};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use super::{LowerCtx, LowerResult, Lowered, StreamPosition};

/// `grid_sample` interpolation modes (ATen's `GridSamplerInterpolation`).
const BILINEAR: i64 = 0;
const NEAREST: i64 = 1;
/// `GridSamplerPadding::Zeros`.
const ZEROS_PADDING: i64 = 0;
/// Pixel coordinates convention shared by `affine_grid` and `grid_sample`.
const ALIGN_CORNERS: bool = false;

pub(crate) fn lower(op: &AugmentOp, ctx: &LowerCtx<'_>) -> LowerResult {
    let Some(image) = ctx.bottoms.first() else {
        return Err("Augment needs a data bottom".to_string());
    };
    if image.0.len() != 4 {
        return Err(format!("Augment needs N×C×H×W bottoms, the data bottom is {:?}", image.0));
    }
    if let Some(label) = ctx.bottoms.get(1) {
        let same_grid =
            label.0.len() == 4 && label.0[0] == image.0[0] && label.0[2..] == image.0[2..];
        if !same_grid {
            return Err(format!(
                "Augment transforms the label on the image's pixel grid: the label {:?} must be N×C×H×W with the data's N, H and W {:?}",
                label.0, image.0
            ));
        }
    }
    Ok(Box::new(Augment::new(op.params.clone(), ctx.train)))
}

/// The lowered layer: its parameters and the position in its random stream.
#[derive(Debug)]
pub struct Augment {
    params: AugmentParams,
    train: bool,
    stream: Mutex<Stream>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Stream {
    net_seed: u64,
    /// Augmented batches so far (the iteration counter, with iter_size
    /// passes counted one by one).
    batches: u64,
}

impl Augment {
    pub fn new(params: AugmentParams, train: bool) -> Augment {
        Augment { params, train, stream: Mutex::new(Stream::default()) }
    }

    /// Any transform can fire.
    fn active(&self) -> bool {
        let p = &self.params;
        [
            p.flip_prob,
            p.rot90_prob,
            p.affine_prob,
            p.elastic_prob,
            p.intensity_prob,
            p.gamma_prob,
            p.contrast_prob,
            p.noise_prob,
        ]
        .iter()
        .any(|&prob| prob > 0.0)
    }

    /// The stream for the next batch; advances the batch counter.
    fn next_batch_rng(&self) -> ChaCha8Rng {
        let mut stream = self.stream.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&(self.params.seed as u64).to_le_bytes());
        key[8..16].copy_from_slice(&stream.net_seed.to_le_bytes());
        key[16..24].copy_from_slice(&stream.batches.to_le_bytes());
        stream.batches += 1;
        ChaCha8Rng::from_seed(key)
    }
}

impl Lowered for Augment {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let images = bottoms.first().map_or(0, |image| image.size()[0]);
        // An empty batch has nothing to draw for (and `cat` of no parts fails).
        if !self.train || !self.active() || images == 0 {
            return bottoms.iter().map(Tensor::shallow_clone).collect();
        }
        let mut rng = self.next_batch_rng();
        let mut outputs: Vec<Vec<Tensor>> =
            bottoms.iter().map(|_| Vec::with_capacity(images as usize)).collect();
        for n in 0..images {
            let draws = Draws::new(&self.params, &mut rng);
            let image = bottoms[0].narrow(0, n, 1);
            let label = bottoms.get(1).map(|l| l.narrow(0, n, 1));
            let (image, label) = draws.apply(&self.params, image, label);
            outputs[0].push(image);
            if let (Some(out), Some(label)) = (outputs.get_mut(1), label) {
                out.push(label);
            }
        }
        outputs.iter().map(|parts| Tensor::cat(parts, 0)).collect()
    }

    fn reseed(&self, net_seed: u64) {
        let mut stream = self.stream.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *stream = Stream { net_seed, batches: 0 };
    }

    fn stream_position(&self) -> Option<StreamPosition> {
        let stream = self.stream.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(StreamPosition { seed: stream.net_seed, position: stream.batches })
    }

    fn seek_stream(&self, to: StreamPosition) {
        let mut stream = self.stream.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *stream = Stream { net_seed: to.seed, batches: to.position };
    }
}

/// A uniform draw in [−1, 1].
fn symmetric(rng: &mut ChaCha8Rng) -> f64 {
    rng.gen_range(-1.0..=1.0)
}

/// The affine map, in pixel units about the image centre.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Affine {
    angle_rad: f64,
    /// Zoom factor: > 1 magnifies.
    scale: f64,
    /// Shift as a fraction of the width / height.
    shift_x: f64,
    shift_y: f64,
}

/// Everything one image's augmentation drew. Every field is drawn on every
/// image, used or not, so the stream position never depends on the outcome.
#[derive(Debug, Clone, PartialEq)]
struct Draws {
    flip_x: bool,
    flip_y: bool,
    /// Quarter turns (0 = none).
    quarter_turns: i64,
    affine: Option<Affine>,
    /// Seed of the elastic displacement field.
    elastic: Option<u64>,
    /// (factor, offset).
    intensity: Option<(f64, f64)>,
    gamma: Option<f64>,
    contrast: Option<f64>,
    /// Seed of the noise field.
    noise: Option<u64>,
}

impl Draws {
    fn new(p: &AugmentParams, rng: &mut ChaCha8Rng) -> Draws {
        let mut fires = |prob: f64| rng.gen::<f64>() < prob;
        let (flip_x, flip_y, rotate) =
            (fires(p.flip_prob), fires(p.flip_prob), fires(p.rot90_prob));
        let (affine, elastic, intensity) =
            (fires(p.affine_prob), fires(p.elastic_prob), fires(p.intensity_prob));
        let (gamma, contrast, noise) =
            (fires(p.gamma_prob), fires(p.contrast_prob), fires(p.noise_prob));
        let quarter_turns = rng.gen_range(1..=3);
        let transform = Affine {
            angle_rad: symmetric(rng) * p.max_rotation_deg.to_radians(),
            scale: 1.0 + symmetric(rng) * p.max_scale,
            shift_x: symmetric(rng) * p.max_shift,
            shift_y: symmetric(rng) * p.max_shift,
        };
        let elastic_seed = rng.gen::<u64>();
        let factor_offset =
            (1.0 + symmetric(rng) * p.max_intensity_scale, symmetric(rng) * p.max_intensity_shift);
        let gamma_value = 1.0 + symmetric(rng) * p.max_gamma;
        let contrast_value = 1.0 + symmetric(rng) * p.max_contrast;
        let noise_seed = rng.gen::<u64>();
        Draws {
            flip_x,
            flip_y,
            quarter_turns: if rotate { quarter_turns } else { 0 },
            affine: affine.then_some(transform),
            elastic: (elastic && p.elastic_alpha > 0.0).then_some(elastic_seed),
            intensity: intensity.then_some(factor_offset),
            gamma: gamma.then_some(gamma_value),
            contrast: contrast.then_some(contrast_value),
            noise: (noise && p.noise_std > 0.0).then_some(noise_seed),
        }
    }

    /// One image (1×C×H×W) and its label (1×C'×H×W).
    fn apply(
        &self,
        p: &AugmentParams,
        image: Tensor,
        label: Option<Tensor>,
    ) -> (Tensor, Option<Tensor>) {
        let size = image.size();
        let (height, width) = (size[2], size[3]);
        // A quarter turn of a non-square image would change its shape: only
        // the half turn keeps it.
        let turns = if height == width { self.quarter_turns } else { self.quarter_turns & 2 };
        let geometric = |x: Tensor| {
            let x = if self.flip_x { x.flip([3]) } else { x };
            let x = if self.flip_y { x.flip([2]) } else { x };
            if turns != 0 {
                x.rot90(turns, [2, 3])
            } else {
                x
            }
        };
        let (mut image, mut label) = (geometric(image), label.map(geometric));
        if let Some(grid) = self.sampling_grid(p, height, width, image.device()) {
            image = image.grid_sampler(&grid, BILINEAR, ZEROS_PADDING, ALIGN_CORNERS);
            label = label.map(|l| l.grid_sampler(&grid, NEAREST, ZEROS_PADDING, ALIGN_CORNERS));
        }
        (self.intensities(p, image), label)
    }

    /// The affine and elastic maps as one `grid_sample` grid (1×H×W×2, x
    /// then y in [−1, 1]), or `None` when neither fired.
    fn sampling_grid(
        &self,
        p: &AugmentParams,
        height: i64,
        width: i64,
        device: Device,
    ) -> Option<Tensor> {
        if self.affine.is_none() && self.elastic.is_none() {
            return None;
        }
        let (h, w) = (height as f64, width as f64);
        // Output pixel → input pixel: rotate, then divide by the zoom, then
        // shift; in normalised units the off-diagonal terms carry the aspect.
        let theta = match self.affine {
            Some(a) => {
                let (sin, cos) = a.angle_rad.sin_cos();
                [
                    cos / a.scale,
                    -sin / a.scale * h / w,
                    2.0 * a.shift_x,
                    sin / a.scale * w / h,
                    cos / a.scale,
                    2.0 * a.shift_y,
                ]
            }
            None => [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        };
        let theta =
            Tensor::from_slice(&theta.map(|v| v as f32)).reshape([1, 2, 3]).to_device(device);
        let grid = Tensor::affine_grid_generator(&theta, [1, 1, height, width], ALIGN_CORNERS);
        Some(match self.elastic {
            Some(seed) => {
                grid + elastic_displacement(
                    seed,
                    p.elastic_alpha,
                    p.elastic_sigma,
                    height,
                    width,
                    device,
                )
            }
            None => grid,
        })
    }

    fn intensities(&self, p: &AugmentParams, image: Tensor) -> Tensor {
        let mut x = image;
        if let Some((factor, offset)) = self.intensity {
            x = x * factor + offset;
        }
        if let Some(gamma) = self.gamma {
            let low = x.amin([1, 2, 3], true);
            let range = (x.amax([1, 2, 3], true) - &low).clamp_min(1e-12);
            let unit = ((&x - &low) / &range).clamp(0.0, 1.0);
            x = unit.pow_tensor_scalar(gamma) * range + low;
        }
        if let Some(contrast) = self.contrast {
            let mean = x.mean_dim([1i64, 2, 3].as_slice(), true, Kind::Float);
            x = (&x - &mean) * contrast + mean;
        }
        if let Some(seed) = self.noise {
            let size = x.size();
            let noise = standard_normal(seed, size.iter().product::<i64>() as usize);
            x = &x + Tensor::from_slice(&noise).reshape(size).to_device(x.device()) * p.noise_std;
        }
        x
    }
}

/// `count` standard normal values (Box–Muller) from a ChaCha8 stream.
fn standard_normal(seed: u64, count: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(count + 1);
    while values.len() < count {
        // 1 − U keeps the logarithm's argument in (0, 1].
        let radius = (-2.0 * (1.0 - rng.gen::<f64>()).ln()).sqrt();
        let (sin, cos) = (std::f64::consts::TAU * rng.gen::<f64>()).sin_cos();
        values.push((radius * cos) as f32);
        values.push((radius * sin) as f32);
    }
    values.truncate(count);
    values
}

/// Simard et al. (2003): a uniform random displacement in [−1, 1] per pixel
/// and axis, smoothed by a Gaussian of `sigma` pixels and scaled by `alpha`
/// pixels; returned in grid units (1×H×W×2).
fn elastic_displacement(
    seed: u64,
    alpha: f64,
    sigma: f64,
    height: i64,
    width: i64,
    device: Device,
) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let count = (2 * height * width) as usize;
    let uniform: Vec<f32> = (0..count).map(|_| rng.gen_range(-1.0f32..=1.0)).collect();
    let field = Tensor::from_slice(&uniform).reshape([2, 1, height, width]).to_device(device);
    let smooth = gaussian_blur(&field, sigma, height.max(width));
    // Pixels → normalised units: one pixel is 2/W across and 2/H down.
    let to_grid = Tensor::from_slice(&[(2.0 / width as f64) as f32, (2.0 / height as f64) as f32])
        .to_device(device);
    (smooth.reshape([2, height, width]).permute([1, 2, 0]) * alpha * to_grid).unsqueeze(0)
}

/// Separable Gaussian blur of (B×1×H×W) with zero padding; the kernel radius
/// is 3σ, capped at `max_radius`. σ = 0 leaves the field as it is.
fn gaussian_blur(field: &Tensor, sigma: f64, max_radius: i64) -> Tensor {
    if sigma <= 0.0 {
        return field.shallow_clone();
    }
    let radius = ((3.0 * sigma).ceil() as i64).clamp(1, max_radius.max(1));
    let weights: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let total: f32 = weights.iter().sum();
    let kernel = Tensor::from_slice(&weights.iter().map(|w| w / total).collect::<Vec<_>>())
        .to_device(field.device());
    let size = 2 * radius + 1;
    let across = field.conv2d(
        &kernel.reshape([1, 1, 1, size]),
        None::<Tensor>,
        [1, 1],
        [0, radius],
        [1, 1],
        1,
    );
    across.conv2d(&kernel.reshape([1, 1, size, 1]), None::<Tensor>, [1, 1], [radius, 0], [1, 1], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::vals;

    fn off() -> AugmentParams {
        AugmentParams {
            seed: 7,
            flip_prob: 0.0,
            rot90_prob: 0.0,
            affine_prob: 0.0,
            max_rotation_deg: 0.0,
            max_scale: 0.0,
            max_shift: 0.0,
            elastic_prob: 0.0,
            elastic_alpha: 0.0,
            elastic_sigma: 0.0,
            intensity_prob: 0.0,
            max_intensity_scale: 0.0,
            max_intensity_shift: 0.0,
            gamma_prob: 0.0,
            max_gamma: 0.0,
            contrast_prob: 0.0,
            max_contrast: 0.0,
            noise_prob: 0.0,
            noise_std: 0.0,
        }
    }

    /// Every transform on, with visible magnitudes.
    fn everything() -> AugmentParams {
        AugmentParams {
            flip_prob: 0.5,
            rot90_prob: 0.5,
            affine_prob: 1.0,
            max_rotation_deg: 20.0,
            max_scale: 0.2,
            max_shift: 0.1,
            elastic_prob: 1.0,
            elastic_alpha: 3.0,
            elastic_sigma: 4.0,
            intensity_prob: 1.0,
            max_intensity_scale: 0.2,
            max_intensity_shift: 0.1,
            gamma_prob: 1.0,
            max_gamma: 0.3,
            contrast_prob: 1.0,
            max_contrast: 0.3,
            noise_prob: 1.0,
            noise_std: 0.05,
            ..off()
        }
    }

    /// Only the geometric transforms.
    fn geometric() -> AugmentParams {
        AugmentParams {
            intensity_prob: 0.0,
            gamma_prob: 0.0,
            contrast_prob: 0.0,
            noise_prob: 0.0,
            ..everything()
        }
    }

    /// A batch of `n` 1×16×16 images with a bright off-centre blob, and its
    /// three-class label (0 outside, 1 in the ring, 2 in the core).
    fn batch(n: i64) -> (Tensor, Tensor) {
        let y = Tensor::arange(16, (Kind::Float, Device::Cpu)).reshape([1, 1, 16, 1]);
        let x = Tensor::arange(16, (Kind::Float, Device::Cpu)).reshape([1, 1, 1, 16]);
        let shifts = Tensor::arange(n, (Kind::Float, Device::Cpu)).reshape([n, 1, 1, 1]);
        let r2 = (&y - 6.0 - &shifts).square() + (&x - 9.0).square();
        let label = r2.le(9.0).to_kind(Kind::Float) + r2.le(30.0).to_kind(Kind::Float);
        let image = &label * 0.4 + (x + y) * 0.01;
        (image, label)
    }

    fn run(params: AugmentParams, train: bool, net_seed: u64, bottoms: &[Tensor]) -> Vec<Tensor> {
        let op = Augment::new(params, train);
        op.reseed(net_seed);
        op.forward(bottoms, &[], train)
    }

    fn equal(a: &Tensor, b: &Tensor) -> bool {
        a.size() == b.size() && vals(a) == vals(b)
    }

    #[test]
    fn same_seeds_give_identical_batches_and_each_seed_matters() {
        let (image, label) = batch(3);
        let bottoms = [image.shallow_clone(), label.shallow_clone()];
        let first = run(everything(), true, 11, &bottoms);
        let again = run(everything(), true, 11, &bottoms);
        assert!(first.iter().zip(&again).all(|(a, b)| equal(a, b)));
        let other_net_seed = run(everything(), true, 12, &bottoms);
        let other_layer_seed = run(AugmentParams { seed: 8, ..everything() }, true, 11, &bottoms);
        assert!(!equal(&first[0], &other_net_seed[0]));
        assert!(!equal(&first[0], &other_layer_seed[0]));
        // The next batch draws anew; reseeding starts the stream over.
        let op = Augment::new(everything(), true);
        op.reseed(11);
        let one = op.forward(&bottoms, &[], true);
        let two = op.forward(&bottoms, &[], true);
        assert!(equal(&one[0], &first[0]) && !equal(&one[0], &two[0]));
        op.reseed(11);
        assert!(equal(&op.forward(&bottoms, &[], true)[0], &first[0]));
    }

    #[test]
    fn seeking_the_stream_resumes_the_draws_of_a_fresh_op() {
        let (image, label) = batch(2);
        let bottoms = [image.shallow_clone(), label.shallow_clone()];
        let straight = Augment::new(everything(), true);
        straight.reseed(5);
        straight.forward(&bottoms, &[], true);
        straight.forward(&bottoms, &[], true);
        assert_eq!(straight.stream_position(), Some(StreamPosition { seed: 5, position: 2 }));
        let resumed = Augment::new(everything(), true);
        resumed.reseed(6);
        resumed.seek_stream(StreamPosition { seed: 5, position: 2 });
        assert!(equal(
            &straight.forward(&bottoms, &[], true)[0],
            &resumed.forward(&bottoms, &[], true)[0]
        ));
        assert_eq!(resumed.stream_position(), Some(StreamPosition { seed: 5, position: 3 }));
    }

    #[test]
    fn all_probabilities_zero_and_test_phase_are_the_identity() {
        let (image, label) = batch(2);
        let bottoms = [image.shallow_clone(), label.shallow_clone()];
        for out in [run(off(), true, 1, &bottoms), run(everything(), false, 1, &bottoms)] {
            assert!(equal(&out[0], &image) && equal(&out[1], &label));
        }
        // Magnitudes without probabilities do nothing either.
        let magnitudes_only =
            AugmentParams { noise_std: 1.0, max_rotation_deg: 90.0, elastic_alpha: 5.0, ..off() };
        assert!(equal(&run(magnitudes_only, true, 1, &bottoms)[0], &image));
        let empty = [image.narrow(0, 0, 0), label.narrow(0, 0, 0)];
        assert_eq!(run(everything(), true, 1, &empty)[0].size(), [0, 1, 16, 16]);
    }

    #[test]
    fn labels_keep_their_values_after_every_geometric_transform() {
        let (image, label) = batch(4);
        let bottoms = [image, label.shallow_clone()];
        for seed in 0..8 {
            let out = run(geometric(), true, seed, &bottoms);
            assert_eq!(out[1].size(), label.size());
            assert!(
                vals(&out[1]).iter().all(|v| [0.0, 1.0, 2.0].contains(v)),
                "seed {seed}: {:?}",
                vals(&out[1])
            );
        }
    }

    #[test]
    fn image_and_label_move_together() {
        let (_, label) = batch(2);
        // Exact transforms (flips and quarter turns) keep an image equal to its label.
        let exact = AugmentParams { flip_prob: 0.5, rot90_prob: 0.7, ..off() };
        for seed in 0..6 {
            let out =
                run(exact.clone(), true, seed, &[label.shallow_clone(), label.shallow_clone()]);
            assert!(equal(&out[0], &out[1]), "seed {seed}");
        }
        // Resampled ones: the bilinear image rounds to the nearest label
        // except along class edges.
        for seed in 0..6 {
            let out = run(geometric(), true, seed, &[label.shallow_clone(), label.shallow_clone()]);
            let rounded = vals(&out[0].round());
            let labels = vals(&out[1]);
            let disagree = rounded.iter().zip(&labels).filter(|(a, b)| a != b).count();
            assert!(
                disagree * 10 < labels.len(),
                "seed {seed}: {disagree} of {} pixels disagree",
                labels.len()
            );
        }
    }

    #[test]
    fn flips_and_quarter_turns_undo_themselves() {
        let (image, label) = batch(1);
        for (draws, times) in [
            (Draws { flip_x: true, ..nothing() }, 2),
            (Draws { flip_y: true, ..nothing() }, 2),
            (Draws { quarter_turns: 1, ..nothing() }, 4),
            (Draws { quarter_turns: 3, flip_x: true, ..nothing() }, 2),
        ] {
            let (mut x, mut l) = (image.shallow_clone(), Some(label.shallow_clone()));
            for _ in 0..times {
                (x, l) = draws.apply(&off(), x, l);
            }
            assert!(equal(&x, &image), "{draws:?}");
            assert!(l.is_some_and(|l| equal(&l, &label)), "{draws:?}");
            assert!(
                !equal(&draws.apply(&off(), image.shallow_clone(), None).0, &image),
                "{draws:?} changes the image once"
            );
        }
    }

    fn nothing() -> Draws {
        Draws {
            flip_x: false,
            flip_y: false,
            quarter_turns: 0,
            affine: None,
            elastic: None,
            intensity: None,
            gamma: None,
            contrast: None,
            noise: None,
        }
    }

    #[test]
    fn whole_pixel_shifts_move_image_and_label_exactly() {
        let (image, label) = batch(1);
        // Output pixel x reads input pixel x + 2 (shift 2/16 of the width).
        let shift = Draws {
            affine: Some(Affine { angle_rad: 0.0, scale: 1.0, shift_x: 2.0 / 16.0, shift_y: 0.0 }),
            ..nothing()
        };
        let (x, l) = shift.apply(&off(), image.shallow_clone(), Some(label.shallow_clone()));
        let l = l.unwrap_or_else(|| label.shallow_clone());
        let expect =
            |t: &Tensor| Tensor::cat(&[t.narrow(3, 2, 14), t.narrow(3, 0, 2).zeros_like()], 3);
        assert!(vals(&(x - expect(&image))).iter().all(|d| d.abs() < 1e-5));
        assert!(equal(&l, &expect(&label)));
        // A 90° affine rotation of a square image is the quarter turn.
        let quarter = Draws {
            affine: Some(Affine {
                angle_rad: std::f64::consts::FRAC_PI_2,
                scale: 1.0,
                shift_x: 0.0,
                shift_y: 0.0,
            }),
            ..nothing()
        };
        let turned = quarter.apply(&off(), label.shallow_clone(), None).0;
        let by_turns = [1i64, 3].map(|k| label.rot90(k, [2, 3]));
        assert!(by_turns.iter().any(|t| vals(&(&turned - t)).iter().all(|d| d.abs() < 1e-4)));
    }

    #[test]
    fn elastic_fields_are_smooth_and_as_strong_as_asked() {
        let field = elastic_displacement(3, 4.0, 3.0, 32, 32, Device::Cpu);
        assert_eq!(field.size(), [1, 32, 32, 2]);
        // Back in pixels: bounded by alpha, neighbours close (smoothing).
        let pixels = &field * 16.0;
        let max = f64::try_from(pixels.abs().max()).unwrap_or(f64::NAN);
        assert!(max > 0.05 && max <= 4.0, "max displacement {max}");
        let step = f64::try_from((pixels.narrow(2, 1, 31) - pixels.narrow(2, 0, 31)).abs().max())
            .unwrap_or(f64::NAN);
        assert!(step < max / 2.0, "neighbouring displacements differ by {step} of {max}");
        let strong = elastic_displacement(3, 8.0, 3.0, 32, 32, Device::Cpu);
        assert!(
            vals(&(strong - &field * 2.0)).iter().all(|d| d.abs() < 1e-5),
            "the field scales with alpha"
        );
    }

    #[test]
    fn noise_has_the_requested_spread_on_the_image_only() {
        let image = Tensor::zeros([2, 1, 64, 64], (Kind::Float, Device::Cpu));
        let label = Tensor::ones([2, 1, 64, 64], (Kind::Float, Device::Cpu));
        let out = run(
            AugmentParams { noise_prob: 1.0, noise_std: 0.3, ..off() },
            true,
            4,
            &[image, label.shallow_clone()],
        );
        let std = f64::try_from(out[0].std(true)).unwrap_or(f64::NAN);
        let mean = f64::try_from(out[0].mean(Kind::Float)).unwrap_or(f64::NAN);
        assert!((std - 0.3).abs() < 0.01, "std {std}");
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!(equal(&out[1], &label));
    }

    #[test]
    fn intensity_gamma_and_contrast_do_what_they_say() {
        let image = Tensor::arange(16, (Kind::Float, Device::Cpu)).reshape([1, 1, 4, 4]) / 15.0;
        let with = |draws: Draws| vals(&draws.apply(&off(), image.shallow_clone(), None).0);
        let base = vals(&image);
        let scaled = with(Draws { intensity: Some((1.5, 0.25)), ..nothing() });
        assert!(scaled.iter().zip(&base).all(|(s, b)| (s - (b * 1.5 + 0.25)).abs() < 1e-6));
        // Gamma keeps the min and max and bends the middle.
        let bent = with(Draws { gamma: Some(2.0), ..nothing() });
        assert!((bent[0] - base[0]).abs() < 1e-6 && (bent[15] - base[15]).abs() < 1e-6);
        assert!(bent.iter().zip(&base).all(|(g, b)| (g - b * b).abs() < 1e-5));
        // Contrast keeps the mean and scales the spread.
        let spread = with(Draws { contrast: Some(0.5), ..nothing() });
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean(&spread) - mean(&base)).abs() < 1e-6);
        assert!(((spread[15] - spread[0]) - 0.5 * (base[15] - base[0])).abs() < 1e-6);
    }

    #[test]
    fn non_square_images_turn_by_half_turns_only() {
        let image = Tensor::arange(12, (Kind::Float, Device::Cpu)).reshape([1, 1, 3, 4]);
        let (out, _) =
            Draws { quarter_turns: 1, ..nothing() }.apply(&off(), image.shallow_clone(), None);
        assert!(equal(&out, &image), "an odd quarter turn is skipped");
        let (out, _) =
            Draws { quarter_turns: 3, ..nothing() }.apply(&off(), image.shallow_clone(), None);
        assert!(equal(&out, &image.rot90(2, [2, 3])), "three quarters keep their half turn");
    }

    #[test]
    fn probabilities_are_honoured_over_many_draws() {
        let p = AugmentParams { flip_prob: 0.25, ..off() };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let flips = (0..4000).filter(|_| Draws::new(&p, &mut rng).flip_x).count();
        assert!((900..1100).contains(&flips), "{flips} of 4000 at p = 0.25");
    }
}
