"""Dataset examples: (model, "layer:channel", image stream) -> the top-k images, scores, positions and crops.

Images stream through in batches; only the current top k are kept (constant memory). A crop is the
input region that can influence the channel's maximal unit (its receptive field, found by autograd).
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from featviz.circuits._linear import ones_params, run_cut
from featviz.core import device_of, evaluating
from featviz.errors import BadValue, NonFinite
from featviz.hooks import hooked

__all__ = ["DatasetExamples", "dataset_examples", "input_boxes"]


@dataclass
class DatasetExamples:
    """The top-k images for one channel, best first.

    ``images`` (k, 3, H, W); ``scores`` (k,) the channel's maximum over space; ``indices`` (k,) positions
    in the stream; ``positions`` (k, 2) (row, col) of the maximum in the layer's map; ``boxes`` (k, 4)
    input pixels (row0, row1, col0, col1), inclusive; ``crops`` (k, 3, S, S) those boxes resized to the
    largest box size."""

    node: str
    images: torch.Tensor
    scores: torch.Tensor
    indices: torch.Tensor
    positions: torch.Tensor
    boxes: torch.Tensor
    crops: torch.Tensor = field(repr=False)

    def plot(self, path: str | None = None, crops: bool = True):
        """A grid of the crops (or the whole images), titled with scores (``featviz.viz``)."""
        from featviz.viz import plot_dataset_examples

        return plot_dataset_examples(self, path=path, crops=crops)

    def _repr_png_(self) -> bytes:
        from featviz.viz.figures import figure_png

        return figure_png(self.plot())

    def summary(self) -> str:
        """One sentence: the unit, how many images, and the best scores with their indices."""
        best = ", ".join(f"#{int(i)} ({float(s):.3g})" for i, s in zip(self.indices[:3], self.scores[:3]))
        more = " ..." if len(self.scores) > 3 else "."
        return f"Top {len(self.scores)} images for {self.node}: {best}{more}"

    def to_dict(self) -> dict:
        """Scores, image indices, peak positions and input boxes (``json.dumps``-ready; no pixels)."""
        return {"node": self.node, "scores": [float(s) for s in self.scores],
                "indices": [int(i) for i in self.indices], "positions": self.positions.tolist(),
                "boxes": self.boxes.tolist()}


def image_batches(images: torch.Tensor | Iterable) -> torch.Tensor | Iterable:
    """``images`` for ``HookedModel.stream``: a tensor as it is; an iterable (a DataLoader) with each
    ``(images, labels, ...)`` item (tuple or list) reduced to its images."""
    if isinstance(images, torch.Tensor) or (isinstance(images, tuple) and images
                                            and isinstance(images[0], torch.Tensor)):
        return images
    return (item[0] if isinstance(item, (tuple, list)) else item for item in images)


def input_boxes(model: nn.Module, layer: str, image_shape: tuple[int, int, int],
                positions: torch.Tensor) -> torch.Tensor:
    """Input pixel boxes (row0, row1, col0, col1), inclusive, that reach ``layer`` at each (row, col) of
    ``positions`` (k, 2): autograd through the linearised network with every weight set to one.

    The boxes of a layer are remembered per model, layer and image shape, by row and by column: in a
    network built of convolutions, pools and elementwise layers a box's rows depend only on the position's
    row and its columns only on its column, so after a few calls most positions cost nothing (a dataset
    example per channel of a whole layer asks for hundreds). That holds for the layer only when its four
    corners and centre, measured once, agree with it; otherwise every position is measured as asked.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(4, 4, 3, stride=2))
        >>> input_boxes(net, "1", (3, 16, 16), torch.tensor([[0, 0]])).tolist()
        [[0, 3, 0, 3]]
    """
    hm = hooked(model)
    positions = torch.as_tensor(positions).long().reshape(-1, 2)
    tables = _BOX_TABLES.setdefault(hm.model, {})
    key = (hm.ref(layer).key, tuple(int(v) for v in image_shape))
    table = tables.get(key)
    if table is None:
        table = tables[key] = _BoxTable(hm, key[0], key[1])
    return table.boxes(positions)


_BOX_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {(layer, shape): _BoxTable}


class _BoxTable:
    """One layer's input boxes at one image shape: row ranges by map row and column ranges by map column
    once the layer is known to be separable (``separable``: None until measured)."""

    def __init__(self, hm, layer: str, image_shape: tuple[int, ...]):
        self.hm, self.layer, self.image_shape = hm, layer, image_shape
        self.rows: dict[int, tuple[int, int]] = {}
        self.cols: dict[int, tuple[int, int]] = {}
        self.separable: bool | None = None
        self.hw: tuple[int, int] | None = None  # the layer's map size, once measured

    PAD = 16  # a measurement fills up to this many positions with diagonal ones whose row or column is new

    def fill(self, n: int) -> torch.Tensor:
        """Up to ``n`` positions on the map's diagonal whose row or column is not known yet (none before the
        map size is known or when the layer is not separable): each costs what the asked ones cost, and
        once every row and column is known no box needs a measurement."""
        if n <= 0 or not self.separable or self.hw is None:
            return torch.zeros(0, 2, dtype=torch.long)
        h, w = self.hw
        diag = [(min(i, h - 1), min(i, w - 1)) for i in range(max(h, w))]
        new = [d for d in diag if d[0] not in self.rows or d[1] not in self.cols][:n]
        return torch.tensor(new, dtype=torch.long).reshape(-1, 2)

    def boxes(self, positions: torch.Tensor) -> torch.Tensor:
        if self.separable is False:
            return self.measure(positions)[0]
        need = [i for i, (r, c) in enumerate(positions.tolist()) if r not in self.rows or c not in self.cols]
        if need:
            ask = torch.cat([positions[need], self.fill(self.PAD - len(need))])
            got, self.hw = self.measure(ask)
            if self.separable is None:
                self.separable = self.check(self.hw, ask, got)
                if not self.separable:
                    return self.measure(positions)[0] if len(need) < len(positions) else got[:len(need)]
            self.learn(ask, got)
        return torch.tensor([[*self.rows[r], *self.cols[c]] for r, c in positions.tolist()], dtype=torch.long)

    def learn(self, positions: torch.Tensor, boxes: torch.Tensor) -> None:
        for (r, c), (r0, r1, c0, c1) in zip(positions.tolist(), boxes.tolist()):
            self.rows[r], self.cols[c] = (r0, r1), (c0, c1)

    def check(self, hw: tuple[int, int], positions: torch.Tensor, boxes: torch.Tensor) -> bool:
        """Whether rows depend on the row only and columns on the column only, at the map's corners, its
        centre and the positions just measured."""
        h, w = hw
        probe = torch.tensor([[0, 0], [0, w - 1], [h - 1, 0], [h - 1, w - 1], [h // 2, w // 2]])
        pos = torch.cat([positions, probe])
        got = torch.cat([boxes, self.measure(probe)[0]])
        rows: dict[int, tuple] = {}
        cols: dict[int, tuple] = {}
        for (r, c), (r0, r1, c0, c1) in zip(pos.tolist(), got.tolist()):
            if rows.setdefault(r, (r0, r1)) != (r0, r1) or cols.setdefault(c, (c0, c1)) != (c0, c1):
                return False
        self.learn(pos, got)
        return True

    def measure(self, positions: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(k, 4) boxes of ``positions`` by autograd through the linearised network, and the map's (H, W)."""
        hm = self.hm
        x = torch.zeros(len(positions), *self.image_shape, device=device_of(hm.model), requires_grad=True)
        with evaluating(hm.model):
            _, d = run_cut(hm, x, None, self.layer, lambda out: out, linear=True,
                           params=ones_params(hm.model))
        go = torch.zeros_like(d)
        go[torch.arange(len(positions)), :, positions[:, 0], positions[:, 1]] = 1.0
        (g,) = torch.autograd.grad(d, x, go)
        hit = g.abs().sum(1) > 0  # (k, H, W)
        boxes = []
        for one in hit:
            rows, cols = one.any(1).nonzero().flatten(), one.any(0).nonzero().flatten()
            boxes.append([int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])])
        return torch.tensor(boxes, dtype=torch.long).reshape(-1, 4), (int(d.shape[-2]), int(d.shape[-1]))


def dataset_examples(model: nn.Module, node: str, images: torch.Tensor | Iterable, k: int = 9, *,
                     batch_size: int = 32, preprocess: Callable | bool | None = None,
                     progress: bool = True) -> DatasetExamples:
    """The ``k`` images that excite channel ``node`` (``"layer:channel"``) most, with crops around the peak.

    ``images``: a (N, 3, H, W) tensor in [0, 1], or any iterable of such batches (a DataLoader; a
    ``(images, labels)`` item uses its first element). The model's ``preprocess`` is applied. A score
    is the channel's maximum over space; ties keep the earlier image. Memory stays at one batch plus k
    images, whatever the stream's length.

    Example:
        >>> model = fv.models.efficientnet_lite0()
        >>> photos, names = fv.data.sample_images(size=64)
        >>> ex = dataset_examples(model, "blocks.4:7", photos, k=4, progress=False)
        >>> ex.images.shape, ex.crops.shape[:2]
        (torch.Size([4, 3, 64, 64]), torch.Size([4, 3]))
    """
    hm = hooked(model)
    if k < 1:
        raise BadValue(f"k must be >= 1, got {k}")
    layer, c = hm.ref(node).key, None
    best_s = best_i = best_p = best_img = None
    seen = 0
    stream = hm.stream(image_batches(images), [layer], batch_size=batch_size, preprocess=preprocess,
                       progress=progress, desc=f"dataset examples {node}")
    for batch, cache in stream:  # eval mode, no gradients; a train-mode model's BatchNorm stats kept
        a = cache[layer]
        if c is None:  # one channel, non-negative, within the width the images give the layer
            _, c = hm.unit(node, n_channels=a.shape[1])
        flat = a[:, c].flatten(1)  # (b, H*W)
        s, arg = flat.max(1)
        if not bool(torch.isfinite(flat).all()):
            bad = seen + int((~torch.isfinite(flat)).any(1).nonzero()[0])
            raise NonFinite(f"{layer}:{c} is NaN or infinite on image {bad} (the images are finite, so "
                            f"the model's activations are not: check its weights and forward); featviz "
                            f"cannot rank images by a value that is not a number")
        pos = torch.stack([arg // a.shape[-1], arg % a.shape[-1]], 1)
        idx = torch.arange(seen, seen + len(batch))
        seen += len(batch)
        if best_s is None:
            best_s, best_i, best_p, best_img = s.cpu(), idx, pos.cpu(), batch.cpu()
        else:
            best_s, best_i = torch.cat([best_s, s.cpu()]), torch.cat([best_i, idx])
            best_p, best_img = torch.cat([best_p, pos.cpu()]), torch.cat([best_img, batch.cpu()])
        order = sorted(range(len(best_s)), key=lambda j: (-float(best_s[j]), int(best_i[j])))[:k]
        best_s, best_i, best_p, best_img = best_s[order], best_i[order], best_p[order], best_img[order]
    if best_s is None:
        raise BadValue("images is empty; give at least one image")
    boxes = input_boxes(hm, layer, tuple(best_img.shape[1:]), best_p)
    side = int(max((boxes[:, 1] - boxes[:, 0]).max(), (boxes[:, 3] - boxes[:, 2]).max()) + 1)
    crops = torch.cat([F.interpolate(img[None, :, r0:r1 + 1, c0:c1 + 1], size=(side, side), mode="bilinear",
                                     align_corners=False)
                       for img, (r0, r1, c0, c1) in zip(best_img, boxes.tolist())])
    return DatasetExamples(f"{layer}:{c}", best_img, best_s, best_i, best_p, boxes, crops)
