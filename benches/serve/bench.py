#!/usr/bin/env python3
"""`make bench-serve`: lvc serve's targets, each against a floor measured in
the same run on this machine.

  start        exec of `lvc serve` to its first answer      vs `lvc --version` (a process start)
  home, run    server-side render (Server-Timing) with 200 runs   vs reading + parsing their files here
  epoch        metrics.json replaced -> `epoch` event in an SSE client   vs the server's 200 ms poll
  idle CPU     server CPU over 10 s, no client / one SSE client   target < 1 %

Usage: bench.py LVC [--runs 200]. Standard library only.
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.request

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def run(lvc, *args, cwd):
    subprocess.run([lvc, *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def workspace(lvc, runs):
    root = tempfile.mkdtemp(prefix="lvc-bench-serve-")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    run(lvc, "phantom", "--out", "phantom", "--cases", "2", "--seed", "1", cwd=root)
    run(lvc, "dataset", "create", "--images", "phantom/challenge_training", "--contours",
        "phantom/Sunnybrook Cardiac MR Database ContoursPart3", "--out", "datasets/ph", "--val-pct", "50", cwd=root)
    os.makedirs(os.path.join(root, "models"))
    for f in ("demo.prototxt", "demo_solver.prototxt"):
        shutil.copy(os.path.join(repo, "models", f), os.path.join(root, "models", f))
    run(lvc, "train", "--solver", "models/demo_solver.prototxt", "--dataset", "datasets/ph", "--out", "runs/real", "--epochs", "1", cwd=root)
    config = json.load(open(os.path.join(root, "runs/real/run.json")))
    metrics = json.load(open(os.path.join(root, "runs/real/metrics.json")))
    epoch = metrics["history"][0]
    for i in range(runs - 1):
        d = os.path.join(root, "runs", f"sweep-{i // 20}", f"run-{i:03d}")
        os.makedirs(d)
        m = dict(metrics)
        m["history"] = [dict(epoch, epoch=e + 1, val_dice=min(1.0, epoch["val_dice"] + e * 0.01)) for e in range(30)]
        m["epochs_done"] = 30
        json.dump(dict(config, epochs=30), open(os.path.join(d, "run.json"), "w"))
        json.dump(m, open(os.path.join(d, "metrics.json"), "w"))
    return root

def start(lvc, root):
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([lvc, "serve", "--root", root, "--bind", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            urllib.request.urlopen(base + "/api/jobs", timeout=1).read()
            break
        except Exception:
            if time.perf_counter() - t0 > 10:
                raise SystemExit("lvc serve did not answer within 10 s")
            time.sleep(0.002)
    return proc, base, (time.perf_counter() - t0) * 1000

def render_ms(url):
    with urllib.request.urlopen(url) as r:
        r.read()
        timing = r.headers.get("server-timing", "")
    return float(timing.split("dur=")[1])

def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lvc")
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    lvc = os.path.abspath(args.lvc)
    root = workspace(lvc, args.runs)
    rows = []
    try:
        # Start: median of 7, against a bare process start of the same binary.
        starts, floors = [], []
        for _ in range(7):
            t0 = time.perf_counter(); subprocess.run([lvc, "--version"], stdout=subprocess.DEVNULL, check=True)
            floors.append((time.perf_counter() - t0) * 1000)
            proc, base, ms = start(lvc, root)
            starts.append(ms); proc.kill(); proc.wait()
        rows.append(("start to first answer", statistics.median(starts), statistics.median(floors), "< 100 ms", "lvc --version"))

        proc, base, _ = start(lvc, root)
        # The floor of a render: reading and parsing every run's files here.
        def read_all():
            t0 = time.perf_counter()
            for dirpath, _, files in os.walk(os.path.join(root, "runs")):
                for f in ("run.json", "metrics.json"):
                    if f in files:
                        json.load(open(os.path.join(dirpath, f)))
            return (time.perf_counter() - t0) * 1000
        floor = statistics.median(read_all() for _ in range(7))
        cold = render_ms(base + "/")
        home = statistics.median(render_ms(base + "/") for _ in range(21))
        runs_listed = len(json.load(urllib.request.urlopen(base + "/api/runs"))["runs"])
        assert runs_listed == args.runs, runs_listed
        rows.append((f"home page, {runs_listed} runs, first", cold, floor, "< 100 ms", "read+parse all runs (Python)"))
        rows.append((f"home page, {runs_listed} runs, median", home, floor, "< 100 ms", "read+parse all runs (Python)"))
        page = statistics.median(render_ms(base + "/runs/runs/sweep-3/run-070") for _ in range(21))
        one = statistics.median((lambda t0: (json.load(open(os.path.join(root, "runs/sweep-3/run-070/metrics.json"))), (time.perf_counter() - t0) * 1000)[1])(time.perf_counter()) for _ in range(7))
        rows.append(("run page (30 epochs), median", page, one, "< 100 ms", "read+parse its metrics (Python)"))

        # Idle CPU with no client.
        time.sleep(1)
        c0 = cpu_seconds(proc.pid); t0 = time.time(); time.sleep(10)
        idle = (cpu_seconds(proc.pid) - c0) / (time.time() - t0) * 100

        # Epoch latency: an SSE client on one run; metrics.json replaced atomically.
        run_dir = os.path.join(root, "runs/sweep-0/run-000")
        metrics_path = os.path.join(run_dir, "metrics.json")
        arrived = {}
        ready = threading.Event()
        def listen():
            with urllib.request.urlopen(base + "/api/runs/runs/sweep-0/run-000/events", timeout=120) as r:
                event = None
                for raw in r:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "epoch":
                        n = json.loads(line[6:])["epoch"]
                        arrived[n] = time.perf_counter()
                        if n == 30:
                            ready.set()
                        if n >= 40:
                            return
                    elif event in ("done", "failed"):
                        pass
        listener = threading.Thread(target=listen, daemon=True); listener.start()
        ready.wait(10)
        # A client listening on a finished run gets `done` and the stream ends:
        # mark the run unfinished (epochs 40) so the stream stays open.
        cfg = json.load(open(os.path.join(run_dir, "run.json"))); cfg["epochs"] = 40
        json.dump(cfg, open(os.path.join(run_dir, "run.json"), "w"))
        time.sleep(0.5)
        c1 = cpu_seconds(proc.pid); t1 = time.time(); time.sleep(5)
        idle_sse = (cpu_seconds(proc.pid) - c1) / (time.time() - t1) * 100
        latencies = []
        m = json.load(open(metrics_path))
        for n in range(31, 41):
            m["history"].append(dict(m["history"][-1], epoch=n)); m["epochs_done"] = n
            tmp = metrics_path + ".tmp"; json.dump(m, open(tmp, "w"))
            written = time.perf_counter(); os.replace(tmp, metrics_path)
            deadline = time.time() + 5
            while n not in arrived and time.time() < deadline:
                time.sleep(0.001)
            latencies.append((arrived.get(n, float("inf")) - written) * 1000)
            time.sleep(0.37)  # not in step with the poll
        rows.append(("epoch written -> browser event, median of 10", statistics.median(latencies), 200.0, "< 1000 ms", "the 200 ms poll"))
        rows.append(("epoch written -> browser event, worst of 10", max(latencies), 200.0, "< 1000 ms", "the 200 ms poll"))
        rows.append(("idle CPU, no client (%)", idle, 1.0, "< 1 %", "target"))
        rows.append(("idle CPU, one SSE client (%)", idle_sse, 1.0, "< 1 %", "target"))
        proc.kill(); proc.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"lvc serve benchmark, {os.cpu_count()} CPUs, {args.runs} runs")
    print(f"| {'measure':<46} | {'lvc serve':>10} | {'floor':>8} | {'target':>10} | floor is |")
    print(f"|{'-' * 48}|{'-' * 12}:|{'-' * 9}:|{'-' * 11}:|----------|")
    for name, value, floor, target, what in rows:
        unit = "" if "%" in name else " ms"
        print(f"| {name:<46} | {value:>7.2f}{unit:<3} | {floor:>8.2f} | {target:>10} | {what} |")

if __name__ == "__main__":
    main()
