"""Benchmark: what a whole-model EfficientNet-Lite0 microscope build at default settings costs, measured
piece by piece on a subset of layers and extrapolated to every channel; and one whole layer rendered in one
batch vs its channels one at a time.

Measured (default ``MicroscopeSettings()``: 128 px, 128 steps, diversity 4, 6 examples, evidence with 20
random sets on 10 photos; bundled photos):
  per layer pair   connections (expanded weights / output gradients), for every consecutive pair of the build
  per layer        photo statistics (one pass), curve scans (model + randomized), for the --layers measured
  per channel      fv, diversity, tuning (early layers), examples, evidence, for --channels channels of each
                   measured layer: with 2 or more, a channel costs the mean of the later ones and the
                   first one's excess is counted once per layer (what a layer's channels share)
Every layer of the default build then gets the per-channel cost of the nearest measured layer (in run
order) times its channel count (a whole-model build has no partner-only units). Single-threaded torch by
default (--threads), i.e. one CPU; every time is CPU time of this process (``time.process_time``), so the
numbers do not depend on how loaded the shared machine is.

Usage: .venv/bin/python bench/microscope_scale.py [--layers stem.relu,blocks.2,blocks.10,head.relu]
       [--channels 1] [--batch-layer blocks.2] [--batch 8] [--batch-steps 32]
"""
import argparse
import tempfile
import time
from pathlib import Path

import torch

import featviz as fv
from featviz.hooks import layer_shapes
from featviz.microscope import EARLY_STRIDE, MicroscopeSettings, default_layers
from featviz.microscope._channel import ChannelWorker
from featviz.microscope._evidence import EvidenceInputs, evidence_photos, layer_scans
from featviz.microscope._examples import bundled_photos, example_files, layer_stats
from featviz.microscope._links import connections
from featviz.microscope._store import weights_hash


def _timed(fn, *args, **kwargs):
    """(result, CPU seconds of this process): on a shared machine wall time mostly measures the others."""
    start = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="stem.relu,blocks.2,blocks.10,head.relu")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-layer", default="blocks.2")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--batch-steps", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.models.efficientnet_lite0()
    settings = MicroscopeSettings()
    layers = default_layers(model)
    shapes = layer_shapes(model, layers)
    size = model.input_size
    measured = [n for n in args.layers.split(",") if n]
    wkey = weights_hash(model)
    photos = bundled_photos(size)
    from featviz.core import evaluating

    with tempfile.TemporaryDirectory() as tmp, evaluating(model, freeze_grads=True):
        out = Path(tmp)
        chosen = {n: list(range(s[1])) for n, s in shapes.items()}
        link_s = {}
        for a, b in zip(layers, layers[1:]):
            _, link_s[(a, b)] = _timed(connections, model, out, a, b, chosen, wkey, settings.top_k, size)
            print(f"connections {a} -> {b}: {link_s[(a, b)]:.1f} s", flush=True)
        stats, stats_s = _timed(layer_stats, model, photos, measured, out / "acts", weights=wkey,
                                progress=False)
        print(f"photo statistics: {stats_s:.1f} s", flush=True)
        scans, scans_s = _timed(layer_scans, model, measured, out / "ev", wkey, progress=False)
        print(f"curve scans: {scans_s:.1f} s", flush=True)
        upstream = {n: layers[layers.index(n) - 1] if layers.index(n) else None for n in measured}
        inputs = EvidenceInputs(*evidence_photos(photos, settings.evidence_photos), scans, upstream)
        worker = ChannelWorker(model, settings, evidence=inputs)
        per: dict[str, dict[str, float]] = {}
        first: dict[str, float] = {}
        for n in measured:
            early = len(shapes[n]) == 4 and shapes[n][-1] * EARLY_STRIDE >= size
            parts = settings.parts(early, len(shapes[n]) == 4)
            each = []  # per channel: {part: s}
            for c in range(args.channels):
                each.append({})
                for p in parts:
                    if p == "examples":
                        _, t = _timed(example_files, model, n, c, stats[n], photos, settings.examples)
                    else:
                        _, t = _timed(worker.compute, n, c, early, (p,))
                    each[-1][p] = t
            # a later channel's cost is the marginal one (the layer's shared work, fv.core.reusing, is paid
            # by its first channel): first[n] = the first's excess over it, paid once per layer
            later = each[1:] or each
            cost = {p: sum(e[p] for e in later) / len(later) for p in parts}
            per[n] = cost
            first[n] = sum(each[0].values()) - sum(cost.values())
            print(f"{n:>22}: " + "  ".join(f"{p} {t:6.1f} s" for p, t in cost.items())
                  + f"  (first channel +{first[n]:.1f} s)", flush=True)
        # one layer in one batch vs its channels one at a time (fewer steps: the cost is linear in steps)
        ref = args.batch_layer
        _, one = _timed(fv.render, model, f"{ref}:0", size=settings.size, steps=args.batch_steps,
                        progress=False)
        _, batch = _timed(fv.render_layer, model, ref, channels=list(range(args.batch)), size=settings.size,
                          steps=args.batch_steps, batch_size=args.batch, progress=False)

    print("\nper layer pair, connections (s):")
    for (a, b), t in link_s.items():
        print(f"  {a} -> {b}: {t:.1f}")
    print(f"photo statistics for {len(measured)} layers: {stats_s:.1f} s; curve scans (model + randomized) "
          f"for {len(measured)} layers: {scans_s:.1f} s")
    order = {n: i for i, n in enumerate(layers)}
    total_channels, total_s = 0, sum(link_s.values())
    print("\nextrapolation (per-channel cost from the nearest measured layer):")
    for n in layers:
        near = min(measured, key=lambda m: abs(order[m] - order[n]))
        c = shapes[n][1]
        early = len(shapes[n]) == 4 and shapes[n][-1] * EARLY_STRIDE >= size
        cost = {p: t for p, t in per[near].items() if p != "tuning" or early}
        if len(shapes[n]) != 4:
            cost = {p: t for p, t in cost.items() if p in ("fv", "examples")}
        layer_s = c * sum(cost.values()) + (stats_s + scans_s) / len(measured) + first[near]
        total_channels += c
        total_s += layer_s
        print(f"  {n:>22}: {c:5d} channels x {sum(cost.values()):6.1f} s (as {near}) = "
              f"{layer_s / 3600:6.2f} h")
    print(f"\nwhole model: {total_channels} channels, {total_s / 3600:.1f} h on {args.threads} thread(s) = "
          f"{60 * total_channels / total_s * 1:.2f} channels per CPU-minute")
    print(f"\n{ref}: one channel alone {one:.1f} s; {args.batch} channels in one batch {batch:.1f} s = "
          f"{batch / args.batch:.1f} s per channel (x{one * args.batch / batch:.2f}), "
          f"{args.batch_steps} steps")


if __name__ == "__main__":
    main()
