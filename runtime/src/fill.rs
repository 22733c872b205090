//! Caffe's fillers (`include/caffe/filler.hpp`), value for value, drawing
//! from a seeded ChaCha stream instead of Caffe's global mt19937 (the
//! goldens ship caffemodels, so bit-identical draws are not needed; the same
//! seed always gives the same weights here).

use lvc_compiler::ops::FillerDef;
use rand::Rng;
use tch::Tensor;

use crate::error::RuntimeError;

/// The RNG every filler draws from. Seed it once per net
/// (`ChaCha8Rng::seed_from_u64(seed)`) and fill params in layer order.
pub type FillRng = rand_chacha::ChaCha8Rng;

/// Caffe's `fan_in`/`fan_out`: `count / shape[0]` and `count / shape[1]`
/// (`count` for 1-axis blobs). For a Deconvolution weight
/// `[C_in, C_out/g, k, k]` this makes "fan_in" come from C_out, as in Caffe.
pub fn fans(shape: &[i64]) -> Option<(f64, f64)> {
    let count = lvc_compiler::ops::checked_product(shape)?;
    let first = *shape.first()?;
    if first <= 0 {
        return None;
    }
    let fan_in = (count / first) as f64;
    let fan_out = match shape.get(1) {
        Some(&second) if second > 0 => (count / second) as f64,
        Some(_) => return None,
        None => count as f64,
    };
    Some((fan_in, fan_out))
}

/// A tensor of `shape` filled as Caffe's filler `filler` would, on the CPU
/// in f32. Fails (never panics) where Caffe would abort.
pub fn fill(filler: &FillerDef, shape: &[i64], rng: &mut FillRng) -> Result<Tensor, RuntimeError> {
    let fail = |reason: &str, help: &str| RuntimeError::Filler {
        kind: filler.kind.clone(),
        shape: shape.to_vec(),
        reason: reason.to_string(),
        help: help.to_string(),
    };
    if shape.iter().any(|&d| d < 0) {
        return Err(fail("negative dimension", "check the layer's shape"));
    }
    if filler.kind != "gaussian" && filler.sparse != -1 {
        return Err(fail(
            "sparsity is only supported by the gaussian filler",
            "remove `sparse` or use `type: \"gaussian\"`",
        ));
    }
    // Checked and fallible: a hostile shape is an error here, never a
    // `capacity overflow` panic or an aborting allocation.
    let count = lvc_compiler::ops::checked_product(shape)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            fail("its element count overflows", "check the layer's shape with `lvc check`")
        })?;
    let mut values: Vec<f32> = Vec::new();
    // One more: the gaussian draws values in pairs.
    if values.try_reserve_exact(count.saturating_add(1)).is_err() {
        return Err(fail(
            &format!("cannot allocate {count} float32 values"),
            "the blob does not fit this machine's memory; make the layer smaller",
        ));
    }
    match filler.kind.as_str() {
        "constant" => values.resize(count, filler.value as f32),
        "uniform" => uniform(rng, count, filler.min, filler.max, &mut values),
        "gaussian" => {
            gaussian(rng, count, filler.mean, filler.std, &mut values);
            if filler.sparse >= 0 {
                let outputs = *shape.first().ok_or_else(|| {
                    fail(
                        "a sparse gaussian filler needs at least one axis",
                        "give the blob a shape",
                    )
                })?;
                let p = filler.sparse as f64 / outputs as f64;
                if !(0.0..=1.0).contains(&p) {
                    return Err(fail(
                        &format!(
                            "sparse {} over {outputs} outputs is not a probability",
                            filler.sparse
                        ),
                        "use sparse ≤ the number of outputs (shape[0])",
                    ));
                }
                for x in values.iter_mut() {
                    if !rng.gen_bool(p) {
                        *x = 0.0;
                    }
                }
            }
        }
        "xavier" | "msra" => {
            let (fan_in, fan_out) = fans(shape).ok_or_else(|| {
                fail("needs at least one non-empty axis", "give the blob a shape")
            })?;
            let n = match filler.variance_norm.as_str() {
                "FAN_OUT" => fan_out,
                "AVERAGE" => (fan_in + fan_out) / 2.0,
                _ => fan_in,
            };
            if filler.kind == "xavier" {
                let scale = (3.0 / n).sqrt();
                uniform(rng, count, -scale, scale, &mut values);
            } else {
                gaussian(rng, count, 0.0, (2.0 / n).sqrt(), &mut values);
            }
        }
        "positive_unitball" => {
            uniform(rng, count, 0.0, 1.0, &mut values);
            let rows = usize::try_from(*shape.first().unwrap_or(&1)).unwrap_or(1).max(1);
            for row in values.chunks_mut((count / rows).max(1)) {
                let sum: f32 = row.iter().sum();
                row.iter_mut().for_each(|x| *x /= sum);
            }
        }
        "bilinear" => {
            if shape.len() != 4 {
                return Err(fail(
                    "the bilinear filler needs a 4-axis blob",
                    "use it on a 2-D (De)Convolution weight",
                ));
            }
            if shape[2] != shape[3] {
                return Err(fail(
                    "the bilinear filler needs a square kernel",
                    "use kernel_h == kernel_w",
                ));
            }
            bilinear(shape[3] as usize, count, &mut values);
        }
        other => {
            return Err(RuntimeError::Filler {
                kind: other.to_string(),
                shape: shape.to_vec(),
                reason: "unknown filler type".to_string(),
                help:
                    "use constant, uniform, gaussian, xavier, msra, positive_unitball or bilinear"
                        .to_string(),
            })
        }
    }
    Tensor::f_from_slice(&values)
        .and_then(|t| t.f_reshape(shape))
        .map_err(RuntimeError::torch(format!("filling a {:?} blob", shape)))
}

/// The fillers append `count` values to `out`, whose capacity the caller
/// reserved (so they never reallocate).
fn uniform(rng: &mut FillRng, count: usize, min: f64, max: f64, out: &mut Vec<f32>) {
    out.extend((0..count).map(|_| (min + (max - min) * rng.gen::<f64>()) as f32));
}

/// Normal draws by the Box–Muller transform (both outputs used).
fn gaussian(rng: &mut FillRng, count: usize, mean: f64, std: f64, out: &mut Vec<f32>) {
    while out.len() < count {
        let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]: ln is finite
        let u2: f64 = rng.gen();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        out.push((mean + std * r * theta.cos()) as f32);
        out.push((mean + std * r * theta.sin()) as f32);
    }
    out.truncate(count);
}

/// Caffe's bilinear kernel, repeated over every (c_in, c_out) slice, with
/// Caffe's float arithmetic: `f = ceil(k/2)`, `c = (k-1)/(2f)`.
fn bilinear(k: usize, count: usize, out: &mut Vec<f32>) {
    let f = (k as f64 / 2.0).ceil() as f32;
    let c = ((k as f64 - 1.0) / (2.0 * f as f64)) as f32;
    out.extend((0..count).map(|i| {
        let x = (i % k) as f32;
        let y = ((i / k) % k) as f32;
        (1.0 - (x / f - c).abs()) * (1.0 - (y / f - c).abs())
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn def(kind: &str) -> FillerDef {
        FillerDef {
            kind: kind.to_string(),
            value: 0.0,
            min: 0.0,
            max: 1.0,
            mean: 0.0,
            std: 1.0,
            sparse: -1,
            variance_norm: "FAN_IN".to_string(),
        }
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    fn stats(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    /// Shapes no machine holds are errors, never a `capacity overflow`
    /// panic or an aborting allocation (the IR refuses such shapes first;
    /// this is the filler's own guard).
    #[test]
    fn impossible_blobs_are_errors() {
        let mut rng = FillRng::seed_from_u64(1);
        for shape in [&[i64::MAX, 4][..], &[4_000_000_000, 3, 60_000, 60_000], &[1 << 40, 1 << 20]]
        {
            for kind in ["constant", "gaussian", "xavier"] {
                let err = fill(&def(kind), shape, &mut rng).expect_err("too large");
                assert!(matches!(err, RuntimeError::Filler { .. }), "{kind} {shape:?}: {err}");
            }
        }
    }

    #[test]
    fn constant_fills_the_value() {
        let mut rng = FillRng::seed_from_u64(1);
        let t = fill(&FillerDef { value: 0.1, ..def("constant") }, &[3], &mut rng).unwrap();
        assert_eq!(t.size(), vec![3]);
        assert_eq!(values(&t), vec![0.1f32; 3]);
    }

    #[test]
    fn gaussian_has_the_requested_moments_and_is_seeded() {
        let filler = FillerDef { mean: 0.5, std: 0.01, ..def("gaussian") };
        let a = fill(&filler, &[96, 1, 11, 11], &mut FillRng::seed_from_u64(1234)).unwrap();
        let b = fill(&filler, &[96, 1, 11, 11], &mut FillRng::seed_from_u64(1234)).unwrap();
        let c = fill(&filler, &[96, 1, 11, 11], &mut FillRng::seed_from_u64(1235)).unwrap();
        assert_eq!(values(&a), values(&b));
        assert_ne!(values(&a), values(&c));
        let (mean, std) = stats(&values(&a));
        assert!((mean - 0.5).abs() < 1e-3, "mean {mean}");
        assert!((std - 0.01).abs() < 5e-4, "std {std}");
    }

    #[test]
    fn sparse_gaussian_keeps_about_sparse_over_outputs() {
        let filler = FillerDef { sparse: 5, ..def("gaussian") };
        let t = fill(&filler, &[20, 1000], &mut FillRng::seed_from_u64(7)).unwrap();
        let nonzero = values(&t).iter().filter(|&&x| x != 0.0).count() as f64 / 20000.0;
        assert!((nonzero - 0.25).abs() < 0.02, "{nonzero}");
        let too_sparse = FillerDef { sparse: 30, ..def("gaussian") };
        assert!(fill(&too_sparse, &[20, 3], &mut FillRng::seed_from_u64(7)).is_err());
    }

    #[test]
    fn fans_follow_caffe_including_the_deconvolution_quirk() {
        assert_eq!(fans(&[96, 3, 11, 11]), Some((363.0, 11616.0)));
        // Deconvolution weight [C_in=21, C_out=21, 64, 64]: Caffe's fan_in is C_out·k·k.
        assert_eq!(fans(&[21, 7, 4, 4]), Some((112.0, 336.0)));
        assert_eq!(fans(&[10]), Some((1.0, 10.0)));
        assert_eq!(fans(&[]), None);
    }

    #[test]
    fn xavier_and_msra_scale_with_the_chosen_fan() {
        let shape = [64, 32, 3, 3]; // fan_in 288, fan_out 576
        let x = values(&fill(&def("xavier"), &shape, &mut FillRng::seed_from_u64(3)).unwrap());
        let bound = (3.0f64 / 288.0).sqrt();
        assert!(x.iter().all(|&v| (v as f64).abs() <= bound));
        assert!(x.iter().any(|&v| (v as f64).abs() > 0.9 * bound));
        let avg = FillerDef { variance_norm: "AVERAGE".into(), ..def("msra") };
        let m = values(&fill(&avg, &shape, &mut FillRng::seed_from_u64(3)).unwrap());
        let (_, std) = stats(&m);
        let want = (2.0f64 / 432.0).sqrt();
        assert!((std - want).abs() < 0.03 * want, "{std} vs {want}");
        let out = FillerDef { variance_norm: "FAN_OUT".into(), ..def("xavier") };
        let o = values(&fill(&out, &shape, &mut FillRng::seed_from_u64(3)).unwrap());
        assert!(o.iter().all(|&v| (v as f64).abs() <= (3.0f64 / 576.0).sqrt()));
    }

    #[test]
    fn uniform_stays_in_range() {
        let filler = FillerDef { min: -2.0, max: 3.0, ..def("uniform") };
        let v = values(&fill(&filler, &[1000], &mut FillRng::seed_from_u64(9)).unwrap());
        assert!(v.iter().all(|&x| (-2.0..3.0).contains(&x)));
        let (mean, _) = stats(&v);
        assert!((mean - 0.5).abs() < 0.15);
    }

    #[test]
    fn positive_unitball_rows_sum_to_one() {
        let v = values(
            &fill(&def("positive_unitball"), &[4, 5, 2], &mut FillRng::seed_from_u64(2)).unwrap(),
        );
        for row in v.chunks(10) {
            assert!(row.iter().all(|&x| x >= 0.0));
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn bilinear_matches_fcn_upsample_filt_in_every_slice() {
        let t = fill(&def("bilinear"), &[2, 3, 4, 4], &mut FillRng::seed_from_u64(0)).unwrap();
        let v = values(&t);
        let profile = [0.25f32, 0.75, 0.75, 0.25];
        for slice in v.chunks(16) {
            for (i, &w) in slice.iter().enumerate() {
                assert_eq!(w, profile[i / 4] * profile[i % 4]);
            }
        }
        // k = 63: FCN-AlexNet's upscore; symmetric, peak 1 at (31, 31).
        let big = values(
            &fill(&def("bilinear"), &[1, 1, 63, 63], &mut FillRng::seed_from_u64(0)).unwrap(),
        );
        assert_eq!(big[31 * 63 + 31], 1.0);
        assert_eq!(big[0], big[62 * 63 + 62]);
        assert!(big.iter().all(|&w| w > 0.0 && w <= 1.0));
    }

    #[test]
    fn bad_requests_are_errors_not_panics() {
        let mut rng = FillRng::seed_from_u64(0);
        assert!(fill(&def("bilinear"), &[2, 3, 4], &mut rng).is_err());
        assert!(fill(&def("bilinear"), &[2, 3, 4, 5], &mut rng).is_err());
        assert!(fill(&def("xavier"), &[], &mut rng).is_err());
        assert!(fill(&def("glorot"), &[3], &mut rng)
            .unwrap_err()
            .to_string()
            .contains("unknown filler"));
        assert!(fill(&FillerDef { sparse: 2, ..def("xavier") }, &[3, 3], &mut rng).is_err());
    }
}
