"""Benchmark: what explaining one photo costs (fv.explain on EfficientNet-Lite0, CPU seconds, one thread).

1. Dictionary + attribution + groups of one photo at three Lite0 layers (``default_layers(model, 3)``), each
   part timed; the attribution beside captum's ``LayerIntegratedGradients`` with the same number of
   Gauss-Legendre steps and the same black baseline (the model runs whole for every step there), numbers
   compared (printed).
2. The activation grid of one layer rendered as one batch (``ex.activation_grid``) against the same cells
   rendered one by one (``fv.render`` with ``objectives.direction``, one cell per run; timed on
   ``--cells-alone`` cells and scaled to the grid).

Run: ``.venv/bin/python bench/explain.py [--photo coffee] [--grid-steps 16]`` (``--quick`` for a smoke run).
Times are ``time.process_time()`` (CPU seconds of this process), one thread.
"""
from __future__ import annotations

import argparse
import time

import torch

import featviz as fv
from featviz.explain import default_layers


def cpu(fn):
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photo", default="coffee")
    ap.add_argument("--grid-layer", default="blocks.10")
    ap.add_argument("--cell", type=int, default=2)
    ap.add_argument("--grid-size", type=int, default=48)
    ap.add_argument("--grid-steps", type=int, default=16)
    ap.add_argument("--cells-alone", type=int, default=4)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.grid_steps, args.cells_alone, args.cell = 2, 1, 7
    torch.set_num_threads(1)
    model = fv.models.efficientnet_lite0()
    photos = fv.data.sample_images()
    image = photos.images[photos.names.index(args.photo)]
    layers = default_layers(model, 3)

    ex, t_forward = cpu(lambda: fv.explain(model, image, layers=layers))
    print(f"{args.photo}: {ex.target.label}; layers {layers}")
    print(f"explain() forward pass + activations: {t_forward:.2f} s")
    total = t_forward
    from captum.attr import LayerIntegratedGradients

    x = model.preprocess(image[None])
    for layer in layers:
        _, t_dict = cpu(lambda layer=layer: ex.top_channels(layer, k=4))
        attr, t_attr = cpu(lambda layer=layer: ex.attribution(layer))
        check = ex.completeness(layer)
        _, t_groups = cpu(lambda layer=layer: ex.groups(layer, n=6))
        lig = LayerIntegratedGradients(model, fv.hooked(model).module(layer))
        ref, t_captum = cpu(lambda lig=lig, check=check: lig.attribute(
            x, baselines=model.preprocess(torch.zeros_like(x)), target=ex.target.channel,
            n_steps=check["steps"], method="gausslegendre", internal_batch_size=16)[0])
        ratio = t_captum / t_attr
        same = torch.allclose(attr, ref.detach(), atol=1e-4 * float(attr.abs().max()), rtol=1e-3)
        total += t_dict + t_attr + t_groups
        print(f"  {layer}: dictionary {t_dict:.3f} s, attribution {t_attr:.2f} s (IG to {check['steps']} "
              f"steps, error {check['relative_error']:.2%}; all tries counted), groups {t_groups:.2f} s | "
              f"captum LIG at {check['steps']} steps {t_captum:.2f} s = {ratio:.2f}x the featviz attribution "
              f"(same numbers: {same})")
    print(f"total for three layers (forward, dictionary, attribution, groups): {total:.1f} CPU s")

    grid, t_grid = cpu(lambda: ex.activation_grid(args.grid_layer, cell=args.cell, size=args.grid_size,
                                                  steps=args.grid_steps))
    n = grid.images.shape[0] * grid.images.shape[1]
    vectors = grid.vectors.reshape(n, -1)
    alone = []
    for i in range(min(args.cells_alone, n)):
        obj = fv.objectives.direction(args.grid_layer, vectors[i], cossim_pow=1.0)
        _, t = cpu(lambda obj=obj: fv.render(model, obj, size=args.grid_size, steps=args.grid_steps,
                                             progress=False))
        alone.append(t)
    per_cell = sum(alone) / len(alone)
    print(f"activation grid {args.grid_layer}, {grid.images.shape[0]}x{grid.images.shape[1]} cells, "
          f"{args.grid_size} px, {args.grid_steps} steps: batched {t_grid:.1f} s; one cell at a time "
          f"{per_cell:.2f} s/cell x {n} = {per_cell * n:.1f} s -> batched is {per_cell * n / t_grid:.2f}x "
          "faster")


if __name__ == "__main__":
    main()
