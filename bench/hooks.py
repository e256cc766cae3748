"""Benchmark: cost of caching every conv output of resnet18 with featviz hooks vs storing them by hand.

Three variants run interleaved, same thread count, same input (batch 8, 224 px):
  plain    model(x)
  store    hand-written forward hooks that only store `out.detach().clone()` (the cost of storing)
  featviz  fv.hooked(model).run_with_cache(x, names=<all convs>)
Prints median seconds and the ratios featviz/store (target <= 1.03) and featviz/plain.

Usage: .venv/bin/python bench/hooks.py [--threads 1] [--reps 7] [--batch 8] [--size 224]
"""
import argparse
import random
import statistics
import time

import torch
import torchvision

import featviz as fv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = torchvision.models.resnet18().eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    hm = fv.hooked(model)

    def plain():
        return model(x)

    def store():
        kept = {}
        handles = [model.get_submodule(n).register_forward_hook(
            lambda m, i, o, n=n: kept.__setitem__(n, o.detach().clone())) for n in convs]
        try:
            return model(x), kept
        finally:
            for h in handles:
                h.remove()

    def featviz():
        return hm.run_with_cache(x, names=convs)

    variants = {"plain": plain, "store": store, "featviz": featviz}
    times = {k: [] for k in variants}
    with torch.no_grad():
        for f in variants.values():
            f()  # warm-up
        order = list(variants)
        for _ in range(args.reps):
            random.shuffle(order)  # no variant always runs after the same one
            for k in order:
                f = variants[k]
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"resnet18, batch {args.batch}, {args.size} px, {len(convs)} conv outputs cached, "
          f"{args.threads} thread(s), {args.reps} reps (median)")
    for k, v in med.items():
        print(f"  {k:8s} {v * 1000:8.1f} ms")
    print(f"  featviz / store = {med['featviz'] / med['store']:.3f}   (target <= 1.03)")
    print(f"  featviz / plain = {med['featviz'] / med['plain']:.3f}")
    print(f"  store   / plain = {med['store'] / med['plain']:.3f}")


if __name__ == "__main__":
    main()
