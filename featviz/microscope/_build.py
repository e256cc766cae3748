"""A static microscope site: (model, layers, photos) -> a folder of HTML pages and images, built resumably.

Pages: ``index.html`` (how to read the site, the layers, a jump-to-unit box), ``layers/<layer>.html``
(every channel's feature visualization), ``channels/<layer>/<c>.html`` (feature visualization, diversity
batch, top and bottom dataset examples, tuning curve for early layers, i.e. maps at least
``input_size / 8`` wide, strongest upstream/downstream connections with the partner's feature
visualization and the connecting weights). Partners (units outside the built channels that a built page
names) get a short page that renders nothing unless ``MicroscopeSettings.partner_renders``: it says what
the unit is, links back and shows the connecting weights (and its dataset examples when its layer's photo
statistics are computed anyway). Links are relative; the site works from ``file://``.

Builds are resumable and never touch what they did not write: the folder must be new, empty or a
featviz site (``.featviz-site.json`` lists what the builder wrote; ``force=True`` builds into another
folder without deleting anything of it); one build at a time holds its lock. Each channel's results are
one unit under ``data/`` (written to a temporary folder, then renamed) made of parts (``fv``,
``diversity``, ``examples``, ``tuning``, ``evidence``), each keyed by the hash of the model's weights and the
settings it depends on: a rerun computes only missing or changed parts, and pages or units of an earlier build
that this one no longer has are removed. Caches that only speed up a rebuild (the photos' activation
statistics, the curve scans of the evidence part) live in ``.featviz-cache/``, which no page links: leave
it out when publishing the site (or delete it; a rebuild recomputes it). Ctrl-C keeps every finished unit
and writes a browsable site of them. ``workers > 1`` spreads channels over Ray
(``pip install 'featviz[distributed]'``).

Example:
    >>> model = fv.models.toy.edges_and_curves()
    >>> settings = MicroscopeSettings(size=32, steps=4, diversity=0, examples=2,   # default 128 px, 128 steps
    ...                               evidence=False)
    >>> build_microscope(model, ["relu1", "relu2"], "site", settings=settings, channels=2, progress=False)
    PosixPath('site/index.html')
"""
from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from featviz import __version__
from featviz._io import atomic_write_bytes, atomic_write_text
from featviz.core import evaluating
from featviz.errors import BadValue
from featviz.microscope._channel import ChannelWorker, MicroscopeSettings, png_bytes
from featviz.microscope._distributed import _ray, run_ray
from featviz.microscope._evidence import EvidenceInputs, evidence_photos, layer_scans
from featviz.microscope._examples import example_files, layer_stats, stats_path, top_crop
from featviz.microscope._extras import example_photos, explain_pages, layer_extras
from featviz.microscope._links import connections, partner_channels
from featviz.microscope._pages import site_paths, write_site
from featviz.microscope._plan import CACHE, Plan, plan
from featviz.microscope._store import (
    SiteLock,
    clean_temps,
    content_key,
    read_files,
    read_meta,
    remove_stale,
    slug,
    write_marker,
    write_unit,
)

__all__ = ["Execution", "Results", "build_microscope", "compute", "publish", "save_png"]


@dataclass(frozen=True)
class Execution:
    """How ``compute`` runs, not what it computes (no content key depends on it). Whether a folder that is
    not a featviz site may be built into (``force``) is the plan's decision (``plan(..., force=True)``).

    Attributes:
        workers: ``1`` computes channels in this process; ``> 1`` on that many Ray workers (the same files).
        address: Ray cluster to join (default: a local Ray started for the build).
        progress: show tqdm progress bars; ``False`` turns them off.

    Example:
        >>> Execution(workers=2, progress=False).workers
        2
    """

    workers: int = 1
    address: str | None = None
    progress: bool = True

    def __post_init__(self):
        if int(self.workers) < 1:
            raise BadValue(f"workers (--workers) must be 1 (in-process) or more (Ray), got {self.workers}")

    def check(self) -> None:
        """Raise now when the build cannot run as asked (Ray missing for ``workers > 1``), before any work."""
        if self.workers > 1:
            _ray()


@dataclass
class Results:
    """What ``compute`` did, for ``publish``: the connections, the partner channels that got a short page,
    the content keys of every unit with a page, the paths the build owns, the seconds spent on the extras,
    and whether Ctrl-C ended it early (the finished units are kept).

    Example:
        >>> Results().interrupted
        False
    """

    links: dict[tuple[str, str], dict] = field(default_factory=dict)
    extra: dict[str, list[int]] = field(default_factory=dict)
    keys: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict)
    planned: set[str] = field(default_factory=set)
    seconds: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Write one (3, H, W) image in [0, 1] as a PNG, atomically (``featviz._io``).

    Example:
        >>> save_png(torch.rand(3, 8, 8), "x.png")
        PosixPath('x.png')
    """
    return atomic_write_bytes(path, png_bytes(image))


def build_microscope(model: nn.Module, layers: Sequence[str] | None = None,
                     out: str | Path = "featviz-microscope", *, settings: MicroscopeSettings | None = None,
                     channels: int | None = None, images: str | Path | None = None, workers: int = 1,
                     address: str | None = None, force: bool = False, progress: bool = True,
                     matches: dict[tuple[str, int], list[dict]] | None = None,
                     partners: dict[str, Sequence[int]] | None = None, name: str | None = None,
                     report: dict | None = None) -> Path:
    """Build (or resume) the microscope site for ``layers`` of ``model`` in ``out``; returns index.html.

    ``plan`` (what the site holds; nothing rendered), then ``compute`` (what is missing), then ``publish``
    (the pages), holding the site's lock throughout.

    Args:
        layers: layer names (from ``fv.hooked(model).hook_names``), early to late; consecutive layers are
            linked by their expanded weights. Default: ``default_layers(model)`` (the whole model).
        settings: what to compute per channel (``MicroscopeSettings()`` by default).
        channels: build the first ``channels`` channels of each layer (default: all). Channels outside them
            that a built page names (connections, evidence) get a short page that renders nothing (a
            feature visualization each with ``settings.partner_renders``).
        images: folder of the user's photos for dataset examples (default: the bundled photos).
        workers: ``> 1`` computes channels on that many Ray workers; results are the same files.
        address: Ray cluster to join (default: a local Ray started for this build).
        force: build into a non-empty folder that is not a featviz site (nothing of it is deleted).
        progress: show tqdm progress bars; ``False`` turns them off.
        matches: ``{(layer, channel): [{"model", "label", "href", "correlation", "control"}, ...]}``, the
            unit's matches in other models, listed on its page (``build_microscopes`` passes them; pages
            only, no effect on what is computed).
        partners: ``{layer: [channel, ...]}`` outside the built channels that also get a short page (like
            the connection partners'), e.g. a built unit's match in another model.
        name: what the pages call the model (default: ``model.name``, else its class name).
        report: a dict this build fills with ``{"seconds": {part: seconds}}``, the time spent on each part
            (the extras' cost: ``caricature``, ``groups``, ``atlas``; parts taken from disk cost nothing).

    The model runs in eval mode with frozen parameters (``featviz.core.evaluating(model,
    freeze_grads=True)``); its modes, ``requires_grad`` flags and BatchNorm buffers are restored.

    Example:
        >>> settings = MicroscopeSettings(size=32, steps=4, diversity=0, examples=2, evidence=False)
        >>> model = fv.models.toy.edges_and_curves()
        >>> build_microscope(model, ["conv1", "conv2"], "site", settings=settings, channels=1, progress=False)
        PosixPath('site/index.html')
    """
    run = Execution(workers=int(workers), address=address, progress=progress)
    run.check()  # Ray missing: say so now, not after the first part of the work
    with evaluating(model, freeze_grads=True):
        p = plan(model, layers, out, settings=settings, channels=channels, images=images, partners=partners,
                 name=name, force=force)
        with SiteLock(p.out):
            results = _compute(model, p, run)
            index = _publish(p, results, matches)
    if report is not None:
        spent = report.setdefault("seconds", {})
        for part, seconds in results.seconds.items():
            spent[part] = spent.get(part, 0.0) + seconds
    if results.interrupted:
        raise KeyboardInterrupt
    return index


def compute(model: nn.Module, plan: Plan, run: Execution | None = None) -> Results:
    """Compute (resumably) every unit ``plan`` holds that is not on disk with its key: connections, the
    channels' parts, the short pages of partner channels, the extras; each unit is written atomically, so
    Ctrl-C keeps what finished (``Results.interrupted``). Holds the site's lock; writes no page.

    Example:
        >>> model = fv.models.toy.edges_and_curves()
        >>> settings = MicroscopeSettings(size=16, steps=2, diversity=0, examples=1, evidence=False)
        >>> p = plan(model, ["relu1"], "site", settings=settings, channels=1)
        >>> r = compute(model, p, Execution(progress=False))
        >>> sorted(r.keys), plan(model, ["relu1"], "site", settings=settings, channels=1).missing
        ([('relu1', 0)], {})
    """
    run = run or Execution()
    run.check()
    with evaluating(model, freeze_grads=True), SiteLock(plan.out):
        return _compute(model, plan, run)


def publish(plan: Plan, results: Results, *,
            matches: dict[tuple[str, int], list[dict]] | None = None) -> Path:
    """Write the site's pages (``index.html``, a page per layer and per unit) from the units ``results``
    finished, ``manifest.json``, and remove what an earlier build wrote that this one no longer has; returns
    index.html. After an interrupted compute, the pages of the finished units only (nothing removed).
    ``matches`` as for ``build_microscope``. Holds the site's lock.

    Example:
        >>> model = fv.models.toy.edges_and_curves()
        >>> p = plan(model, ["relu1"], "site", settings=MicroscopeSettings(size=16, steps=2, evidence=False),
        ...          channels=1)
        >>> publish(p, compute(model, p, Execution(progress=False)))
        PosixPath('site/index.html')
    """
    with SiteLock(plan.out):
        return _publish(plan, results, matches)


def _compute(model: nn.Module, plan: Plan, run: Execution) -> Results:
    """``compute`` inside the site's lock: the steps in order; Ctrl-C ends them and is reported."""
    clean_temps(plan.out, plan.old)
    results = Results(extra={n: [] for n in plan.layers}, keys=dict(plan.keys))
    steps = _Steps(model, plan, run, results)
    steps.mark()  # before any file: a killed build's files are known as ours
    try:
        steps.connections()  # cheap, and they say which partner channels get a short page
        steps.channels()
        steps.evidence_partners()
        steps.short_pages()
        steps.layer_extras()
        steps.explain()
    except KeyboardInterrupt:
        results.interrupted = True
    return results


def _publish(plan: Plan, results: Results, matches: dict | None) -> Path:
    """``publish`` inside the site's lock."""
    out, manifest = plan.out, _manifest(plan, results)
    done = {u: read_meta(plan.folder(*u)) for u in results.keys}
    done = {u: m for u, m in done.items()
            if m and all(m["parts"].get(p, {}).get("key") == k for p, k in results.keys[u].items())}
    done |= _short_units(plan, results)
    if results.interrupted:
        return write_site(out, manifest, done, results.links, labels=plan.labels, complete=False,
                          matches=matches)
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
    index = write_site(out, manifest, done, results.links, labels=plan.labels, matches=matches)
    remove_stale(out, plan.old - results.planned)
    write_marker(out, results.planned)
    return index


def _manifest(plan: Plan, results: Results) -> dict:
    """``manifest.json``: versions, the model, its weights' hash, the photos, the settings and the layers."""
    s = plan.settings
    return {
        "featviz": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "model": plan.name, "weights_sha256": plan.weights,
        "photos": {"count": len(plan.photos), "source": "your images" if plan.own_photos else "bundled"},
        "settings": {**asdict(s), "tuning_angles": list(s.tuning_angles)},
        "layers": [{"name": n, "shape": list(plan.shapes[n][1:]), "channels": plan.channels[n],
                    "extra": results.extra[n], "early": plan.early[n]} for n in plan.layers],
    }


class _Steps:
    """The steps of ``compute``, sharing the photo statistics, the evidence inputs and the predictions that
    the dataset examples label photos with (computed once per build)."""

    def __init__(self, model: nn.Module, plan: Plan, run: Execution, results: Results):
        self.model, self.plan, self.run, self.results = model, plan, run, results
        self.stats: dict = {}
        self.predictions: dict = {}  # photo index -> the model's top class
        self.evidence: EvidenceInputs | None = None
        self.controls: dict = {}  # the randomized net of the evidence's control, made once (layer_scans)
        self.explained: set[str] = set()

    def mark(self) -> None:
        """Record every path the build (now) owns in the site marker, before writing any of them."""
        p, r = self.plan, self.results
        r.planned = site_paths(p.layers, p.channels, r.extra, p.pairs) | p.caches | self.explained
        write_marker(p.out, p.old | r.planned)

    def seconds(self, part: str, spent: float) -> None:
        self.results.seconds[part] = self.results.seconds.get(part, 0.0) + spent

    def connections(self) -> None:
        """The connections of each layer pair; the channels they point at (partners) get a short page. With
        ``settings.partner_renders`` the partners join the channel jobs (a feature visualization each);
        by default they render nothing and ``short_pages`` makes their pages after the channels."""
        p, r = self.plan, self.results
        for a, b in p.pairs:
            r.links[(a, b)] = connections(self.model, p.out, a, b, p.channels, p.weights, p.settings.top_k,
                                          p.size)
        r.extra = partner_channels(p.layers, p.channels, r.links, p.partners)
        if p.settings.partner_renders:
            r.keys |= {(n, c): p.partner_keys(n, c) for n, cs in r.extra.items() for c in cs}
        self.mark()

    def todo(self) -> list[tuple]:
        """Jobs ``(layer, c, early, missing parts, stored fv)`` of the units not on disk with their keys."""
        p, jobs = self.plan, []
        for (n, c), want in self.results.keys.items():
            meta = read_meta(p.folder(n, c)) or {}
            have = {q: v["key"] for q, v in meta.get("parts", {}).items()}
            missing = [q for q, k in want.items() if have.get(q) != k]
            if missing:
                jobs.append((n, c, p.early[n], tuple(missing), _stored_fv(p.folder(n, c), meta, missing)))
        return jobs

    def photo_stats(self, todo: list[tuple]) -> list[tuple]:
        """One streamed pass over the photos for every layer that needs examples (cached on disk); each job
        that renders gets its start image: a channel the optimisation cannot switch on from noise is
        optimised again from the photo that excites it most."""
        p, uses = self.plan, {"examples", "fv", "diversity", "caricature"}
        if p.settings.examples and any(uses & set(job[3]) for job in todo):
            need = sorted({job[0] for job in todo if uses & set(job[3])}, key=p.layers.index)
            self.stats = layer_stats(self.model, p.photos, need, p.out / CACHE / "acts", weights=p.weights,
                                     progress=self.run.progress)
        renders = {"fv", "diversity", "caricature"}
        return [(*job, self.start_image(job[0], job[1]) if renders & set(job[3]) else None) for job in todo]

    def start_image(self, layer: str, c: int) -> torch.Tensor | None:
        """The crop of the photo that excites channel ``c`` most (None without photo statistics)."""
        if layer not in self.stats:
            return None
        return top_crop(self.model, layer, c, self.stats[layer], self.plan.photos, self.plan.settings.size)

    def evidence_inputs(self, todo: list[tuple]) -> None:
        """The evidence part's shared inputs: photos now; one curve scan per layer (cached on disk) up front
        for Ray workers (they get the inputs once), else as each layer's first evidence job comes up
        (``scans_for``), so the first channel renders without waiting for every layer's scans."""
        p = self.plan
        need = sorted({job[0] for job in todo if "evidence" in job[3]}, key=p.layers.index)
        if need:
            self.evidence = EvidenceInputs(*evidence_photos(p.photos, p.settings.evidence_photos), {},
                                           p.upstream)
            if self.run.workers > 1:
                for layer in need:
                    self.scans_for(layer, self.run.progress)

    def scans_for(self, layer: str, progress: bool = False) -> None:
        """``layer``'s curve scans (model and randomized: the whole layer, since the page ranks the channel
        among its layer and the randomized net's) into the evidence inputs, from the cache or computed once;
        the randomized net is made once per build."""
        ev = self.evidence
        if ev is not None and layer not in ev.scans:
            p = self.plan
            ev.scans |= layer_scans(self.model, [layer], p.out / CACHE / "evidence", p.weights,
                                    progress=progress, controls=self.controls)

    def bar_desc(self) -> str:
        """The channel bar's description: the requested channels and, counted apart with the reason, the
        connection partners that get a short page, e.g. ``"microscope site: 8 requested + 11 partners
        (short pages of units the requested pages link to; no render, not counted in this bar)"``; with
        ``settings.partner_renders`` the partners are channel jobs of the bar (a feature visualization
        each) and it says so."""
        p, r = self.plan, self.results
        requested = sum(len(cs) for cs in p.channels.values())
        partners = sum(len(cs) for cs in r.extra.values())
        if not partners:
            return f"microscope {p.out}: {requested} channels"
        why = ("a feature visualization each (partner_renders)" if p.settings.partner_renders else
               "no render, not counted in this bar")
        return (f"microscope {p.out}: {requested} requested + {partners} partner{'s' * (partners != 1)} "
                f"(short pages of units the requested pages link to; {why})")

    def channels(self) -> None:
        """Every unit's missing parts, in this process or on Ray workers, each committed as it finishes."""
        todo = self.todo()
        todo = self.photo_stats(todo)
        self.evidence_inputs(todo)
        total, run = len(self.results.keys), self.run
        with tqdm(total=total, initial=total - len(todo), desc=self.bar_desc(), unit="channel",
                  disable=not run.progress) as bar:
            if run.workers > 1 and todo:
                run_ray(self.model, self.plan.settings, todo, self.commit, bar, workers=run.workers,
                        address=run.address, evidence=self.evidence)
            elif todo:
                worker = ChannelWorker(self.model, self.plan.settings, evidence=self.evidence)
                for job in todo:
                    ev = self.evidence
                    if "evidence" in job[3] and ev is not None and job[0] not in ev.scans:
                        bar.set_postfix_str(f"curve scans of {job[0]} (model and randomized)")
                        self.scans_for(job[0])
                        bar.set_postfix_str("")
                    self.commit(job[0], job[1], *_timed(self.results.seconds, job, worker.compute))
                    bar.update(1)

    def evidence_partners(self) -> None:
        """Upstream channels that a built channel's evidence names (its strongest inputs by attribution) but
        that have no page yet: partners too, a short page each, so every unit a page names is linked. Only
        with ``settings.partner_renders`` do they render (a feature visualization each, here)."""
        p, r = self.plan, self.results
        metas = {u: read_meta(p.folder(*u)) for u, k in r.keys.items() if "evidence" in k}
        named = _evidence_partners(p.layers, metas, p.channels, r.extra)
        if not named:
            return
        for n, cs in named.items():
            r.extra[n] = sorted(set(r.extra[n]) | cs)
        self.mark()
        if not p.settings.partner_renders:
            return  # short_pages makes their pages
        r.keys |= {(n, c): p.partner_keys(n, c) for n, cs in named.items() for c in cs}
        self.cached_stats(set(named))  # their examples (and start images), from cached statistics only
        worker = ChannelWorker(self.model, p.settings)
        units = [(n, c) for n, cs in named.items() for c in sorted(cs)
                 if p.missing_parts(n, c, r.keys[(n, c)])]
        desc = (f"microscope {p.out}: {len(units)} evidence partners (short pages of the inputs the evidence "
                "names)")
        for n, c in tqdm(units, desc=desc, unit="channel", disable=not self.run.progress or not units):
            fv = ("fv",) if "fv" in p.missing_parts(n, c, r.keys[(n, c)]) else ()
            self.commit(n, c, *(worker.compute(n, c, False, fv, None, self.start_image(n, c)) if fv else
                                ({}, {})))

    def short_pages(self) -> None:
        """The partners' units when they render nothing (the default; ``settings.partner_renders`` renders
        them as channel jobs instead): each gets the parts that cost no render, i.e. its dataset examples,
        cut from its layer's photo statistics when the built channels computed them or they are cached
        (never a pass over the photos for partners alone: without them the page shows no examples until a
        build computes them). A unit on disk with a feature visualization of the same key keeps it."""
        p, r = self.plan, self.results
        if p.settings.partner_renders:
            return
        units = [(n, c) for n, cs in r.extra.items() for c in cs]
        r.keys |= {u: p.partner_keys(*u) for u in units}
        todo = [u for u in units if p.missing_parts(*u, r.keys[u])]
        self.cached_stats({n for n, _ in todo})
        todo = [(n, c) for n, c in todo if n in self.stats]
        desc = f"microscope {p.out}: {len(todo)} partner pages (dataset examples only, no render)"
        for n, c in tqdm(todo, desc=desc, unit="page", disable=not self.run.progress or not todo):
            self.commit(n, c, {}, {})

    def cached_stats(self, layers: set[str]) -> None:
        """Add to the photo statistics the ``layers`` whose statistics are cached on disk (a load, no pass
        over the photos); layers without a cache file are left out."""
        p = self.plan
        cache = p.out / CACHE / "acts"
        have = [n for n in sorted(layers) if n not in self.stats
                and stats_path(cache, n, p.photos, p.weights).is_file()]
        if have and p.settings.examples:
            self.stats |= layer_stats(self.model, p.photos, have, cache, weights=p.weights, progress=False)

    def layer_extras(self) -> None:
        """Per-layer extras (neuron groups, atlas), one unit per conv layer under ``data/_layers``."""
        p = self.plan
        if {"groups", "atlas"} & set(p.settings.extras):
            for n in p.layers:
                if len(p.shapes[n]) == 4:
                    for part, spent in layer_extras(self.model, p, n).items():
                        self.seconds(part, spent)

    def explain(self) -> None:
        """Explanation pages (``fv.explain``) of the photos among the dataset examples, when asked."""
        p, r = self.plan, self.results
        if "explain" not in p.settings.extras:
            return
        built = {u for u in r.keys if read_meta(p.folder(*u))}
        requested = [u for u in sorted(built) if u[1] in p.channels[u[0]]]  # not the partners' examples
        shown = example_photos([read_meta(p.folder(*u)) for u in requested])
        self.explained = {f"data/_explain/{slug(name)}" for name in shown}
        self.mark()
        start = time.perf_counter()
        convs = [n for n in p.layers if len(p.shapes[n]) == 4]  # the first, middle and last conv layers
        at = [convs[round(i * (len(convs) - 1) / 2)] for i in range(3)] if len(convs) > 3 else convs
        explain_pages(self.model, p, list(dict.fromkeys(at)), shown, built, self.run.progress)
        self.seconds("explain", time.perf_counter() - start)

    def commit(self, layer: str, c: int, files: dict, facts: dict) -> None:
        """Write the unit of channel ``c`` of ``layer`` from the new parts (``files``/``facts`` of the worker,
        plus dataset examples) and the old unit's parts whose keys still hold."""
        p, folder, keys = self.plan, self.plan.folder(layer, c), self.results.keys[(layer, c)]
        old = (read_meta(folder) or {}).get("parts", {})
        parts = {q: old[q] for q, k in keys.items() if q in old and old[q]["key"] == k}
        blobs: dict[str, bytes] = {}
        for prev in parts.values():
            blobs |= read_files(folder, prev["files"])
        for q in keys:
            if q in parts:
                continue
            if q == "examples":
                if layer not in self.stats and c not in p.channels[layer]:
                    continue  # a partner whose layer's photo statistics were not computed: no examples yet
                ex_files, ex_facts = example_files(self.model, layer, c, self.stats[layer], p.photos,
                                                   p.settings.examples, self.predictions)
                parts[q] = {"key": keys[q], "files": sorted(ex_files), "facts": {"examples": ex_facts}}
                blobs |= ex_files
                continue
            mine = [f for f in _PART_FILES[q] if f in files]
            parts[q] = {"key": keys[q], "files": mine,
                        "facts": {f: v for f, v in facts.items() if _FACT_PART.get(f) == q}}
            blobs |= {f: files[f] for f in mine}
        unit_key = content_key("", {q: v["key"] for q, v in sorted(parts.items())})
        write_unit(folder, blobs, {"key": unit_key, "layer": layer, "channel": c, "parts": parts})


_PART_FILES = {"fv": ["fv.png"], "diversity": ["diversity.png"], "tuning": ["tuning.svg"],
               "caricature": ["caricature.png", "caricature_photo.png"],
               "evidence": [f"evidence{k}.svg" for k in range(4)]}  # the files each part of a unit holds
_FACT_PART = {"activation": "fv", "dead": "fv", "start": "fv", "diversity": "diversity",
              "caricature": "caricature", "tuning": "tuning", "evidence": "evidence"}  # fact -> its part


def _timed(costs: dict, job: tuple, compute) -> tuple[dict, dict]:
    """``compute(*job)``, adding its time to ``costs["caricature"]`` when the job's parts include it (the
    caricature is timed on its own: the rest is the site's usual work)."""
    if "caricature" not in job[3]:
        return compute(*job)
    rest = tuple(p for p in job[3] if p != "caricature")
    files, facts = compute(*job[:3], rest, *job[4:]) if rest else ({}, {})
    start = time.perf_counter()
    more_files, more_facts = compute(*job[:3], ("caricature",), *job[4:])
    costs["caricature"] = costs.get("caricature", 0.0) + time.perf_counter() - start
    return {**files, **more_files}, {**facts, **more_facts}


def _evidence_partners(layers: list[str], metas: dict, chosen: dict[str, list[int]],
                       extra: dict[str, list[int]]) -> dict[str, set[int]]:
    """``{layer: {channel}}``: upstream channels named by the evidence of the units in ``metas`` (their
    strongest excitatory and inhibitory inputs by attribution) that are neither built nor partners."""
    out: dict[str, set[int]] = {}
    for meta in metas.values():
        ev = ((meta or {}).get("parts", {}).get("evidence", {}).get("facts", {}).get("evidence") or {})
        up = ev.get("upstream") or {}
        layer = up.get("layer")
        if layer not in layers:
            continue
        for c, _ in [*up.get("excitatory", []), *up.get("inhibitory", [])]:
            if int(c) not in chosen[layer] and int(c) not in extra[layer]:
                out.setdefault(layer, set()).add(int(c))
    return out


def _short_units(plan: Plan, results: Results) -> dict[tuple[str, int], dict]:
    """Every partner's unit as its short page shows it: the stored parts whose keys hold (none at all: a
    page that says what the unit is, links back and renders nothing). Every partner gets its page."""
    out = {}
    for n, cs in results.extra.items():
        for c in cs:
            keys = results.keys.get((n, c)) or plan.partner_keys(n, c)
            meta = read_meta(plan.folder(n, c)) or {}
            parts = {q: v for q, v in meta.get("parts", {}).items() if keys.get(q) == v.get("key")}
            out[(n, c)] = {**meta, "layer": n, "channel": c, "parts": parts}
    return out


def _stored_fv(folder: Path, meta: dict, missing: list[str]) -> dict | None:
    """For a job whose evidence part is recomputed but whose feature visualization is kept: the stored
    ``fv.png`` and its facts, which the evidence quotes; None otherwise."""
    fv = meta.get("parts", {}).get("fv")
    if "evidence" not in missing or "fv" in missing or not fv or "fv.png" not in fv["files"]:
        return None
    return {"fv.png": (folder / "fv.png").read_bytes(), **fv["facts"]}
