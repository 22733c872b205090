#!/usr/bin/env python3
"""The compute floor for `make bench-train`: the float32 GEMM rate of this
machine, 2048³ through libtorch (torch.mm) and through OpenBLAS (numpy),
best of several runs. Prints JSON with GFLOP/s per backend."""
import json
import time

import numpy as np
import torch

N = 2048
FLOP = 2.0 * N ** 3


def best_rate(mm, a, b, runs=5):
    mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return FLOP / best / 1e9


def main():
    torch.set_num_threads(2)
    a = torch.rand(N, N)
    b = torch.rand(N, N)
    rates = {"libtorch_gflops": best_rate(torch.mm, a, b)}
    try:
        from threadpoolctl import threadpool_limits
        with threadpool_limits(2):
            rates["openblas_gflops"] = best_rate(np.matmul, a.numpy(), b.numpy())
    except ImportError:
        rates["openblas_gflops"] = best_rate(np.matmul, a.numpy(), b.numpy())
    print(json.dumps(rates))


if __name__ == "__main__":
    main()
