"""Dead renders with and without redirected ReLU: (layer, channels) -> count of ``Rendering.dead`` items.

Renders the channels of one EfficientNet-Lite0 layer with ``fv.render_layer`` once per ``--redirect``
value (same seed, same settings; default: ``redirect_steps=0``, the plain ReLU gradient, and 16, the
default), and prints how many items each run flags dead, which ones, and the seconds taken.

Usage:
    .venv/bin/python bench/dead_renders.py [--layer blocks.1.depthwise_relu] [--channels 0-95]
        [--size 64] [--steps 64] [--batch-size 48] [--threads 1] [--redirect 0,16]

Example:
    .venv/bin/python bench/dead_renders.py --layer blocks.4.depthwise_relu --channels 0-15 --steps 64
"""
from __future__ import annotations

import argparse
import time

import torch

import featviz as fv


def parse_channels(text: str) -> list[int]:
    """``"0-3,7"`` -> [0, 1, 2, 3, 7]."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", default="blocks.1.depthwise_relu")
    ap.add_argument("--channels", default=None, help="e.g. 0-95 (default: all)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--redirect", default="0,16", help="redirect_steps values to compare")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.models.efficientnet_lite0()
    channels = parse_channels(args.channels) if args.channels else None
    for redirect_steps in [int(v) for v in args.redirect.split(",")]:
        t0 = time.perf_counter()
        r = fv.render_layer(model, args.layer, channels=channels, batch_size=args.batch_size, size=args.size,
                            steps=args.steps, progress=False, redirect_steps=redirect_steps)
        dead = [lab.rpartition(":")[2] for lab, d in zip(r.labels, r.dead.tolist()) if d]
        flat = int((r.images.flatten(1).std(dim=1) < 0.01).sum())
        print(f"redirect_steps={redirect_steps:2d}: {len(dead)}/{len(r)} dead, {flat} flat images, "
              f"activation median {float(r.activations.median()):.3f}, {time.perf_counter() - t0:.0f} s; "
              f"dead channels {dead}", flush=True)


if __name__ == "__main__":
    main()
