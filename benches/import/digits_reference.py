#!/usr/bin/env python3
"""The DIGITS Sunnybrook import path in Python, as the baseline for
`lvc dataset create` (benches/import/run.sh times both on one tree).

What DIGITS' plugin (digitsDataPluginSunnybrook/data.py) does per contour:
walk the contour folder recursively for IM-0001-NNNN-icontour-manual.txt,
shrink the case name (SC-HF-I-01 -> SC-HF-I-1), open
<images>/<case>/IM-<SAX series>-NNNN.dcm with pydicom, take
pixel_array.astype(int), and rasterise np.loadtxt(contour).astype(int) with
cv2.fillPoly(label, [pts], 1). Then shuffle and take the first
floor(N*pct/100) as val. Here the arrays are stacked into
{train,val}/images.npy (N,C,H,W) f32 and labels.npy (N,1,H,W) u8 — the same
work `lvc dataset create` does (DIGITS wrote LMDB instead), plus
records.json with (case, image, split, index) so masks can be compared.

The SAX series map is read from data/src/sunnybrook/sax_map.rs (the one
lvc uses), so both tools pair contours with the same images.
"""
import argparse
import json
import os
import re
import sys
import time

import cv2
import numpy as np
import pydicom

HERE = os.path.dirname(os.path.abspath(__file__))
SAX_MAP_RS = os.path.join(HERE, "..", "..", "data", "src", "sunnybrook", "sax_map.rs")
CONTOUR_RE = re.compile(r"/([^/]*)/contours-manual/IRCCI-expert/IM-0001-(\d{4})-icontour-manual\.txt$")


def sax_series():
    with open(SAX_MAP_RS) as f:
        text = f.read()
    return {case: int(series) for case, series in re.findall(r'\("([^"]+)",\s*(\d+)\)', text)}


def shrink_case(case):
    return "-".join(str(int(t)) if t.isdigit() else t for t in case.split("-"))


def find_contours(root):
    found = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            m = CONTOUR_RE.search(path)
            if m:
                found.append((shrink_case(m.group(1)), int(m.group(2)), path))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--contours", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--val-pct", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--channels", choices=["L", "RGB"], default="L")
    args = ap.parse_args()

    started = time.perf_counter()
    series = sax_series()
    contours = find_contours(args.contours)
    images, labels, records = [], [], []
    for case, number, path in contours:
        dcm = os.path.join(args.images, case, "IM-%04d-%04d.dcm" % (series[case], number))
        pixels = pydicom.dcmread(dcm).pixel_array.astype(int)
        label = np.zeros(pixels.shape, dtype=np.uint8)
        pts = np.loadtxt(path, delimiter=" ").astype(int)
        cv2.fillPoly(label, [pts.astype(np.int32)], 1)
        planes = 3 if args.channels == "RGB" else 1
        images.append(np.repeat(pixels[np.newaxis].astype(np.float32), planes, axis=0))
        labels.append(label[np.newaxis])
        records.append({"case": case, "image": number, "contour": path})
    order = np.random.RandomState(args.seed).permutation(len(records))
    n_val = len(records) * args.val_pct // 100
    split_of = {int(i): ("val" if rank < n_val else "train") for rank, i in enumerate(order)}
    os.makedirs(args.out, exist_ok=True)
    for split in ("train", "val"):
        idx = [i for i in range(len(records)) if split_of[i] == split]
        os.makedirs(os.path.join(args.out, split), exist_ok=True)
        h, w = labels[0].shape[1:] if labels else (0, 0)
        c = 3 if args.channels == "RGB" else 1
        imgs = np.stack([images[i] for i in idx]) if idx else np.zeros((0, c, h, w), np.float32)
        labs = np.stack([labels[i] for i in idx]) if idx else np.zeros((0, 1, h, w), np.uint8)
        np.save(os.path.join(args.out, split, "images.npy"), imgs)
        np.save(os.path.join(args.out, split, "labels.npy"), labs)
        for k, i in enumerate(idx):
            records[i].update(split=split, index=k)
    with open(os.path.join(args.out, "records.json"), "w") as f:
        json.dump(records, f)
    elapsed = time.perf_counter() - started
    print(json.dumps({"images": len(records), "seconds": elapsed}))


if __name__ == "__main__":
    sys.exit(main())
