"""Rendering: the result of a feature-visualization run, images (B, 3, H, W) in [0, 1] plus its history.

It indexes like a sequence of batch items (``r[3]``, ``r[:4]``), draws itself as a grid
(``grid``/``save``/``show``) and shows inline in notebooks through ``_repr_png_``.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch


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

    @staticmethod
    def cat(parts: list[Rendering], objective: str | None = None) -> Rendering:
        """Join renderings with the same number of steps into one (items in order).

        Example:
            >>> Rendering.cat([grid_a, grid_b]).save("both.png", ncol=8)  # doctest: +SKIP
        """
        if not parts:
            raise ValueError("Rendering.cat needs at least one rendering")
        steps = {r.losses.shape[0] for r in parts}
        if len(steps) > 1:
            raise ValueError(f"cannot join renderings with different step counts {sorted(steps)}")
        shared = set.intersection(*(set(r.snapshots) for r in parts))
        return Rendering(
            torch.cat([r.images for r in parts]), torch.cat([r.losses for r in parts], dim=1),
            torch.cat([r.activations for r in parts]), [lab for r in parts for lab in r.labels],
            objective or " | ".join(dict.fromkeys(r.objective for r in parts)),
            {s: torch.cat([r.snapshots[s] for r in parts]) for s in sorted(shared)},
        )

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, idx: int | slice) -> Rendering:
        sel = slice(idx, idx + 1) if isinstance(idx, int) else idx
        if isinstance(idx, int) and not -len(self) <= idx < len(self):
            raise IndexError(f"rendering has {len(self)} images, index {idx} is out of range")
        if isinstance(idx, int) and idx < 0:
            sel = slice(len(self) + idx, len(self) + idx + 1)
        return Rendering(self.images[sel], self.losses[:, sel], self.activations[sel], self.labels[sel],
                         self.objective, {k: v[sel] for k, v in self.snapshots.items()})

    def __repr__(self) -> str:
        b, _, h, w = self.images.shape
        n = self.losses.shape[0]
        return f"Rendering({b} image{'s' * (b != 1)} of {h}x{w}, {n} steps, {self.objective})"

    def grid(self, ncol: int | None = None, pad: int = 2) -> torch.Tensor:
        """All images tiled in a grid with white gaps, (3, H', W'); ``ncol`` columns (default ~square).

        A single image comes back as is, without a border.

        Example:
            >>> r = Rendering(torch.rand(4, 3, 8, 8), torch.zeros(1, 4), torch.zeros(4), list("abcd"), "o")
            >>> r.grid().shape
            torch.Size([3, 22, 22])
        """
        b = len(self)
        ncol = ncol or max(1, int(round(b**0.5 + 0.49)))
        from torchvision.utils import make_grid  # lazy: torchvision takes ~1.4 s to import

        return make_grid(self.images.float().clamp(0, 1), nrow=ncol, padding=pad, pad_value=1.0)

    def to_pil(self, ncol: int | None = None):
        """The grid as a ``PIL.Image`` (8-bit RGB).

        Example:
            >>> Rendering(torch.rand(1, 3, 8, 8), torch.zeros(1, 1), torch.zeros(1), ["a"], "o").to_pil().size
            (8, 8)
        """
        from PIL import Image

        arr = (self.grid(ncol) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        return Image.fromarray(arr)

    def save(self, path: str | os.PathLike, ncol: int | None = None) -> Path:
        """Write the grid as a PNG; atomic (temporary file, then rename), so no half-written files.

        Example:
            >>> r.save("render.png")  # doctest: +SKIP
            PosixPath('render.png')
        """
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise ValueError(f"Rendering.save writes PNG files; give a path ending in .png, "
                             f"got {str(path)!r}")
        from featviz._io import atomic_write_bytes

        buf = io.BytesIO()
        self.to_pil(ncol).save(buf, format="PNG")
        return atomic_write_bytes(path, buf.getvalue())

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.to_pil().save(buf, format="PNG")
        return buf.getvalue()

    def show(self, ncol: int | None = None, scale: float = 1.5):
        """Draw the images in a matplotlib figure, one panel per item titled with its label; returns it.

        Example:
            >>> fig = r.show()  # doctest: +SKIP
        """
        import matplotlib.pyplot as plt

        b = len(self)
        ncol = ncol or max(1, int(round(b**0.5 + 0.49)))
        nrow = -(-b // ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(scale * ncol, scale * nrow + 0.3), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, img, label in zip(axes.flat, self.images, self.labels):
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_title(label, fontsize=8)
        fig.tight_layout()
        return fig
