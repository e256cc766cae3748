"""Microscope evidence panels: (model, "layer:channel", stimuli) -> PNG + facts (dataset examples, tuning).

The activations come from ``layer_maps`` (one forward pass per layer serves all its channels).

Example:
    >>> maps = layer_maps(model, "blocks.1", images)                       # (N, C, H', W')
    >>> png, facts = examples_png(model, "blocks.1:3", maps[:, 3], images, names, k=6)   # doctest: +SKIP
"""
from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from featviz.viz._channel import png_bytes

__all__ = ["layer_maps", "grating_responses", "examples_png", "tuning_png", "PHASES"]

PHASES = (0, 90, 180, 270)  # grating phases averaged in a tuning curve

THUMB = 96  # px of each photo in the examples strip


def layer_maps(model: nn.Module, name: str, images: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """(N, C, H', W') activations of layer ``name`` for ``images`` (N, 3, H, W) in [0, 1], on the CPU.

    Example:
        >>> layer_maps(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3)), "0", torch.rand(5, 3, 8, 8)).shape
        torch.Size([5, 2, 6, 6])
    """
    from featviz.hooks import hooked

    hm = hooked(model)
    prep = getattr(model, "preprocess", None) or (lambda t: t)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    maps = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = prep(images[start:start + batch].to(device))
            _, cache = hm.run_with_cache(x, names=[name], stop_at_last=True)
            maps.append(cache[name].float().cpu())
    return torch.cat(maps)


def grating_responses(model: nn.Module, name: str, angles: Sequence[int], size: int) -> torch.Tensor:
    """(A, P, C) central-unit response of every channel of ``name`` to gratings: angle x phase (``PHASES``).

    Example:
        >>> grating_responses(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3)), "0", [0, 90], 16).shape
        torch.Size([2, 4, 2])
    """
    from featviz.circuits.tuning import layer_responses
    from featviz.data import gratings
    from featviz.hooks import hooked

    stimuli = gratings(list(angles), size=size, phases=list(PHASES))  # (A * P, 3, size, size), angle-major
    responses = layer_responses(hooked(model), name, stimuli, position="center").cpu()  # (A * P, C)
    return responses.view(len(angles), len(PHASES), -1)


def examples_png(model: nn.Module, ref: str, maps: torch.Tensor, images: torch.Tensor, names: Sequence[str],
                 k: int) -> tuple[bytes, list[dict]]:
    """The ``k`` photos whose strongest position in ``maps`` (N, H', W') of ``ref`` is highest.

    Each is drawn with a box around the input pixels that reach that position (its receptive field,
    ``fv.circuits.input_boxes``), with the crop inside the box below it.
    """
    from PIL import Image, ImageDraw

    from featviz.circuits import input_boxes

    best, where = maps.flatten(1).max(dim=1)
    order = best.argsort(descending=True, stable=True)[:k]
    positions = torch.stack([where[order] // maps.shape[-1], where[order] % maps.shape[-1]], 1)  # (k, 2)
    boxes = input_boxes(model, ref.rpartition(":")[0], tuple(images.shape[1:]), positions).tolist()
    scale = THUMB / images.shape[-1]
    tiles, facts = [], []
    for i, (r0, r1, c0, c1) in zip(order.tolist(), boxes):
        photo = Image.fromarray(np.asarray(Image.open(io.BytesIO(png_bytes(images[i])))).copy())
        crop = photo.crop((c0, r0, c1 + 1, r1 + 1)).resize((THUMB, THUMB), Image.Resampling.LANCZOS)
        photo = photo.resize((THUMB, THUMB), Image.Resampling.LANCZOS)
        ImageDraw.Draw(photo).rectangle((c0 * scale, r0 * scale, (c1 + 1) * scale - 1, (r1 + 1) * scale - 1),
                                        outline=(255, 40, 40), width=2)
        tiles.append((photo, crop))
        facts.append({"name": names[i], "activation": round(float(best[i]), 6), "box": [r0, r1, c0, c1]})
    pad = 4
    strip = Image.new("RGB", (len(tiles) * (THUMB + pad) - pad, 2 * THUMB + pad), "white")
    for j, (photo, crop) in enumerate(tiles):
        strip.paste(photo, (j * (THUMB + pad), 0))
        strip.paste(crop, (j * (THUMB + pad), THUMB + pad))
    return png_bytes(np.asarray(strip)), facts


def tuning_png(ref: str, raw: torch.Tensor, angles: Sequence[int]) -> tuple[bytes, dict]:
    """Tuning curve PNG of ``ref`` from ``raw`` (A, P) responses (``fv.viz.plot_tuning_curve``) + facts."""
    from featviz.circuits import TuningCurve
    from featviz.viz import plot_tuning_curve

    curve = TuningCurve(ref, torch.tensor([float(a) for a in angles]), raw.mean(1), raw)
    fig = plot_tuning_curve(curve)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, bbox_inches="tight", facecolor="white",
                metadata={"Software": None})
    response = [round(float(r), 6) for r in curve.responses]
    return buf.getvalue(), {"preferred": int(curve.peak), "response": response}
