"""Benchmark (issue 21): fewer render steps, a decaying learning rate, early stop, MaCo vs today's 128 steps.

EfficientNet-Lite0, 128 px, 4 channels per layer evenly spaced, rendered as one batch per layer
(``fv.render_layer``, seed 0). Reference: today's microscope render, 128 steps, Adam lr 0.05 constant. Each
candidate's final activation (the channel's mean on the final, untransformed image: what
``Rendering.activations`` and the microscope's ``facts["activation"]`` report) is divided by the
reference's, per channel; the table gives the per-layer min and median of that ratio and the CPU seconds
(``time.process_time``, one torch thread).

How each candidate is run:
* ``const N``: the reference's own images at step N (``thresholds``). With a constant lr a run of N steps is
  the first N steps of the 128-step run (same seed, same random transforms), so the images are those of
  an N-step render; CPU = the reference's x N / 128.
* ``cosine/linear lr L, N``: a real run (``schedule=``), every step.
* ``early stop tol``: ``optvis._steps.Convergence`` replayed on a run's recorded objective per step
  (``Rendering.losses``); the item's image is the snapshot at its stop step, CPU = the run's x (mean stop
  step) / steps. For one channel (the microscope's render, batch 1) this is exactly what ``early_stop=``
  does; in a batch the remaining items then see other random transforms (rotations are drawn per item).
  ``--real`` also runs ``early_stop=`` for real on the last layer to check the CPU.
* ``maco lr L, N``: ``param=maco_image`` (only the Fourier phase optimised), constant lr.

Usage:
    python bench/render_steps.py [--layers stem.relu,blocks.2,...] [--no-maco] [--real] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import featviz as fv
from featviz.core import evaluating
from featviz.optvis import RenderSettings
from featviz.optvis._steps import Convergence
from featviz.optvis.maco import maco_image

LAYERS = "stem.relu,blocks.2,blocks.4,blocks.10,blocks.15,head.relu,fc"
FEWER = (24, 32, 48, 64)
TOLS = (0.005, 0.01, 0.02, 0.05)


def channels_of(model, layer: str, k: int = 4) -> list[int]:
    """``k`` channels evenly spaced over the layer (the middles of k equal slices)."""
    n = measure(model, layer, [0], torch.full((1, 3, 128, 128), 0.5), whole=True).shape[1]
    return [int((2 * i + 1) * n / (2 * k)) for i in range(k)]


def measure(model, layer: str, chans: list[int], images: torch.Tensor, whole: bool = False) -> torch.Tensor:
    """(B,) channel chans[i]'s mean activation on images[i], no transforms (independent of render)."""
    hm = fv.hooked(model)
    with torch.no_grad(), evaluating(model):
        _, cache = hm.run_with_cache(model.preprocess(images), names=[layer], stop_at_last=True)
    a = cache[layer]  # (B, C, H, W) or (B, C)
    if whole:
        return a
    return torch.stack([a[i, c].float().mean() for i, c in enumerate(chans)])


def run(model, layer, chans, **settings):
    s = RenderSettings(size=128, seed=0, **settings)
    t = time.process_time()
    r = fv.render_layer(model, layer, chans, batch_size=len(chans), settings=s, progress=False)
    return r, time.process_time() - t


def replay_stop(r, steps: int, tol: float, redirect: int = 16) -> list[int]:
    """Per item, the step at which ``early_stop=tol`` stops it (``steps`` if never), from r.losses."""
    conv = Convergence(r.losses.shape[1], tol, min_steps=redirect + 16)
    stop = [steps] * r.losses.shape[1]
    for t, values in enumerate(r.losses, start=1):
        done = conv.update(values)
        for i in range(len(stop)):
            if done[i] and stop[i] == steps and t < steps:
                stop[i] = t
    return stop


def ratios(acts: torch.Tensor, ref: torch.Tensor) -> list[float]:
    return [float(a / b) if b > 0 else float("nan") for a, b in zip(acts, ref, strict=True)]


def summary(ratios: list[float], digits: int = 2) -> str:
    """"min / median" of the ratios of the channels the reference switched on (a dead one has no ratio)."""
    live = [r for r in ratios if r == r]
    if not live:
        return "dead"
    return f"{min(live):.{digits}f} / {statistics.median(live):.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", default=LAYERS)
    ap.add_argument("--no-maco", action="store_true")
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = fv.models.efficientnet_lite0().eval()
    rows: dict[str, dict[str, dict]] = {}  # candidate -> layer -> {ratios, cpu}
    for layer in args.layers.split(","):
        chans = channels_of(model, layer)
        ref, ref_cpu = run(model, layer, chans, steps=128, thresholds=range(1, 129))
        ref_act = measure(model, layer, chans, ref.images)
        diff = float((ref_act - ref.activations).abs().max())
        print(f"{layer} {chans}: reference activations {[round(float(a), 2) for a in ref.activations]}, "
              f"re-measured max diff {diff:.2e}, {ref_cpu:.1f} CPU s", flush=True)

        def add(name, images, cpu, stops=None, _layer=layer, _chans=chans, _ref=ref_act):
            acts = measure(model, _layer, _chans, images)
            rows.setdefault(name, {})[_layer] = {"ratios": ratios(acts, _ref), "cpu": cpu, "stops": stops}

        add("const 128 (reference)", ref.images, ref_cpu)
        for n in FEWER:
            add(f"const {n}", ref.snapshots[n], ref_cpu * n / 128)
        for tol in TOLS:
            stop = replay_stop(ref, 128, tol)
            imgs = torch.stack([ref.snapshots[s][i] for i, s in enumerate(stop)])
            add(f"const 128, early stop {tol}", imgs, ref_cpu * statistics.mean(stop) / 128, stop)
        for sched, lr, n in (("cosine", 0.1, 32), ("cosine", 0.1, 48), ("cosine", 0.05, 48),
                             ("linear", 0.1, 48), ("cosine", 0.1, 64)):
            r, cpu = run(model, layer, chans, steps=n, lr=lr, schedule=sched, thresholds=range(1, n + 1))
            add(f"{sched} lr {lr}, {n}", r.images, cpu)
            if (sched, lr, n) == ("cosine", 0.1, 64):
                for tol in TOLS[1:3]:
                    stop = replay_stop(r, n, tol)
                    imgs = torch.stack([r.snapshots[s][i] for i, s in enumerate(stop)])
                    add(f"cosine lr 0.1, 64, early stop {tol}", imgs, cpu * statistics.mean(stop) / n, stop)
        if not args.no_maco:
            r, cpu = run(model, layer, chans, steps=64, lr=0.25, param=maco_image, thresholds=(48,))
            add("maco lr 0.25, 64", r.images, cpu)
            add("maco lr 0.25, 48", r.snapshots[48], cpu * 48 / 64)
        if args.real and layer == args.layers.split(",")[-1]:
            r, cpu = run(model, layer, chans, steps=128, early_stop=0.01)
            add("const 128, early stop 0.01 (real run)", r.images, cpu, [len(r.losses)])
        for name, per in rows.items():
            if layer in per:
                v = per[layer]
                print(f"  {name:40s} {summary(v['ratios'], 3)} "
                      f"cpu {v['cpu']:.1f}" + (f" stops {v['stops']}" if v["stops"] else ""), flush=True)
    layers = args.layers.split(",")
    print("\n| candidate | " + " | ".join(layers) + " | CPU s, all |")
    print("|---|" + "---|" * (len(layers) + 1))
    for name, per in rows.items():
        cells = [summary(per[n]["ratios"]) if n in per else "-" for n in layers]
        cpu = sum(per[n]["cpu"] for n in layers if n in per)
        print(f"| {name} | " + " | ".join(cells) + f" | {cpu:.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
