"""The microscope's plan step: (model, layers, out, settings, channels, photos) -> a ``Plan``; no rendering.

``plan`` checks every argument and the site folder before any work, then decides what the build holds:
the layers (early to late) and their shapes, the channels built per layer, the partner channels the caller
asks for, the photos, the content key of every part of every built channel, and which of those parts are
not on disk yet (``Plan.missing``: what ``compute`` will render; an empty dict means everything is cached).
The only model work is a forward pass or two (layer shapes) and hashing the weights.

Example:
    >>> model = fv.models.toy.edges_and_curves()
    >>> p = plan(model, ["relu1", "relu2"], "site", settings=MicroscopeSettings(size=32, evidence=False),
    ...          channels=2)
    >>> p.channels, len(p.missing), p.cached
    ({'relu1': [0, 1], 'relu2': [0, 1]}, 4, 0)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from featviz.core import input_size_of
from featviz.errors import BadValue, UnknownName
from featviz.hooks import hooked, layer_shapes
from featviz.microscope._channel import MicroscopeSettings
from featviz.microscope._evidence import scan_path
from featviz.microscope._examples import PhotoSet, bundled_photos, image_folder, stats_path
from featviz.microscope._store import check_site_folder, content_key, read_meta, slug, weights_hash

__all__ = ["Plan", "plan", "check_layers", "default_layers", "CACHE", "EARLY_STRIDE"]

CACHE = ".featviz-cache"  # the site's caches (photo statistics, curve scans): no page links them
"""Folder of a site's caches (photo statistics, curve scans), inside the site; no page links it."""
EARLY_STRIDE = 8  # layers whose map is at least input_size / 8 wide count as early (get tuning curves)
"""Layers whose map is at least ``input_size / EARLY_STRIDE`` wide count as early (their pages get tuning
curves)."""


def default_layers(model: nn.Module) -> list[str]:
    """Every layer of ``model.interesting_layers``, then the output layer when ``model.labels`` names its
    units (the last hook name whose output is (B, len(labels))).

    Example:
        >>> import featviz as fv
        >>> default_layers(fv.models.get("edges_and_curves"))
        ['relu1', 'relu2']
    """
    layers = list(getattr(model, "interesting_layers", None) or [])
    labels = getattr(model, "labels", None)
    if labels:
        shapes = layer_shapes(model)
        outputs = [n for n, s in shapes.items() if s == (1, len(labels))]
        if outputs and outputs[-1] not in layers:
            layers.append(outputs[-1])
    return layers


def check_layers(model: nn.Module, layers: Sequence[str], flag: str = "layers") -> dict[str, tuple[int, ...]]:
    """Shapes of ``layers``; raises (naming ``flag``) unless they are layer names of conv-like (B, C, H, W) or
    (B, C) layers, early to late. One forward pass; no other work.

    Example:
        >>> import featviz as fv
        >>> try:
        ...     check_layers(fv.models.get("edges_and_curves"), ["relu2", "relu1"], "--layers")
        ... except ValueError as e:
        ...     print(str(e).split(": ")[-1])
        relu1,relu2
    """
    hm = hooked(model)
    for ref in layers:
        try:
            hm.layer(ref)  # a whole layer: "name", never "name:c"
        except KeyError as e:
            raise UnknownName(f"{flag}: {e.args[0] if e.args else e}") from None
        except BadValue as e:
            raise BadValue(f"{flag}: {e}") from None
    shapes = layer_shapes(model, layers)
    for name, shape in shapes.items():
        if len(shape) not in (2, 4):
            raise BadValue(f"{flag}: layer {name!r} gives activations of shape {shape}; the microscope "
                           "needs (B, C, H, W) or (B, C) layers (see `featviz layers MODEL`)")
    ran = list(shapes)
    if ran != list(layers):
        raise BadValue(f"{flag}: layers must go from early to late, in the order the model runs them: "
                       f"{','.join(ran)}")
    return shapes


@dataclass
class Plan:
    """What one microscope build holds, decided before any rendering (``plan`` makes it).

    Attributes:
        out: the site folder. name: what the pages call the model. labels: the model's class names or None.
        layers: layer names, early to late. shapes: each layer's activation shape for one probe image.
        channels: ``{layer: [channel]}`` built (a full page each). partners: ``{layer: [channel]}`` the
            caller asked for besides them (a short page each).
        early: ``{layer: bool}``, layers whose pages get tuning curves (maps at least
            ``input_size / EARLY_STRIDE`` wide). upstream: ``{layer: the conv layer before it or None}``,
            credited and ablated by the evidence part.
        settings: what each channel's page shows. size: the model's input size (photos are loaded at it).
        photos: the photos of the dataset examples. own_photos: whether the user gave them (``images=``).
        weights: hash of the model's weights (every content key starts from it).
        keys: ``{(layer, channel): {part: content key}}`` of every built channel.
        missing: ``{(layer, channel): (part, ...)}``, the parts not on disk with their key (what ``compute``
            renders); units absent from it are cached whole.
        old: paths an earlier build wrote (the site marker): a rebuild may remove the ones it no longer has.
        caches: cache paths this build writes (photo statistics, layer extras, curve scans).
    """

    out: Path
    name: str
    labels: list[str] | None
    layers: list[str]
    shapes: dict[str, tuple[int, ...]]
    channels: dict[str, list[int]]
    partners: dict[str, list[int]]
    early: dict[str, bool]
    upstream: dict[str, str | None]
    settings: MicroscopeSettings
    size: int
    photos: PhotoSet
    own_photos: bool
    weights: str
    old: set[str] = field(default_factory=set)
    keys: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict)
    missing: dict[tuple[str, int], tuple[str, ...]] = field(default_factory=dict)
    caches: set[str] = field(default_factory=set)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Consecutive layers, linked by their weights."""
        return list(zip(self.layers, self.layers[1:]))

    @property
    def cached(self) -> int:
        """How many built channels need no work (every part on disk with its key)."""
        return len(self.keys) - len(self.missing)

    def folder(self, layer: str, c: int) -> Path:
        """The unit folder of channel ``c`` of ``layer``: ``out/data/<slug>/<c>``."""
        return self.out / "data" / slug(layer) / str(c)

    def part_key(self, layer: str, part: str, values: dict) -> str:
        """Content key of ``part`` of a channel of ``layer`` computed with setting ``values``."""
        photos = {"examples": {"photos": self.photos.key}, "evidence": {"photos_key": self.photos.key},
                  "caricature": {"photos": self.photos.key}}.get(part, {})
        up = {"upstream": self.upstream[layer] or "default"} if part == "evidence" else {}
        return content_key(self.weights, {"part": part, **values, **photos, **up})

    def unit_keys(self, layer: str, c: int, partner: bool = False) -> dict[str, str]:
        """``{part: key}`` of channel ``c`` of ``layer``: every part the settings ask for, or, for a
        ``partner`` (short page), the parts ``partner_keys`` gives."""
        if partner:
            return self.partner_keys(layer, c)
        parts = self.settings.parts(self.early[layer], len(self.shapes[layer]) == 4)
        return {p: self.part_key(layer, p, v) for p, v in parts.items()}

    def partner_keys(self, layer: str, c: int) -> dict[str, str]:
        """``{part: key}`` of a partner's short page, parts that cost no render: ``examples`` when the
        settings ask for dataset examples (cut from the layer's photo statistics, which its built channels
        need anyway); ``fv`` only with ``settings.partner_renders``, or when the unit on disk already holds a
        feature visualization with this key (a site built with partner renders keeps and shows it). The
        keys are those of a built channel's same parts, so a partner that is built later keeps them.

        Example:
            >>> p = plan(fv.models.toy.edges_and_curves(), ["relu1"], "site", channels=1)
            >>> sorted(p.partner_keys("relu1", 5)), sorted(p.unit_keys("relu1", 5, partner=True))
            (['examples'], ['examples'])
        """
        s = self.settings
        parts = s.parts(False)
        keys = {q: self.part_key(layer, q, parts[q]) for q in ("examples",) if q in parts}
        fv = self.part_key(layer, "fv", parts["fv"])
        stored = (read_meta(self.folder(layer, c)) or {}).get("parts", {}).get("fv", {})
        if s.partner_renders or stored.get("key") == fv:
            keys["fv"] = fv
        return keys

    def estimate(self, model: nn.Module):
        """Estimated CPU seconds (one thread) of building this plan's missing parts, per layer and part
        (``fv``, ``diversity``, ``tuning``, ``examples``, ``evidence``, ``scans``, ``partners``): an
        ``Estimate`` (``.layers``, ``.total``, ``str()`` a table), calibrated by timing ``model``'s passes on
        this machine (``featviz.microscope._estimate`` states the count model). Renders nothing.

        Example:
            >>> model = fv.models.toy.edges_and_curves()
            >>> p = plan(model, ["relu1"], "site", settings=MicroscopeSettings(size=32, steps=8), channels=1)
            >>> p.estimate(model).total > 0
            True
        """
        from featviz.microscope._estimate import estimate  # (it imports this module)

        return estimate(model, self)

    def missing_parts(self, layer: str, c: int, keys: dict[str, str]) -> tuple[str, ...]:
        """The parts of ``keys`` whose stored unit has another key (or no unit on disk)."""
        stored = (read_meta(self.folder(layer, c)) or {}).get("parts", {})
        return tuple(p for p, k in keys.items() if stored.get(p, {}).get("key") != k)


def plan(model: nn.Module, layers: Sequence[str] | None = None, out: str | Path = "featviz-microscope", *,
         settings: MicroscopeSettings | None = None, channels: int | None = None,
         images: str | Path | None = None, partners: dict[str, Sequence[int]] | None = None,
         name: str | None = None, force: bool = False) -> Plan:
    """Check the arguments and the site folder and decide what a build of ``layers`` of ``model`` in ``out``
    holds; renders nothing, writes nothing. The arguments mean what they mean for ``build_microscope``.

    Example:
        >>> p = plan(fv.models.toy.edges_and_curves(), ["relu1"], "site", channels=1)
        >>> p.layers, p.channels, sorted(p.missing[("relu1", 0)])
        (['relu1'], {'relu1': [0]}, ['diversity', 'evidence', 'examples', 'fv', 'tuning'])
    """
    settings = settings or MicroscopeSettings()
    layers, shapes = _checked_layers(model, layers, settings, channels)
    size = int(input_size_of(model, 224))
    p = Plan(out=Path(out), name=name or getattr(model, "name", None) or type(model).__name__,
             labels=getattr(model, "labels", None), layers=layers, shapes=shapes,
             channels={n: list(range(min(s[1], channels or s[1]))) for n, s in shapes.items()},
             partners=_checked_partners(partners, layers, shapes),
             early={n: len(s) == 4 and s[-1] * EARLY_STRIDE >= size for n, s in shapes.items()},
             upstream={n: layers[i - 1] if i and len(shapes[layers[i - 1]]) == 4 else None
                       for i, n in enumerate(layers)},
             settings=settings, size=size,
             photos=image_folder(images, size) if images is not None else bundled_photos(size),
             own_photos=images is not None, weights=weights_hash(model))
    p.old = check_site_folder(p.out, force)
    p.keys = {(n, c): p.unit_keys(n, c) for n in layers for c in p.channels[n]}
    p.missing = {u: m for u, k in p.keys.items() if (m := p.missing_parts(*u, k))}
    p.caches = _cache_paths(p)
    return p


def _checked_layers(model: nn.Module, layers: Sequence[str] | None, settings: MicroscopeSettings,
                    channels: int | None) -> tuple[list[str], dict[str, tuple[int, ...]]]:
    """The layers (default: ``default_layers``) without repeats and their shapes; raises ``BadValue`` for no
    layers, a bad channel count, layers that are not conv-like or out of order, or a render size too small
    for the deepest layer."""
    layers = list(dict.fromkeys(layers if layers is not None else default_layers(model)))
    if not layers:
        raise BadValue("no layers: name them (layers=[...] / --layers L1,L2); this model declares no "
                       "interesting_layers (see `featviz layers MODEL`)")
    if channels is not None and int(channels) < 1:
        raise BadValue(f"channels (--channels) must be a positive number per layer, got {channels}")
    shapes = check_layers(model, layers, "layers")
    try:  # the renders run the model on size-px images: a size too small for the deepest layer fails here
        layer_shapes(model, layers, size=settings.size)
    except RuntimeError as e:
        first = " ".join(str(e).split())[:160]
        raise BadValue(f"the model cannot run on {settings.size} px renders up to {layers[-1]!r} ({first}); "
                       f"use a larger size (--size), e.g. {input_size_of(model, 224)}") from None
    return layers, shapes


def _checked_partners(partners: dict[str, Sequence[int]] | None, layers: list[str],
                      shapes: dict[str, tuple[int, ...]]) -> dict[str, list[int]]:
    """``partners`` as ``{layer: sorted channels}``; raises ``BadValue`` for a layer that is not built or a
    channel outside its layer."""
    out = {n: sorted({int(c) for c in cs}) for n, cs in (partners or {}).items()}
    for n, cs in out.items():
        if n not in shapes or any(not 0 <= c < shapes[n][1] for c in cs):
            raise BadValue(f"partners: {n!r} is not one of the layers ({', '.join(layers)}) or names a "
                           f"channel outside it: {cs}")
    return out


def _cache_paths(p: Plan) -> set[str]:
    """The cache files and folders (relative to the site) the build writes: photo statistics per layer,
    layer extras (groups, atlas) per conv layer, curve scans per layer with an evidence part."""
    s = p.settings
    paths = {str(stats_path(Path(CACHE, "acts"), n, p.photos, p.weights)) for n in p.layers if s.examples}
    paths |= {f"data/_layers/{slug(n)}" for n in p.layers
              if len(p.shapes[n]) == 4 and {"groups", "atlas"} & set(s.extras)}
    paths |= {str(scan_path(Path(CACHE, "evidence"), n, p.weights)) for (n, _), k in p.keys.items()
              if "evidence" in k}
    return paths
