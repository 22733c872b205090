#!/usr/bin/env python3
"""PyTorch eager reference for `make bench-train`: FCN-AlexNet (DIGITS, gray) and
FCN-8s (voc-fcn8s, gray; full or slim widths) with Caffe's semantics (pad 100,
ceil-mode pooling, LRN, fixed deconvolutions, crops), timed as `caffe time`
does: forward, then backward, averaged over N iterations after one warm-up.

Prints one JSON object: forward_ms, backward_ms, forward_backward_ms, params.
The weights are random (timing only); the deconvolutions do not learn
(lr_mult 0 in the prototxts), so they get no weight gradient here either.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(cin, cout, k, s=1, p=0, g=1):
    return nn.Conv2d(cin, cout, k, stride=s, padding=p, groups=g)


def fixed_deconv(channels, k, s, group):
    d = nn.ConvTranspose2d(channels, channels, k, stride=s, groups=group, bias=False)
    d.weight.requires_grad_(False)
    return d


class FcnAlexNet(nn.Module):
    def __init__(self, fc=4096):
        super().__init__()
        self.conv1 = conv(1, 96, 11, s=4, p=100)
        self.conv2 = conv(96, 256, 5, p=2, g=2)
        self.conv3 = conv(256, 384, 3, p=1)
        self.conv4 = conv(384, 384, 3, p=1, g=2)
        self.conv5 = conv(384, 256, 3, p=1, g=2)
        self.fc6 = conv(256, fc, 6)
        self.fc7 = conv(fc, fc, 1)
        self.score_fr = conv(fc, 2, 1)
        self.upscore = fixed_deconv(2, 63, 32, group=2)
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)

    def forward(self, x, label):
        h = x - 116.0
        pool = lambda t: F.max_pool2d(t, 3, 2, ceil_mode=True)
        h = self.lrn(pool(F.relu(self.conv1(h))))
        h = self.lrn(pool(F.relu(self.conv2(h))))
        h = F.relu(self.conv3(h))
        h = F.relu(self.conv4(h))
        h = pool(F.relu(self.conv5(h)))
        h = F.relu(self.fc6(h))
        h = F.relu(self.fc7(h))
        h = self.upscore(self.score_fr(h))
        score = h[:, :, 18:18 + x.shape[2], 18:18 + x.shape[3]]
        return F.cross_entropy(score, label, ignore_index=255)  # normalize: VALID


class Fcn8s(nn.Module):
    def __init__(self, div=1, fc=4096):
        super().__init__()
        w = [64 // div, 128 // div, 256 // div, 512 // div, 512 // div]
        cfg = [(1, w[0], 2), (w[0], w[1], 2), (w[1], w[2], 3), (w[2], w[3], 3), (w[3], w[4], 3)]
        self.blocks = nn.ModuleList()
        for i, (cin, cout, n) in enumerate(cfg):
            layers = [conv(cin, cout, 3, p=100 if i == 0 else 1)]
            layers += [conv(cout, cout, 3, p=1) for _ in range(n - 1)]
            self.blocks.append(nn.ModuleList(layers))
        self.fc6 = conv(w[4], fc, 7)
        self.fc7 = conv(fc, fc, 1)
        self.score_fr = conv(fc, 2, 1)
        self.score_pool4 = conv(w[3], 2, 1)
        self.score_pool3 = conv(w[2], 2, 1)
        self.upscore2 = fixed_deconv(2, 4, 2, group=1)
        self.upscore_pool4 = fixed_deconv(2, 4, 2, group=1)
        self.upscore8 = fixed_deconv(2, 16, 8, group=1)

    def forward(self, x, label):
        h = x
        pools = []
        for block in self.blocks:
            for c in block:
                h = F.relu(c(h))
            h = F.max_pool2d(h, 2, 2, ceil_mode=True)
            pools.append(h)
        h = F.relu(self.fc6(h))
        h = F.relu(self.fc7(h))
        up2 = self.upscore2(self.score_fr(h))
        sp4 = self.score_pool4(pools[3])[:, :, 5:5 + up2.shape[2], 5:5 + up2.shape[3]]
        up4 = self.upscore_pool4(up2 + sp4)
        sp3 = self.score_pool3(pools[2])[:, :, 9:9 + up4.shape[2], 9:9 + up4.shape[3]]
        up8 = self.upscore8(up4 + sp3)
        score = up8[:, :, 31:31 + x.shape[2], 31:31 + x.shape[3]]
        # normalize: false = BATCH_SIZE: the pixel sum divided by N.
        return F.cross_entropy(score, label, ignore_index=255, reduction="sum") / x.shape[0]


NETS = {
    "fcn_alexnet": lambda: FcnAlexNet(4096),
    "fcn_alexnet_slim": lambda: FcnAlexNet(512),
    "fcn8s": lambda: Fcn8s(1, 4096),
    "fcn8s_slim": lambda: Fcn8s(4, 256),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("net", choices=sorted(NETS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (timed with a synchronize around each pass)")
    args = ap.parse_args()
    device = torch.device(args.device)
    # CUDA kernels run asynchronously: a pass ends when the device is done.
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    net = NETS[args.net]().to(device)
    x = (torch.rand(args.batch, 1, 256, 256) * 1000).to(device)
    label = (torch.rand(args.batch, 256, 256) > 0.9).long().to(device)
    forward = backward = 0.0
    for i in range(args.iterations + 1):
        net.zero_grad(set_to_none=True)
        sync()
        t0 = time.perf_counter()
        loss = net(x, label)
        sync()
        t1 = time.perf_counter()
        loss.backward()
        sync()
        t2 = time.perf_counter()
        if i > 0:  # iteration 0 is the warm-up
            forward += t1 - t0
            backward += t2 - t1
    n = args.iterations
    print(json.dumps({
        "net": args.net,
        "batch": args.batch,
        "torch": torch.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in net.parameters()),
        "forward_ms": forward / n * 1e3,
        "backward_ms": backward / n * 1e3,
        "forward_backward_ms": (forward + backward) / n * 1e3,
    }))


if __name__ == "__main__":
    main()
