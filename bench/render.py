"""Benchmark: seconds per feature-visualization step, featviz vs lucent vs the bare forward+backward floor.

Setup (the same for every contender): torchvision googlenet (random init: timing does not depend
on the weights), objective = channel(s) of ``inception4a``, 128 px images, Fourier parameterisation
with colour decorrelation, lucid's standard transforms, Adam lr 0.05, batch 1 (one channel) and
batch 8 (eight channels, one per batch item). All contenders run in one process with the same
thread count, interleaved (round-robin). Each contender's time per step is
(min over repeats of the time for N2 steps - min over repeats of the time for N1 steps) / (N2 - N1):
per-run setup cancels out, and the minimum filters out slowdowns from other processes on a shared
machine (noise only ever adds time).

Contenders:
  featviz            fv.render at 128 px; the model sees the transformed image (~140 px on average).
  lucent (as-is)     lucent's render_vis, which upsamples images under 224 px to 224 before the model.
  featviz @224       featviz with the same final upsample to 224 px: like for like with lucent as-is.
  floor @140/@128    bare forward conv1..inception4a + backward to the input, parameters frozen,
                     no hooks, no parameterisation/transforms/optimiser, at 140 px (what featviz's
                     model sees on average) and at 128 px.

lucent registers hooks on every module and never removes them, so each lucent run gets a fresh copy
of the model (copied outside the timed region). lucent 0.1.8 calls ``kornia.get_rotation_matrix2d``
and ``kornia.warp_affine``, which kornia >= 0.7 only has under ``kornia.geometry.transform``; this
script aliases them (the computation is unchanged).

Usage (bench-only dependencies: ``pip install --no-deps -r bench/requirements.txt``):
    .venv/bin/python bench/render.py                  # 1 thread, N1=2, N2=10 steps, 5 repeats
    .venv/bin/python bench/render.py --threads 2 --repeats 5
    .venv/bin/python bench/render.py --smoke          # tiny run: checks the script works
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import featviz as fv

LAYER = "inception4a"
NORMALIZE = torchvision.transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


def googlenet() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()


def trunk(model: nn.Module) -> nn.Sequential:
    """googlenet's modules from the input up to and including inception4a (transform_input is off)."""
    names = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
             LAYER]
    return nn.Sequential(*[getattr(model, n) for n in names])


def featviz_run(model: nn.Module, batch: int, steps: int, size: int, upsample: int | None) -> None:
    obj = sum(fv.objectives.batch(fv.objectives.channel(LAYER, c), c) for c in range(batch))
    transforms = fv.optvis.standard_transforms()
    if upsample:
        std = transforms
        transforms = lambda x, g=None: F.interpolate(std(x, g), size=(upsample, upsample),  # noqa: E731
                                                     mode="bilinear", align_corners=True)
    fv.render(model, obj, size=size, steps=steps, batch=batch, transforms=transforms, preprocess=NORMALIZE,
              progress=False)


def lucent_run(model: nn.Module, batch: int, steps: int, size: int) -> None:
    from lucent.optvis import objectives, param, render

    obj = sum(objectives.channel(LAYER, c, batch=c) for c in range(batch))
    render.render_vis(model, obj, lambda: param.image(size, batch=batch, fft=True, decorrelate=True),
                      thresholds=(steps,), show_image=False, progress=False)


def floor_run(model: nn.Module, batch: int, steps: int, size: int) -> None:
    net = trunk(model)
    flags = [p.requires_grad for p in net.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        x = torch.rand(batch, 3, size, size, requires_grad=True)
        for _ in range(steps):
            act = net(x)  # (B, 508, h, w)
            act[range(batch), range(batch)].mean().backward()
    finally:
        for p, f in zip(net.parameters(), flags):
            p.requires_grad_(f)


def wall(run: Callable[[int], None], n: int) -> float:
    start = time.perf_counter()
    run(n)
    return time.perf_counter() - start


def patch_kornia() -> bool:
    try:
        import kornia
        import lucent.optvis.render  # noqa: F401
    except ImportError:
        return False
    for name in ("get_rotation_matrix2d", "warp_affine"):
        if not hasattr(kornia, name):
            setattr(kornia, name, getattr(kornia.geometry.transform, name))
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n1", type=int, default=2)
    ap.add_argument("--n2", type=int, default=10)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--smoke", action="store_true", help="1 repeat, 1 and 2 steps, batch 1 only")
    args = ap.parse_args()
    if args.smoke:
        args.repeats, args.n1, args.n2, args.batches = 1, 1, 2, [1]
    torch.set_num_threads(args.threads)
    have_lucent = patch_kornia()
    base = googlenet()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), googlenet random init, {LAYER}, "
          f"128 px, steps {args.n1}->{args.n2}, min of {args.repeats} runs each"
          + ("" if have_lucent else "; lucent not installed: skipped"))
    for batch in args.batches:
        contenders: dict[str, Callable[[int], None]] = {
            "featviz": lambda n, b=batch: featviz_run(base, b, n, 128, None),
            "featviz @224": lambda n, b=batch: featviz_run(base, b, n, 128, 224),
            "floor @140": lambda n, b=batch: floor_run(base, b, n, 140),
            "floor @128": lambda n, b=batch: floor_run(base, b, n, 128),
        }
        if have_lucent:
            contenders["lucent (as-is, 224)"] = lambda n, b=batch: lucent_run(copy.deepcopy(base), b, n, 128)
        short: dict[str, list[float]] = {k: [] for k in contenders}
        long: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(args.repeats):
            for name, run in contenders.items():  # interleaved: one of each per round
                short[name].append(wall(run, args.n1))
                long[name].append(wall(run, args.n2))
        med = {k: (min(long[k]) - min(short[k])) / (args.n2 - args.n1) for k in contenders}
        print(f"\nbatch {batch}")
        for name, t in med.items():
            spread = statistics.median(long[name]) / min(long[name])
            print(f"  {name:22s} {t:8.4f} s/step   (median/min of the {args.n2}-step runs: {spread:.2f})")
        print(f"  featviz / floor @140      {med['featviz'] / med['floor @140']:.2f}x  (target <= 1.2)")
        print(f"  featviz / floor @128      {med['featviz'] / med['floor @128']:.2f}x")
        if have_lucent:
            luc = med["lucent (as-is, 224)"]
            print(f"  lucent as-is / featviz     {luc / med['featviz']:.2f}x  (lucent's model sees 224 px, "
                  "featviz's ~140)")
            print(f"  lucent as-is / featviz@224 {luc / med['featviz @224']:.2f}x  (both models see 224 px)")


if __name__ == "__main__":
    main()
