//! The GEMMs of FCN-AlexNet's fc6 and fc7 (batch 1 and 4) on every CPU
//! kernel `lvc_runtime::gemm` has, side by side in one run: libtorch's `mm`
//! (its bundled MKL), OpenBLAS where linked, and the AVX2 kernel for the
//! shape where one applies; with OpenBLAS's 2048³ rate, the figure the
//! training bench's floor is computed from. ms, fastest of `ROUNDS`, each
//! product written into the previous round's output (as the executor
//! writes a weight gradient into spent storage), so no page faults count.
//! The `*` marks the kernel `gemm::choose` picks.
//!
//! Run: `cargo bench -p lvc-runtime --bench gemm` (or `make bench-gemm`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::time::Instant;

use lvc_runtime::gemm::{self, Kernel};
use lvc_runtime::tch::{self, Device, Kind, Tensor};

const ROUNDS: usize = 7;

struct Case {
    name: &'static str,
    transpose_a: bool,
    transpose_b: bool,
    /// `op(a)` is `[m×k]`, `op(b)` `[k×n]`.
    mnk: [i64; 3],
}

const fn case(name: &'static str, transpose_a: bool, transpose_b: bool, mnk: [i64; 3]) -> Case {
    Case { name, transpose_a, transpose_b, mnk }
}

const CASES: [Case; 12] = [
    case("fc6 forward, batch 1", false, false, [4096, 81, 9216]),
    case("fc6 weight gradient, batch 1", false, true, [4096, 9216, 81]),
    case("fc6 input gradient, batch 1", true, false, [81, 9216, 4096]),
    case("fc7 forward, batch 1", false, false, [4096, 81, 4096]),
    case("fc7 weight gradient, batch 1", false, true, [4096, 4096, 81]),
    case("fc7 input gradient, batch 1", true, false, [81, 4096, 4096]),
    case("fc6 forward, batch 4", false, false, [4096, 324, 9216]),
    case("fc6 weight gradient, batch 4", false, true, [4096, 9216, 324]),
    case("fc6 input gradient, batch 4", true, false, [324, 9216, 4096]),
    case("FCN-8s fc6 forward, batch 1", false, false, [4096, 81, 25088]),
    case("FCN-8s fc6 weight gradient, batch 1", false, true, [4096, 25088, 81]),
    case("square 2048³", false, false, [2048, 2048, 2048]),
];

fn operand(rows: i64, cols: i64, seed: f64) -> Tensor {
    (Tensor::arange(rows * cols, (Kind::Float, Device::Cpu)) * seed).sin().reshape([rows, cols])
}

/// Fastest of `ROUNDS` after a warm-up, in ms, and the last result.
fn time(kernel: Kernel, c: &Case, a: &Tensor, b: &Tensor) -> (f64, Tensor) {
    let mut out = gemm::product_on(kernel, c.transpose_a, a, c.transpose_b, b, None);
    let mut best = f64::INFINITY;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        out = gemm::product_on(kernel, c.transpose_a, a, c.transpose_b, b, Some(out));
        best = best.min(started.elapsed().as_secs_f64() * 1e3);
    }
    (best, out)
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    tch::set_num_threads(i32::try_from(threads).unwrap_or(1));
    gemm::set_num_threads(threads);
    println!("{threads} threads; {}", gemm::describe());
    println!("ms, fastest of {ROUNDS} (GFLOP/s); * = the kernel lvc picks");
    println!(
        "{:<38} {:>18} {:>18} {:>18}  max|Δ| vs libtorch",
        "product", "libtorch (MKL)", "OpenBLAS", "AVX2"
    );
    for c in &CASES {
        let [m, n, k] = c.mnk;
        let a = if c.transpose_a { operand(k, m, 0.3) } else { operand(m, k, 0.3) };
        let b = if c.transpose_b { operand(n, k, 0.7) } else { operand(k, n, 0.7) };
        let gflop = 2.0 * (m * n * k) as f64 / 1e9;
        let chosen = gemm::choose(c.transpose_a, c.transpose_b, c.mnk);
        let avx2 = if c.transpose_b { Kernel::ShortInner } else { Kernel::NarrowRight };
        let (reference_ms, reference) = time(Kernel::Libtorch, c, &a, &b);
        let mut cells = vec![cell(reference_ms, gflop, chosen == Kernel::Libtorch)];
        let mut worst = 0.0f64;
        for (kernel, applies) in [
            (Kernel::OpenBlas, gemm::openblas::available()),
            (avx2, !c.transpose_a && gemm::avx2_available()),
        ] {
            if !applies {
                cells.push(format!("{:>18}", "–"));
                continue;
            }
            let (ms, out) = time(kernel, c, &a, &b);
            worst = worst.max(f64::try_from((out - &reference).abs().max()).unwrap_or(f64::NAN));
            cells.push(cell(ms, gflop, chosen == kernel));
        }
        println!("{:<38} {}  {worst:.1e}", c.name, cells.join(" "));
    }
}

fn cell(ms: f64, gflop: f64, chosen: bool) -> String {
    format!("{:>18}", format!("{}{ms:.1} ({:.0})", if chosen { "*" } else { "" }, gflop / ms * 1e3))
}
