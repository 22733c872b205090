#!/usr/bin/env python3
"""`make bench-train`: lvc vs the GEMM floor vs PyTorch eager, one run.

For each net and batch size: `lvc time --format json --no-layers` (forward,
backward, FLOPs), the same net in PyTorch eager (pytorch_fcn.py), each in its
own process under /usr/bin/time for peak RSS, in --rounds interleaved rounds
(lvc, PyTorch, baseline, lvc, …) of which the fastest is kept: the machine
is shared, and the minimum is the least disturbed run; the floor is the net's FLOPs
(forward + backward, from lvc) at the sgemm rate measured in this run: "floor
MKL" at libtorch's (its bundled MKL), "floor" at the faster of that and
OpenBLAS's (Caffe's BLAS, and lvc's for layers with their own backward);
"lvc/floor" is against the latter.
Caffe's own numbers (golden/caffe/timing, batch 1, same 2-core class of
machine, other runs) are printed for reference only.

Usage: bench.py LVC_BINARY [--iterations N] [--full-fcn8s] [--baseline-lvc OTHER_LVC]

--baseline-lvc times a second lvc build (e.g. one before a lowering change)
on the same nets in the same run, as an extra column.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROTO = os.path.join(ROOT, "..", "shared", "golden", "caffe", "prototxt")
PYTHON = sys.executable

# Caffe `caffe time` forward-backward ms, batch 1, quiet runs 3-4 (golden README).
CAFFE_FB = {"fcn_alexnet": "615-670", "fcn8s": "4617-5245", "fcn8s_slim": "613-699", "fcn_alexnet_slim": "203-290"}


def measured(cmd):
    """Runs cmd under /usr/bin/time; returns (stdout, peak RSS in MiB)."""
    with tempfile.NamedTemporaryFile("r") as rss:
        out = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name] + cmd,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr}")
        return out.stdout, int(rss.read().strip().splitlines()[-1]) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lvc")
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--full-fcn8s", action="store_true", help="also the full VGG16 FCN-8s at batch 1 (slow)")
    ap.add_argument("--baseline-lvc", help="another lvc binary to time on the same nets")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; the fastest is kept")
    args = ap.parse_args()

    floor = json.loads(subprocess.run([PYTHON, os.path.join(HERE, "sgemm_floor.py")],
                                      capture_output=True, text=True, check=True).stdout)
    rate = floor["libtorch_gflops"] * 1e9
    cases = [("fcn_alexnet", "fcn_alexnet_gray_train.prototxt", 1), ("fcn_alexnet", "fcn_alexnet_gray_train.prototxt", 4),
             ("fcn8s_slim", "fcn8s_slim_gray_train.prototxt", 1), ("fcn8s_slim", "fcn8s_slim_gray_train.prototxt", 4)]
    if args.full_fcn8s:
        cases.append(("fcn8s", "fcn8s_gray_train.prototxt", 1))

    print(f"sgemm 2048^3: libtorch {floor['libtorch_gflops']:.1f} GFLOP/s, "
          f"OpenBLAS (numpy) {floor['openblas_gflops']:.1f} GFLOP/s; {os.cpu_count()} cores; "
          f"{args.iterations} iterations after a warm-up, fastest of {args.rounds} rounds; times in ms")
    lvc_gemm = subprocess.run([args.lvc, "time", "--model", os.path.join(PROTO, "fcn_alexnet_slim_gray_deploy.prototxt"),
                               "--iterations", "1", "--no-layers", "--format", "json"],
                              capture_output=True, text=True, check=True)
    print(f"lvc CPU GEMM for layers with their own backward: {json.loads(lvc_gemm.stdout).get('own_backward_gemm', '?')}")
    header = ("net", "batch", "GFLOP f+b", "floor MKL", "floor", "lvc fwd", "lvc f+b", "lvc/floor",
              "torch fwd", "torch f+b", "torch/lvc", "lvc RSS", "torch RSS", "caffe f+b (b1)", "baseline f+b")
    print("{:<12} {:>5} {:>9} {:>9} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>14} {:>12}".format(*header))

    def lvc_time(binary, proto, shape):
        out, rss = measured([binary, "time", "--model", os.path.join(PROTO, proto), "--phase", "train",
                             "--input-shape", f"data={shape}", "--input-shape", f"label={shape}",
                             "--iterations", str(args.iterations), "--format", "json", "--no-layers"])
        return json.loads(out), rss

    def torch_time(name, batch):
        out, rss = measured([PYTHON, os.path.join(HERE, "pytorch_fcn.py"), name, "--batch", str(batch),
                             "--iterations", str(args.iterations)])
        return json.loads(out), rss

    def fastest(runs):
        return min(runs, key=lambda r: r[0]["forward_backward_ms"])

    for name, proto, batch in cases:
        shape = f"{batch},1,256,256"
        lvc_runs, torch_runs, baseline_runs = [], [], []
        for _ in range(args.rounds):
            lvc_runs.append(lvc_time(args.lvc, proto, shape))
            torch_runs.append(torch_time(name, batch))
            if args.baseline_lvc:
                baseline_runs.append(lvc_time(args.baseline_lvc, proto, shape))
        lvc, lvc_rss = fastest(lvc_runs)
        torch_run, torch_rss = fastest(torch_runs)
        baseline = f"{fastest(baseline_runs)[0]['forward_backward_ms']:.0f}" if baseline_runs else "-"
        gflop = (lvc["forward_flops"] + lvc["backward_flops"]) / 1e9
        floor_ms = gflop * 1e9 / rate * 1e3
        fb = lvc["forward_backward_ms"]
        best_floor_ms = gflop / max(floor["openblas_gflops"], floor["libtorch_gflops"]) * 1e3
        print(f"{name:<12} {batch:>5} {gflop:>9.1f} {floor_ms:>9.0f} {best_floor_ms:>7.0f} {lvc['forward_ms']:>8.0f} {fb:>8.0f} "
              f"{fb / best_floor_ms:>9.2f} {torch_run['forward_ms']:>9.0f} {torch_run['forward_backward_ms']:>9.0f} "
              f"{torch_run['forward_backward_ms'] / fb:>9.2f} {lvc_rss:>7.0f}M {torch_rss:>8.0f}M "
              f"{CAFFE_FB.get(name, '-'):>14} {baseline:>12}")


if __name__ == "__main__":
    main()
