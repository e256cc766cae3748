"""Rendering: the result of a feature-visualization run, images (B, 3, H, W) in [0, 1] plus its history.

It indexes like a sequence of batch items (``r[3]``, ``r[:4]``), draws itself as a grid
(``grid``/``save``/``show``/``plot``), gives its numbers with ``to_dict`` and shows inline in notebooks
through ``_repr_png_``. Items the
optimisation could not switch on (``Rendering.dead``, rule in :func:`dead_items`) are drawn as a
crossed-out "no response found" tile (:func:`no_response_tile`), never as the grey start image.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from featviz.errors import BadValue, OutOfRange

DEAD_TOL = 1e-4     # |activation| <= DEAD_TOL * max(1, max |activation| in the batch): no response
FLAT_STD = 0.01     # pixel std below this: the image never left its start (fft_image starts at ~0.003)
FLAT_TOL = 1e-2     # ... and then |activation| <= FLAT_TOL * max(1, max |activation|) is no response too


def dead_items(images: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the items whose optimisation found no response (a dead channel, a flat grey image).

    With ``scale = max(1, max_i |activations[i]|)`` (over the batch), item ``i`` is dead when
    ``|activations[i]| <= 1e-4 * scale``, or when its image is flat (std over its (3, H, W) pixels
    below 0.01, i.e. it barely moved from the near-uniform start) and ``|activations[i]| <= 1e-2 * scale``.

    Example:
        >>> imgs = torch.rand(3, 3, 8, 8); imgs[2] = 0.5
        >>> dead_items(imgs, torch.tensor([2.0, 1e-5, 0.01])).tolist()
        [False, True, True]
    """
    a = activations.detach().float().reshape(-1).abs()
    if a.numel() == 0:
        return torch.zeros(0, dtype=torch.bool)
    scale = float(a.max().clamp(min=1.0)) if torch.isfinite(a).all() else 1.0
    flat = images.detach().float().reshape(len(images), -1).std(dim=1, correction=0) < FLAT_STD
    return ((a <= DEAD_TOL * scale) | (flat & (a <= FLAT_TOL * scale))).cpu()


def no_response_tile(h: int, w: int) -> torch.Tensor:
    """(3, h, w) light-grey tile, finely hatched and crossed out corner to corner in dark red.

    Drawn in place of a dead item's image: no optimised feature looks like it.

    Example:
        >>> t = no_response_tile(16, 16)
        >>> t.shape, t[:, 0, 0].tolist() == t[:, 15, 15].tolist(), float(t.std()) > 0.05
        (torch.Size([3, 16, 16]), True, True)
    """
    rows = torch.arange(h, dtype=torch.float32)[:, None]
    cols = torch.arange(w, dtype=torch.float32)[None, :]
    half = max(0.5, min(h, w) / 40)  # half-width of the cross's strokes in pixels
    # distance (in pixels) to the two diagonals of the h x w rectangle
    u, v = rows / max(h - 1, 1), cols / max(w - 1, 1)
    span = min(h, w) - 1 or 1
    cross = ((u - v).abs() * span <= half) | ((u + v - 1).abs() * span <= half)
    hatch = ((rows - cols) % max(4, min(h, w) // 8)) == 0  # thin diagonal hatching
    tile = torch.full((3, h, w), 0.85)
    tile[:, hatch.expand(h, w)] = 0.65
    for c, value in enumerate((0.75, 0.1, 0.1)):
        tile[c][cross] = value
    return tile


@dataclass
class Rendering:
    """Images that maximise an objective, and how the optimisation got there.

    Attributes:
        images: (B, 3, H, W) float in [0, 1], on the CPU.
        losses: (steps, B) the objective per batch item at each step, measured on the transformed
            images the optimiser saw (higher is better: featviz objectives are maximised).
        activations: (B,) the objective per item on the final, untransformed images.
        labels: one label per item (e.g. ``"blocks.2:7"``), used as titles by ``show``.
        objective: the objective's readable name.
        snapshots: step -> (B, 3, H, W) images recorded at the ``thresholds`` asked for.
        dead: (B,) bool, True for items where no response was found: :func:`dead_items` of
            ``images`` and ``activations`` when not given; ``fv.render`` also flags items whose image
            never changed from its start (zero gradient throughout). ``grid``/``save``/``show``
            draw those as a "no response found" tile; viewers (circuit plots, microscope) should too.
        alpha: (B, 1, H, W) opacity in [0, 1] from ``fv.render(..., alpha=True)``, else None. With it,
            ``grid`` is RGBA (4, H', W'), ``save``/``to_pil`` write RGBA PNGs and ``show`` draws the
            images over the figure's white (transparent where alpha is 0).

    Example:
        >>> r = Rendering(torch.rand(2, 3, 8, 8), torch.zeros(5, 2), torch.zeros(2), ["a", "b"], "obj")
        >>> len(r), r[1].images.shape, r.grid().shape
        (2, torch.Size([1, 3, 8, 8]), torch.Size([3, 12, 22]))
    """

    images: torch.Tensor
    losses: torch.Tensor
    activations: torch.Tensor
    labels: list[str]
    objective: str
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    dead: torch.Tensor | None = None
    alpha: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.dead is None:
            self.dead = dead_items(self.images, self.activations)
        self.dead = torch.as_tensor(self.dead, dtype=torch.bool).reshape(-1).cpu()
        if len(self.dead) != len(self.images):
            raise BadValue(f"dead has {len(self.dead)} flags for {len(self.images)} images")
        want = (len(self.images), 1, *self.images.shape[-2:])
        if self.alpha is not None and tuple(self.alpha.shape) != want:
            raise BadValue(f"alpha must be (B, 1, H, W) = {want}, got {tuple(self.alpha.shape)}")

    def rgba(self) -> torch.Tensor:
        """(B, 4, H, W): the images with their opacity (1 everywhere without ``alpha``).

        Example:
            >>> r = Rendering(torch.rand(2, 3, 4, 4), torch.zeros(1, 2), torch.ones(2), ["a", "b"], "o")
            >>> r.rgba().shape
            torch.Size([2, 4, 4, 4])
        """
        a = self.alpha if self.alpha is not None else torch.ones_like(self.images[:, :1])
        return torch.cat([self.images, a.to(self.images)], dim=1)

    @staticmethod
    def cat(parts: list[Rendering], objective: str | None = None) -> Rendering:
        """Join renderings with the same number of steps into one (items in order).

        Example:
            >>> model = fv.models.toy.edges_and_curves()
            >>> a = fv.render_layer(model, "relu1", channels=range(4), size=32, steps=4, progress=False)
            >>> b = fv.render_layer(model, "relu2", channels=range(3), size=32, steps=4, progress=False)
            >>> both = Rendering.cat([a, b])
            >>> len(both), both.labels[3:5]
            (7, ['relu1:3', 'relu2:0'])
        """
        if not parts:
            raise BadValue("Rendering.cat needs at least one rendering")
        steps = {r.losses.shape[0] for r in parts}
        if len(steps) > 1:
            raise BadValue(f"cannot join renderings with different step counts {sorted(steps)}")
        shared = set.intersection(*(set(r.snapshots) for r in parts))
        with_alpha = any(r.alpha is not None for r in parts)
        return Rendering(
            torch.cat([r.images for r in parts]), torch.cat([r.losses for r in parts], dim=1),
            torch.cat([r.activations for r in parts]), [lab for r in parts for lab in r.labels],
            objective or " | ".join(dict.fromkeys(r.objective for r in parts)),
            {s: torch.cat([r.snapshots[s] for r in parts]) for s in sorted(shared)},
            torch.cat([r.dead for r in parts]),
            torch.cat([r.rgba()[:, 3:] for r in parts]) if with_alpha else None,
        )

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, idx: int | slice) -> Rendering:
        sel = slice(idx, idx + 1) if isinstance(idx, int) else idx
        if isinstance(idx, int) and not -len(self) <= idx < len(self):
            raise OutOfRange(f"rendering has {len(self)} images, index {idx} is out of range")
        if isinstance(idx, int) and idx < 0:
            sel = slice(len(self) + idx, len(self) + idx + 1)
        return Rendering(self.images[sel], self.losses[:, sel], self.activations[sel], self.labels[sel],
                         self.objective, {k: v[sel] for k, v in self.snapshots.items()}, self.dead[sel],
                         None if self.alpha is None else self.alpha[sel])

    def __repr__(self) -> str:
        b, _, h, w = self.images.shape
        n = self.losses.shape[0]
        dead = int(self.dead.sum())
        note = f", {dead} with no response" if dead else ""
        return f"Rendering({b} image{'s' * (b != 1)} of {h}x{w}, {n} steps, {self.objective}{note})"

    def grid(self, ncol: int | None = None, pad: int = 2) -> torch.Tensor:
        """All images tiled in a grid with white gaps, (3, H', W'); ``ncol`` columns (default ~square).

        A single image comes back as is, without a border. Dead items (``self.dead``) are drawn as
        :func:`no_response_tile`, not as their (flat grey) image.

        Example:
            >>> r = Rendering(torch.rand(4, 3, 8, 8), torch.zeros(1, 4), torch.zeros(4), list("abcd"), "o")
            >>> r.grid().shape
            torch.Size([3, 22, 22])
        """
        b = len(self)
        ncol = ncol or max(1, int(round(b**0.5 + 0.49)))
        images = self.images.float().clamp(0, 1)  # (B, 3, H, W)
        if self.alpha is not None:
            images = self.rgba().float().clamp(0, 1)  # (B, 4, H, W); gaps come out opaque white
        if self.dead.any():
            images = images.clone()
            images[self.dead] = 1.0
            images[self.dead, :3] = no_response_tile(*images.shape[-2:])
        from torchvision.utils import make_grid  # lazy: torchvision takes ~1.4 s to import

        return make_grid(images, nrow=ncol, padding=pad, pad_value=1.0)

    def to_pil(self, ncol: int | None = None):
        """The grid as a ``PIL.Image`` (8-bit RGB).

        Example:
            >>> Rendering(torch.rand(1, 3, 8, 8), torch.zeros(1, 1), torch.zeros(1), ["a"], "o").to_pil().size
            (8, 8)
        """
        from PIL import Image

        arr = (self.grid(ncol) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        return Image.fromarray(arr, mode="RGBA" if arr.shape[-1] == 4 else "RGB")

    def save(self, path: str | os.PathLike, ncol: int | None = None) -> Path:
        """Write the grid as a PNG (RGBA with ``alpha``); atomic (temporary file, then rename).

        Example:
            >>> r = fv.render(fv.models.toy.edges_and_curves(), "relu2:0", size=32, steps=4, progress=False)
            >>> r.save("render.png")
            PosixPath('render.png')
        """
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise BadValue(f"Rendering.save writes PNG files; give a path ending in .png, "
                             f"got {str(path)!r}")
        from featviz._io import atomic_write_bytes

        buf = io.BytesIO()
        self.to_pil(ncol).save(buf, format="PNG")
        return atomic_write_bytes(path, buf.getvalue())

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.to_pil().save(buf, format="PNG")
        return buf.getvalue()

    def to_dict(self) -> dict:
        """The numbers of the run as plain values (``json.dumps``-ready); the images themselves are written
        by :meth:`save`.

        Example:
            >>> acts = torch.tensor([1.0, 0.0])
            >>> r = Rendering(torch.rand(2, 3, 8, 8), torch.zeros(5, 2), acts, ["a", "b"], "o")
            >>> d = r.to_dict()
            >>> d["shape"], d["steps"], d["activations"], d["dead"]
            ([2, 3, 8, 8], 5, [1.0, 0.0], [False, True])
        """
        return {"objective": self.objective, "labels": list(self.labels), "shape": list(self.images.shape),
                "steps": int(self.losses.shape[0]),
                "activations": [float(v) for v in self.activations.reshape(-1)],
                "final_losses": [float(v) for v in self.losses[-1]] if len(self.losses) else [],
                "dead": [bool(d) for d in self.dead], "snapshots": sorted(int(k) for k in self.snapshots),
                "alpha": self.alpha is not None}

    def plot(self, ncol: int | None = None, path: str | None = None):
        """The images on a grid, titled with their labels, dead items drawn as "no response found"
        (``featviz.viz.image_grid``); a ``matplotlib.figure.Figure``, written as a PNG when ``path`` is given.

        Example:
            >>> r = Rendering(torch.rand(3, 3, 8, 8), torch.zeros(1, 3), torch.ones(3), list("abc"), "o")
            >>> len(r.plot(ncol=3).axes)
            3
        """
        from featviz.viz.figures import image_grid

        return image_grid(self, ncol=ncol, path=path)

    def show(self, ncol: int | None = None, scale: float = 1.5):
        """Draw the images in a pyplot figure, one panel per item titled with its label; returns it
        (``featviz.viz.show_rendering``).

        A dead item's panel shows the crossed-out tile with the words "no response found".

        Example:
            >>> model = fv.models.toy.edges_and_curves()
            >>> fig = fv.render_layer(model, "relu2", size=32, steps=4, progress=False).show()
            >>> len(fig.axes)                  # 7 channels on a 3 x 3 grid
            9
        """
        from featviz.viz.optvis_plot import show_rendering

        return show_rendering(self, ncol=ncol, scale=scale)
