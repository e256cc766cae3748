"""Microscope evidence panels: (model, "layer:channel", stimuli) -> PNG + facts (dataset examples, tuning).

The activations come from ``layer_maps`` (one forward pass per layer serves all its channels).

Example:
    >>> maps = layer_maps(model, "blocks.1", images)                       # (N, C, H', W')
    >>> png, facts = examples_png(maps[:, 3], images, names, k=6)          # doctest: +SKIP
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
    """(len(angles), C) mean activation of every channel of ``name`` per grating angle (phases averaged).

    Example:
        >>> grating_responses(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3)), "0", [0, 90], 16).shape
        torch.Size([2, 2])
    """
    from featviz.data import gratings

    stimuli = gratings(list(angles), size=size, phases=list(PHASES))  # (A * P, 3, size, size), angle-major
    means = layer_maps(model, name, stimuli).mean(dim=(2, 3))  # (A * P, C)
    return means.view(len(angles), len(PHASES), -1).mean(1)


def examples_png(maps: torch.Tensor, images: torch.Tensor, names: Sequence[str],
                 k: int) -> tuple[bytes, list[dict]]:
    """The ``k`` photos whose strongest position in ``maps`` (N, H', W') is highest; photo, box and crop.

    The box is centred on the strongest position, its side the layer's stride times 4 (at least a
    quarter of the photo), clipped to the photo.
    """
    from PIL import Image, ImageDraw
    size = images.shape[-1]
    best, where = maps.flatten(1).max(dim=1)
    order = best.argsort(descending=True)[:k].tolist()
    stride = size / maps.shape[-1]
    side = int(min(size, max(size // 4, 4 * stride)))
    tiles, facts = [], []
    for i in order:
        y, x = divmod(int(where[i]), maps.shape[-1])
        cy, cx = (y + 0.5) * stride, (x + 0.5) * stride
        top = int(np.clip(cy - side / 2, 0, size - side))
        left = int(np.clip(cx - side / 2, 0, size - side))
        photo = Image.open(io.BytesIO(png_bytes(images[i]))).convert("RGB")
        crop = photo.crop((left, top, left + side, top + side))
        crop = crop.resize((THUMB, THUMB), Image.Resampling.LANCZOS)
        scale = THUMB / size
        photo = photo.resize((THUMB, THUMB), Image.Resampling.LANCZOS)
        box = (left * scale, top * scale, (left + side) * scale - 1, (top + side) * scale - 1)
        ImageDraw.Draw(photo).rectangle(box, outline=(255, 40, 40), width=2)
        tiles.append((photo, crop))
        facts.append({"name": names[i], "activation": round(float(best[i]), 6), "box": [top, left, side]})
    pad = 4
    strip = Image.new("RGB", (len(tiles) * (THUMB + pad) - pad, 2 * THUMB + pad), "white")
    for j, (photo, crop) in enumerate(tiles):
        strip.paste(photo, (j * (THUMB + pad), 0))
        strip.paste(crop, (j * (THUMB + pad), THUMB + pad))
    return png_bytes(np.asarray(strip)), facts


def tuning_png(response: torch.Tensor, angles: Sequence[int]) -> tuple[bytes, dict]:
    """A tuning curve, ``response`` (A,) against grating ``angles``, as a line plot PNG + facts."""
    from matplotlib.figure import Figure

    angles = [int(a) for a in angles]
    fig = Figure(figsize=(3.2, 2.2), dpi=100)
    ax = fig.add_subplot()
    ax.plot(angles, response.numpy(), marker="o", color="#c0392b")
    ax.set_xlabel("grating orientation (°)")
    ax.set_ylabel("mean activation")
    ax.set_xticks(angles[:: max(1, len(angles) // 6)])
    fig.subplots_adjust(left=0.25, bottom=0.22, right=0.97, top=0.95)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    preferred = angles[int(response.argmax())]
    return buf.getvalue(), {"preferred": preferred, "response": [round(float(r), 6) for r in response]}
