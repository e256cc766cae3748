"""Benchmark: seconds per feature-visualization step, featviz vs lucent vs the bare forward+backward floor.

Setup (the same for every contender): torchvision googlenet (random init: timing does not depend
on the weights), objective = channel(s) of ``inception4a``, 224 px images (both renderers get the
same input size; lucid's standard transforms make what the network sees ~236 px on average), Fourier
parameterisation with colour decorrelation, lucid's standard transforms, Adam lr 0.05, batch 1 (one
channel) and batch 8 (eight channels, one per batch item). All contenders run in one process with
the same thread count, interleaved (round-robin: one run of each contender per round). Each step is
timed on its own (a clock ticks once per step, right where the image enters the model; the first
step of each run is dropped as warm-up), so per-run setup is excluded. Each step is timed twice: CPU
time of this process (``time.process_time``) and wall time. Ratios use median CPU time: on a shared
machine, wall time mostly measures the other processes, while CPU time counts only the work done
(with one thread, CPU time = busy time).

Contenders:
  featviz            fv.render at 224 px (transforms as rendered: the model sees ~236 px).
  lucent             lucent's render_vis at 224 px (no upsampling: lucent only upsamples under 224).
  floor              bare forward conv1..inception4a + backward to the input, parameters frozen, no
                     hooks, no parameterisation/transforms/optimiser, replaying the exact input sizes
                     featviz's model saw in the run before it: once in torch's default memory layout
                     ("floor, NCHW"), once with the input in channels-last memory ("floor,
                     channels-last": the same network, the layout featviz feeds on a CPU, and the
                     cheaper of the two).

lucent registers hooks on every module and never removes them, so each lucent run gets a fresh copy
of the model (copied outside the timed region). lucent 0.1.8 calls ``kornia.get_rotation_matrix2d``
and ``kornia.warp_affine``, which kornia >= 0.7 only has under ``kornia.geometry.transform``; this
script aliases them (the computation is unchanged).

Usage (bench-only dependencies: ``pip install --no-deps -r bench/requirements.txt``):
    .venv/bin/python bench/render.py                  # 1 thread, 6 rounds x 4 steps, batch 1 and 8
    .venv/bin/python bench/render.py --threads 2 --rounds 12 --batches 8
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


class Clock:
    """Timestamps one call per optimisation step; also notes the size of the image the model gets."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.sizes: list[tuple[int, int]] = []

    def tick(self, x: torch.Tensor | None = None) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())
        if x is not None:
            self.sizes.append(tuple(x.shape[-2:]))

    def steps(self, kind: str) -> list[float]:
        """Durations ("wall" or "cpu") between consecutive ticks, the first (warm-up) one dropped."""
        t = self.wall if kind == "wall" else self.cpu
        return [b - a for a, b in zip(t[1:], t[2:])]


def featviz_run(model: nn.Module, batch: int, steps: int, size: int, clock: Clock) -> None:
    obj = sum(fv.objectives.batch(fv.objectives.channel(LAYER, c), c) for c in range(batch))
    std = fv.optvis.standard_transforms()

    def transforms(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        x = std(x, g)
        clock.tick(x)  # once per step, just before the model
        return x

    fv.render(model, obj, size=size, steps=steps, batch=batch, transforms=transforms, preprocess=NORMALIZE,
              progress=False)


def lucent_run(model: nn.Module, batch: int, steps: int, size: int, clock: Clock) -> None:
    from lucent.optvis import objectives, param, render, transform

    def tick(x: torch.Tensor) -> torch.Tensor:
        clock.tick()
        return x

    obj = sum(objectives.channel(LAYER, c, batch=c) for c in range(batch))
    render.render_vis(model, obj, lambda: param.image(size, batch=batch, fft=True, decorrelate=True),
                      transforms=transform.standard_transforms + [tick], thresholds=(steps,),
                      show_image=False, progress=False)


def floor_run(model: nn.Module, batch: int, sizes: list[tuple[int, int]], clock: Clock,
              channels_last: bool = False) -> None:
    net = trunk(model)
    flags = [p.requires_grad for p in net.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        layout = torch.channels_last if channels_last else torch.contiguous_format
        inputs = [torch.rand(batch, 3, h, w, requires_grad=True) for h, w in sizes]
        for x in inputs:
            clock.tick()
            act = net(x.contiguous(memory_format=layout))  # (B, 528, h, w)
            act[range(batch), range(batch)].mean().backward()
        clock.tick()
    finally:
        for p, f in zip(net.parameters(), flags):
            p.requires_grad_(f)


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


def bench_batch(base: nn.Module, batch: int, args: argparse.Namespace, have_lucent: bool) -> None:
    """Time every contender at one batch size and print the table and ratios."""
    last: list[Clock] = []  # the latest featviz run, whose input sizes the floors replay

    def fv_run(c: Clock, b: int = batch) -> None:
        featviz_run(base, b, args.steps, args.size, c)
        last[:] = [c]

    contenders: dict[str, Callable[[Clock], None]] = {
        "featviz": fv_run,
        "floor, NCHW": lambda c, b=batch: floor_run(base, b, last[0].sizes, c),
        "floor, channels-last": lambda c, b=batch: floor_run(base, b, last[0].sizes, c, channels_last=True),
    }
    if have_lucent:
        contenders["lucent"] = lambda c, b=batch: lucent_run(copy.deepcopy(base), b, args.steps, args.size, c)
    clocks: dict[str, list[Clock]] = {k: [] for k in contenders}
    for _ in range(args.rounds):
        for name, run in contenders.items():  # interleaved: one run of each per round
            clocks[name].append(Clock())
            run(clocks[name][-1])
    cpu = {k: [d for c in v for d in c.steps("cpu")] for k, v in clocks.items()}
    wall = {k: [d for c in v for d in c.steps("wall")] for k, v in clocks.items()}
    med = {k: statistics.median(v) for k, v in cpu.items()}
    wmed = {k: statistics.median(v) for k, v in wall.items()}
    side = statistics.mean(h * w for c in clocks["featviz"] for h, w in c.sizes) ** 0.5
    print(f"\nbatch {batch}  ({args.size} px images; the model saw {side:.0f} px on average)")
    print(f"  {'s/step':24s} {'CPU med':>8s} {'CPU min':>8s} {'wall med':>8s}")
    for name in contenders:
        print(f"  {name:24s} {med[name]:8.4f} {min(cpu[name]):8.4f} {wmed[name]:8.4f}   n={len(cpu[name])}")

    def ratio(label: str, a: str, b: str, note: str = "") -> None:
        print(f"  {label:34s} CPU {med[a] / med[b]:5.2f}x   (wall {wmed[a] / wmed[b]:5.2f}x)  {note}")

    ratio("featviz / floor, channels-last", "featviz", "floor, channels-last", "(goal <= 1.1)")
    ratio("featviz / floor, NCHW", "featviz", "floor, NCHW")
    if have_lucent:
        ratio("lucent / featviz", "lucent", "featviz", "(goal >= 2)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=6, help="each round runs every contender once")
    ap.add_argument("--size", type=int, default=224, help="image size in px (before the transforms)")
    ap.add_argument("--steps", type=int, default=4, help="optimisation steps per run (the first is dropped)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--smoke", action="store_true", help="1 round of 3 steps, batch 1 only")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.steps, args.batches = 1, 3, [1]
    torch.set_num_threads(args.threads)
    have_lucent = patch_kornia()
    base = googlenet()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), googlenet random init, {LAYER}, "
          f"{args.size} px; {args.rounds} interleaved rounds x {args.steps} steps "
          "(first step of each run dropped)"
          + ("" if have_lucent else "; lucent not installed: skipped"))
    for batch in args.batches:
        bench_batch(base, batch, args, have_lucent)


if __name__ == "__main__":
    main()
