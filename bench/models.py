"""Benchmark: EfficientNet-Lite0 forward, featviz layers (torch backend) vs the same network in torch.nn.

The plain twin is built by mapping every featviz layer of the pretrained model to its torch.nn
counterpart with the same weights (an asymmetric-padding conv becomes ZeroPad2d + Conv2d, the
same two ops featviz's torch backend runs); outputs are checked equal before timing. Both run
under no_grad, same thread count, same input, interleaved in shuffled order; median per variant.

Usage: .venv/bin/python bench/models.py [--threads 1] [--reps 15] [--batch 8] [--size 224]
"""
import argparse
import copy
import random
import statistics
import time

import torch
from torch import nn

import featviz as fv
import featviz.nn as fnn


def _plain(layer: nn.Module) -> nn.Module | None:
    """The torch.nn module computing what featviz ``layer`` computes, sharing its tensors."""
    if isinstance(layer, fnn.Conv2d):
        pad = layer.padding
        conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                         0 if len(pad) == 4 else pad, layer.dilation, layer.groups,
                         bias=layer.bias is not None)
        conv.weight, conv.bias = layer.weight, layer.bias
        return nn.Sequential(nn.ZeroPad2d(pad), conv) if len(pad) == 4 else conv
    if isinstance(layer, fnn.BatchNorm2d):
        bn = nn.BatchNorm2d(layer.num_features, layer.eps, layer.momentum)
        bn.load_state_dict(layer.state_dict())
        return bn
    if isinstance(layer, fnn.Linear):
        lin = nn.Linear(layer.in_features, layer.out_features)
        lin.weight, lin.bias = layer.weight, layer.bias
        return lin
    if isinstance(layer, fnn.ReLU6):
        return nn.ReLU6()
    if isinstance(layer, fnn.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool2d(layer.output_size)
    return None


def to_plain_torch(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose featviz layers are torch.nn layers (same forward code, same weights)."""
    twin = copy.deepcopy(model)
    for module in list(twin.modules()):
        for child_name, child in list(module.named_children()):
            plain = _plain(child)
            if plain is not None:
                setattr(module, child_name, plain)
    leftover = [n for n, m in twin.named_modules() if type(m).__module__.startswith("featviz.nn")]
    assert not leftover, f"unmapped featviz layers: {leftover}"
    return twin.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.models.efficientnet_lite0()
    variants = {"featviz": model, "plain torch": to_plain_torch(model)}
    images = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    x = model.preprocess(images)
    with torch.no_grad():
        torch.testing.assert_close(variants["featviz"](x), variants["plain torch"](x))
        for m in variants.values():  # warm-up
            m(x)
        times = {name: [] for name in variants}
        order = [name for _ in range(args.reps) for name in variants]
        random.Random(0).shuffle(order)
        for name in order:
            t0 = time.perf_counter()
            variants[name](x)
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"EfficientNet-Lite0, batch {args.batch}, {args.size} px, {args.threads} thread(s), "
          f"{args.reps} interleaved reps, median:")
    for name, t in med.items():
        print(f"  {name:12s} {1000 * t:8.1f} ms / forward")
    print(f"featviz / plain torch = {med['featviz'] / med['plain torch']:.3f}  (target < 1.05)")


if __name__ == "__main__":
    main()
