"""Microscope evidence from photos and gratings: (model, layers, photos) -> cached per-channel statistics ->
each channel's top and bottom dataset examples (JPEG tiles + facts); grating tuning curves (PNG + facts).

Photos are streamed in batches (bundled samples, or every image under ``--images DIR``). One pass records,
for every layer, image and channel: the strongest position (ranked by the pre-activation when the layer
is a ReLU/ReLU6 module, so ties at ReLU6's cap are broken by how far past the cap the input went), the
activation there, and the weakest position. These (N, C) statistics are cached on disk per layer,
keyed by the weights and the photo set, so a rebuild does not run the photos again.

Example:
    >>> model = fv.models.toy.edges_and_curves()
    >>> photos = bundled_photos(64)
    >>> stats = layer_stats(model, photos, ["relu1"], Path("site/.featviz-cache/acts"), progress=False)
    >>> files, facts = example_files(model, "relu1", 3, stats["relu1"], photos, k=6)
    >>> sorted(files)[:2], facts["top"][0]["name"]
    (['bottom0.jpg', 'bottom1.jpg'], 'camera')
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn
from tqdm.auto import tqdm

from featviz._io import atomic_write_bytes
from featviz.circuits import TuningCurve, input_boxes, receptive_field
from featviz.circuits.tuning import layer_responses
from featviz.data import gratings, load_images, sample_images
from featviz.data.photos import IMAGE_SUFFIXES
from featviz.errors import BadValue, MissingFile
from featviz.hooks import HookedModel, hooked
from featviz.microscope._channel import FIGURE_IN, jpeg_bytes, svg_bytes
from featviz.microscope._store import content_key, slug
from featviz.models import predict
from featviz.viz import plot_tuning_curve

__all__ = ["PhotoSet", "bundled_photos", "image_folder", "LayerStats", "layer_stats", "stats_path",
           "example_files", "top_crop", "inside_map", "grating_responses", "tuning_svg", "PHASES", "TILE"]

PHASES = (0, 90, 180, 270)  # grating phases averaged in a tuning curve
TILE = 128  # px of each example tile
INSIDE = 0.75  # an example position's field is at least this much inside the photo (relative to the best)
MIN_CROP = 1 / 3  # a crop shows at least this fraction of the photo's side, centred on the receptive field
_MONOTONE = {"ReLU", "ReLU6", "LeakyReLU", "Hardtanh", "ELU", "CELU"}  # activation = f(pre), f increasing


@dataclass
class PhotoSet:
    """Photos for dataset examples: names, a content key, and loading by index at ``size`` px."""

    names: list[str]
    key: str
    size: int
    files: list[Path] | None = None      # an image folder's files, loaded on demand
    tensor: torch.Tensor | None = None   # or the images themselves, (N, 3, size, size)

    def __len__(self) -> int:
        return len(self.names)

    def load(self, indices: Sequence[int]) -> torch.Tensor:
        """(n, 3, size, size) float in [0, 1] for ``indices``."""
        if self.tensor is not None:
            return self.tensor[list(indices)]

        return load_images([self.files[i] for i in indices], size=self.size).images

    def batches(self, batch: int) -> Iterator[torch.Tensor]:
        """The photos in order, ``batch`` at a time."""
        for start in range(0, len(self), batch):
            yield self.load(range(start, min(start + batch, len(self))))


def bundled_photos(size: int) -> PhotoSet:
    """The photos featviz ships (``fv.data.sample_images``) at ``size`` px.

    Example:
        >>> len(bundled_photos(32))
        10
    """

    images, names = sample_images(size=size)
    return PhotoSet(list(names), content_key("bundled", {"names": list(names), "size": size}), size,
                    tensor=images)


def image_folder(folder: str | os.PathLike, size: int) -> PhotoSet:
    """Every image file under ``folder`` (recursively, sorted by path) at ``size`` px; nothing loaded yet.

    The key covers each file's path, size and modification time. Raises ``MissingFile`` for a missing
    folder and ``BadValue`` for a folder without images.

    Example:
        >>> from PIL import Image
        >>> Path("my_photos/beach").mkdir(parents=True)
        >>> for name in ["0002", "0001"]:
        ...     Image.new("RGB", (48, 32), "teal").save(f"my_photos/beach/{name}.jpg")
        >>> image_folder("my_photos", 224).names[:2]
        ['beach/0001', 'beach/0002']
    """

    root = Path(folder)
    if not root.is_dir():
        raise MissingFile(f"--images: no such folder: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise BadValue(f"--images: {root} holds no image files (looked for {', '.join(IMAGE_SUFFIXES)})")
    names = [str(p.relative_to(root).with_suffix("")) for p in files]
    stamp = [(n, p.stat().st_size, p.stat().st_mtime_ns) for n, p in zip(names, files)]
    key = content_key(str(root.resolve()), {"files": stamp, "size": size})
    return PhotoSet(names, key, size, files=files)


@dataclass
class LayerStats:
    """Per image and channel of one layer, (N, C) each; positions are flat indices into (H, W)."""

    top: torch.Tensor        # ranking value of the strongest position (pre-activation where known)
    top_act: torch.Tensor    # the activation at that position
    top_pos: torch.Tensor
    bottom: torch.Tensor     # the weakest position's value (pre-activation where known)
    bottom_pos: torch.Tensor
    hw: tuple[int, ...]      # (H, W) of the layer's map; () for a (B, C) layer
    pre: bool                # whether top/bottom are pre-activations
    skipped: int = 0         # positions left out: their receptive field is mostly padding (``inside_map``)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        torch.save({**{k: getattr(self, k) for k in ("top", "top_act", "top_pos", "bottom", "bottom_pos")},
                    "hw": torch.tensor(self.hw, dtype=torch.long), "pre": torch.tensor(self.pre),
                    "skipped": torch.tensor(self.skipped)}, buf)
        return buf.getvalue()

    @staticmethod
    def from_file(path: Path) -> LayerStats:
        d = torch.load(path, weights_only=True)
        return LayerStats(d["top"], d["top_act"], d["top_pos"], d["bottom"], d["bottom_pos"],
                          tuple(d["hw"].tolist()), bool(d["pre"]), int(d["skipped"]))


def inside_map(model: nn.Module, layer: str, size: int) -> torch.Tensor | None:
    """(H, W): for each position of ``layer``'s map, the fraction of its theoretical receptive field
    (``fv.circuits.receptive_field``: centre, size, stride) that lies inside a ``size``-px image; the rest is
    padding. None for a (B, C) layer or when the geometry cannot be read.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 5, padding=2))
        >>> m = inside_map(net, "0", 8)
        >>> round(m[0, 0].item(), 3), m[4, 4].item()   # a corner sees 3 x 3 of its 5 x 5 field
        (0.36, 1.0)
    """

    try:
        rf = receptive_field(model, layer, size=size)
    except (ValueError, RuntimeError, KeyError):
        return None
    if len(rf.map_size) != 2:
        return None
    fractions = []
    for axis in (0, 1):
        n, extent, step = rf.map_size[axis], rf.size[axis], rf.stride[axis]
        centers = rf.center[axis] + (torch.arange(n, dtype=torch.float64) - rf.position[axis]) * step
        lo, hi = centers - extent / 2, centers + extent / 2  # pixel edges; the image spans -0.5 .. size - 0.5
        inside = (hi.clamp(max=size - 0.5) - lo.clamp(min=-0.5)).clamp(min=0)
        fractions.append(inside / extent)
    return (fractions[0][:, None] * fractions[1][None, :]).float()


def _valid_positions(model: nn.Module, layer: str, size: int) -> torch.Tensor | None:
    """(H * W,) bool: positions whose receptive field is at least ``INSIDE`` (3/4) as much inside the image
    as the best-placed position's (for early layers: at least 3/4 inside, so a sliver along the border with
    almost half its field in the padding is no example); None when every position counts."""
    m = inside_map(model, layer, size)
    if m is None:
        return None
    return (m >= INSIDE * float(m.max())).flatten()


def _reduce(act: torch.Tensor, pre: torch.Tensor | None,
            valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """(b, C, H, W) or (b, C) activations (and pre-activations) -> per-channel (b, C) statistics over the
    ``valid`` positions (flat (H * W,) bool; default all)."""
    a = act.float().flatten(2) if act.dim() > 2 else act.float()[..., None]   # (b, C, P)
    r = a if pre is None else (pre.float().flatten(2) if pre.dim() > 2 else pre.float()[..., None])
    if valid is not None and a.shape[-1] == len(valid):
        keep = valid.to(r.device)
        top, top_pos = r.masked_fill(~keep, float("-inf")).max(-1)
        bottom, bottom_pos = r.masked_fill(~keep, float("inf")).min(-1)
    else:
        top, top_pos = r.max(-1)
        bottom, bottom_pos = r.min(-1)
    return {"top": top, "top_act": a.gather(-1, top_pos[..., None])[..., 0], "top_pos": top_pos,
            "bottom": bottom, "bottom_pos": bottom_pos}


def stats_path(cache: Path, layer: str, photos: PhotoSet, weights: str) -> Path:
    """Cache file of ``layer``'s statistics over ``photos`` for a model with weights hash ``weights``.

    Example:
        >>> stats_path(Path("_acts"), "relu1", bundled_photos(16), "abc").name.startswith("relu1-")
        True
    """
    key = content_key(weights, {"photos": photos.key, "layer": layer, "inside": INSIDE})
    return Path(cache) / f"{slug(layer)}-{key}.pt"


def layer_stats(model: nn.Module, photos: PhotoSet, layers: Sequence[str], cache: Path, *, batch: int = 32,
                weights: str = "", progress: bool = True) -> dict[str, LayerStats]:
    """Statistics of every layer in ``layers`` over ``photos``, from ``cache`` where present, else from one
    streamed pass (``batch`` photos at a time, progress bar) whose results are written to ``cache``.

    ``weights`` (the model's weights hash) is part of each cache file's name, so other weights recompute.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.ReLU())
        >>> import tempfile
        >>> s = layer_stats(net, bundled_photos(16), ["1"], Path(tempfile.mkdtemp()), progress=False)
        >>> s["1"].top.shape, s["1"].pre
        (torch.Size([10, 2]), True)
    """
    def path(layer: str) -> Path:
        return stats_path(cache, layer, photos, weights)

    out = {n: LayerStats.from_file(path(n)) for n in layers if path(n).is_file()}
    todo = [n for n in layers if n not in out]
    if todo:
        for n, stats in _streamed_stats(hooked(model), photos, todo, batch, progress).items():
            out[n] = stats
            atomic_write_bytes(path(n), stats.to_bytes())
    return out


def _streamed_stats(hm: HookedModel, photos: PhotoSet, layers: list[str], batch: int,
                    progress: bool) -> dict[str, LayerStats]:
    """One pass of ``photos`` through the model (``HookedModel.stream``, ``batch`` at a time): each layer's
    statistics (``_reduce``); for a layer after a monotone module, from the module's input too."""
    monotone = [n for n in layers if type(hm.module(n)).__name__ in _MONOTONE]
    pres: dict[str, torch.Tensor] = {}

    def keep_input(name: str):
        def hook(module, inputs, output):
            pres[name] = inputs[0].detach()
        return hook

    valid = {n: _valid_positions(hm, n, photos.size) for n in layers}
    parts: dict[str, list[dict]] = {n: [] for n in layers}
    hw: dict[str, tuple[int, ...]] = {}
    bar = tqdm(total=len(photos), desc="photos through the model", unit="photo", disable=not progress)
    with bar, hm.hooks([(n, keep_input(n)) for n in monotone]):
        for x, acts in hm.stream(photos.batches(batch), layers, progress=False):
            for n in layers:
                hw[n] = tuple(acts[n].shape[2:])
                parts[n].append({k: v.cpu() for k, v in _reduce(acts[n], pres.get(n), valid[n]).items()})
            bar.update(len(x))
    out = {}
    for n in layers:
        cat = {k: torch.cat([p[k] for p in parts[n]]) for k in parts[n][0]}
        skipped = int((~valid[n]).sum()) if valid[n] is not None and len(hw[n]) == 2 else 0
        out[n] = LayerStats(**cat, hw=hw[n], pre=n in monotone, skipped=skipped)
    return out


def _tile(photo: torch.Tensor, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """(3, S, S) photo -> (TILE, TILE, 3) uint8: a crop around ``box`` (at least MIN_CROP of the side),
    the receptive field outlined; the whole photo when ``box`` is None."""

    s = photo.shape[-1]
    img = Image.fromarray((photo.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
    if box is None:
        return np.asarray(img.resize((TILE, TILE), Image.Resampling.LANCZOS))
    r0, r1, c0, c1 = box
    side = min(s, max(r1 - r0 + 1, c1 - c0 + 1, round(s * MIN_CROP)))
    top = min(max(0, (r0 + r1 + 1) // 2 - side // 2), s - side)
    left = min(max(0, (c0 + c1 + 1) // 2 - side // 2), s - side)
    crop = img.crop((left, top, left + side, top + side)).resize((TILE, TILE), Image.Resampling.LANCZOS)
    k = TILE / side
    ImageDraw.Draw(crop).rectangle(((c0 - left) * k, (r0 - top) * k, (c1 + 1 - left) * k - 1,
                                    (r1 + 1 - top) * k - 1), outline=(255, 40, 40), width=2)
    return np.asarray(crop)


def example_files(model: nn.Module, layer: str, channel: int, stats: LayerStats, photos: PhotoSet,
                  k: int, predictions: dict | None = None) -> tuple[dict[str, bytes], dict]:
    """JPEG tiles and facts of the ``k`` photos that excite ``layer:channel`` most and the ``k`` that
    inhibit it most.

    "Excites" lists only photos whose activation at the strongest position is above 0; "inhibits" only
    photos whose weakest position is below 0 (pre-activation for ReLU layers). Positions whose receptive
    field is mostly padding are not candidates (``layer_stats``; ``facts["skipped"]`` counts them). Each tile
    is a crop around the receptive field of that position (``fv.circuits.input_boxes``), at least a third
    of the photo wide. Each photo's facts carry its ``label``: its folder's name when the photos come in
    class folders (``"label_from": "folder"``), else, for a model with ``labels``, the model's top
    prediction on the whole photo (``"label_from": "model"``, with its probability ``"p"``), else None.
    ``predictions``: a dict the caller keeps between channels, so each photo is classified once.

    Example:
        >>> model, photos = fv.models.toy.edges_and_curves(), bundled_photos(64)
        >>> stats = layer_stats(model, photos, ["relu1"], Path("site/.featviz-cache/acts"), progress=False)
        >>> files, facts = example_files(model, "relu1", 3, stats["relu1"], photos, k=6)
        >>> facts["top"][0]["value"] > 0 > facts["bottom"][0]["value"]
        True
    """
    chosen = _chosen_photos(stats, channel, k)
    files: dict[str, bytes] = {}
    facts: dict = {"pre": stats.pre, "top": [], "bottom": [], "skipped": stats.skipped,
                   "positions": int(np.prod(stats.hw)) if stats.hw else 0}
    labels = _photo_labels(model, photos, sorted({i for idx in chosen.values() for i in idx}),
                           {} if predictions is None else predictions)
    for kind, idx in chosen.items():
        if not idx:
            continue
        images = photos.load(idx)
        flat = (stats.top_pos if kind == "top" else stats.bottom_pos)[idx, channel]
        boxes = _boxes(model, layer, stats, flat, tuple(images.shape[1:]))
        for j, (i, box) in enumerate(zip(idx, boxes)):
            name = f"{kind}{j}.jpg"
            files[name] = jpeg_bytes(_tile(images[j], box))
            value = float(stats.top_act[i, channel] if kind == "top" else stats.bottom[i, channel])
            rank = float((stats.top if kind == "top" else stats.bottom)[i, channel])
            facts[kind].append({"name": photos.names[i], "file": name, "value": round(value, 6),
                                "rank_value": round(rank, 6), "box": list(box) if box else None,
                                **labels[i]})
    return files, facts


def _chosen_photos(stats: LayerStats, channel: int, k: int) -> dict[str, list[int]]:
    """Indices of the ``k`` photos that excite the channel most (strongest position above 0) and of the ``k``
    that inhibit it most (weakest position below 0), strongest first, ties by index."""
    top = stats.top[:, channel]
    order = sorted(range(len(top)), key=lambda i: (-float(top[i]), i))
    chosen = {"top": [i for i in order if float(stats.top_act[i, channel]) > 0][:k]}
    bottom = stats.bottom[:, channel]
    order = sorted(range(len(bottom)), key=lambda i: (float(bottom[i]), i))
    chosen["bottom"] = [i for i in order if float(bottom[i]) < 0][:k]
    return chosen


def _boxes(model: nn.Module, layer: str, stats: LayerStats, flat: torch.Tensor, image_shape: tuple) -> list:
    """The input box of each flat map position in ``flat`` (``fv.circuits.input_boxes``); None each for a
    (B, C) layer (no map)."""
    if not stats.hw:
        return [None] * len(flat)
    w = stats.hw[-1]
    positions = torch.stack([flat // w, flat % w], 1)  # (n, 2) rows, cols
    return [tuple(b) for b in input_boxes(model, layer, image_shape, positions).tolist()]


def top_crop(model: nn.Module, layer: str, channel: int, stats: LayerStats, photos: PhotoSet,
             size: int) -> dict | None:
    """The photo that excites ``layer:channel`` most (activation above 0 at its strongest position), cropped
    around that position's receptive field (at least ``MIN_CROP`` of the photo) and resized to ``size`` px:
    ``{"image": (3, size, size), "name", "value"}``; None when no photo excites it. A start for the feature
    visualization of a unit the optimisation cannot switch on from noise.

    Example:
        >>> model, photos = fv.models.toy.edges_and_curves(), bundled_photos(64)
        >>> stats = layer_stats(model, photos, ["relu1"], Path("site/.featviz-cache/acts"), progress=False)
        >>> crop = top_crop(model, "relu1", 3, stats["relu1"], photos, 32)
        >>> crop["image"].shape, crop["value"] > 0
        (torch.Size([3, 32, 32]), True)
    """

    act = stats.top_act[:, channel]
    if not bool((act > 0).any()):
        return None
    ranked = [i for i in sorted(range(len(act)), key=lambda i: (-float(stats.top[i, channel]), i))
              if float(act[i]) > 0]
    i = ranked[0]
    photo = photos.load([i])[0]  # (3, S, S)
    s = photo.shape[-1]
    side, top, left = s, 0, 0
    if stats.hw:
        flat = int(stats.top_pos[i, channel])
        pos = torch.tensor([[flat // stats.hw[-1], flat % stats.hw[-1]]])
        r0, r1, c0, c1 = input_boxes(model, layer, tuple(photo.shape), pos)[0].tolist()
        side = min(s, max(r1 - r0 + 1, c1 - c0 + 1, round(s * MIN_CROP)))
        top = min(max(0, (r0 + r1 + 1) // 2 - side // 2), s - side)
        left = min(max(0, (c0 + c1 + 1) // 2 - side // 2), s - side)
    crop = photo[:, top:top + side, left:left + side][None]
    image = torch.nn.functional.interpolate(crop, size=(size, size), mode="bilinear", antialias=True,
                                            align_corners=False)[0].clamp(0, 1)
    return {"image": image, "name": photos.names[i], "value": round(float(act[i]), 6)}


def _photo_labels(model: nn.Module, photos: PhotoSet, idx: list[int], memo: dict) -> dict[int, dict]:
    """Per photo index: ``{"label", "label_from"[, "p"]}`` (see ``example_files``)."""
    out = {}
    folders = {i: Path(photos.names[i]).parent.name for i in idx}
    if all(folders.values()):  # every photo sits in a class folder
        return {i: {"label": folders[i], "label_from": "folder"} for i in idx}
    labels = getattr(model, "labels", None)
    todo = [i for i in idx if i not in memo]
    if labels and todo:

        try:
            with torch.no_grad():
                top = predict(model, photos.load(todo), k=1, labels=labels)
        except (ValueError, RuntimeError, IndexError):  # not a classifier of len(labels) classes
            top = [[(None, 0.0)] for _ in todo]
        memo.update({i: t[0] for i, t in zip(todo, top)})
    for i in idx:
        label, p = memo.get(i, (None, 0.0))
        out[i] = ({"label": label, "label_from": "model", "p": round(float(p), 4)} if label else
                  {"label": None, "label_from": None})
    return out


def grating_responses(model: nn.Module, name: str, angles: Sequence[int], size: int
                      ) -> tuple[torch.Tensor, tuple[float, float]]:
    """(A, P, C) response of every channel of ``name`` to gratings, angle x phase (``PHASES``), centred on
    the receptive field of the layer's central unit (``fv.circuits.receptive_field``) and read at that
    unit; returns the responses and the centre (row, col) in the ``size``-px image.

    Example:
        >>> r, center = grating_responses(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3)), "0", [0, 90], 16)
        >>> r.shape, center
        (torch.Size([2, 4, 2]), (8.0, 8.0))
    """

    hm = hooked(model)
    rf = receptive_field(hm, name, size=size)
    stimuli = gratings(list(angles), size=size, phases=list(PHASES), center=rf.center)  # (A * P, 3, S, S)
    responses = layer_responses(hm, name, stimuli, position=rf.position).cpu()  # (A * P, C)
    return responses.view(len(angles), len(PHASES), -1), tuple(float(v) for v in rf.center)


def tuning_svg(ref: str, raw: torch.Tensor, angles: Sequence[int]) -> tuple[bytes, dict]:
    """Tuning curve SVG of ``ref`` from ``raw`` (A, P) responses (``fv.viz.plot_tuning_curve``, drawn at the
    size a page shows it: ``_channel.FIGURE_IN``, text 12 px and up) + facts."""

    curve = TuningCurve(ref, torch.tensor([float(a) for a in angles]), raw.mean(1), raw)
    fig = plot_tuning_curve(curve)
    fig.set_size_inches(*FIGURE_IN)
    fig.set_layout_engine("constrained")
    response = [round(float(r), 6) for r in curve.responses]
    return svg_bytes(fig), {"preferred": int(curve.peak), "response": response}
