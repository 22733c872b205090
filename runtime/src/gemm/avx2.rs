//! Two GEMM shapes written out for AVX2 + FMA, because OpenBLAS runs them
//! well below its square-matrix rate on these machines (see `super`): a
//! product whose right operand has few columns (`C = A·B`, fc6's forward
//! at batch 1: `[4096×9216]·[9216×81]`) and one whose inner dimension is
//! short (`C = A·Bᵀ`, fc6's weight gradient: `[4096×81]·[81×9216]`).
//!
//! Both are built on one micro-tile: 6 rows × 16 columns of C held in
//! twelve registers; each step of the inner dimension broadcasts one value
//! of A per row and loads 16 values of B from a packed panel (the B
//! operand is small in both shapes, so packing it costs little). A is read
//! where it lies, never packed: in the forward it is the 151 MB weight
//! matrix, streamed once from memory, which is what a general GEMM's
//! packing of A spends its extra pass on.

use crate::parallel::for_each_run;
use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_loadu_ps,
    _mm256_setzero_ps, _mm256_storeu_ps, _mm256_stream_ps, _mm_sfence,
};

/// Rows of C per tile (values of A broadcast per step).
const MR: usize = 6;
/// Columns of C per tile (two 8-float vectors of B per step).
const NR: usize = 16;
/// Leftover columns of a narrow product (`columns % 16`) up to this many
/// are computed as dot products along the inner dimension, which costs
/// about 1/14 of a 16-column panel per column; more are a zero-padded
/// panel. FCN-AlexNet's 81 columns at batch 1 leave one.
const DOT_COLUMNS: usize = 4;
/// Inner-dimension block of the narrow product: partial sums of at most
/// this many products are added into C (measured on fc6: 167 GFLOP/s at
/// 4096 against 170 unblocked, 158 at 2048), which also bounds how many
/// terms one float32 accumulator sums.
const KC: usize = 4096;
/// B panels per block of the short-inner product: 64 panels of 81 × 16
/// floats (332 KB) stay in a core's 512 KB L2 while every row of A passes.
const PANELS_PER_BLOCK: usize = 64;
/// Outputs at least this large are written with non-temporal stores: they
/// cannot stay in cache anyway (fc6's weight gradient is 151 MB), and
/// streaming skips reading each line before writing it.
const STREAM_BYTES: usize = 8 << 20;

/// Whether this CPU has the instructions the kernels use.
pub fn supported() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[derive(Clone, Copy, PartialEq)]
enum Store {
    Overwrite,
    /// Overwrite with non-temporal stores; needs 32-byte aligned rows.
    Stream,
    Accumulate,
}

/// `C[R×16] (=|+=) Σ_k a(r, k) · panel[k][0..16]` where
/// `a(r, k) = a[r·row_step + k·k_step]`.
///
/// # Safety
/// AVX2 and FMA present; `a` readable at every `a(r, k)` for `r < R`,
/// `k < depth`; `panel` readable for `depth × 16` floats; `c` writable (and
/// readable when accumulating) at `r·ldc + j` for `r < R`, `j < 16`, and
/// 32-byte aligned on every row when streaming.
#[inline(always)]
unsafe fn tile<const R: usize>(
    depth: usize,
    (a, row_step, k_step): (*const f32, usize, usize),
    panel: *const f32,
    (c, ldc): (*mut f32, usize),
    store: Store,
) {
    let mut acc: [[__m256; 2]; R] = [[_mm256_setzero_ps(); 2]; R];
    let mut b = panel;
    for k in 0..depth {
        let b0 = _mm256_loadu_ps(b);
        let b1 = _mm256_loadu_ps(b.add(8));
        for (r, acc) in acc.iter_mut().enumerate() {
            let value = _mm256_broadcast_ss(&*a.add(r * row_step + k * k_step));
            acc[0] = _mm256_fmadd_ps(value, b0, acc[0]);
            acc[1] = _mm256_fmadd_ps(value, b1, acc[1]);
        }
        b = b.add(NR);
    }
    for (r, acc) in acc.iter().enumerate() {
        let row = c.add(r * ldc);
        match store {
            Store::Overwrite => {
                _mm256_storeu_ps(row, acc[0]);
                _mm256_storeu_ps(row.add(8), acc[1]);
            }
            Store::Stream => {
                _mm256_stream_ps(row, acc[0]);
                _mm256_stream_ps(row.add(8), acc[1]);
            }
            Store::Accumulate => {
                _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), acc[0]));
                _mm256_storeu_ps(row.add(8), _mm256_add_ps(_mm256_loadu_ps(row.add(8)), acc[1]));
            }
        }
    }
}

/// [`tile`] for `rows ≤ 6` rows and `columns ≤ 16` columns of C: a tile
/// narrower than 16 is computed into a scratch tile and copied out.
///
/// # Safety
/// As [`tile`], for `rows` rows and `columns` columns of C.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_edge(
    rows: usize,
    columns: usize,
    depth: usize,
    (a, row_step, k_step): (*const f32, usize, usize),
    panel: *const f32,
    (c, ldc): (*mut f32, usize),
    store: Store,
) {
    if columns < NR {
        let mut scratch = [0f32; MR * NR];
        tile_edge(
            rows,
            NR,
            depth,
            (a, row_step, k_step),
            panel,
            (scratch.as_mut_ptr(), NR),
            Store::Overwrite,
        );
        for r in 0..rows {
            for j in 0..columns {
                let out = c.add(r * ldc + j);
                let value = scratch[r * NR + j];
                *out = if store == Store::Accumulate { *out + value } else { value };
            }
        }
        return;
    }
    match rows {
        6 => tile::<6>(depth, (a, row_step, k_step), panel, (c, ldc), store),
        5 => tile::<5>(depth, (a, row_step, k_step), panel, (c, ldc), store),
        4 => tile::<4>(depth, (a, row_step, k_step), panel, (c, ldc), store),
        3 => tile::<3>(depth, (a, row_step, k_step), panel, (c, ldc), store),
        2 => tile::<2>(depth, (a, row_step, k_step), panel, (c, ldc), store),
        _ => tile::<1>(depth, (a, row_step, k_step), panel, (c, ldc), store),
    }
}

/// `out[r·ldo] (=|+=) Σ_k a[r·lda + k] · b[k]` for `r < rows ≤ 6`: one
/// leftover column of a narrow product, vectorised along k.
///
/// # Safety
/// AVX2 and FMA present; `a` readable for `rows` rows of `depth` floats at
/// stride `lda`, `b` for `depth` floats, `out` writable at `r·ldo`.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_column(
    rows: usize,
    depth: usize,
    (a, lda): (*const f32, usize),
    b: *const f32,
    (out, ldo): (*mut f32, usize),
    accumulate: bool,
) {
    let mut acc = [_mm256_setzero_ps(); MR];
    let vectorised = depth / 8 * 8;
    for k in (0..vectorised).step_by(8) {
        let bv = _mm256_loadu_ps(b.add(k));
        for (r, acc) in acc.iter_mut().enumerate().take(rows) {
            *acc = _mm256_fmadd_ps(_mm256_loadu_ps(a.add(r * lda + k)), bv, *acc);
        }
    }
    for (r, acc) in acc.iter().enumerate().take(rows) {
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), *acc);
        let mut sum: f32 = lanes.iter().sum();
        for k in vectorised..depth {
            sum += *a.add(r * lda + k) * *b.add(k);
        }
        let target = out.add(r * ldo);
        *target = if accumulate { *target + sum } else { sum };
    }
}

/// Makes non-temporal stores visible before the thread's results are read.
#[target_feature(enable = "avx2,fma")]
unsafe fn fence() {
    _mm_sfence();
}

/// The checks both products start with: operand sizes (`a` holds m·k
/// floats, `b` k·n, `c` m·n) and the CPU's instructions. `true` when C is
/// already the result: an empty product, or k = 0 (C is zeroed).
fn is_trivial([m, n, k]: [usize; 3], a: &[f32], b: &[f32], c: &mut [f32]) -> bool {
    assert!(
        a.len() == m * k && b.len() == k * n && c.len() == m * n,
        "operand sizes do not match {m}×{n}×{k}"
    );
    assert!(supported(), "AVX2/FMA kernels called on a CPU without them");
    if k == 0 {
        c.fill(0.0);
    }
    m == 0 || n == 0 || k == 0
}

/// `c[m×n] = a[m×k] · b[k×n]` (row-major, contiguous) for a narrow `b`,
/// on `threads` threads splitting the rows of C.
///
/// # Panics
/// If a slice's length does not match its shape, or the CPU lacks AVX2/FMA
/// (callers check [`supported`]).
pub fn narrow_right(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    threads: usize,
) {
    if is_trivial([m, n, k], a, b, c) {
        return;
    }
    let rest = n % NR;
    let dots = if rest <= DOT_COLUMNS { rest } else { 0 };
    let panels = (n - dots).div_ceil(NR);
    // B as panels [p][k][16], zero-padded past n; the dot columns [d][k].
    let mut packed = vec![0f32; panels * k * NR];
    for (p, panel) in packed.chunks_exact_mut(k * NR).enumerate() {
        let width = NR.min(n - dots - p * NR);
        for (row, out) in b.chunks_exact(n).zip(panel.chunks_exact_mut(NR)) {
            out[..width].copy_from_slice(&row[p * NR..p * NR + width]);
        }
    }
    let first_dot = panels * NR;
    let dot_columns: Vec<f32> =
        (0..dots).flat_map(|d| b.chunks_exact(n).map(move |row| row[first_dot + d])).collect();
    // Threads take runs of whole 6-row tiles of C.
    for_each_run(c, n, MR, threads, |first_row, c| {
        let rows = c.len() / n;
        for k0 in (0..k).step_by(KC) {
            let depth = KC.min(k - k0);
            let store = if k0 == 0 { Store::Overwrite } else { Store::Accumulate };
            for i in (0..rows).step_by(MR) {
                let tile_rows = MR.min(rows - i);
                let a_block = &a[(first_row + i) * k + k0..];
                let c_block = &mut c[i * n..];
                for p in 0..panels {
                    let columns = NR.min(n - dots - p * NR);
                    let panel = &packed[(p * k + k0) * NR..];
                    // SAFETY: AVX2/FMA checked above. The tile reads A at
                    // rows i..i+tile_rows (< m, row stride k), columns
                    // k0..k0+depth (≤ k); the panel's depth × 16 floats lie
                    // in `packed`; C's tile_rows × columns at column p·16 lie
                    // in this thread's chunk. Bounds follow from the shapes
                    // asserted above.
                    unsafe {
                        tile_edge(
                            tile_rows,
                            columns,
                            depth,
                            (a_block.as_ptr(), k, 1),
                            panel.as_ptr(),
                            (c_block[p * NR..].as_mut_ptr(), n),
                            store,
                        );
                    }
                }
                for d in 0..dots {
                    // SAFETY: as above; the dot column's depth floats lie in
                    // `dot_columns`, its outputs in column first_dot + d.
                    unsafe {
                        dot_column(
                            tile_rows,
                            depth,
                            (a_block.as_ptr(), k),
                            dot_columns[d * k + k0..].as_ptr(),
                            (c_block[first_dot + d..].as_mut_ptr(), n),
                            k0 > 0,
                        );
                    }
                }
            }
        }
    });
}

/// `c[m×n] = a[m×k] · b[n×k]ᵀ` (row-major, contiguous) for a short `k`, on
/// `threads` threads splitting the rows of C.
///
/// # Panics
/// As [`narrow_right`].
pub fn short_inner(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    threads: usize,
) {
    if is_trivial([m, n, k], a, b, c) {
        return;
    }
    let panels = n.div_ceil(NR);
    // Bᵀ as panels [p][k][16], zero-padded past n (a transpose of b).
    let mut packed = vec![0f32; panels * k * NR];
    for (p, panel) in packed.chunks_exact_mut(k * NR).enumerate() {
        for (j, row) in b.chunks_exact(k).skip(p * NR).take(NR).enumerate() {
            for (kk, &value) in row.iter().enumerate() {
                panel[kk * NR + j] = value;
            }
        }
    }
    let aligned = (c.as_ptr() as usize).is_multiple_of(32) && n.is_multiple_of(8);
    let stream = aligned && std::mem::size_of_val(c) >= STREAM_BYTES;
    // Threads take runs of whole 6-row tiles of C.
    for_each_run(c, n, MR, threads, |first_row, c| {
        let rows = c.len() / n;
        for p0 in (0..panels).step_by(PANELS_PER_BLOCK) {
            for i in (0..rows).step_by(MR) {
                let tile_rows = MR.min(rows - i);
                let a_block = &a[(first_row + i) * k..];
                for p in p0..panels.min(p0 + PANELS_PER_BLOCK) {
                    let columns = NR.min(n - p * NR);
                    let store =
                        if stream && columns == NR { Store::Stream } else { Store::Overwrite };
                    // SAFETY: AVX2/FMA checked above. A's tile_rows rows of
                    // k floats from row first_row + i lie in `a`; the panel's
                    // k × 16 floats in `packed`; C's tile_rows × columns at
                    // column p·16 in this thread's chunk, whose rows start
                    // 32-byte aligned when streaming (c aligned, n % 8 == 0,
                    // chunks of whole rows).
                    unsafe {
                        tile_edge(
                            tile_rows,
                            columns,
                            k,
                            (a_block.as_ptr(), k, 1),
                            packed[p * k * NR..].as_ptr(),
                            (c[i * n + p * NR..].as_mut_ptr(), n),
                            store,
                        );
                    }
                }
            }
        }
        if stream {
            // SAFETY: AVX2 checked above; a store fence has no operands.
            unsafe { fence() };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// `a·op(b)` in float64, `b` as `[k×n]` or (`transposed`) `[n×k]`.
    fn reference(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], transposed: bool) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|kk| {
                        f64::from(a[i * k + kk])
                            * f64::from(if transposed { b[j * k + kk] } else { b[kk * n + j] })
                    })
                    .sum();
            }
        }
        c
    }

    fn worst(c: &[f32], want: &[f64]) -> f64 {
        c.iter().zip(want).map(|(&x, &y)| (f64::from(x) - y).abs()).fold(0.0, f64::max)
    }

    /// Row counts around the 6-row tile, column counts around the 16-column
    /// panel (dot columns, padded panels, exact panels), inner dimensions
    /// around the vector width and the k block, one and two threads.
    #[test]
    fn narrow_right_matches_float64_on_edges() {
        if !supported() {
            eprintln!("no AVX2/FMA on this CPU; skipping");
            return;
        }
        for (m, n, k) in [
            (1, 1, 1),
            (7, 81, 37),
            (13, 16, 8),
            (6, 20, 100),
            (5, 33, 9),
            (12, 15, 4097),
            (30, 4, 8200),
            (4, 0, 3),
            (3, 5, 0),
        ] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let want = reference(m, n, k, &a, &b, false);
            for threads in [1, 2] {
                let mut c = vec![f32::NAN; m * n];
                narrow_right(m, n, k, &a, &b, &mut c, threads);
                let tolerance = 1e-6 * (k as f64).max(1.0);
                assert!(
                    worst(&c, &want) < tolerance,
                    "{m}×{n}×{k} on {threads} threads: {}",
                    worst(&c, &want)
                );
            }
        }
    }

    #[test]
    fn short_inner_matches_float64_on_edges() {
        if !supported() {
            eprintln!("no AVX2/FMA on this CPU; skipping");
            return;
        }
        for (m, n, k) in [
            (1, 1, 1),
            (7, 81, 37),
            (13, 16, 8),
            (6, 20, 100),
            (5, 33, 9),
            (100, 1030, 81),
            (4, 0, 3),
            (3, 5, 0),
        ] {
            let (a, b) = (values(m * k, 3), values(n * k, 4));
            let want = reference(m, n, k, &a, &b, true);
            for threads in [1, 2] {
                let mut c = vec![f32::NAN; m * n];
                short_inner(m, n, k, &a, &b, &mut c, threads);
                assert!(
                    worst(&c, &want) < 1e-6 * (k as f64).max(1.0),
                    "{m}×{n}×{k} on {threads} threads: {}",
                    worst(&c, &want)
                );
            }
        }
    }

    /// Outputs past the streaming bound take the non-temporal stores.
    #[test]
    fn short_inner_streams_large_outputs_correctly() {
        if !supported() {
            eprintln!("no AVX2/FMA on this CPU; skipping");
            return;
        }
        let (m, n, k) = (520, 4096, 9);
        assert!(m * n * 4 >= STREAM_BYTES);
        let (a, b) = (values(m * k, 5), values(n * k, 6));
        let want = reference(m, n, k, &a, &b, true);
        // A 32-byte aligned output, as libtorch allocates.
        let mut storage = vec![0f32; m * n + 8];
        let offset = (32 - storage.as_ptr() as usize % 32) % 32 / 4;
        let c = &mut storage[offset..offset + m * n];
        short_inner(m, n, k, &a, &b, c, 2);
        assert!(worst(c, &want) < 1e-5);
    }
}
