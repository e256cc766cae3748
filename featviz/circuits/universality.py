"""Universality: (model_a, layer_a, model_b, layer_b, images) -> which units of two networks fire together.

Zoom In's third claim is that analogous features form across models. Two measurements, each with the
randomized-weights control (``fv.models.randomized``):

- ``match_units`` correlates every unit of one layer with every unit of another network's layer over the
  same images, position by position. Each network sees the images at its own ``input_size``; both maps
  are resampled to one common grid (default: the smaller of the two), so grid cell (i, j) covers the same
  part of every image (to within a stride). The same matching against randomly initialised copies of
  ``model_b`` gives the correlation a unit reaches by chance.
- ``families`` groups one layer's units by the synthetic-stimulus rules of the evidence tools (edges by
  orientation, curves by direction, high-low frequency, centre-surround contrast, colour; rules in its
  docstring), each count beside the same count on randomized copies, so two networks compare as counts.

``unit_links`` turns several matches into the cross-model links each unit page of a site needs.

Example:
    >>> a = fv.models.efficientnet_lite0()                                           # doctest: +SKIP
    >>> b = fv.models.efficientnet_lite1()                                           # doctest: +SKIP
    >>> images = augment_images(fv.data.sample_images(size=256).images, n=4)         # doctest: +SKIP
    >>> m = match_units(a, "blocks.1.depthwise_relu", b, "blocks.1.depthwise_relu", images)  # doctest: +SKIP
    >>> m.best[56], m.best_correlation[56], m.control_best_correlation[56]           # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from featviz.circuits.curves import find_curve_detectors
from featviz.circuits.examples import image_batches
from featviz.circuits.receptive_field import receptive_field
from featviz.circuits.tuning import direction_selectivity, find_edge_detectors, layer_responses
from featviz.core import as_images, device_of, evaluating, input_size_of, preprocess_fn
from featviz.errors import BadValue
from featviz.hooks import hooked
from featviz.models import randomized

__all__ = ["FAMILY_KINDS", "Family", "LayerFamilies", "UnitLink", "UnitMatch", "augment_images", "families",
           "match_units", "unit_links"]

_THUMB = 64  # px per side of the stored dataset-example thumbnails


def augment_images(images: torch.Tensor, n: int = 4, *, scale: tuple[float, float] = (0.5, 0.9),
                   flip: bool = True, seed: int = 0) -> torch.Tensor:
    """Each image, then ``n`` random square crops of it (side a fraction in ``scale`` of the image, resized
    back to its size, antialiased), then, with ``flip``, the left-right mirror of all of these:
    (N * (n + 1) * (2 if flip else 1), C, H, W), in that order. Deterministic for a ``seed``.

    Example:
        >>> augment_images(torch.rand(3, 3, 32, 32), n=2).shape
        torch.Size([18, 3, 32, 32])
    """
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise BadValue(f"images must be square (N, C, S, S), got {tuple(images.shape)}")
    if n < 0 or not 0 < scale[0] <= scale[1] <= 1:
        raise BadValue(f"need n >= 0 and 0 < scale[0] <= scale[1] <= 1, got n={n}, scale={scale}")
    gen = torch.Generator().manual_seed(seed)
    s = images.shape[-1]
    out = []
    for img in images.float():
        out.append(img[None])
        for _ in range(n):
            frac = scale[0] + (scale[1] - scale[0]) * float(torch.rand(1, generator=gen))
            side = max(2, int(round(s * frac)))
            r, c = (int(torch.randint(0, s - side + 1, (1,), generator=gen)) for _ in range(2))
            out.append(F.interpolate(img[None, :, r:r + side, c:c + side], size=(s, s), mode="bilinear",
                                     antialias=True, align_corners=False).clamp(0, 1))
    out = torch.cat(out)
    return torch.cat([out, out.flip(-1)]) if flip else out


class _Moments:
    """Running sums for Pearson correlations between two sets of variables observed together, float64."""

    def __init__(self):
        self.n = 0
        self.sa = self.sb = self.saa = self.sbb = self.sab = None

    def add(self, a: torch.Tensor, b: torch.Tensor) -> None:  # a (M, C_a), b (M, C_b): M observations
        a, b = a.double(), b.double()
        if self.sa is None:
            self.sa, self.saa = a.new_zeros(a.shape[1]), a.new_zeros(a.shape[1])
            self.sb, self.sbb = b.new_zeros(b.shape[1]), b.new_zeros(b.shape[1])
            self.sab = a.new_zeros(a.shape[1], b.shape[1])
        self.n += a.shape[0]
        self.sa += a.sum(0)
        self.sb += b.sum(0)
        self.saa += (a * a).sum(0)
        self.sbb += (b * b).sum(0)
        self.sab += a.T @ b

    def correlation(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(C_a, C_b) Pearson correlations (0 where a unit never varies), and the two 'dead' masks."""
        n = max(self.n, 1)
        ma, mb = self.sa / n, self.sb / n
        va = (self.saa / n - ma * ma).clamp_min(0)
        vb = (self.sbb / n - mb * mb).clamp_min(0)
        dead_a, dead_b = va <= 1e-12 * (1 + ma * ma), vb <= 1e-12 * (1 + mb * mb)
        cov = self.sab / n - ma[:, None] * mb[None, :]
        r = cov / (va.sqrt()[:, None] * vb.sqrt()[None, :]).clamp_min(1e-300)
        r[dead_a] = 0.0
        r[:, dead_b] = 0.0
        return r.clamp(-1, 1).float().cpu(), dead_a.cpu(), dead_b.cpu()


@dataclass
class UnitMatch:
    """Every unit of ``layer_a`` (model ``name_a``) against every unit of ``layer_b`` (model ``name_b``).

    Attributes:
        correlation: (C_a, C_b) Pearson correlation over all ``n_positions`` (images x grid cells).
        best: (C_a,) for each unit of ``layer_a``, the unit of ``layer_b`` it correlates with most.
        best_correlation: (C_a,) that correlation.
        control_correlation: (S, C_a, C_b) the same against ``randomized(model_b, seed)`` for ``seeds``.
        control_best_correlation: (C_a,) the best correlation each unit reaches with any unit of any
            randomized copy (the largest over seeds): what chance alone gives.
        dead_a, dead_b: units that never vary on these images (their correlations are set to 0).
        grid: the common (rows, cols) both maps were resampled to; ``n_images``, ``n_positions``.
        scores_a, scores_b: (N, C) each image's spatial maximum per unit (for dataset examples);
        thumbnails: (N, 3, 64, 64) the images, small, for ``plot``.
    """

    name_a: str
    layer_a: str
    name_b: str
    layer_b: str
    correlation: torch.Tensor = field(repr=False)
    control_correlation: torch.Tensor = field(repr=False)
    seeds: tuple[int, ...]
    grid: tuple[int, int]
    n_images: int
    dead_a: torch.Tensor = field(repr=False)
    dead_b: torch.Tensor = field(repr=False)
    scores_a: torch.Tensor = field(repr=False)
    scores_b: torch.Tensor = field(repr=False)
    thumbnails: torch.Tensor = field(repr=False)

    @property
    def n_positions(self) -> int:
        """How many (image, grid cell) observations each correlation is computed over."""
        return self.n_images * self.grid[0] * self.grid[1]

    @property
    def best(self) -> torch.Tensor:
        return self.correlation.argmax(1)

    @property
    def best_correlation(self) -> torch.Tensor:
        return self.correlation.amax(1)

    @property
    def control_best_correlation(self) -> torch.Tensor:
        if self.control_correlation.numel() == 0:
            return torch.full((self.correlation.shape[0],), float("nan"))
        return self.control_correlation.amax(2).amax(0)

    @property
    def margin(self) -> torch.Tensor:
        """(C_a,) best correlation minus the randomized control's: > 0 means above chance."""
        return self.best_correlation - self.control_best_correlation

    def pairs(self, min_correlation: float = 0.0,
              min_margin: float = 0.0) -> list[tuple[int, int, float, float]]:
        """(unit a, its best unit b, correlation, control) for live units whose best correlation reaches
        ``min_correlation`` and beats the control by ``min_margin``, strongest first."""
        out = []
        for i in range(self.correlation.shape[0]):
            r, ctl = float(self.best_correlation[i]), float(self.control_best_correlation[i])
            if bool(self.dead_a[i]) or r < min_correlation or not r - ctl >= min_margin:
                continue
            out.append((i, int(self.best[i]), r, ctl))
        return sorted(out, key=lambda p: -p[2])

    def top_images(self, side: str, channel: int, k: int = 3) -> list[int]:
        """Indices of the ``k`` images where unit ``channel`` of side ``"a"`` or ``"b"`` peaks highest."""
        scores = self.scores_a if side == "a" else self.scores_b
        return [int(i) for i in scores[:, channel].argsort(descending=True)[:k]]

    def plot(self, units: Sequence[int] | None = None, k: int = 3, *, renders_a: Mapping | None = None,
             renders_b: Mapping | None = None, path: str | None = None):
        """Matched pairs side by side (``featviz.viz.plot_unit_match``): each unit's top-``k`` images and,
        when ``renders_a`` / ``renders_b`` give them, its feature visualization. Draws only."""
        from featviz.viz.universality_plot import plot_unit_match

        return plot_unit_match(self, units, k, renders_a=renders_a, renders_b=renders_b, path=path)

    def _repr_png_(self) -> bytes:
        from featviz.viz.figures import figure_png

        return figure_png(self.plot())

    def summary(self) -> str:
        """One sentence: how many units of ``layer_a`` have a match above the randomized control."""
        above = int((self.margin.nan_to_num(-2) > 0).sum())
        return (f"{self.name_a} {self.layer_a} vs {self.name_b} {self.layer_b} over {self.n_positions} "
                f"positions: {above} of {self.correlation.shape[0]} units correlate with some unit more than "
                f"with any unit of the randomized control (seeds {list(self.seeds)}).")

    def to_dict(self) -> dict:
        """Every unit's best match, its correlation and the control's (``json.dumps``-ready)."""
        return {"name_a": self.name_a, "layer_a": self.layer_a, "name_b": self.name_b,
                "layer_b": self.layer_b, "seeds": list(self.seeds), "grid": list(self.grid),
                "n_images": self.n_images, "best": self.best.tolist(),
                "best_correlation": self.best_correlation.tolist(),
                "control_best_correlation": self.control_best_correlation.tolist(), "summary": self.summary()}


def _model_name(model: nn.Module) -> str:
    return type(hooked(model).model).__name__


def _to_grid(a: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:  # (B, C, H, W) -> (B * g0 * g1, C)
    if tuple(a.shape[-2:]) != grid:
        if a.shape[-2] >= grid[0] and a.shape[-1] >= grid[1]:
            a = F.adaptive_avg_pool2d(a, grid)
        else:
            a = F.interpolate(a, size=grid, mode="bilinear", align_corners=False)
    return a.permute(0, 2, 3, 1).reshape(-1, a.shape[1])


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1)


def match_units(model_a: nn.Module, layer_a: str, model_b: nn.Module, layer_b: str,
                images: torch.Tensor | Iterable, *, seeds: Sequence[int] = (0,), grid: int | None = None,
                names: tuple[str, str] | None = None, batch_size: int = 16,
                progress: bool = True) -> UnitMatch:
    """Correlate every unit of ``layer_a`` in ``model_a`` with every unit of ``layer_b`` in ``model_b``.

    ``images``: (N, 3, H, W) in [0, 1] or an iterable of such batches (streamed: memory holds one batch and
    the running sums). Each model gets them resized to its ``input_size`` (when it has one) and its own
    ``preprocess``; both layers' maps are resampled to a common ``grid`` x ``grid`` (default: the smaller
    map's size; area averaging down, bilinear up) and every (image, cell) is one observation of every
    unit. The control: the same correlations against ``fv.models.randomized(model_b, seed)`` for each of
    ``seeds`` (``()`` for none). ``names``: what to call the two models (default: their class names).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        >>> swapped = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())      # net's units in the order 2, 0, 3, 1
        >>> swapped.load_state_dict({k: v[[2, 0, 3, 1]] for k, v in net.state_dict().items()})
        <All keys matched successfully>
        >>> m = match_units(net, "1", swapped, "1", torch.rand(8, 3, 16, 16), progress=False)
        >>> m.best.tolist(), m.n_positions, m.correlation.shape
        ([1, 3, 0, 2], 1568, torch.Size([4, 4]))
    """
    hms = [hooked(model_a), hooked(model_b)]
    layers = [hms[0].layer(layer_a), hms[1].layer(layer_b)]
    controls = [hooked(randomized(hms[1].model, seed=s)) for s in seeds]
    nets = [hms[0], hms[1], *controls]
    sizes = [input_size_of(h) for h in hms]
    sizes.append(sizes[1])
    preps = [preprocess_fn(h, None) for h in hms]
    moments = [_Moments() for _ in range(1 + len(controls))]
    scores = ([], [])
    thumbs = []
    g = None if grid is None else (int(grid), int(grid))
    source = image_batches(images)
    if isinstance(source, tuple):  # fv.data.Images
        source = source[0]
    if isinstance(source, torch.Tensor):
        source = source[None] if source.dim() == 3 else source  # one image
        source = [source[k:k + batch_size] for k in range(0, len(source), batch_size)]
    with ExitStack() as stack, torch.no_grad():
        for hm in nets:
            stack.enter_context(evaluating(hm.model))  # eval mode; BatchNorm statistics kept
        for raw in tqdm(source, desc=f"match {layer_a} ~ {layer_b}", disable=not progress):
            batch = as_images(raw, "images", channels=None, unit=False)
            maps = []
            for k, hm in enumerate(nets):
                side = min(k, 1)
                x = preps[side](_resize(batch, sizes[min(k, 2)])).to(device_of(hm.model))
                _, cache = hm.run_with_cache(x, names=[layers[side]], stop_at_last=True)
                a = cache[layers[side]]
                if not isinstance(a, torch.Tensor) or a.dim() != 4:
                    raise BadValue(f"match_units needs (B, C, H, W) maps; {layers[side]!r} gives "
                                     f"{tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__}")
                maps.append(a.float().cpu())
            if g is None:
                g = (min(maps[0].shape[-2], maps[1].shape[-2]), min(maps[0].shape[-1], maps[1].shape[-1]))
            flat_a = _to_grid(maps[0], g)
            for m, b in zip(moments, maps[1:]):
                m.add(flat_a, _to_grid(b, g))
            scores[0].append(maps[0].amax((-2, -1)))
            scores[1].append(maps[1].amax((-2, -1)))
            thumbs.append(_resize(batch.float().cpu(), _THUMB) if batch.shape[-1] == batch.shape[-2]
                          else F.interpolate(batch.float().cpu(), size=(_THUMB, _THUMB), mode="bilinear"))
    if not thumbs:
        raise BadValue("images is empty: give at least one image")
    r, dead_a, dead_b = moments[0].correlation()
    ctl = [m.correlation()[0] for m in moments[1:]]
    control = torch.stack(ctl) if ctl else torch.zeros(0, *r.shape)
    name_a, name_b = names if names is not None else (_model_name(model_a), _model_name(model_b))
    return UnitMatch(name_a, layers[0], name_b, layers[1], r, control, tuple(int(s) for s in seeds), g,
                     sum(len(t) for t in thumbs), dead_a, dead_b, torch.cat(scores[0]), torch.cat(scores[1]),
                     torch.cat(thumbs))


@dataclass(frozen=True)
class UnitLink:
    """A link from one unit page to a unit of another model: where to, how strongly, and chance's level."""

    model: str
    node: str
    correlation: float
    control: float


def unit_links(matches: Iterable[UnitMatch], min_correlation: float = 0.3,
               min_margin: float = 0.1) -> dict[tuple[str, str], list[UnitLink]]:
    """The cross-model links each unit page needs: ``{(model name, "layer:channel"): [UnitLink, ...]}``.

    For every match and every unit of ``layer_a`` whose best correlation reaches ``min_correlation`` and
    beats its randomized control by ``min_margin``, the unit links to its best match and the match links
    back; each page's links are sorted strongest first (one per target unit).

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())
        >>> m = match_units(net, "1", net, "1", torch.rand(4, 3, 12, 12), names=("a", "b"), progress=False)
        >>> unit_links([m])[("a", "1:0")]
        [UnitLink(model='b', node='1:0', correlation=1.0, control=...)]
    """
    links: dict[tuple[str, str], dict[tuple[str, str], UnitLink]] = {}
    for m in matches:
        for i, j, r, ctl in m.pairs(min_correlation, min_margin):
            a, b = (m.name_a, f"{m.layer_a}:{i}"), (m.name_b, f"{m.layer_b}:{j}")
            for src, dst in ((a, b), (b, a)):
                old = links.setdefault(src, {}).get(dst)
                if old is None or old.correlation < r:
                    links[src][dst] = UnitLink(dst[0], dst[1], round(r, 4), round(ctl, 4))
    return {k: sorted(v.values(), key=lambda u: -u.correlation) for k, v in links.items()}


FAMILY_KINDS = ("curve", "edge", "high-low", "contrast", "colour")
"""The unit families :func:`families` sorts channels into (plus ``"other"``)."""
_HUES = ("red", "yellow", "green", "cyan", "blue", "magenta")  # 60-degree hue bins, centred on these


def _label_order(label: str) -> tuple:
    """Sort key for family labels: rule order, then the angle in the label (or the label itself)."""
    kind = next((k for k in FAMILY_KINDS if label.startswith(k)), "")
    rest = label[len(kind):].strip().rstrip("°")
    number = float(rest) if rest.replace(".", "", 1).isdigit() else -1.0
    hue = _HUES.index(rest.split()[-1]) if rest.split() and rest.split()[-1] in _HUES else -1
    return (FAMILY_KINDS.index(kind) if kind else len(FAMILY_KINDS), number, hue, label)


@dataclass
class Family:
    """Units of ``layer`` that one rule of ``families`` puts together: ``kind`` ("edge", "curve", ...),
    ``label`` (e.g. "edge 45°", "curve 90°", "colour red", "contrast bright centre"), ``channels``."""

    kind: str
    label: str
    layer: str
    channels: list[int]

    @property
    def nodes(self) -> list[str]:
        return [f"{self.layer}:{c}" for c in self.channels]


@dataclass
class LayerFamilies:
    """A layer's units grouped by ``families``: ``families`` (non-empty ones, in rule order), ``control``
    (label -> one count per seed of ``randomized(model, seed)``), ``n_channels``."""

    layer: str
    n_channels: int
    families: list[Family]
    control: dict[str, list[int]]
    seeds: tuple[int, ...]

    def counts(self) -> dict[str, int]:
        """label -> number of units, every label that the model or a control has."""
        found = {f.label: len(f.channels) for f in self.families}
        return {label: found.get(label, 0) for label in sorted({*found, *self.control}, key=_label_order)}

    def by_kind(self, kind: str) -> list[Family]:
        return [f for f in self.families if f.kind == kind]

    def family_of(self, channel: int) -> Family | None:
        return next((f for f in self.families if channel in f.channels), None)

    def plot(self, path: str | None = None):
        """Bars: units per family in the model and in each randomized copy (``featviz.viz.plot_families``)."""
        from featviz.viz.universality_plot import plot_families

        return plot_families(self, path)

    def _repr_png_(self) -> bytes:
        from featviz.viz.figures import figure_png

        return figure_png(self.plot())

    def summary(self) -> str:
        """One sentence: units per family, beside the largest randomized count."""
        counts = self.counts()
        parts = [f"{k} {v} (random ≤ {max(self.control.get(k, [0]) or [0])})" for k, v in counts.items()]
        return f"{self.layer} ({self.n_channels} units): " + ("; ".join(parts) or "no family") + "."

    def to_dict(self) -> dict:
        """Families with their channels and the randomized counts (``json.dumps``-ready)."""
        return {"layer": self.layer, "n_channels": self.n_channels, "seeds": list(self.seeds),
                "families": [{"kind": f.kind, "label": f.label, "channels": list(f.channels)}
                             for f in self.families],
                "control": {k: list(v) for k, v in self.control.items()}, "summary": self.summary()}


def _hsv_fields(size: int) -> torch.Tensor:  # (6 * 2, 3, size, size): hues 0, 30, ..., 330 at s = v = 1
    hue = torch.arange(0.0, 360.0, 30.0)
    k = (torch.tensor([5.0, 3.0, 1.0])[None] + hue[:, None] / 60) % 6  # (12, 3), the standard hsv->rgb
    rgb = 1 - torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return rgb[:, :, None, None].expand(-1, -1, size, size).clone()


def _high_low(directions: torch.Tensor, size: int, center: tuple[float, float], freq: float,
              full: bool = False) -> torch.Tensor:
    """Fine checkerboard (period 1/freq px, mean 0.5) on the side ``direction`` points to, flat 0.5 on the
    other; the boundary passes through ``center``. Angles as ``featviz.data.stimuli`` (y up). ``full``: the
    checkerboard everywhere (one image per direction)."""
    r = torch.arange(size, dtype=torch.float32)
    y = (center[0] - r)[:, None].expand(size, size)
    x = (r - center[1])[None, :].expand(size, size)
    tex = 0.5 + 0.5 * torch.cos(2 * torch.pi * freq * x) * torch.cos(2 * torch.pi * freq * y)
    th = directions.deg2rad()[:, None, None]
    side = torch.ones_like(th * x) if full else ((x * th.cos() + y * th.sin()) > 0).float()
    img = side * tex + (1 - side) * 0.5
    return img[:, None].expand(-1, 3, -1, -1).clone()


def _classify(model: nn.Module, layer: str, kinds: Sequence[str], size: int, edge_bins: int, curve_bins: int,
              min_response: float, freq: float) -> tuple[list[Family], int]:
    from featviz.data import circles, edges

    hm = hooked(model)
    rf = receptive_field(hm, layer, size=size)

    def respond(x: torch.Tensor) -> torch.Tensor:  # (N, 3, size, size) -> (N, C)
        return layer_responses(hm, layer, x, rf.position).cpu()

    grey = respond(torch.full((1, 3, size, size), 0.5))[0]
    n_ch = grey.shape[0]
    taken: set[int] = set()
    fams: dict[str, Family] = {}

    def put(kind: str, label: str, c: int) -> None:
        if c not in taken:
            taken.add(c)
            fams.setdefault(label, Family(kind, label, layer, [])).channels.append(c)

    directions = torch.arange(0.0, 360.0, 15.0)
    step = respond(edges(directions.tolist(), size=size, center=rf.center)) - grey  # (24, C)
    best_step = step.amax(0).clamp_min(0)
    for kind in FAMILY_KINDS:
        if kind not in kinds:
            continue
        if kind == "curve":
            w = 360.0 / curve_bins
            for d in find_curve_detectors(hm, layer):
                put(kind, f"curve {int(round(d.direction / w) % curve_bins * w)}°", d.channel)
        elif kind == "edge":
            w = 180.0 / edge_bins
            for e in find_edge_detectors(hm, layer, size=size):
                put(kind, f"edge {int(round(e.angle / w) % edge_bins * w)}°", int(e.node.rsplit(":", 1)[1]))
        elif kind == "high-low":
            hl = respond(_high_low(directions, size, rf.center, freq)) - grey  # (24, C)
            full = respond(_high_low(torch.tensor([0.0]), size, rf.center, freq, full=True))[0] - grey
            top = float(hl.amax()) if hl.numel() else 0.0
            for c in range(n_ch):
                r = hl[:, c]
                sel, peaks = direction_selectivity(r, directions)
                beats = float(r.max()) >= 1.5 * max(float(full[c]), float(best_step[c]), 1e-6)
                if peaks == 1 and sel >= 0.3 and beats and float(r.max()) >= min_response * top > 0:
                    w = 180.0 / edge_bins
                    d = int(round(float(directions[int(r.argmax())]) / w) % (2 * edge_bins) * w)
                    put(kind, f"high-low {d}°", c)
        elif kind == "contrast":
            radii = [2.0, 4.0, 8.0]
            discs = circles(radii, size=size, filled=True, center=rf.center)
            black, white = respond(torch.zeros(1, 3, size, size))[0], respond(torch.ones(1, 3, size, size))[0]
            bright = (respond(discs) - black).amax(0)  # white disc on black, (C,)
            dark = (respond(1 - discs) - white).amax(0)  # black disc on white
            best = torch.maximum(bright, dark)
            top = float(best.max())
            for c in range(n_ch):
                if float(best[c]) >= max(1.5 * float(best_step[c]), min_response * top, 1e-6):
                    put(kind, "contrast bright centre" if bright[c] >= dark[c] else "contrast dark centre", c)
        elif kind == "colour":
            hues = respond(_hsv_fields(size)) - grey  # (12, C)
            greys = (respond(torch.linspace(0, 1, 5)[:, None, None, None].expand(5, 3, size, size)) - grey)
            best_hue, best_grey = hues.amax(0), greys.amax(0).clamp_min(0)
            top = float(best_hue.max())
            for c in range(n_ch):
                if float(best_hue[c]) >= max(2 * float(best_grey[c]), 0.01 * top, min_response * top, 1e-6):
                    put(kind, f"colour {_HUES[int(hues[:, c].argmax()) // 2 % 6]}", c)
    order = {k: i for i, k in enumerate(FAMILY_KINDS)}
    out = sorted(fams.values(), key=lambda f: (order[f.kind], f.label))
    for f in out:
        f.channels.sort()
    return out, n_ch


def families(model: nn.Module, layer: str, *, kinds: Sequence[str] = FAMILY_KINDS,
             seeds: Sequence[int] = (0,), size: int = 64, edge_bins: int = 4, curve_bins: int = 8,
             min_response: float = 0.1, freq: float = 0.25) -> LayerFamilies:
    """Group the units of ``layer`` into families by synthetic stimuli at the receptive-field centre of the
    map's centre unit (``size`` px images), with the same count on ``randomized(model, seed)`` per seed.

    Rules, applied in this order; a unit joins the first family whose rule it passes:

    1. **curve** ``"curve D°"``: ``find_curve_detectors(model, layer)`` (its own defaults); D = the preferred
       bulge direction rounded to ``360 / curve_bins`` degrees.
    2. **edge** ``"edge A°"``: ``find_edge_detectors(model, layer, size=size)`` (gratings and step edges);
       A = the preferred grating angle (the edge's gradient orientation) rounded to ``180 / edge_bins``.
    3. **high-low** ``"high-low D°"``: a fine checkerboard (period ``1 / freq`` px) on the side D points to,
       flat grey on the other, boundary through the centre, 24 directions; passes with one peak, direction
       selectivity >= 0.3, a best response >= 1.5x both the checkerboard over the whole field and its best
       step edge, and >= ``min_response`` x the layer's strongest. D (toward the textured side) is rounded to
       ``180 / edge_bins`` degrees.
    4. **contrast** ``"contrast bright centre"`` / ``"dark centre"``: a white disc on black (minus black) or
       a black disc on white (minus white), radii 2, 4, 8 px; passes if its best disc response is >= 1.5x its
       best step edge and >= ``min_response`` x the layer's strongest disc response.
    5. **colour** ``"colour H"``: uniform fields of 12 hues (HSV, s = v = 1) vs five greys (0 ... 1); passes
       if its best hue field is >= 2x its best grey field and >= ``min_response`` x the layer's strongest;
       H = the best hue's 60° bin (red, yellow, green, cyan, blue, magenta).

    Responses other than curves and gratings are evoked: minus the response to mid grey. ``kinds`` picks
    rules (curves are the slowest); ``seeds=()`` skips the control.

    Example:
        >>> fam = families(fv.models.toy.edges_and_curves(), "relu1", kinds=["edge"], size=32)
        >>> sorted(fam.counts().items())[:2], fam.n_channels
        ([('edge 0°', 2), ('edge 135°', 2)], 8)
    """
    unknown = [k for k in kinds if k not in FAMILY_KINDS]
    if unknown:
        raise BadValue(f"unknown family kinds {unknown}; choose from {list(FAMILY_KINDS)}")
    hm = hooked(model)
    name = hm.layer(layer)
    args = (name, list(kinds), int(size), int(edge_bins), int(curve_bins), float(min_response), float(freq))
    found, n_ch = _classify(hm, *args)
    control: dict[str, list[int]] = {}
    for i, s in enumerate(seeds):
        rand, _ = _classify(randomized(hm.model, seed=s), *args)
        for f in rand:
            control.setdefault(f.label, [0] * len(seeds))[i] = len(f.channels)
    for f in found:
        control.setdefault(f.label, [0] * len(seeds))
    return LayerFamilies(name, n_ch, found, control, tuple(int(s) for s in seeds))
