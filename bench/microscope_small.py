"""Benchmark (issue 21): a small microscope site vs ``render_layer`` of the same channels, in CPU seconds.

The site: EfficientNet-Lite0, ``--layers`` (default ``blocks.2,blocks.4``), the first ``--channels`` (4)
channels of each, ``--size`` 64 px, ``--steps`` 48, default evidence, on 20 photos (the 10 bundled photos
and their mirror images, written to a temporary folder as PNGs). The reference: ``fv.render_layer`` of the
same channels at the same size and steps. Both run in this process on ``--threads`` (1) torch threads; every
time is ``time.process_time`` (CPU seconds of the whole process, all threads), so a loaded machine does
not change the numbers much. The site's time is split by wrapping the functions it calls (nested times are
counted in each: ``curve_scan`` runs inside ``curve scans``).

``--partner-renders``: the connection partners' short pages render a feature visualization each (the
behaviour before issue 21's partner pages; default: they render nothing), to compare both in one tree.

Usage: PYTHONPATH=<tree> .venv/bin/python bench/microscope_small.py [--layers ...] [--channels 4]
(run it once per tree to compare before and after on the same machine.)
"""
import argparse
import functools
import importlib
import tempfile
import time
from pathlib import Path

import torch

import featviz as fv
from featviz.data import sample_images
from featviz.microscope import MicroscopeSettings, build_microscope
from featviz.microscope._channel import png_bytes

# (module, attribute, label): the site's pieces, timed where the build looks them up
PIECES = [("featviz.microscope._build", "layer_scans", "curve scans (layer_scans)"),
          ("featviz.microscope._evidence", "curve_scan", "  of which curve_scan"),
          ("featviz.microscope._evidence", "randomized", "  of which randomized net"),
          ("featviz.microscope._build", "connections", "connections"),
          ("featviz.microscope._build", "layer_stats", "photo statistics"),
          ("featviz.microscope._channel", "ChannelWorker.compute", "channel parts (fv, diversity, evidence)"),
          ("featviz.microscope._channel", "ChannelWorker._fv", "  of which fv"),
          ("featviz.microscope._channel", "ChannelWorker._diversity", "  of which diversity"),
          ("featviz.microscope._evidence", "evidence", "  of which evidence"),
          ("featviz.microscope._build", "example_files", "dataset examples")]


def _wrap(costs: dict, counts: dict, label: str, fn):
    @functools.wraps(fn)
    def timed(*args, **kwargs):
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            costs[label] = costs.get(label, 0.0) + time.process_time() - start
            counts[label] = counts.get(label, 0) + 1
    return timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="blocks.2,blocks.4")
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--partner-renders", action="store_true",
                    help="render a feature visualization for each connection partner (before issue 21)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    layers = [n for n in args.layers.split(",") if n]
    costs: dict[str, float] = {}
    counts: dict[str, int] = {}
    for mod_name, attr, label in PIECES:
        mod = importlib.import_module(mod_name)
        owner, name = (getattr(mod, attr.split(".")[0]), attr.split(".")[1]) if "." in attr else (mod, attr)
        if hasattr(owner, name):
            setattr(owner, name, _wrap(costs, counts, label, getattr(owner, name)))
    model = fv.models.efficientnet_lite0()
    settings = MicroscopeSettings(size=args.size, steps=args.steps, partner_renders=args.partner_renders)
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp, "photos")
        photos.mkdir()
        images, names = sample_images(size=224)
        for im, name in zip(images, names):
            (photos / f"{name}.png").write_bytes(png_bytes(im))
            (photos / f"{name}_mirror.png").write_bytes(png_bytes(im.flip(-1)))
        start = time.process_time()
        build_microscope(model, layers, Path(tmp, "site"), settings=settings, channels=args.channels,
                         images=photos, progress=False)
        site = time.process_time() - start
    start = time.process_time()
    for n in layers:
        fv.render_layer(model, n, channels=list(range(args.channels)), size=args.size, steps=args.steps,
                        progress=False)
    render = time.process_time() - start
    print(f"site {len(layers)} layers x {args.channels} channels, {args.size} px, {args.steps} steps, "
          f"20 photos{', partner renders' if args.partner_renders else ''}: {site:.1f} CPU s")
    for label, t in costs.items():
        print(f"  {label}: {t:.1f} s ({counts[label]} calls)")
    print(f"render_layer of the same {len(layers) * args.channels} channels: {render:.1f} CPU s")
    print(f"site / render_layer: {site / render:.2f}x")


if __name__ == "__main__":
    main()
