#!/usr/bin/env python3
"""`make bench-fmt`: `lvc fmt` over the whole shared corpus (207 files), each
figure against floors measured in the same run on this machine.

  fmt --check    every file read, parsed, laid out, compared       target <= 0.5 s
  fmt            the same, rewriting the files that change (a fresh copy each time)
  floors         `lvc --version` (a process start) and `lvc check` of the same files
                 (parse + schema + graph + shapes), which fmt's parse is a part of

Medians of --repeat runs. Usage: bench.py LVC [--repeat 7]. Standard library only.
"""
import argparse, os, shutil, statistics, subprocess, tempfile, time

def timed(argv, cwd, prepare=None):
    if prepare:
        prepare()
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lvc")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    lvc = os.path.abspath(args.lvc)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    corpus = os.path.join(repo, "..", "shared", "corpus", "prototxt")
    work = tempfile.mkdtemp(prefix="lvc-bench-fmt-")
    copy = os.path.join(work, "corpus")

    def fresh():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(corpus, copy)

    fresh()
    files = sorted(os.path.relpath(os.path.join(d, f), copy)
                   for d, _, names in os.walk(copy) for f in names if f.endswith(".prototxt"))
    size = sum(os.path.getsize(os.path.join(copy, f)) for f in files)
    rows = [
        ("lvc --version (floor: a start)", [lvc, "--version"], None),
        ("lvc check (floor: the compiler)", [lvc, "check", "--lenient", *files], None),
        ("lvc fmt --check", [lvc, "fmt", "--check", *files], None),
        ("lvc fmt (rewriting)", [lvc, "fmt", *files], fresh),
    ]
    print(f"{len(files)} files, {size / 1e6:.2f} MB; median of {args.repeat}\n")
    print(f"{'':34} {'median s':>9} {'min s':>8}")
    results = {}
    for name, argv, prepare in rows:
        times = [timed(argv, copy, prepare) for _ in range(args.repeat)]
        results[name] = statistics.median(times)
        print(f"{name:34} {statistics.median(times):9.3f} {min(times):8.3f}")
    fmt = results["lvc fmt --check"]
    print(f"\nfmt --check / check: {fmt / results['lvc check (floor: the compiler)']:.2f}; "
          f"target fmt <= 0.5 s: {'met' if fmt <= 0.5 else 'NOT met'}")
    shutil.rmtree(work)

if __name__ == "__main__":
    main()
