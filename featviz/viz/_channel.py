"""One microscope channel: (model, "layer:channel", settings) -> PNG bytes and the facts its page shows.

``ChannelWorker`` keeps a model and its stimuli (bundled photos, gratings) and computes channels one
at a time; the same class runs in-process or as a Ray actor, and returns bytes rather than writing
files, so workers on other machines need no shared disk.

Example:
    >>> worker = ChannelWorker(model, MicroscopeSettings(size=64, steps=32))   # doctest: +SKIP
    >>> files, facts = worker.compute("blocks.1", 3, early=True)              # doctest: +SKIP
    >>> sorted(files)                                                         # doctest: +SKIP
    ['diversity.png', 'examples.png', 'fv.png', 'tuning.png']
"""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["MicroscopeSettings", "ChannelWorker", "png_bytes", "kernel_png"]


@dataclass(frozen=True)
class MicroscopeSettings:
    """What a microscope build computes; every field except ``top_k`` is part of a channel's content key.

    Attributes:
        size, steps, seed: feature-visualization image size (px), optimisation steps, seed.
        diversity: images in each channel's diversity batch (0: no diversity batch).
        diversity_weight: weight of the diversity objective against the channel objective.
        examples: dataset examples (bundled photos) shown per channel.
        tuning_angles: grating orientations (degrees) of the tuning curve drawn for early layers.
        top_k: strongest upstream and downstream connections listed per channel.
    """

    size: int = 128
    steps: int = 128
    seed: int = 0
    diversity: int = 4
    diversity_weight: float = 10.0
    examples: int = 6
    tuning_angles: tuple[int, ...] = tuple(range(0, 180, 15))
    top_k: int = 4

    def __post_init__(self):
        for name in ("size", "steps", "top_k"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"MicroscopeSettings.{name} must be a positive int, "
                                 f"got {getattr(self, name)}")
        for name in ("diversity", "examples"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"MicroscopeSettings.{name} must be 0 or more, got {getattr(self, name)}")

    def channel_settings(self) -> dict:
        """The settings a channel's results depend on (its content key is made from these)."""
        d = asdict(self)
        d.pop("top_k")
        d["tuning_angles"] = list(self.tuning_angles)
        return d


def png_bytes(image: torch.Tensor | np.ndarray) -> bytes:
    """(3, H, W) float in [0, 1] or (H, W, 3) uint8 -> PNG file bytes (deterministic: no metadata).

    Example:
        >>> png_bytes(torch.zeros(3, 4, 4))[:4]
        b'\\x89PNG'
    """
    from PIL import Image

    if isinstance(image, torch.Tensor):
        image = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
        image = image.permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def kernel_png(kernel: torch.Tensor, scale: float | None = None, px: int = 48) -> bytes:
    """A (kh, kw) weight slice as a heat map PNG: positive red, negative blue, zero white.

    The colour scale is symmetric, ``[-scale, scale]`` (default: the kernel's largest magnitude).

    Example:
        >>> kernel_png(torch.eye(3))[:4]
        b'\\x89PNG'
    """
    k = kernel.detach().float().cpu()
    s = float(scale if scale is not None else k.abs().max())
    v = (k / s).clamp(-1, 1) if s > 0 else torch.zeros_like(k)  # (kh, kw) in [-1, 1]
    pos, neg = v.clamp(min=0), (-v).clamp(min=0)
    rgb = torch.stack([1 - neg, 1 - pos - neg, 1 - pos])  # red keeps R, blue keeps B
    rep = max(1, px // max(k.shape))
    rgb = rgb.repeat_interleave(rep, 1).repeat_interleave(rep, 2)
    return png_bytes(rgb)


class ChannelWorker:
    """Computes microscope channels for one model; usable in-process or as a Ray actor.

    ``threads`` sets torch's CPU thread count in this process (a Ray worker otherwise picks its own,
    and a different thread count can change the last bits of a result). The model is put in eval mode.
    """

    def __init__(self, model: nn.Module, settings: MicroscopeSettings, threads: int | None = None):
        if threads:
            torch.set_num_threads(int(threads))
        self.model = model.eval()
        self.settings = settings
        self._photos: tuple[torch.Tensor, list[str]] | None = None
        self._maps: dict[str, tuple[torch.Tensor | None, torch.Tensor | None]] = {}  # the last layer's only

    def photos(self) -> tuple[torch.Tensor, list[str]]:
        """The bundled photos at the model's input size, loaded once per worker."""
        if self._photos is None:
            from featviz.data import sample_images

            images, names = sample_images(size=int(getattr(self.model, "input_size", 224)))
            self._photos = (images, list(names))
        return self._photos

    def compute(self, layer: str, channel: int, early: bool) -> tuple[dict[str, bytes], dict]:
        """Render, diversity batch, dataset examples and (``early``) tuning curve of ``layer:channel``.

        Returns ``(files, facts)``: PNG bytes by file name, and JSON-able facts for the page.
        """
        from featviz.optvis import objectives, render
        from featviz.viz._examples import examples_png, tuning_png

        s, ref = self.settings, f"{layer}:{channel}"
        files: dict[str, bytes] = {}
        r = render(self.model, ref, size=s.size, steps=s.steps, seed=s.seed, progress=False)
        files["fv.png"] = png_bytes(r.images[0])
        facts: dict = {"activation": round(float(r.activations[0]), 6)}
        if s.diversity > 1:
            obj = objectives.channel(layer, channel) + s.diversity_weight * objectives.diversity(layer)
            d = render(self.model, obj, size=s.size, steps=s.steps, seed=s.seed, batch=s.diversity,
                       progress=False)
            files["diversity.png"] = png_bytes(d.grid(ncol=s.diversity))
        photos, tuning = self._layer(layer, early)
        if photos is not None:
            images, names = self.photos()
            png, facts["examples"] = examples_png(self.model, ref, photos[:, channel], images, names,
                                                  s.examples)
            files["examples.png"] = png
        if tuning is not None:
            files["tuning.png"], facts["tuning"] = tuning_png(ref, tuning[..., channel], s.tuning_angles)
        return files, facts

    def run(self, job: tuple[str, int, bool]) -> tuple[str, int, dict[str, bytes], dict]:
        """``compute`` for one job ``(layer, channel, early)``, returned with its job's layer and channel."""
        layer, channel, early = job
        return (layer, channel, *self.compute(layer, channel, early))

    def _layer(self, layer: str, early: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Photo activations (N, C, H', W') and grating responses (A, P, C) of ``layer``, one pass each.

        None for what the settings (``examples=0``, no ``tuning_angles``) or a late layer leave out.
        """
        from featviz.viz._examples import grating_responses, layer_maps

        if layer not in self._maps:
            size = int(getattr(self.model, "input_size", 224))
            photos = layer_maps(self.model, layer, self.photos()[0]) if self.settings.examples else None
            tuning = (grating_responses(self.model, layer, self.settings.tuning_angles, size)
                      if early and self.settings.tuning_angles else None)
            self._maps = {layer: (photos, tuning)}
        return self._maps[layer]
