"""One microscope channel: (model, "layer:channel", settings, parts) -> PNG bytes and facts for its page.

``ChannelWorker`` keeps a model and its gratings and computes channels one at a time; the same class
runs in-process or as a Ray actor, and returns bytes rather than writing files, so workers on other
machines need no shared disk. Dataset examples are made by the build itself (``_examples``), from
activations it caches on disk.

Example:
    >>> worker = ChannelWorker(fv.models.toy.edges_and_curves(), MicroscopeSettings(size=32, steps=4))
    >>> files, facts = worker.compute("relu1", 3, early=True)
    >>> sorted(files)
    ['diversity.png', 'fv.png', 'tuning.svg']
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from featviz.core import input_size_of
from featviz.errors import BadType, BadValue
from featviz.hooks import hooked
from featviz.optvis import RenderSettings, caricature, objectives, render
from featviz.optvis.rendering import Rendering
from featviz.viz import figure_svg

__all__ = ["MicroscopeSettings", "ChannelWorker", "png_bytes", "jpeg_bytes", "svg_bytes", "kernel_png",
           "is_dead", "evidence_rows", "start_param", "channel_means", "FIGURE_IN", "MIN_PT",
           "EXTRAS"]


EXTRAS = ("caricature", "groups", "atlas", "explain")  # techniques a site builds only when asked
"""The techniques a site builds only when ``MicroscopeSettings.extras`` (``--extras``) asks for them."""


@dataclass(frozen=True)
class MicroscopeSettings:
    """What a microscope build computes; every field except ``top_k`` and ``partner_renders`` is part of a
    built channel's content key (``partner_renders`` decides only which parts the partner units have).

    Attributes:
        size, steps, seed: feature-visualization image size (px), optimisation steps, seed.
        diversity: images in each channel's diversity batch (0: no diversity batch).
        diversity_weight: weight of the diversity objective against the channel objective.
        examples: dataset examples (bundled photos) shown per channel.
        tuning_angles: grating orientations (degrees) of the tuning curve drawn for early layers.
        top_k: strongest upstream and downstream connections listed per channel.
        evidence: compute each conv channel's lines of evidence (``fv.circuits.evidence``: RF-centred tuning
            with a position sweep, selectivity vs its layer and the randomized net, ablation vs chance).
        evidence_random: random channel sets the ablation test compares against.
        evidence_photos: photos (evenly spaced over the site's photos) used for attribution and ablation.
        extras: techniques built only when asked (``EXTRAS``): ``"caricature"`` (each channel page: its
            layer's caricature of the photo that excites the channel most, ``fv.caricature``; one more
            render per channel), ``"groups"`` (each layer page: its neighbourhood of channels that fire
            together, ``fv.factorize``, and a render per group) and ``"atlas"`` (each layer page: an
            activation atlas, ``fv.atlas`` with PCA, a render per filled cell of a 6 x 6 grid) and
            ``"explain"`` (each photo among the dataset examples: its Building Blocks page, ``fv.explain``
            at the site's conv layers, linked from every example of it; its channels link to their pages).
        early_stop: each render stops once its objective gains less than this over 16 steps (relative,
            ``fv.render``'s ``early_stop``; ``None``: every one of ``steps``). Default 0.005: measured in
            bench/README.md ("render steps and schedules"): Lite0's channels keep a median 98-100 % of
            their 128-step activation (a saturating ``head.relu`` stops after about 45 steps, a 64 %
            saving where a whole-model site spends most; conv layers stop 7-26 % earlier).
        partner_renders: also render a feature visualization for each connection partner (a unit outside the
            built channels that a built page names: a connection, an input its evidence names, a match). By
            default (``False``) a partner's short page renders nothing: it says what it is, links back to
            the pages that name it, and shows what costs nothing extra (the connecting weights; its dataset
            examples when its layer's photo statistics are computed anyway). ``True`` (``--partner-renders``)
            renders one feature visualization per partner, each about as costly as a requested one.

    The render settings (``size``, ``steps``, ``seed``, ``early_stop``) are one ``fv.optvis.RenderSettings``
    as ``settings.render``, the value every render of the build (feature visualizations, diversity, groups,
    atlas) is given; ``MicroscopeSettings.from_render(rs, ...)`` builds settings from one. The content keys
    are made from the fields, so the same settings keep their keys (a site resumes).

    Example:
        >>> s = MicroscopeSettings.from_render(RenderSettings(size=32, steps=4), diversity=0)
        >>> s.size, s.steps, s.render
        (32, 4, RenderSettings(size=32, steps=4))
    """

    size: int = 128
    steps: int = 128
    seed: int = 0
    diversity: int = 4
    diversity_weight: float = 10.0
    examples: int = 6
    tuning_angles: tuple[int, ...] = tuple(range(0, 180, 15))
    top_k: int = 4
    evidence: bool = True
    evidence_random: int = 20
    evidence_photos: int = 10
    extras: tuple[str, ...] = ()
    early_stop: float | None = 0.005
    partner_renders: bool = False

    def __post_init__(self):
        unknown = sorted(set(self.extras) - set(EXTRAS))
        if unknown:
            raise BadValue(f"MicroscopeSettings.extras: unknown {', '.join(unknown)}; choose from "
                             f"{', '.join(EXTRAS)}")
        for name in ("size", "steps", "top_k", "evidence_random", "evidence_photos"):
            if int(getattr(self, name)) < 1:
                raise BadValue(f"MicroscopeSettings.{name} must be a positive int, "
                                 f"got {getattr(self, name)}")
        RenderSettings(early_stop=self.early_stop)  # the one check of early_stop (a clear BadValue)
        for name in ("diversity", "examples"):
            if int(getattr(self, name)) < 0:
                raise BadValue(f"MicroscopeSettings.{name} must be 0 or more, got {getattr(self, name)}")

    @property
    def render(self) -> RenderSettings:
        """The build's render settings as one ``fv.optvis.RenderSettings`` (size, steps, seed, early_stop;
        the other fields at ``fv.render``'s defaults).

        Example:
            >>> MicroscopeSettings(size=64, steps=32, seed=2, early_stop=None).render
            RenderSettings(size=64, steps=32, seed=2)
        """
        return RenderSettings(size=self.size, steps=self.steps, seed=self.seed, early_stop=self.early_stop)

    @classmethod
    def from_render(cls, render: RenderSettings, **rest) -> MicroscopeSettings:
        """Settings whose ``size``, ``steps``, ``seed`` and ``early_stop`` come from ``render`` (a
        ``fv.optvis.RenderSettings``), the other fields from ``rest``. A microscope renders squares with
        ``fv.render``'s other defaults: a non-square ``size`` or any other changed field (``lr``,
        ``param``, ...) is an error rather than ignored.

        Example:
            >>> MicroscopeSettings.from_render(RenderSettings(size=48, seed=1), examples=2).render
            RenderSettings(size=48, seed=1)
        """
        if not isinstance(render, RenderSettings):
            raise BadType(f"MicroscopeSettings.from_render needs a fv.optvis.RenderSettings, got "
                          f"{type(render).__name__}")
        clash = sorted({"size", "steps", "seed", "early_stop"} & set(rest))
        if clash:
            raise BadType(f"MicroscopeSettings.from_render: {', '.join(clash)} come from the RenderSettings; "
                          f"use render.replace({clash[0]}=...)")
        size = render.size
        if isinstance(size, tuple | list):
            if len(size) != 2 or size[0] != size[1]:
                raise BadValue(f"a microscope renders squares: size must be one int, got {size!r}")
            size = size[0]
        held = RenderSettings(size=render.size, steps=render.steps, seed=render.seed,
                              early_stop=render.early_stop)
        other = sorted(k for k, v in render.to_dict().items() if v != getattr(held, k))
        if other:
            raise BadValue(f"a microscope renders with fv.render's defaults but size, steps, seed and "
                           f"early_stop; the RenderSettings changes {', '.join(other)}")
        return cls(size=int(size), steps=render.steps, seed=render.seed, early_stop=render.early_stop,
                   **rest)

    def channel_settings(self) -> dict:
        """The settings a channel's results depend on (its content keys are made from these)."""
        d = asdict(self)
        d.pop("top_k")
        d.pop("partner_renders")  # decides only which parts partner units have, not a channel's results
        if self.early_stop is None:
            d.pop("early_stop")  # sites built before it existed ran every step: their keys stay valid
        d["tuning_angles"] = list(self.tuning_angles)
        d["extras"] = list(self.extras)
        return d

    def parts(self, early: bool, conv: bool = True) -> dict[str, dict]:
        """The parts of a channel's page these settings ask for, each with the settings it depends on.

        ``fv`` always; ``diversity`` when ``diversity > 1`` on a conv layer; ``examples`` when
        ``examples > 0``; ``tuning`` for early conv layers when there are ``tuning_angles``; ``evidence``
        on conv layers when ``evidence`` (it quotes the feature visualization, so it also depends on the
        ``fv`` settings). A settings change recomputes only the parts whose settings changed.

        Example:
            >>> sorted(MicroscopeSettings(diversity=0).parts(early=False))
            ['evidence', 'examples', 'fv']
        """
        base = {"size": self.size, "steps": self.steps, "seed": self.seed}
        if self.early_stop is not None:  # absent when None: the keys of sites built before it stay valid
            base["early_stop"] = self.early_stop
        out: dict[str, dict] = {"fv": {**base, "retry": "top photo"}}
        if self.diversity > 1 and conv:  # the diversity objective compares spatial maps
            out["diversity"] = {**base, "diversity": self.diversity, "weight": self.diversity_weight,
                                "keep": "exciting", "retry": "top photo"}
        if self.examples > 0:
            out["examples"] = {"examples": self.examples, "format": 3}  # 3: padding skipped (3/4), labels
        if early and conv and self.tuning_angles:
            out["tuning"] = {"tuning_angles": list(self.tuning_angles), "at": "rf", "figure": "svg"}
        if "caricature" in self.extras and conv and self.examples > 0:  # needs the top photo
            out["caricature"] = {**base}
        if self.evidence and conv:
            out["evidence"] = {"fv": base, "n_random": self.evidence_random, "photos": self.evidence_photos,
                               "format": 1, "figure": "svg"}
        return out


def png_bytes(image: torch.Tensor | np.ndarray) -> bytes:
    """(3, H, W) float in [0, 1] or (H, W, 3) uint8 -> PNG file bytes (deterministic: no metadata).

    Example:
        >>> png_bytes(torch.zeros(3, 4, 4))[:4]
        b'\\x89PNG'
    """
    if isinstance(image, torch.Tensor):
        image = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
        image = image.permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(image: np.ndarray, quality: int = 85) -> bytes:
    """(H, W, 3) uint8 -> JPEG file bytes (photos: a fraction of a PNG's size).

    Example:
        >>> jpeg_bytes(np.zeros((8, 8, 3), np.uint8))[:2]
        b'\\xff\\xd8'
    """
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


FIGURE_IN = (3.6, 2.7)  # a page figure's size in inches: 346 x 259 CSS px as an SVG at its natural size,
# narrower than a 390 px phone's column, so it is never shrunk and its text stays at its drawn size
MIN_PT = 9.5  # smallest text in page figures, in points: 12.7 CSS px at the SVG's natural size


def svg_bytes(fig, min_pt: float = MIN_PT) -> bytes:
    """A matplotlib figure -> SVG file bytes, for a page that shows it at its natural size (1 pt = 4/3 CSS
    px): every text at least ``min_pt`` points (12 px and up at the default), text kept as text
    (searchable, the browser's font), deterministic (no date, fixed ids); the figure is closed.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots(figsize=FIGURE_IN)
        >>> _ = ax.set_title("tiny", fontsize=5)
        >>> b"font-size: 9.5px" in svg_bytes(fig), svg_bytes(plt.figure()) == svg_bytes(plt.figure())
        (True, True)
    """
    return figure_svg(fig, min_pt)


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
    ``evidence``: what the ``evidence`` part of every channel shares (``_evidence.EvidenceInputs``: photos,
    per-layer curve scans, upstream layers); without it that part is skipped.
    """

    def __init__(self, model: nn.Module, settings: MicroscopeSettings, threads: int | None = None,
                 evidence=None):
        if threads:
            torch.set_num_threads(int(threads))
        self.model = model  # the build puts it in eval mode (and back) around its work
        self.settings = settings
        self.evidence = evidence
        self._maps: dict[str, torch.Tensor] = {}  # the last layer's grating responses only
        self._centers: dict[str, tuple[float, float]] = {}  # and where their gratings were centred

    def compute(self, layer: str, channel: int, early: bool,
                parts: Sequence[str] = ("fv", "diversity", "tuning"),
                given: dict | None = None, start: dict | None = None) -> tuple[dict[str, bytes], dict]:
        """The ``parts`` (of ``fv``, ``diversity``, ``tuning``, ``evidence``) of ``layer:channel``'s page.

        Returns ``(files, facts)``: PNG bytes by file name, and JSON-able facts for the page.
        ``facts["dead"]`` is True when the optimisation found no input that excites the channel
        (``is_dead``). ``given``: the stored feature visualization (``fv.png`` bytes, ``activation``,
        ``dead``) that the ``evidence`` part quotes when ``fv`` is not recomputed.

        ``start``: ``{"image": (3, size, size) crop of the photo that excites the channel most, "name": its
        name, "value": its activation}``. When the optimisation from noise finds no response (a unit whose
        gradient is zero at every noise image), it is run again from that crop; ``facts["start"]`` then
        names the photo. The diversity batch keeps only the images whose channel activation (the mean over
        positions, measured again on the final images) is above 0, so no tile is shown as exciting the
        channel unless it does (``facts["diversity"]``: how many were kept of how many).
        """
        from featviz.microscope._evidence import channel_evidence  # (both modules import this one)
        from featviz.microscope._examples import tuning_svg

        s, ref = self.settings, f"{layer}:{channel}"
        files: dict[str, bytes] = {}
        facts: dict = {}
        r = _stored_rendering(ref, given) if given else None
        if "fv" in parts:
            r = self._fv(ref, start, files, facts)
        if "diversity" in parts and s.diversity > 1:
            self._diversity(layer, channel, start, files, facts)
        if "caricature" in parts:
            self._caricature(layer, start, files, facts)
        if "tuning" in parts and early and s.tuning_angles:
            tuning = self._tuning(layer)
            files["tuning.svg"], facts["tuning"] = tuning_svg(ref, tuning[..., channel], s.tuning_angles)
            facts["tuning"]["center"] = list(self._centers[layer])
        if "evidence" in parts and self.evidence is not None and layer in self.evidence.scans:
            ev_files, facts["evidence"] = channel_evidence(self.model, layer, channel, self.evidence,
                                                           rendering=r, n_random=s.evidence_random,
                                                           seed=s.seed)
            files |= ev_files
        return files, facts

    def _fv(self, ref: str, start: dict | None, files: dict, facts: dict):
        """The feature visualization (``fv.png``), again from the top photo when noise finds no response."""
        s = self.settings
        r = render(self.model, ref, settings=s.render, progress=False)
        if is_dead(r) and start is not None:
            again = render(self.model, ref, settings=s.render.replace(param=start_param(start["image"])),
                           progress=False)
            facts["start"] = {"name": start["name"], "value": start["value"], "found": not is_dead(again)}
            r = again if not is_dead(again) else r
        files["fv.png"] = png_bytes(r.images[0])
        facts["activation"] = round(float(r.activations[0]), 6)
        facts["dead"] = is_dead(r)
        return r

    def _diversity(self, layer: str, channel: int, start: dict | None, files: dict, facts: dict) -> None:
        """The diversity batch (``diversity.png``): only the images that excite the channel."""
        s = self.settings
        obj = objectives.channel(layer, channel) + s.diversity_weight * objectives.diversity(layer)
        tries = [None] + ([start_param(start["image"])] if start is not None else [])
        for param in tries:  # from noise; from the top photo when no image from noise excites it
            d = render(self.model, obj, settings=s.render, batch=s.diversity, progress=False, param=param)
            means = channel_means(self.model, layer, channel, d.images)
            keep = [i for i in range(len(means)) if float(means[i]) > 0 and not bool(d.dead[i])]
            if keep:
                break
        facts["diversity"] = {"kept": len(keep), "of": s.diversity, "from_photo": param is not None}
        if keep:
            files["diversity.png"] = png_bytes(_grid(d.images[keep]))

    def _caricature(self, layer: str, start: dict | None, files: dict, facts: dict) -> None:
        """The layer's caricature of the channel's top photo (``caricature.png``, the photo beside it)."""
        facts["caricature"] = None
        if start is not None:
            rs = self.settings.render  # caricature takes render keywords (its size is the photo's)
            c = caricature(self.model, layer, start["image"][None], steps=rs.steps, seed=rs.seed,
                           progress=False)
            files["caricature.png"] = png_bytes(c.images[0])
            files["caricature_photo.png"] = png_bytes(start["image"])
            facts["caricature"] = {"name": start["name"]}

    def run(self, job: tuple) -> tuple[str, int, dict[str, bytes], dict]:
        """``compute`` for one job ``(layer, channel, early, parts[, given])``, returned with its layer and
        channel."""
        return (job[0], job[1], *self.compute(*job))

    def _tuning(self, layer: str) -> torch.Tensor:
        """Grating responses (A, P, C) of ``layer`` at its receptive-field centre, one pass per layer (the
        last layer's are kept); ``self._centers[layer]`` is where the gratings were centred."""
        from featviz.microscope._examples import grating_responses  # _examples imports this module

        if layer not in self._maps:
            size = int(input_size_of(self.model, 224))
            maps, center = grating_responses(self.model, layer, self.settings.tuning_angles, size)
            self._maps, self._centers = {layer: maps}, {layer: center}
        return self._maps[layer]


def start_param(image: torch.Tensor):
    """A ``render`` parameterisation whose images start as ``image`` (3, H, W) in [0, 1]: one free
    parameter per pixel and colour, image = sigmoid(parameter), initialised at the image's logit.

    Example:
        >>> params, image_fn = start_param(torch.full((3, 4, 4), 0.25))(4, 2)
        >>> image_fn().shape, round(float(image_fn()[0, 0, 0, 0].detach()), 4)
        (torch.Size([2, 3, 4, 4]), 0.25)
    """
    def param(size, batch: int = 1, *, seed: int = 0, device=None, alpha: bool = False):
        if alpha:
            raise ValueError("start_param has no opacity channel (alpha=False)")
        x = image.detach().float().clamp(0.01, 0.99)
        if tuple(x.shape[-2:]) != ((size, size) if isinstance(size, int) else tuple(size)):
            x = torch.nn.functional.interpolate(x[None], size=size, mode="bilinear", antialias=True,
                                                align_corners=False)[0].clamp(0.01, 0.99)
        raw = torch.logit(x)[None].repeat(batch, 1, 1, 1).to(device).requires_grad_(True)
        return [raw], lambda: torch.sigmoid(raw)
    return param


def channel_means(model: nn.Module, layer: str, channel: int, images: torch.Tensor) -> torch.Tensor:
    """(B,) the channel's activation, mean over positions, for (B, 3, H, W) images in [0, 1] (through the
    model's preprocessing).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.ReLU())
        >>> channel_means(net, "1", 0, torch.rand(3, 3, 8, 8)).shape
        torch.Size([3])
    """
    stream = hooked(model).stream(images, [layer], batch_size=max(len(images), 1), progress=False)
    a = torch.cat([cache[layer][:, channel].float().cpu() for _, cache in stream])
    return a.flatten(1).mean(1) if a.dim() > 1 else a


def _grid(images: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """(B, 3, H, W) -> (3, H, B * (W + pad) - pad): the images in one row on white."""
    b, _, h, w = images.shape
    out = torch.ones(3, h, b * (w + pad) - pad)
    for i in range(b):
        out[:, :, i * (w + pad):i * (w + pad) + w] = images[i].detach().float().cpu()
    return out


def _stored_rendering(ref: str, given: dict):
    """A one-image ``Rendering`` of ``ref`` from a stored feature visualization (``fv.png`` bytes,
    ``activation``, ``dead``), for the evidence part when the render itself is not recomputed."""
    rgb = np.asarray(Image.open(io.BytesIO(given["fv.png"])).convert("RGB"), dtype=np.float32) / 255
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None]  # (1, 3, H, W)
    return Rendering(image, torch.zeros(0, 1), torch.tensor([float(given["activation"])]), [ref], ref,
                     dead=torch.tensor([bool(given["dead"])]))


def is_dead(r) -> bool:
    """True when a rendering found no response: ``r.dead`` if the renderer sets it, else a flat first image
    (every pixel within 1/255 of the mean) or a final activation at or below 0.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> is_dead(NS(images=torch.full((1, 3, 4, 4), 0.5), activations=torch.tensor([0.3])))
        True
    """
    dead = getattr(r, "dead", None)
    if dead is not None:
        return bool(torch.as_tensor(dead).reshape(-1)[0])
    flat = float((r.images[0] - r.images[0].mean()).abs().max()) < 1 / 255
    return flat or float(r.activations[0]) <= 0


def evidence_rows(evidence: dict | None) -> list[dict]:
    """Rows ``{"label", "value"}`` for a channel page's evidence section, from an evidence dict (e.g.
    ``fv.circuits.evidence(...).to_dict()`` stored in a unit's facts as ``"evidence"``); [] for None.

    Numbers are shown with 3 significant digits; nested dicts become ``label › key`` rows.

    Example:
        >>> evidence_rows({"ablation": {"z": 3.14159, "p": 0.002}})
        [{'label': 'ablation › z', 'value': '3.14'}, {'label': 'ablation › p', 'value': '0.002'}]
    """
    rows: list[dict] = []

    def add(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                add(f"{prefix} › {k}" if prefix else str(k), v)
        elif isinstance(value, float):
            rows.append({"label": prefix, "value": f"{value:.3g}"})
        else:
            rows.append({"label": prefix, "value": str(value)})

    add("", evidence or {})
    return rows
