"""The table of docs/tutorial/run.sh: one row per step, from OUT/steps.tsv
(what ran, how long, its exit status), each run's metrics.json (val Dice and
pixel accuracy of the last epoch, the best epoch's val Dice) and `lvc time`'s JSON in the step logs.

Usage: python3 docs/tutorial/table.py OUT
"""

import json
import sys
from pathlib import Path


def metrics(run):
    path = Path(run) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def per_image_cost(log):
    """forward-backward ms per image from `lvc time --format json` output."""
    text = log.read_text()
    start = text.find("{")
    if start < 0:
        return None
    report = json.loads(text[start:])
    return report.get("forward_backward_ms")


def weights_verdict(log):
    """The summary line of `lvc weights check` (after the file name) and the
    first mismatch it explains."""
    lines = [l.strip() for l in log.read_text().splitlines() if l.strip()]
    summary = lines[-1].split(": ", 1)[-1] if lines else ""
    mismatch = next((l.lstrip("× ").strip() for l in lines if l.startswith("×")), None)
    return f"{summary}; {mismatch}" if mismatch else summary


def epoch_one_dice(run):
    found = metrics(run)
    if not found or not found["history"]:
        return None
    return found["history"][0]["val_dice"]


def main(out):
    out = Path(out)
    rows = []
    for line in (out / "steps.tsv").read_text().splitlines():
        step, what, epochs, run, seconds, status, expected, command = line.split("\t")
        dice = best = accuracy = "–"
        note = ""
        if status != expected:
            note = f"FAILED: exit {status} (expected {expected}), see logs/{step}.log"
        elif run != "-":
            found = metrics(run)
            if found:
                dice = f"{found['val_dice']:.3f}"
                best = f"{found['best_val_dice']:.3f} ({found['best_epoch']})"
                accuracy = f"{100 * found['val_accuracy']:.1f} %"
                epoch_seconds = [e["seconds"] for e in found["history"]]
                iterations = found["history"][0]["iterations"]
                note = f"fastest epoch {min(epoch_seconds):.0f} s ({iterations} iterations + val)"
        elif step.startswith("time-"):
            cost = per_image_cost(out / "logs" / f"{step}.log")
            note = f"{cost / 1000:.2f} s per image forward-backward" if cost else ""
        elif "weights check" in command:
            note = f"exit {status}: {weights_verdict(out / 'logs' / f'{step}.log')}"
        if step == "5":
            baseline = epoch_one_dice(out / "6-dice-loss")
            if baseline is not None:
                note += f"; FCN-AlexNet, Dice loss, after epoch 1: {baseline:.3f}"
        rows.append((step, what, f"`{command}`", epochs, dice, best, accuracy, f"{float(seconds):.0f} s", note))

    header = ("step", "what", "command (paths under OUT)", "epochs", "val Dice", "best (epoch)", "pixel acc.", "wall", "notes")
    print(f"Tutorial figures, {out}: val Dice and pixel accuracy of the last epoch on the val patient;")
    print("best: the best epoch's val Dice (its weights are the run's best.safetensors)")
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
