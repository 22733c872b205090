//! The CPU GEMMs of the layers that carry their own backward (`GemmConv`:
//! FCN's fc6, fc7 and score layers). Each product goes to the code measured
//! fastest for its shape on the 2-core AMD EPYC machines this project runs
//! on. `cargo bench -p lvc-runtime --bench gemm` (`make bench-gemm`) times
//! them side by side; a quiet run (ms, fastest of 7, two threads, into a
//! reused output; libtorch's bundled MKL / OpenBLAS 0.3.34 / `avx2`):
//!
//! | product | shape | MKL | OpenBLAS | `avx2` |
//! |---|---|---|---|---|
//! | fc6 forward, batch 1 | `[4096×9216]·[9216×81]` | 58.5 | 46.1 | 35.2 |
//! | fc6 weight gradient | `[4096×81]·[81×9216]` | 52.8 | 44.4 | 33.1 |
//! | fc6 input gradient | `[81×4096]·[4096×9216]` | 70.5 | 40.7 | – |
//! | fc7 forward | `[4096×4096]·[4096×81]` | 25.7 | 21.2 | 15.5 |
//! | fc7 weight gradient | `[4096×81]·[81×4096]` | 24.1 | 20.8 | 16.3 |
//! | FCN-8s fc6 forward | `[4096×25088]·[25088×81]` | 151.2 | 142.2 | 96.1 |
//! | fc6 forward, batch 4 | `[4096×9216]·[9216×324]` | 193.9 | 142.1 | 142.1 |
//! | fc6 weight gradient, batch 4 | `[4096×324]·[324×9216]` | 175.2 | 139.7 | 130.6 |
//!
//! * `avx2`: a right operand of at most [`NARROW`] columns (`C = A·B`) or
//!   an inner dimension of at most [`NARROW`] (`C = A·Bᵀ`), where the CPU
//!   has AVX2 and FMA. At batch 4 (324 columns) the two are even in this
//!   run and OpenBLAS was up to 10 % faster in others, hence the bound. The
//!   input gradient stays with OpenBLAS: a kernel that packs 16-column
//!   panels of the weights on the fly reached 126 GFLOP/s against
//!   OpenBLAS's 142.
//! * [`openblas`] for every other product, where `make venv` installed it;
//! * libtorch's `mm` otherwise.

#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod openblas;

use tch::{Device, Kind, Tensor};

/// The narrow side's bound for the AVX2 kernels (columns of B, or the inner
/// dimension of `A·Bᵀ`).
pub const NARROW: i64 = 128;

/// Products below this many multiply-adds stay with OpenBLAS / libtorch:
/// the AVX2 kernels start their threads per call.
const MIN_MULTIPLY_ADDS: i64 = 1 << 22;

/// What computes one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// `avx2::narrow_right`: `C = A·B`, B narrow.
    NarrowRight,
    /// `avx2::short_inner`: `C = A·Bᵀ`, short inner dimension.
    ShortInner,
    OpenBlas,
    Libtorch,
}

/// Whether the own-backward GEMM paths run on this build and CPU (else the
/// layers go through libtorch and autograd).
pub fn available() -> bool {
    openblas::available() || avx2_available()
}

/// Whether this CPU runs the AVX2 kernels (AVX2 and FMA).
pub fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return avx2::supported();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// What runs the CPU GEMMs of `GemmConv`, for `lvc time` and the bench.
pub fn describe() -> String {
    let rest =
        if openblas::available() { openblas::describe() } else { "libtorch's mm".to_string() };
    if avx2_available() {
        format!("lvc's AVX2 kernels for products with a side ≤ {NARROW}; otherwise {rest}")
    } else {
        rest
    }
}

/// Sizes the thread pools of the GEMMs (the AVX2 kernels follow libtorch's
/// thread count).
pub fn set_num_threads(threads: usize) {
    openblas::set_num_threads(threads);
}

/// The kernel for `op(a)·op(b)` with `op(a)` `[m×k]`, `op(b)` `[k×n]`.
pub fn choose(transpose_a: bool, transpose_b: bool, [m, n, k]: [i64; 3]) -> Kernel {
    let big = m.saturating_mul(n).saturating_mul(k) >= MIN_MULTIPLY_ADDS;
    if big && !transpose_a && avx2_available() {
        if !transpose_b && n <= NARROW {
            return Kernel::NarrowRight;
        }
        if transpose_b && k <= NARROW {
            return Kernel::ShortInner;
        }
    }
    if openblas::available() {
        Kernel::OpenBlas
    } else {
        Kernel::Libtorch
    }
}

/// `op(a)·op(b)` (each optionally transposed) as an `[m, n]` tensor, by
/// the kernel [`choose`] picks: written into `into` where that is a
/// contiguous `[m, n]` float32 tensor on the same device (spent storage the
/// caller hands over), into a new tensor otherwise.
pub fn product(
    transpose_a: bool,
    a: &Tensor,
    transpose_b: bool,
    b: &Tensor,
    into: Option<Tensor>,
) -> Tensor {
    let kernel = choose(transpose_a, transpose_b, product_dims(transpose_a, a, transpose_b, b));
    product_on(kernel, transpose_a, a, transpose_b, b, into)
}

/// [`product`] on a given kernel (the GEMM bench compares them). CPU
/// float32 contiguous operands only reach the own kernels and OpenBLAS; a
/// kernel that does not take the operands (an AVX2 kernel for the other
/// transpose, OpenBLAS where it is not linked) leaves them to libtorch's
/// `mm`.
pub fn product_on(
    kernel: Kernel,
    transpose_a: bool,
    a: &Tensor,
    transpose_b: bool,
    b: &Tensor,
    into: Option<Tensor>,
) -> Tensor {
    let [m, n, k] = product_dims(transpose_a, a, transpose_b, b);
    let mut c = match into.filter(|c| is_cpu_f32_matrix(c) && c.size() == [m, n]) {
        Some(c) => c,
        None => {
            let c = Tensor::empty([m, n], (Kind::Float, a.device()));
            advise_huge_pages(&c);
            c
        }
    };
    if is_cpu_f32_matrix(a) && is_cpu_f32_matrix(b) {
        let done = match kernel {
            Kernel::NarrowRight => {
                !transpose_a && !transpose_b && avx2_product(false, a, b, &mut c, [m, n, k])
            }
            Kernel::ShortInner => {
                !transpose_a && transpose_b && avx2_product(true, a, b, &mut c, [m, n, k])
            }
            Kernel::OpenBlas => openblas::sgemm(transpose_a, transpose_b, 1.0, a, b, 0.0, &mut c),
            Kernel::Libtorch => false,
        };
        if done {
            return c;
        }
    }
    let op = |t: &Tensor, transpose: bool| if transpose { t.tr() } else { t.shallow_clone() };
    let (a, b) = (op(a, transpose_a), op(b, transpose_b));
    // Into `c` where libtorch takes it (not for operands of another dtype,
    // whose product keeps that dtype).
    a.f_mm_out(&c, &b).unwrap_or_else(|_| a.mm(&b))
}

/// A contiguous 2-D float32 CPU tensor: what the own kernels and OpenBLAS
/// take.
fn is_cpu_f32_matrix(t: &Tensor) -> bool {
    t.device() == Device::Cpu && t.kind() == Kind::Float && t.dim() == 2 && t.is_contiguous()
}

/// `[m, n, k]` of `op(a)·op(b)`.
fn product_dims(transpose_a: bool, a: &Tensor, transpose_b: bool, b: &Tensor) -> [i64; 3] {
    let dims = |t: &Tensor| (t.size()[0], t.size()[1]);
    let (m, k) = if transpose_a { (dims(a).1, dims(a).0) } else { dims(a) };
    let n = if transpose_b { dims(b).0 } else { dims(b).1 };
    [m, n, k]
}

/// Asks the kernel to back a freshly allocated, untouched CPU tensor with
/// transparent huge pages (where it has them in `madvise` mode, as on these
/// machines): a GEMM output that is a new mapping (fc6's weight gradient,
/// 151 MB, in a pass with no spent storage to write into) then takes 75
/// page faults instead of 37 000 (measured on fc6's weight gradient with
/// OpenBLAS: 66 ms with 4 KB pages, 43 ms into a reused buffer). libtorch's
/// own switch (`THP_MEM_ALLOC_ENABLE`) does this for every block ≥ 2 MB,
/// which measured slower for FCN-8s and costs 240 MB more peak RSS at batch
/// 4; only the blocks given here get it. Blocks under 8 MB are left.
fn advise_huge_pages(t: &Tensor) {
    const HUGE: usize = 2 << 20;
    let bytes = t.numel() * 4;
    if t.device() != Device::Cpu || t.kind() != Kind::Float || bytes < 4 * HUGE {
        return;
    }
    let start = t.data_ptr() as usize;
    let (first, end) = (start.div_ceil(HUGE) * HUGE, (start + bytes) / HUGE * HUGE);
    if end > first {
        // SAFETY: madvise only advises; the range lies inside the tensor's
        // own allocation, page-aligned. A refusal (EINVAL where the kernel
        // has no THP) changes nothing, so its result is not needed.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

/// Runs the AVX2 kernel for `a·b` or `a·bᵀ`; `false` where the CPU lacks
/// AVX2/FMA or the operands do not line up (the caller falls back).
#[cfg(target_arch = "x86_64")]
fn avx2_product(
    transpose_b: bool,
    a: &Tensor,
    b: &Tensor,
    c: &mut Tensor,
    [m, n, k]: [i64; 3],
) -> bool {
    if !avx2::supported() {
        return false;
    }
    let threads = crate::parallel::threads();
    let (Ok(m), Ok(n), Ok(k)) = (usize::try_from(m), usize::try_from(n), usize::try_from(k)) else {
        return false;
    };
    let (Some(a), Some(b)) = (crate::host::cpu_f32(a), crate::host::cpu_f32(b)) else {
        return false;
    };
    let Some(c) = crate::host::cpu_f32_mut(c) else { return false };
    if a.len() != m * k || b.len() != k * n || c.len() != m * n {
        return false;
    }
    if transpose_b {
        avx2::short_inner(m, n, k, a, b, c, threads);
    } else {
        avx2::narrow_right(m, n, k, a, b, c, threads);
    }
    true
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_product(_: bool, _: &Tensor, _: &Tensor, _: &mut Tensor, _: [i64; 3]) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[rows, cols]` matrix of `sin(i·seed)`, for the GEMM tests here
    /// and in `openblas`.
    pub(super) fn matrix(rows: i64, cols: i64, seed: f64) -> Tensor {
        ((Tensor::arange(rows * cols, (Kind::Float, Device::Cpu)) * seed).sin())
            .reshape([rows, cols])
    }

    #[test]
    fn fcn_shapes_take_the_measured_kernels() {
        if !avx2_available() {
            eprintln!("no AVX2/FMA on this CPU; skipping");
            return;
        }
        let rest = if openblas::available() { Kernel::OpenBlas } else { Kernel::Libtorch };
        // fc6 at batch 1: forward, weight gradient, input gradient.
        assert_eq!(choose(false, false, [4096, 81, 9216]), Kernel::NarrowRight);
        assert_eq!(choose(false, true, [4096, 9216, 81]), Kernel::ShortInner);
        assert_eq!(choose(true, false, [81, 9216, 4096]), rest);
        // Batch 4 (324 columns), and products too small for threads.
        assert_eq!(choose(false, false, [4096, 324, 9216]), rest);
        assert_eq!(choose(false, true, [4096, 9216, 324]), rest);
        assert_eq!(choose(false, false, [8, 81, 1000]), rest);
    }

    /// Every kernel on every transpose against libtorch's `mm`, through
    /// `product` (the chosen kernel) and `product_on` (each kernel, falling
    /// back where it does not take the operands), also into spent storage.
    #[test]
    fn products_match_libtorch() {
        for (transpose_a, transpose_b, [m, n, k]) in [
            (false, false, [700, 81, 9000]),
            (false, true, [700, 1000, 81]),
            (true, false, [81, 500, 700]),
            (false, false, [7, 5, 11]),
        ] {
            let a = if transpose_a { matrix(k, m, 0.3) } else { matrix(m, k, 0.3) };
            let b = if transpose_b { matrix(n, k, 0.7) } else { matrix(k, n, 0.7) };
            let op = |t: &Tensor, tr: bool| if tr { t.tr() } else { t.shallow_clone() };
            let want = op(&a, transpose_a).mm(&op(&b, transpose_b));
            // Rounding grows with Σ|a·b|, not with the result.
            let scale =
                f64::try_from(op(&a, transpose_a).abs().mm(&op(&b, transpose_b).abs()).max())
                    .unwrap();
            let spent = Tensor::full([m, n], f64::NAN, (Kind::Float, Device::Cpu));
            let runs = [
                ("chosen".to_string(), product(transpose_a, &a, transpose_b, &b, None)),
                (
                    "chosen, into spent storage".to_string(),
                    product(transpose_a, &a, transpose_b, &b, Some(spent)),
                ),
            ]
            .into_iter()
            .chain(
                [Kernel::NarrowRight, Kernel::ShortInner, Kernel::OpenBlas, Kernel::Libtorch].map(
                    |kernel| {
                        (
                            format!("{kernel:?}"),
                            product_on(kernel, transpose_a, &a, transpose_b, &b, None),
                        )
                    },
                ),
            );
            for (how, got) in runs {
                let diff = f64::try_from((got - &want).abs().max()).unwrap();
                assert!(
                    diff <= 1e-6 * scale,
                    "{how} for {:?}: {diff} (Σ|a·b| up to {scale})",
                    [m, n, k]
                );
            }
        }
    }
}
