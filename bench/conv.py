"""Benchmark: featviz's from-scratch conv2d (as_strided + einsum) vs F.conv2d on resnet18's conv shapes.

For every distinct conv of torchvision's resnet18 (input 224 px, batch 8 by default) it times the
forward pass and forward+backward (gradients for input and weight) of both implementations,
side by side in one process with the same thread count, and prints a table of times and ratios
(ours / torch; the target is <= 3). The total row weights each shape by how often resnet18 uses it.

Usage:
    .venv/bin/python bench/conv.py                 # batch 8, 224 px, 1 thread, best of 3
    .venv/bin/python bench/conv.py --threads 2
    .venv/bin/python bench/conv.py --quick         # batch 1, 112 px, best of 1: a smoke run
"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision

from featviz.nn import functional as sf


def resnet18_conv_shapes(size: int) -> Counter:
    """Counter of (C_in, H, W, C_out, k, stride, padding) over resnet18's convs for a size x size input."""
    model = torchvision.models.resnet18().eval()
    shapes: Counter = Counter()

    def record(module, inputs, output):
        _, C, H, W = inputs[0].shape
        m = module
        shapes[(C, H, W, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0])] += 1

    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return shapes


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time of ``repeats`` calls, in milliseconds, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def time_conv(conv: Callable, x: torch.Tensor, w: torch.Tensor, stride: int, padding: int,
              repeats: int) -> tuple[float, float]:
    """(forward ms, forward+backward ms) of ``conv(x, w, stride=, padding=)``."""
    with torch.no_grad():
        fwd = best_time(lambda: conv(x, w, stride=stride, padding=padding), repeats)
    xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
    grad_out = torch.randn_like(conv(x, w, stride=stride, padding=padding))

    def forward_backward():
        out = conv(xg, wg, stride=stride, padding=padding)
        torch.autograd.grad(out, (xg, wg), grad_out)

    return fwd, best_time(forward_backward, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="batch 1, 112 px, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.size, args.repeats = 1, 112, 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(f"conv2d: featviz strided vs F.conv2d | resnet18 convs, batch {args.batch}, {args.size} px, "
          f"{args.threads} thread(s), best of {args.repeats}, torch {torch.__version__}")
    header = f"{'C_in':>5} {'HxW':>7} {'C_out':>5} {'k':>2} {'s':>2} {'n':>2} | " \
             f"{'fwd torch':>9} {'fwd ours':>9} {'ratio':>6} | {'f+b torch':>9} {'f+b ours':>9} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    totals = [0.0, 0.0, 0.0, 0.0]
    for (C, H, W, O, k, s, p), n in resnet18_conv_shapes(args.size).items():
        x, w = torch.randn(args.batch, C, H, W), torch.randn(O, C, k, k) / (C * k * k) ** 0.5
        t_fwd, t_fb = time_conv(F.conv2d, x, w, s, p, args.repeats)
        o_fwd, o_fb = time_conv(sf.conv2d, x, w, s, p, args.repeats)
        for i, t in enumerate((t_fwd, o_fwd, t_fb, o_fb)):
            totals[i] += n * t
        print(f"{C:>5} {f'{H}x{W}':>7} {O:>5} {k:>2} {s:>2} {n:>2} | {t_fwd:9.1f} {o_fwd:9.1f} "
              f"{o_fwd / t_fwd:6.2f} | {t_fb:9.1f} {o_fb:9.1f} {o_fb / t_fb:6.2f}")
    print("-" * len(header))
    a, b, c, d = totals
    print(f"{'all resnet18 convs (ms, weighted by n)':>29} | {a:9.1f} {b:9.1f} {b / a:6.2f} | "
          f"{c:9.1f} {d:9.1f} {d / c:6.2f}")


if __name__ == "__main__":
    main()
