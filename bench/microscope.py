"""Benchmark: microscope build throughput (channels per second), 1 in-process worker vs N Ray workers.

Builds the same site (EfficientNet-Lite0, one layer, the first --channels channels) into fresh folders:
  1 worker   build_microscope(..., workers=1)            (in-process, no Ray)
  N workers  build_microscope(..., workers=N)            (local Ray started by the build: startup counted)
  N warm     the same with Ray already running            (startup not counted)
and checks that every build wrote the same files. Each worker uses --threads torch threads.

Usage: .venv/bin/python bench/microscope.py [--workers 2] [--channels 8] [--layer blocks.2] [--steps 32]
"""
import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import torch

import featviz as fv
from featviz.microscope import MicroscopeSettings, build_microscope


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--layer", default="blocks.2")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import ray

    model = fv.models.efficientnet_lite0()
    settings = MicroscopeSettings(size=args.size, steps=args.steps, diversity=2, examples=4)
    results, trees = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, workers, warm in (("1 worker", 1, False), (f"{args.workers} workers", args.workers, False),
                                     (f"{args.workers} warm", args.workers, True)):
            if warm:
                ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
            out = Path(tmp) / label.replace(" ", "_")
            start = time.perf_counter()
            build_microscope(model, [args.layer], out, settings=settings, channels=args.channels,
                             workers=workers, progress=False)
            results[label] = time.perf_counter() - start
            trees[label] = _hashes(out)
            if warm:
                ray.shutdown()
    base = results["1 worker"]
    for label, seconds in results.items():
        print(f"{label:>12}: {seconds:7.1f} s  {args.channels / seconds:6.3f} channels/s  "
              f"speed-up x{base / seconds:.2f}")
    same = all(t == trees["1 worker"] for t in trees.values())
    print(f"identical files in every build: {same}")


if __name__ == "__main__":
    main()
