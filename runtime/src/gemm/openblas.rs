//! OpenBLAS's `sgemm` on CPU tensors, for the products of `GemmConv` that
//! the AVX2 kernels do not take (`super`'s table). Linked only where
//! `make venv` installed the PyPI `scipy-openblas32` wheel
//! (`cfg(lvc_openblas)`, set by the build script); elsewhere [`available`]
//! is false and those products run libtorch's `mm`.

use tch::Tensor;

/// Whether OpenBLAS was linked into this build.
pub fn available() -> bool {
    cfg!(lvc_openblas)
}

/// What runs the CPU GEMMs of `GemmConv`, for `lvc time` and the bench.
pub fn describe() -> String {
    ffi::describe()
}

/// OpenBLAS's own thread pool, sized as libtorch's (`device::select`).
pub fn set_num_threads(threads: usize) {
    ffi::set_num_threads(threads);
}

/// `c ← alpha · op(a) · op(b) + beta · c` on contiguous CPU float matrices,
/// `op` transposing when asked. Returns `false` (and leaves `c` alone) when
/// OpenBLAS is not linked or an operand does not qualify (device, dtype,
/// layout, a size beyond 32-bit BLAS); the caller then uses libtorch.
pub fn sgemm(
    transpose_a: bool,
    transpose_b: bool,
    alpha: f32,
    a: &Tensor,
    b: &Tensor,
    beta: f32,
    c: &mut Tensor,
) -> bool {
    let plain = super::is_cpu_f32_matrix;
    if !available() || !plain(a) || !plain(b) || !plain(c) {
        return false;
    }
    let (a_rows, a_cols) = dims(a);
    let (b_rows, b_cols) = dims(b);
    let (m, k) = if transpose_a { (a_cols, a_rows) } else { (a_rows, a_cols) };
    let (k_b, n) = if transpose_b { (b_cols, b_rows) } else { (b_rows, b_cols) };
    if k != k_b || dims(c) != (m, n) {
        return false;
    }
    let fits = |v: i64| i32::try_from(v).is_ok();
    if ![m, n, k, a_cols, b_cols].into_iter().all(fits)
        || a.numel() == 0
        || b.numel() == 0
        || c.numel() == 0
    {
        return false;
    }
    // SAFETY: all three are contiguous row-major float32 CPU tensors whose
    // shapes were checked against (m, n, k) above; the leading dimensions are
    // their column counts; `c` is borrowed mutably, so no other Rust code
    // reads it during the call. The casts fit (checked above).
    unsafe {
        ffi::sgemm(
            transpose_a,
            transpose_b,
            [m as i32, n as i32, k as i32],
            alpha,
            (a.data_ptr() as *const f32, a_cols as i32),
            (b.data_ptr() as *const f32, b_cols as i32),
            beta,
            (c.data_ptr() as *mut f32, n as i32),
        );
    }
    true
}

fn dims(t: &Tensor) -> (i64, i64) {
    let s = t.size();
    (s[0], s[1])
}

#[cfg(lvc_openblas)]
mod ffi {
    use std::ffi::{c_char, c_int, CStr};

    const ROW_MAJOR: c_int = 101;
    const NO_TRANS: c_int = 111;
    const TRANS: c_int = 112;

    extern "C" {
        fn scipy_cblas_sgemm(
            order: c_int,
            trans_a: c_int,
            trans_b: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            alpha: f32,
            a: *const f32,
            lda: c_int,
            b: *const f32,
            ldb: c_int,
            beta: f32,
            c: *mut f32,
            ldc: c_int,
        );
        fn scipy_openblas_set_num_threads(threads: c_int);
        fn scipy_openblas_get_config() -> *const c_char;
        fn scipy_openblas_get_corename() -> *const c_char;
    }

    /// # Safety
    /// The pointers must address row-major matrices of the given sizes and
    /// leading dimensions; `c` must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)] // cblas_sgemm's own, paired where they belong together
    pub unsafe fn sgemm(
        transpose_a: bool,
        transpose_b: bool,
        [m, n, k]: [i32; 3],
        alpha: f32,
        (a, lda): (*const f32, i32),
        (b, ldb): (*const f32, i32),
        beta: f32,
        (c, ldc): (*mut f32, i32),
    ) {
        let op = |t: bool| if t { TRANS } else { NO_TRANS };
        scipy_cblas_sgemm(
            ROW_MAJOR,
            op(transpose_a),
            op(transpose_b),
            m,
            n,
            k,
            alpha,
            a,
            lda,
            b,
            ldb,
            beta,
            c,
            ldc,
        );
    }

    pub fn set_num_threads(threads: usize) {
        // SAFETY: a plain setter of OpenBLAS's pool size.
        unsafe { scipy_openblas_set_num_threads(c_int::try_from(threads.max(1)).unwrap_or(1)) }
    }

    pub fn describe() -> String {
        // SAFETY: both return pointers to static NUL-terminated strings.
        let text = |p: *const c_char| {
            if p.is_null() {
                String::new()
            } else {
                unsafe { CStr::from_ptr(p) }.to_string_lossy().trim().to_string()
            }
        };
        unsafe {
            format!(
                "{} ({} kernels)",
                text(scipy_openblas_get_config()),
                text(scipy_openblas_get_corename())
            )
        }
    }
}

#[cfg(not(lvc_openblas))]
mod ffi {
    /// Never called: [`super::available`] is false in this build.
    pub unsafe fn sgemm(
        _: bool,
        _: bool,
        _: [i32; 3],
        _: f32,
        _: (*const f32, i32),
        _: (*const f32, i32),
        _: f32,
        _: (*mut f32, i32),
    ) {
    }

    pub fn set_num_threads(_threads: usize) {}

    pub fn describe() -> String {
        "libtorch (OpenBLAS not linked: run `make venv` and rebuild)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::matrix;
    use tch::{Device, Kind};

    /// Every transpose combination, with alpha and beta, against libtorch.
    #[test]
    fn sgemm_matches_libtorch_in_every_layout() {
        if !available() {
            eprintln!("OpenBLAS not linked in this build; skipping");
            return;
        }
        let (m, n, k) = (7, 5, 11);
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = if ta { matrix(k, m, 0.3) } else { matrix(m, k, 0.3) };
            let b = if tb { matrix(n, k, 0.7) } else { matrix(k, n, 0.7) };
            let op = |t: &Tensor, tr: bool| if tr { t.tr() } else { t.shallow_clone() };
            let c0 = matrix(m, n, 1.1);
            let want = op(&a, ta).mm(&op(&b, tb)) * 2.0 + &c0 * 0.5;
            let mut c = c0.copy();
            assert!(sgemm(ta, tb, 2.0, &a, &b, 0.5, &mut c));
            let diff = f64::try_from((c - want).abs().max()).unwrap();
            assert!(diff < 1e-5, "transpose ({ta}, {tb}): max difference {diff}");
        }
    }

    #[test]
    fn operands_that_do_not_qualify_are_left_to_libtorch() {
        let a = matrix(3, 4, 0.3);
        let mut c = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
        // Shape mismatch, a non-contiguous operand, a double operand.
        assert!(!sgemm(false, false, 1.0, &a, &matrix(3, 2, 0.1), 0.0, &mut c));
        assert!(!sgemm(false, false, 1.0, &a, &matrix(2, 4, 0.1).tr(), 0.0, &mut c));
        assert!(!sgemm(
            false,
            false,
            1.0,
            &a,
            &matrix(4, 2, 0.1).to_kind(Kind::Double),
            0.0,
            &mut c
        ));
        assert!(f64::try_from(c.abs().sum(Kind::Float)).unwrap() == 0.0);
        assert_eq!(sgemm(false, false, 1.0, &a, &matrix(4, 2, 0.1), 0.0, &mut c), available());
    }
}
