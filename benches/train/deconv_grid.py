#!/usr/bin/env python3
"""The measurement behind lvc-runtime's `GemmDeconv` rule: a group-less
deconvolution (Caffe's Deconvolution, libtorch's conv_transpose2d) through
libtorch's default CPU kernel (oneDNN) against its plain GEMM + col2im kernel
(`slow_conv_transpose2d`), forward and input gradient, over kernels/strides of
FCN upsamplers, 1-3 channels, batches 1/2/4 and map sizes 5-63. Prints one
line per configuration (map: oneDNN ms / GEMM ms), then the worst and best
ratios and the totals. 2 threads, fastest of 3 after a warm-up.

Usage: deconv_grid.py [--channels 1 2 3]
"""
import argparse
import time

import torch
import torch.nn.functional as F


def fastest_ms(f, runs=3):
    f()
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--channels", type=int, nargs="+", default=[1, 2, 3])
    args = ap.parse_args()
    torch.set_num_threads(2)
    results = []
    for k, s in [(4, 2), (16, 8), (32, 16), (63, 32), (64, 32)]:
        for c in args.channels:
            for n in (1, 2, 4):
                row = []
                for h in [5, 8, 11, 16, 21, 27, 34, 42, 50, 63]:
                    if s * (h - 1) + k > 600:
                        continue
                    x = torch.rand(n, c, h, h, requires_grad=True)
                    w = torch.rand(c, c, k, k)
                    g = torch.rand_like(F.conv_transpose2d(x, w, stride=s))
                    onednn = fastest_ms(lambda: torch.autograd.grad(F.conv_transpose2d(x, w, stride=s), (x,), g))
                    gemm = fastest_ms(lambda: torch.autograd.grad(
                        torch._C._nn.slow_conv_transpose2d(x, w, (k, k), None, (s, s)), (x,), g))
                    row.append(f"{h}:{onednn:.1f}/{gemm:.1f}")
                    results.append((gemm / onednn, gemm - onednn, k, s, c, n, h, onednn, gemm))
                print(f"k{k} s{s} c{c} n{n}  " + " ".join(row), flush=True)
    fmt = "k{2} s{3} c{4} n{5} {6}²: oneDNN {7:.1f} ms, GEMM {8:.1f} ms"
    print("worst ratios:", "; ".join(fmt.format(*r) for r in sorted(results)[-3:]))
    print("worst losses:", "; ".join(fmt.format(*r) for r in sorted(results, key=lambda r: r[1])[-3:]))
    print("best ratios:", "; ".join(fmt.format(*r) for r in sorted(results)[:3]))
    print(f"total: oneDNN {sum(r[7] for r in results):.0f} ms, GEMM {sum(r[8] for r in results):.0f} ms")


if __name__ == "__main__":
    main()
