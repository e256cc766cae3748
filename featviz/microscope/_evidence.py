"""Microscope evidence: (model, layer, photos) -> per-layer curve scans cached on disk -> each channel's
lines of evidence (``fv.circuits.evidence``) as facts for its page and one compact PNG.

The expensive pieces are shared. One ``curve_scan`` per layer of the model and one of
``fv.models.randomized(model, seed=0)`` (the control), computed once and cached under
``.featviz-cache/evidence``, keyed by the weights; the feature visualization is the one the site already
rendered (its image, activation and dead flag); the photos are a fixed, evenly spaced subset of the site's
photos (the user's ``--images`` or the bundled ones), used for attribution and the ablation test.

Example:
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1), nn.ReLU())
    >>> net.input_size = 32
    >>> scans = layer_scans(net, ["3"], Path("_evidence"), "w", progress=False)
    >>> inputs = EvidenceInputs(*evidence_photos(bundled_photos(32), 4), scans, {"3": "1"})
    >>> files, facts = channel_evidence(net, "3", 0, inputs, n_random=3)
    >>> sorted(files), facts["selectivity"]["of"], facts["upstream"]["layer"]
    (['evidence0.svg', 'evidence1.svg', 'evidence2.svg', 'evidence3.svg'], 6, '1')
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from featviz._io import atomic_write_bytes
from featviz.circuits import curve_scan, evidence
from featviz.circuits.curves import CurveScan
from featviz.circuits.evidence import named_family, previous_layer
from featviz.circuits.receptive_field import ReceptiveField
from featviz.core import reusing
from featviz.hooks import hooked as fv_hooked
from featviz.microscope._channel import FIGURE_IN, evidence_rows, svg_bytes
from featviz.microscope._examples import PhotoSet, bundled_photos  # noqa: F401  (bundled_photos: docstring example)
from featviz.microscope._store import content_key, slug
from featviz.models import randomized

__all__ = ["EvidenceInputs", "layer_scans", "scan_path", "evidence_photos", "channel_evidence",
           "evidence_figures", "evidence_view", "curve_vs_line", "SCAN_FORMAT"]

SCAN_FORMAT = 3  # bump when the cached scan files change meaning (2: randomized BN stats from photos,
#                  3: clamp ceiling, blank response and pre-activations)
_TENSORS = ("directions", "orientations", "arcs", "lines", "rings", "discs")
_PLAIN = ("layer", "size", "width", "radii", "offsets", "shifts")


@dataclass
class EvidenceInputs:
    """What every channel's evidence shares: photos (N, 3, S, S) in [0, 1] and their names, per layer the
    (model, randomized model) curve scans, per layer the upstream layer credited and ablated, and per
    upstream layer the family tested against chance (``(name, channels)``, found once on stimuli by
    ``fv.circuits.evidence.named_family``; filled in as channels need it)."""

    images: torch.Tensor
    names: list[str]
    scans: dict[str, tuple[CurveScan, CurveScan]]
    upstream: dict[str, str | None]
    families: dict[str, tuple[str, list[int]]] = field(default_factory=dict)
    reuse: dict = field(default_factory=dict, repr=False)  # fv.core.reusing's store: a layer's family test,
    # random ablation sets, photo statistics and edge responses are computed once for all its channels


def scan_path(cache: Path, layer: str, weights: str, seed: int = 0) -> Path:
    """Cache file of ``layer``'s two curve scans for a model with weights hash ``weights``.

    Example:
        >>> scan_path(Path("_evidence"), "blocks.4", "abc").name.startswith("blocks.4-")
        True
    """
    key = content_key(weights, {"layer": layer, "randomized_seed": seed, "format": SCAN_FORMAT})
    return Path(cache) / f"{slug(layer)}-{key}.pt"


def _scan_dict(scan: CurveScan) -> dict:
    d = {k: getattr(scan, k) for k in (*_TENSORS, *_PLAIN)}
    d["shifts"] = [list(s) for s in scan.shifts]
    d["rf"] = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(scan.rf).items()}
    d["ceiling"], d["blank"], d["pre"] = scan.ceiling, scan.blank, scan.pre
    return d


def _scan_from(d: dict) -> CurveScan:
    rf = ReceptiveField(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["rf"].items()})
    return CurveScan(d["layer"], rf, int(d["size"]), float(d["width"]), d["directions"], list(d["radii"]),
                     d["orientations"], list(d["offsets"]), [tuple(s) for s in d["shifts"]], d["arcs"],
                     d["lines"], d["rings"], d["discs"], d.get("ceiling"), d.get("blank"), d.get("pre"))


def layer_scans(model: nn.Module, layers: Sequence[str], cache: Path, weights: str, *, seed: int = 0,
                progress: bool = True, controls: dict | None = None
                ) -> dict[str, tuple[CurveScan, CurveScan]]:
    """Per layer, ``(curve_scan(model, layer), curve_scan(randomized(model, seed), layer))`` with the same
    geometry, read from ``cache`` where present, else computed once and written there. Each scan holds every
    channel of the layer: one forward pass gives them all, and a page ranks its channel among them.
    ``controls``: a dict that keeps the randomized net (by seed) across calls, so scanning layer by layer
    makes it once; it is made only when some layer is not in the cache.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        >>> net.input_size = 32
        >>> scans = layer_scans(net, ["1"], Path("cache"), "w", progress=False)   # computed, then cached
        >>> scans["1"][0].n_channels, sorted(p.name[:2] for p in Path("cache").iterdir())
        (4, ['1-'])
    """
    out: dict[str, tuple[CurveScan, CurveScan]] = {}
    controls = {} if controls is None else controls
    for layer in tqdm(list(layers), desc="curve scans (model and randomized)", unit="layer",
                      disable=not progress):
        path = scan_path(cache, layer, weights, seed)
        if path.is_file():
            d = torch.load(path, weights_only=True)
            out[layer] = (_scan_from(d["model"]), _scan_from(d["randomized"]))
            continue
        scan = curve_scan(model, layer)
        if seed not in controls:
            controls[seed] = randomized(model, seed=seed)
        control = controls[seed]
        shift = scan.shifts[1][0] if scan.shifts else None
        rnd = curve_scan(control, layer, scan.size, radii=scan.radii, shift=shift, width=scan.width)
        buf = io.BytesIO()
        torch.save({"model": _scan_dict(scan), "randomized": _scan_dict(rnd)}, buf)
        atomic_write_bytes(path, buf.getvalue())
        out[layer] = (scan, rnd)
    return out


def evidence_photos(photos: PhotoSet, n: int) -> tuple[torch.Tensor, list[str]]:
    """``n`` photos spread evenly over ``photos`` (all of them when there are fewer), and their names.

    Example:
        >>> images, names = evidence_photos(bundled_photos(32), 4)
        >>> images.shape, len(names)
        (torch.Size([4, 3, 32, 32]), 4)
    """
    total = len(photos)
    idx = list(range(total)) if total <= n else sorted({round(i * (total - 1) / (n - 1)) for i in range(n)}
                                                       if n > 1 else {0})
    return photos.load(idx), [photos.names[i] for i in idx]


def curve_vs_line(scan: CurveScan) -> torch.Tensor:
    """(C,) every channel's worst-position arc/line ratio (``CurveScan.curve_vs_line``)."""
    return scan.curve_vs_line()


def channel_evidence(model: nn.Module, layer: str, channel: int, inputs: EvidenceInputs, *, rendering=None,
                     n_random: int = 10, seed: int = 0) -> tuple[dict[str, bytes], dict]:
    """``fv.circuits.evidence`` of ``layer:channel`` from the shared ``inputs`` (no new scan, no render):
    ``({"evidence0.svg": ..., ...}, evidence.to_dict())`` (``evidence_figures``) with the photos' names in
    the dataset examples.

    ``rendering``: the site's feature visualization of the channel (a ``Rendering``) for the verdict's
    feature-visualization sentence; None leaves that sentence out.
    """
    scan, rnd = inputs.scans[layer]
    up = inputs.upstream.get(layer) or previous_layer(fv_hooked(model), layer)
    if up is not None and up not in inputs.families:
        inputs.families[up] = named_family(model, up, "edges")
    with reusing(inputs.reuse):  # the model is fixed for the whole build
        ev = evidence(model, f"{layer}:{channel}", inputs.images, upstream=up, scan=scan,
                      random_scan=rnd, render=False, rendering=rendering, n_random=n_random, seed=seed,
                      hypothesis=inputs.families.get(up))
    ev.names = list(inputs.names)
    return evidence_figures(ev, scan, rnd), ev.to_dict()


def evidence_figures(ev, scan: CurveScan, random_scan: CurveScan) -> dict[str, bytes]:
    """Four SVG panels of ``ev`` (an ``Evidence``), each drawn at the size a page shows it
    (``_channel.FIGURE_IN``, text 12 px and up): ``evidence0.svg`` arc and ``evidence1.svg`` step-edge
    tuning at the receptive-field centre with the position sweep, ``evidence2.svg`` the channel's arc/line
    ratio among its layer and the randomized net's channels, ``evidence3.svg`` the ablation effect against
    random channel sets."""
    import matplotlib.pyplot as plt


    panels = [plt.subplots(figsize=FIGURE_IN, layout="constrained") for _ in range(4)]
    axes = [ax for _, ax in panels]
    for ax, curve, what in ((axes[0], ev.arc_curve, "arc bulge"), (axes[1], ev.edge, "step edge")):
        if curve is not None:
            ax.plot(curve.angles, curve.responses, "k-", lw=2, label="at RF centre")
            for k, r in enumerate(curve.shifted if curve.shifted is not None else []):
                ax.plot(curve.angles, r, "-", lw=0.8, alpha=0.7,
                        label=f"moved {ev.shift:g} px" if not k else None)
            ax.legend(loc="upper right")
        ax.set_xlabel(f"{what} direction (deg)")
        ax.set_ylabel("evoked response")
        ax.set_title(f"{what}s at the RF centre")
    ax = axes[2]
    here, rnd = curve_vs_line(scan), curve_vs_line(random_scan)
    c = int(ev.node.rsplit(":", 1)[1])
    ax.scatter(rnd.numpy(), torch.zeros(len(rnd)).numpy(), s=10, color="grey", alpha=0.6)
    ax.scatter(here.numpy(), torch.ones(len(here)).numpy(), s=10, color="tab:blue", alpha=0.6)
    ax.scatter([float(here[c])], [1], s=60, color="tab:red", zorder=3)
    ax.set_yticks([0, 1], ["randomized", "this layer"])
    ax.set_ylim(-0.6, 1.6)
    ax.set_xlabel("arc / line ratio (worst position)")
    ax.set_title(f"selectivity: rank {ev.curve_rank} of {ev.n_channels}")
    test = ev.family_test if ev.family_test is not None else ev.ablation
    if test is not None:
        test.plot(ax=axes[3])
    else:
        axes[3].axis("off")
        axes[3].text(0.5, 0.5, "no ablation test\n(no upstream layer)", ha="center", va="center")
    return {f"evidence{k}.svg": svg_bytes(fig) for k, (fig, _) in enumerate(panels)}


def evidence_view(facts: dict | None) -> dict | None:
    """What a channel page shows of its evidence facts (``channel_evidence``'s): the verdict sentences and
    rows of the numbers behind selectivity, the tuning tests and the ablation test; None without facts.

    Example:
        >>> evidence_view(None) is None
        True
    """

    if not facts:
        return None
    cv, sel, edge, abl = facts["curve_tests"], facts["selectivity"], facts["step_edges"], facts["ablation"]
    numbers = {
        "selectivity (arc/line ratio at the worst position)": {
            "this channel": cv["curve_vs_line"], "rank in its layer": f"{sel['rank']} of {sel['of']}",
            "randomized-net channels reaching it": f"{100 * sel['randomized_exceeding']:.0f} %"},
        "curve tests at the RF centre": {"passes": "yes" if cv["passes"] else "no",
                                         "preferred bulge (deg)": cv["direction"],
                                         "drift (deg)": cv["drift"]},
        "step edges": {"direction selectivity": edge["selectivity"], "preferred (deg)": edge["direction"],
                       "drift (deg)": edge["drift"]},
    }
    if abl is not None:  # chosen by attribution on other photos: an effect size, never a test
        numbers["which inputs matter (chosen on other photos: a description)"] = {
            "channels": abl["src"], "effect": _effect(abl),
            "random sets (mean ± sd)": _mean_sd(abl["random_effects"]),
            "photos (chosen on / measured on)": f"{abl.get('selected_on', 0)} / {abl.get('n_images', 0)}"}
    fam = facts.get("family_test")
    if fam is not None:
        row = {"family": fam["hypothesis"], "channels": fam["src"], "effect": _effect(fam),
               f"random sets from {fam['null']} (mean ± sd)": _mean_sd(fam["random_effects"])}
        if fam.get("structural"):
            row["test"] = "fixed by the wiring: no p-value"
        else:
            row.update({"z": fam["z"], "p": f"{fam['p']:.2g} ({fam['n_random']} random sets)"})
        numbers["family test (a set found on stimuli, against chance)"] = row
    elif facts.get("family"):
        numbers["family test (a set found on stimuli, against chance)"] = {"test": facts["family"]}
    return {"verdict": list(facts["verdict"]), "rows": evidence_rows(numbers)}


def _effect(test: dict) -> str:
    ci = test.get("interval")
    text = f"{100 * test['effect']:+.1f} %"
    return text + (f" (95 % CI {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f} %)" if ci else "")


def _mean_sd(values: list[float]) -> str:
    t = torch.tensor(values, dtype=torch.float64)
    sd = float(t.std()) if len(t) > 1 else 0.0
    return f"{100 * float(t.mean()):+.1f} ± {100 * sd:.1f} %"
