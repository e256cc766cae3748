"""Benchmark: the microscope's ``Plan.estimate`` (calibrated CPU seconds) against a real build, and the
estimate of a whole default site.

``--validate MODEL LAYERS CHANNELS SIZE STEPS``: plan a small build into a fresh temporary folder, estimate
it, build it, and print the estimate, the measured CPU seconds of the build (``time.process_time``, one torch
thread) and their ratio. ``--whole MODEL``: the estimate of a whole-model build at default
``MicroscopeSettings()`` (nothing is built).

Usage: .venv/bin/python bench/microscope_estimate.py --validate efficientnet_lite0 blocks.2 2 64 32
       .venv/bin/python bench/microscope_estimate.py --whole efficientnet_lite0
"""
import argparse
import tempfile
import time
from pathlib import Path

import torch

import featviz as fv
from featviz.microscope import MicroscopeSettings, build_microscope, plan


def validate(name: str, layers: list[str], channels: int, size: int, steps: int) -> None:
    model = fv.models.get(name)
    settings = MicroscopeSettings(size=size, steps=steps)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "site"
        p = plan(model, layers, out, settings=settings, channels=channels)
        start = time.process_time()
        e = p.estimate(model)
        print(e)
        print(f"calibration: {time.process_time() - start:.1f} CPU s")
        start = time.process_time()
        build_microscope(model, layers, out, settings=settings, channels=channels, progress=False)
        spent = time.process_time() - start
    print(f"measured {spent:.1f} CPU s, estimated {e.total:.1f} CPU s: estimate / measured = "
          f"{e.total / spent:.2f}")


def whole(name: str) -> None:
    model = fv.models.get(name)
    with tempfile.TemporaryDirectory() as tmp:
        p = plan(model, None, Path(tmp) / "site", settings=MicroscopeSettings())
        start = time.process_time()
        e = p.estimate(model)
        print(e)
        print(f"calibration: {time.process_time() - start:.1f} CPU s; {sum(map(len, p.channels.values()))} "
              f"channels in {len(p.layers)} layers")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validate", nargs=5, metavar=("MODEL", "LAYERS", "CHANNELS", "SIZE", "STEPS"))
    ap.add_argument("--whole", metavar="MODEL")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.validate:
        m, layers, c, size, steps = args.validate
        validate(m, layers.split(","), int(c), int(size), int(steps))
    if args.whole:
        whole(args.whole)


if __name__ == "__main__":
    main()
