#!/usr/bin/env python3
"""Cross-checks lvc's rasteriser against cv2.fillPoly on random polygons.

Writes a one-case Sunnybrook tree (pydicom images, random contour files:
arbitrary self-intersecting polygons, star shapes, thin and degenerate ones,
points on and beyond the border), imports it with
`lvc dataset create --allow-outside`, and compares every label plane with
cv2.fillPoly(zeros, [np.loadtxt(f).astype(int)], 1) — the DIGITS rule.
Prints the agreement; exits 1 on any differing mask.

Usage: crosscheck_fillpoly.py LVC_BINARY [--count N] [--seed S]
(run by `make crosscheck-fillpoly`; needs numpy, opencv-python-headless,
pydicom in .venv.)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

# Non-square so a swapped x/y shows up.
ROWS, COLS = 40, 48


def write_dicom(path, number):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.Rows, ds.Columns = ROWS, COLS
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.full((ROWS, COLS), number, dtype="<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def random_polygon(rng, kind):
    half = lambda a: np.round(a * 2) / 2  # the 0.5-pixel grid of real contours
    if kind == "any":  # arbitrary, often self-intersecting, partly outside
        n = rng.integers(3, 12)
        return half(np.c_[rng.uniform(-8, COLS + 8, n), rng.uniform(-8, ROWS + 8, n)])
    if kind == "star":  # star-shaped around a centre, like a real contour
        n = rng.integers(5, 60)
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(2, 18, n)
        cx, cy = rng.uniform(0, COLS), rng.uniform(0, ROWS)
        return half(np.c_[cx + r * np.cos(ang), cy + r * np.sin(ang)])
    if kind == "thin":  # slivers and near-collinear runs
        x0, y0 = rng.uniform(0, COLS), rng.uniform(0, ROWS)
        d = rng.uniform(-20, 20, 2)
        pts = [(x0, y0), (x0 + d[0], y0 + d[1]), (x0 + d[0] * 0.5 + rng.uniform(-1, 1), y0 + d[1] * 0.5)]
        return half(np.array(pts))
    # "inside": small polygons well inside the image
    n = rng.integers(3, 8)
    return half(np.c_[rng.uniform(0, COLS - 0.5, n), rng.uniform(0, ROWS - 0.5, n)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lvc")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    kinds = ["any", "star", "thin", "inside"]
    with tempfile.TemporaryDirectory() as tmp:
        images = os.path.join(tmp, "images", "SC-X-1")
        contours = os.path.join(tmp, "contours", "SC-X-01", "contours-manual", "IRCCI-expert")
        os.makedirs(images)
        os.makedirs(contours)
        kind_of = {}
        for number in range(1, args.count + 1):
            kind = kinds[number % len(kinds)]
            kind_of[number] = kind
            pts = random_polygon(rng, kind)
            with open(os.path.join(contours, "IM-0001-%04d-icontour-manual.txt" % number), "w") as f:
                f.write("".join("%.2f %.2f\n" % (x, y) for x, y in pts))
            write_dicom(os.path.join(images, "IM-0001-%04d.dcm" % number), number)
        sax = os.path.join(tmp, "sax.txt")
        with open(sax, "w") as f:
            f.write("SC-X-1 1\n")
        out = os.path.join(tmp, "ds")
        subprocess.run([args.lvc, "dataset", "create", "--images", os.path.join(tmp, "images"),
                        "--contours", os.path.join(tmp, "contours"), "--out", out, "--sax-map", sax,
                        "--val-pct", "0", "--allow-outside"], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "manifest.json")) as f:
            manifest = json.load(f)
        labels = np.load(os.path.join(out, "train", "labels.npy"))
        differ = {k: 0 for k in kinds}
        total = {k: 0 for k in kinds}
        for rec in manifest["records"]:
            path = os.path.join(tmp, "contours", rec["contours"][0]["path"])
            want = np.zeros((ROWS, COLS), np.uint8)
            cv2.fillPoly(want, [np.loadtxt(path, delimiter=" ").astype(int).astype(np.int32)], 1)
            got = labels[rec["index"], 0]
            kind = kind_of[rec["image"]]
            total[kind] += 1
            if not np.array_equal(got, want):
                differ[kind] += 1
                if differ[kind] <= 2:
                    print("differs: %s (%s), %d pixels" % (path, kind, int((got != want).sum())))
        n = sum(total.values())
        bad = sum(differ.values())
        print("cv2 %s, %d polygons, %d identical masks (%.2f%%)" % (cv2.__version__, n, n - bad, 100.0 * (n - bad) / max(n, 1)))
        for k in kinds:
            print("  %-6s %5d/%d identical" % (k, total[k] - differ[k], total[k]))
        return 1 if bad or n != args.count else 0


if __name__ == "__main__":
    sys.exit(main())
