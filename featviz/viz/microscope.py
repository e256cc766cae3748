"""A static microscope site: (model, layers, photos) -> a folder of HTML pages and images, built resumably.

Pages: ``index.html`` (how to read the site, the layers, a jump-to-unit box), ``layers/<layer>.html``
(every channel's feature visualization), ``channels/<layer>/<c>.html`` (feature visualization, diversity
batch, top and bottom dataset examples, tuning curve for early layers, i.e. maps at least
``input_size / 8`` wide, strongest upstream/downstream connections with the partner's feature
visualization and the connecting weights). Links are relative; the site works from ``file://``.

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
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from featviz._io import atomic_write_bytes, atomic_write_text
from featviz.core import device_of, input_size_of, preprocess_fn, probe_input
from featviz.errors import BadValue, UnknownName
from featviz.hooks import hooked
from featviz.viz._channel import ChannelWorker, MicroscopeSettings, kernel_png, png_bytes
from featviz.viz._evidence import EvidenceInputs, evidence_photos, layer_scans, scan_path
from featviz.viz._store import (
    SiteLock,
    check_site_folder,
    clean_temps,
    content_key,
    read_files,
    read_meta,
    remove_stale,
    slug,
    unit_done,
    weights_hash,
    write_marker,
    write_unit,
)

__all__ = ["MicroscopeSettings", "build_microscope", "check_layers", "default_layers", "layer_shapes",
           "save_png", "slug", "EARLY_STRIDE", "CACHE"]

CACHE = ".featviz-cache"  # the site's caches (photo statistics, curve scans): no page links them
"""Folder of a site's caches (photo statistics, curve scans), inside the site; no page links it."""
EARLY_STRIDE = 8  # layers whose map is at least input_size / 8 wide count as early (get tuning curves)
"""Layers whose map is at least ``input_size / EARLY_STRIDE`` wide count as early (their pages get tuning
curves)."""


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Write one (3, H, W) image in [0, 1] as a PNG, atomically (``featviz._io``).

    Example:
        >>> save_png(torch.rand(3, 8, 8), "x.png")
        PosixPath('x.png')
    """
    return atomic_write_bytes(path, png_bytes(image))


def layer_shapes(model: nn.Module, names: Sequence[str] | None = None,
                 size: int | None = None) -> dict[str, tuple[int, ...]]:
    """Output shape of each layer in ``names`` (default: every hook name) for one probe image, in the
    order the layers first run.

    The image (``featviz.core.probe_input``) has ``size`` pixels (default ``model.input_size``, else 224)
    and goes through ``model.preprocess`` when the model has one. A layer that did not run or gave a
    non-tensor gets ``()`` (and comes last).

    Example:
        >>> layer_shapes(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)), size=32)
        {'0': (1, 8, 30, 30)}
    """
    hm = hooked(model)
    x = probe_input(model, size)  # (1, C, S, S): S = size or model.input_size or 224, preprocessed
    names = hm.hook_names if names is None else list(names)
    order: list[str] = []

    def seen(name: str):
        return lambda module, inputs, output: None if name in order else order.append(name)

    with torch.no_grad(), _frozen(model), hm.hooks([(n, seen(n)) for n in dict.fromkeys(names)]):
        _, cache = hm.run_with_cache(x, names=names, stop_at_last=len(names) < len(hm.hook_names))
    ran = order + [n for n in names if n not in order]
    return {n: tuple(cache[n].shape) if isinstance(cache.get(n), torch.Tensor) else () for n in ran}


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
            channel = hm.parse(ref)[1]
        except KeyError as e:
            raise UnknownName(f"{flag}: {e.args[0] if e.args else e}") from None
        if channel is not None:
            raise BadValue(f"{flag}: {ref!r} names a channel; give layer names (channels=N / --channels N "
                             "picks how many channels)")
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


def _frozen(model: nn.Module):
    from featviz.optvis.render import frozen  # eval mode and frozen parameters, both restored on exit

    return frozen(model)


def build_microscope(model: nn.Module, layers: Sequence[str] | None = None,
                     out: str | Path = "featviz-microscope", *, settings: MicroscopeSettings | None = None,
                     channels: int | None = None, images: str | Path | None = None, workers: int = 1,
                     address: str | None = None, force: bool = False, progress: bool = True,
                     matches: dict[tuple[str, int], list[dict]] | None = None,
                     partners: dict[str, Sequence[int]] | None = None, name: str | None = None,
                     report: dict | None = None) -> Path:
    """Build (or resume) the microscope site for ``layers`` of ``model`` in ``out``; returns index.html.

    Args:
        layers: layer names (from ``fv.hooked(model).hook_names``), early to late; consecutive layers are
            linked by their expanded weights. Default: ``default_layers(model)`` (the whole model).
        settings: what to compute per channel (``MicroscopeSettings()`` by default).
        channels: build the first ``channels`` channels of each layer (default: all). Connections to
            channels outside them get a feature visualization and a short page too.
        images: folder of the user's photos for dataset examples (default: the bundled photos).
        workers: ``> 1`` computes channels on that many Ray workers; results are the same files.
        address: Ray cluster to join (default: a local Ray started for this build).
        force: build into a non-empty folder that is not a featviz site (nothing of it is deleted).
        matches: ``{(layer, channel): [{"model", "label", "href", "correlation", "control"}, ...]}``, the
            unit's matches in other models, listed on its page (``featviz.viz.universality_site`` passes
            them; pages only, no effect on what is computed).
        partners: ``{layer: [channel, ...]}`` outside the built channels that also get a short page (feature
            visualization only), e.g. a built unit's match in another model.
        name: what the pages call the model (default: ``model.name``, else its class name).
        report: a dict this build fills with ``{"seconds": {part: seconds}}``, the time spent on each part
            (the extras' cost: ``caricature``, ``groups``, ``atlas``; parts taken from disk cost nothing).

    The model runs in eval mode with frozen parameters; its modes and ``requires_grad`` flags are restored.

    Example:
        >>> settings = MicroscopeSettings(size=32, steps=4, diversity=0, examples=2, evidence=False)
        >>> model = fv.models.toy.edges_and_curves()
        >>> build_microscope(model, ["conv1", "conv2"], "site", settings=settings, channels=1, progress=False)
        PosixPath('site/index.html')
    """
    with _frozen(model):
        return _build(model, layers, Path(out), settings or MicroscopeSettings(), channels, images,
                      int(workers), address, force, progress, matches, partners, name, report)


def _build(model, layers, out: Path, settings: MicroscopeSettings, channels, images, workers, address, force,
           progress, matches=None, partners=None, name=None, report=None) -> Path:
    from featviz import __version__
    from featviz.viz._examples import bundled_photos, image_folder, layer_stats, stats_path, top_crop
    from featviz.viz._site import site_paths, write_site

    # 1. every argument, before any work
    layers = list(dict.fromkeys(layers if layers is not None else default_layers(model)))
    if not layers:
        raise BadValue("no layers: name them (layers=[...] / --layers L1,L2); this model declares no "
                         "interesting_layers (see `featviz layers MODEL`)")
    if channels is not None and int(channels) < 1:
        raise BadValue(f"channels (--channels) must be a positive number per layer, got {channels}")
    if workers < 1:
        raise BadValue(f"workers (--workers) must be 1 (in-process) or more (Ray), got {workers}")
    shapes = check_layers(model, layers, "layers")
    partners = {n: sorted({int(c) for c in cs}) for n, cs in (partners or {}).items()}
    for n, cs in partners.items():
        if n not in shapes or any(not 0 <= c < shapes[n][1] for c in cs):
            raise BadValue(f"partners: {n!r} is not one of the layers ({', '.join(layers)}) or names a "
                           f"channel outside it: {cs}")
    try:  # the renders run the model on size-px images: a size too small for the deepest layer fails here
        layer_shapes(model, layers, size=settings.size)
    except RuntimeError as e:
        first = " ".join(str(e).split())[:160]
        raise BadValue(f"the model cannot run on {settings.size} px renders up to {layers[-1]!r} ({first}); "
                       f"use a larger size (--size), e.g. {getattr(model, 'input_size', 224)}") from None
    size = int(input_size_of(model, 224))
    photos = image_folder(images, size) if images is not None else bundled_photos(size)
    if workers > 1:
        from featviz.viz._distributed import _ray

        _ray()  # Ray missing: say so now, not after the first part of the work
    old = check_site_folder(out, force)

    with SiteLock(out):
        clean_temps(out, old)
        chosen = {n: list(range(min(s[1], channels or s[1]))) for n, s in shapes.items()}
        early = {n: len(s) == 4 and s[-1] * EARLY_STRIDE >= size for n, s in shapes.items()}
        wkey = weights_hash(model)
        pairs = list(zip(layers, layers[1:]))
        acts = {str(stats_path(Path(CACHE, "acts"), n, photos, wkey)) for n in layers if settings.examples}
        acts |= {f"data/_layers/{slug(n)}" for n in layers if len(shapes[n]) == 4
                 and {"groups", "atlas"} & set(settings.extras)}
        costs: dict[str, float] = report.setdefault("seconds", {}) if report is not None else {}
        planned = site_paths(layers, chosen, {n: [] for n in layers}, pairs) | acts
        write_marker(out, old | planned)  # before any file: a killed build's files are known as ours

        def folder(layer: str, c: int) -> Path:
            return out / "data" / slug(layer) / str(c)

        links: dict = {}
        extra: dict[str, list[int]] = {n: [] for n in layers}
        keys: dict = {}
        interrupted = False
        try:
            # 2. connections first (cheap, and they say which partner channels need a feature visualization)
            for a, b in pairs:
                links[(a, b)] = connections(model, out, a, b, chosen, wkey, settings.top_k, size)
            extra = _partners(layers, chosen, links, partners)
            units = {(n, c): settings.parts(early[n], len(shapes[n]) == 4) for n in layers for c in chosen[n]}
            units |= {(n, c): {"fv": settings.parts(False)["fv"]} for n, cs in extra.items() for c in cs}
            upstream = {n: layers[i - 1] if i and len(shapes[layers[i - 1]]) == 4 else None
                        for i, n in enumerate(layers)}  # credited and ablated by the evidence part
            photo_key = {"examples": {"photos": photos.key}, "evidence": {"photos_key": photos.key},
                         "caricature": {"photos": photos.key}}

            def part_key(n: str, p: str, v: dict) -> str:
                up = {"upstream": upstream[n] or "default"} if p == "evidence" else {}
                return content_key(wkey, {"part": p, **v, **photo_key.get(p, {}), **up})

            keys = {u: {p: part_key(u[0], p, v) for p, v in parts.items()} for u, parts in units.items()}
            scans = {str(scan_path(Path(CACHE, "evidence"), n, wkey)) for (n, _), parts in units.items()
                     if "evidence" in parts}
            planned = site_paths(layers, chosen, extra, pairs) | acts | scans
            write_marker(out, old | planned)
            todo = []
            for (n, c), want in keys.items():
                meta = read_meta(folder(n, c)) or {}
                have = {p: v["key"] for p, v in meta.get("parts", {}).items()}
                missing = [p for p, k in want.items() if have.get(p) != k]
                if missing:
                    todo.append((n, c, early[n], tuple(missing), _stored_fv(folder(n, c), meta, missing)))
            # 3. photo statistics (one streamed pass for every layer that needs examples; cached on disk)
            #    (also where a render is missing: a channel the optimisation cannot switch on from noise is
            #    optimised again from the photo that excites it most)
            stats = {}
            uses = {"examples", "fv", "diversity", "caricature"}
            if settings.examples and any(uses & set(job[3]) for job in todo):
                need = sorted({job[0] for job in todo if uses & set(job[3])}, key=layers.index)
                stats = layer_stats(model, photos, need, out / CACHE / "acts", weights=wkey,
                                    progress=progress)
            todo = [(*job, top_crop(model, job[0], job[1], stats[job[0]], photos, settings.size)
                     if job[0] in stats and {"fv", "diversity", "caricature"} & set(job[3]) else None)
                    for job in todo]
            # 3b. evidence: one curve scan per layer (model and randomized, cached on disk), shared photos
            evidence = None
            need = sorted({job[0] for job in todo if "evidence" in job[3]}, key=layers.index)
            if need:
                evidence = EvidenceInputs(*evidence_photos(photos, settings.evidence_photos),
                                          layer_scans(model, need, out / CACHE / "evidence", wkey,
                                                      progress=progress), upstream)

            predictions: dict = {}  # photo index -> the model's top class, computed once per build

            def commit(layer: str, c: int, files: dict, facts: dict) -> None:
                _commit(model, folder(layer, c), layer, c, keys[(layer, c)], files, facts, stats, photos,
                        settings, predictions)

            # 4. the channels
            total = len(keys)
            with tqdm(total=total, initial=total - len(todo), desc=f"microscope {out}", unit="channel",
                      disable=not progress) as bar:
                if workers > 1 and todo:
                    from featviz.viz._distributed import run_ray

                    run_ray(model, settings, todo, commit, bar, workers=workers, address=address,
                            evidence=evidence)
                elif todo:
                    worker = ChannelWorker(model, settings, evidence=evidence)
                    for job in todo:
                        commit(job[0], job[1], *_timed(costs, job, worker.compute))
                        bar.update(1)
            # 5. upstream channels that a built channel's evidence names (its strongest inputs by attribution)
            #    but that have no page yet: a short page each, so every unit the page names is linked
            named = _evidence_partners(layers, {u: read_meta(folder(*u)) for u, k in keys.items()
                                                if "evidence" in k}, chosen, extra)
            if named:
                for n, cs in named.items():
                    extra[n] = sorted(set(extra[n]) | cs)
                    for c in cs:
                        keys[(n, c)] = {"fv": part_key(n, "fv", settings.parts(False)["fv"])}
                planned = site_paths(layers, chosen, extra, pairs) | acts | scans
                write_marker(out, old | planned)
                worker = ChannelWorker(model, settings)
                for n, cs in named.items():
                    for c in sorted(cs):
                        stored = (read_meta(folder(n, c)) or {}).get("parts", {}).get("fv", {})
                        if stored.get("key") != keys[(n, c)]["fv"]:
                            start = (top_crop(model, n, c, stats[n], photos, settings.size) if n in stats
                                     else None)
                            commit(n, c, *worker.compute(n, c, False, ("fv",), None, start))
            # 6. per-layer extras (neuron groups, atlas), one unit per layer under data/_layers
            if {"groups", "atlas"} & set(settings.extras):
                for n in layers:
                    if len(shapes[n]) == 4:
                        seconds = _layer_extras(model, out, n, settings, photos, wkey)
                        for k, v in seconds.items():
                            costs[k] = costs.get(k, 0.0) + v
            # 7. explanation pages (fv.explain) of the photos among the dataset examples, when asked
            if "explain" in settings.extras:
                built = {u for u, k in keys.items() if read_meta(folder(*u))}
                shown = _example_photos([read_meta(folder(*u)) for u in sorted(built)])
                pages = {f"data/_explain/{slug(p)}" for p in shown}
                planned |= pages
                write_marker(out, old | planned)
                start = time.perf_counter()
                convs = [n for n in layers if len(shapes[n]) == 4]
                at = [convs[round(i * (len(convs) - 1) / 2)] for i in range(3)] if len(convs) > 3 else convs
                _explain_pages(model, out, list(dict.fromkeys(at)), shown, photos, settings, wkey, built,
                               progress)
                costs["explain"] = costs.get("explain", 0.0) + time.perf_counter() - start
        except KeyboardInterrupt:
            interrupted = True
        manifest = {
            "featviz": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "model": name or getattr(model, "name", None) or type(model).__name__, "weights_sha256": wkey,
            "photos": {"count": len(photos), "source": "your images" if images is not None else "bundled"},
            "settings": {**asdict(settings), "tuning_angles": list(settings.tuning_angles)},
            "layers": [{"name": n, "shape": list(shapes[n][1:]), "channels": chosen[n], "extra": extra[n],
                        "early": early[n]} for n in layers],
        }
        done = {u: read_meta(folder(*u)) for u in keys}
        done = {u: m for u, m in done.items() if m and all(m["parts"].get(p, {}).get("key") == k
                                                          for p, k in keys[u].items())}
        labels = getattr(model, "labels", None)
        if interrupted:
            index = write_site(out, manifest, done, links, labels=labels, complete=False, matches=matches)
            raise KeyboardInterrupt
        atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
        index = write_site(out, manifest, done, links, labels=labels, matches=matches)
        remove_stale(out, old - planned)
        write_marker(out, planned)
    return index


def connections(model: nn.Module, out: Path, src: str, dst: str, chosen: dict[str, list[int]], wkey: str,
                top_k: int, size: int) -> dict:
    """Unit ``data/_links/<src>__<dst>``: the top-k links each way of every built channel, with kernel PNGs.

    A link's strength is the L2 norm of its expanded kernel (``fv.circuits.expanded_weights``; for a (B, C)
    layer, the gradient at a mid-grey image) divided by the mean over all channel pairs of the two
    layers, so numbers from different layer pairs compare: 5 means five times the average connection.
    """
    key = content_key(wkey, {"src": src, "dst": dst, "top_k": top_k, "channels": [chosen[src], chosen[dst]],
                             "format": 3})
    folder = out / "data" / "_links" / f"{slug(src)}__{slug(dst)}"
    if unit_done(folder, key):
        return read_meta(folder)
    w, method, cut = _link_weights(model, src, dst, size)  # (C_dst, C_src, kh, kw)
    strength = w.flatten(2).norm(dim=2)  # (C_dst, C_src)
    typical = float(strength.mean()) or 1.0
    rel = strength / typical
    up, down = {}, {}
    for d in chosen[dst]:  # strongest inputs of each built dst channel, among all src channels
        up[d] = [(s, round(float(rel[d, s]), 4))
                 for s in rel[d].topk(min(top_k, rel.shape[1])).indices.tolist()]
    for s in chosen[src]:  # strongest outputs of each built src channel, among all dst channels
        down[s] = [(d, round(float(rel[d, s]), 4))
                   for d in rel[:, s].topk(min(top_k, rel.shape[0])).indices.tolist()]
    pairs = {(d, s) for d, lst in up.items() for s, _ in lst}
    pairs |= {(d, s) for s, lst in down.items() for d, _ in lst}
    files = {f"d{d}_s{s}.png": kernel_png(w[d, s]) for d, s in sorted(pairs)}
    write_unit(folder, files, {"key": key, "src": src, "dst": dst, "kernel": list(w.shape[2:]),
                               "method": method, "cut_off": cut, "typical": typical, "upstream": up,
                               "downstream": down})
    return read_meta(folder)


def _link_weights(model: nn.Module, src: str, dst: str, size: int) -> tuple[torch.Tensor, str, bool]:
    """(C_dst, C_src, kh, kw) weights from ``src`` to ``dst``, how they were found, and whether the kernels
    are cut off at the map's edge (even at twice the input size)."""
    from featviz.circuits import expanded_weights

    try:
        for s in (size, 2 * size):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                w = expanded_weights(model, src, dst, size=s, progress=False)
            if not caught:
                break
        return w, "expanded weights", bool(caught)
    except ValueError:  # a (B, C) layer: no kernels to expand
        return _gradient_weights(model, src, dst, size), "gradient at a mid-grey image", False


def _gradient_weights(model: nn.Module, src: str, dst: str, size: int, chunk: int = 64) -> torch.Tensor:
    """(C_dst, C_src, h, w) gradient of each ``dst`` unit (mean over positions) with respect to ``src``'s
    map, at a mid-grey image; ``src`` replaced by a leaf so only the layers after it matter."""
    hm = hooked(model)
    dev = device_of(model)
    x = preprocess_fn(model)(torch.full((1, 3, size, size), 0.5, device=dev))  # mid-grey
    with torch.no_grad():
        _, cache = hm.run_with_cache(x, names=[src, dst])
    a, n_dst = cache[src], cache[dst].shape[1]
    rows = []
    for start in range(0, n_dst, chunk):
        idx = torch.arange(start, min(start + chunk, n_dst), device=dev)
        z = a.expand(len(idx), *a.shape[1:]).clone().requires_grad_(True)
        got: dict[str, torch.Tensor] = {}
        fns = [(src, lambda m, i, o, z=z: z), (dst, lambda m, i, o, got=got: got.__setitem__("y", o))]
        with torch.enable_grad(), hm.hooks(fns):
            try:  # one image up to src, the batch of n copies only after it (broadcasts over a skip)
                hm(x)
                if got["y"].shape[0] != len(idx):
                    raise RuntimeError("batch did not carry through")
            except RuntimeError:
                hm(x.expand(len(idx), *x.shape[1:]))
            y = got["y"].flatten(2).mean(2) if got["y"].dim() > 2 else got["y"]  # (n, C_dst)
            y[torch.arange(len(idx)), idx].sum().backward()
        rows.append(z.grad.detach().cpu())
    g = torch.cat(rows)  # (C_dst, C_src, ...)
    return g if g.dim() == 4 else g.reshape(*g.shape[:2], 1, 1)


def _partners(layers: list[str], chosen: dict[str, list[int]], links: dict,
              wanted: dict[str, list[int]] | None = None) -> dict[str, list[int]]:
    """Channels that some connection of a built channel points at (or that ``wanted`` asks for) but that are
    not built themselves."""
    extra: dict[str, set[int]] = {n: set((wanted or {}).get(n, ())) for n in layers}
    for (src, dst), meta in links.items():
        extra[src] |= {s for lst in meta["upstream"].values() for s, _ in lst}
        extra[dst] |= {d for lst in meta["downstream"].values() for d, _ in lst}
    return {n: sorted(extra[n] - set(chosen[n])) for n in layers}


def _timed(costs: dict, job: tuple, compute) -> tuple[dict, dict]:
    """``compute(*job)``, adding its time to ``costs["caricature"]`` when the job's parts include it (the
    caricature is timed on its own: the rest is the site's usual work)."""
    import time

    if "caricature" not in job[3]:
        return compute(*job)
    rest = tuple(p for p in job[3] if p != "caricature")
    files, facts = compute(*job[:3], rest, *job[4:]) if rest else ({}, {})
    start = time.perf_counter()
    more_files, more_facts = compute(*job[:3], ("caricature",), *job[4:])
    costs["caricature"] = costs.get("caricature", 0.0) + time.perf_counter() - start
    return {**files, **more_files}, {**facts, **more_facts}


def _layer_extras(model, out: Path, layer: str, settings: MicroscopeSettings, photos, wkey: str,
                  n_photos: int = 16) -> dict[str, float]:
    """Unit ``data/_layers/<layer>``: the layer's neuron groups (``groups.png``: one render per group, and
    each group's strongest channels) and activation atlas (``atlas.png``), as ``settings.extras`` asks, on
    the first ``n_photos`` photos; computed only when missing. Returns the seconds each took."""
    import time

    from featviz.errors import BadValue as _BadValue
    from featviz.optvis import atlas, factorize

    wanted = [e for e in ("groups", "atlas") if e in settings.extras]
    key = content_key(wkey, {"layer": layer, "extras": wanted, "size": settings.size, "steps": settings.steps,
                             "seed": settings.seed, "photos": photos.key, "n_photos": n_photos})
    folder = out / "data" / "_layers" / slug(layer)
    if unit_done(folder, key):
        return {}
    images = photos.load(range(min(n_photos, len(photos))))
    files, meta, seconds = {}, {"key": key, "layer": layer}, {}
    if "groups" in wanted:
        start = time.perf_counter()
        try:
            f = factorize(model, layer, images, n_groups=4, seed=settings.seed)
        except _BadValue:  # negative activations: no NMF
            f = factorize(model, layer, images, n_groups=4, method="pca", seed=settings.seed)
        r = f.render(model, size=settings.size, steps=settings.steps, seed=settings.seed, progress=False)
        from featviz.viz._channel import _grid

        files["groups.png"] = png_bytes(_grid(r.images))
        meta["groups"] = {"method": f.method, "channels": [
            [int(c) for c in torch.as_tensor(d).abs().argsort(descending=True)[:4]] for d in f.directions]}
        seconds["groups"] = time.perf_counter() - start
    if "atlas" in wanted:
        start = time.perf_counter()
        a = atlas(model, layer, images, grid=6, n_samples=400, reducer="pca",
                  size=max(16, settings.size // 2), steps=settings.steps, class_atlas=False,
                  seed=settings.seed, progress=False)
        files["atlas.png"] = png_bytes(a.mosaic())
        meta["atlas"] = {"grid": 6, "cells": len(a.cells)}
        seconds["atlas"] = time.perf_counter() - start
    write_unit(folder, files, meta)
    return seconds


def _example_photos(metas: list[dict | None]) -> list[str]:
    """Names of the photos shown as a dataset example (top or bottom) by any of these units, in order."""
    names: dict[str, None] = {}
    for meta in metas:
        for part in (meta or {}).get("parts", {}).values():
            ex = part.get("facts", {}).get("examples") or {}
            for kind in ("top", "bottom"):
                names.update((e["name"], None) for e in ex.get(kind, []))
    return list(names)


def _explain_pages(model, out: Path, layers: list[str], names: list[str], photos, settings,
                   wkey: str, built: set[tuple[str, int]], progress: bool) -> None:
    """Unit ``data/_explain/<photo>`` per photo in ``names``: its ``fv.explain`` page (``explain.html``, the
    top predicted class — for a model without one, the deepest layer's built unit the photo excites most —
    at ``layers``: the site's first, middle and last conv layers) and static figure (``explain.png``); every
    channel the page names links to its channel page when that unit is ``built``. Computed only when missing
    (the key holds the built units, so a build that adds pages refreshes the links)."""
    import tempfile

    from featviz.explain import explain

    if not layers:
        return
    index = {n: i for i, n in enumerate(photos.names)}

    def unit_url(layer: str, c: int) -> str | None:
        return f"../../../channels/{slug(layer)}/{c}.html" if (layer, c) in built else None

    for name in tqdm(names, desc="explain photos", unit="photo", disable=not progress):
        key = content_key(wkey, {"explain": name, "photos": photos.key, "layers": layers,
                                 "size": settings.size, "steps": settings.steps, "seed": settings.seed,
                                 "built": sorted([n, c] for n, c in built)})
        folder = out / "data" / "_explain" / slug(name)
        if name not in index or unit_done(folder, key):
            continue
        image = photos.load([index[name]])[0]  # (3, H, W) in [0, 1]
        ex = explain(model, image, layers=layers, seed=settings.seed)
        if ex.target is None:  # no class output: the deepest layer's built unit this photo excites most
            means = ex.activations[layers[-1]].mean(dim=(1, 2))  # (C,)
            cands = [c for n, c in built if n == layers[-1]] or range(len(means))
            ex.target = ex.resolve_target(f"{layers[-1]}:{max(cands, key=lambda c: float(means[c]))}")
        with tempfile.TemporaryDirectory() as tmp:  # read back into one atomic unit; nothing of it stays
            page = ex.save_html(Path(tmp) / "explain.html", size=settings.size, steps=settings.steps,
                                progress=False, unit_url=unit_url, title=name)
            files = {"explain.html": page.read_bytes()}
            if page.with_suffix(".png").is_file():
                files["explain.png"] = page.with_suffix(".png").read_bytes()
        write_unit(folder, files, {"key": key, "photo": name, "target": ex.target.label, "layers": layers})


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


def _stored_fv(folder: Path, meta: dict, missing: list[str]) -> dict | None:
    """For a job whose evidence part is recomputed but whose feature visualization is kept: the stored
    ``fv.png`` and its facts, which the evidence quotes; None otherwise."""
    fv = meta.get("parts", {}).get("fv")
    if "evidence" not in missing or "fv" in missing or not fv or "fv.png" not in fv["files"]:
        return None
    return {"fv.png": (folder / "fv.png").read_bytes(), **fv["facts"]}


def _commit(model, folder: Path, layer: str, c: int, keys: dict[str, str], files: dict, facts: dict, stats,
            photos, settings: MicroscopeSettings, predictions: dict | None = None) -> None:
    """Write unit ``folder`` from the new parts (``files``/``facts`` of the worker, plus dataset examples)
    and the old unit's parts whose keys still hold."""
    from featviz.viz._examples import example_files

    old = read_meta(folder) or {}
    parts: dict[str, dict] = {}
    blobs: dict[str, bytes] = {}
    for p, k in keys.items():
        prev = old.get("parts", {}).get(p)
        if prev and prev["key"] == k:
            parts[p] = prev
            blobs |= read_files(folder, prev["files"])
    by_part = {"fv": ["fv.png"], "diversity": ["diversity.png"], "tuning": ["tuning.svg"],
               "caricature": ["caricature.png", "caricature_photo.png"],
               "evidence": [f"evidence{k}.svg" for k in range(4)]}
    fact_part = {"activation": "fv", "dead": "fv", "start": "fv", "diversity": "diversity",
                 "caricature": "caricature",
                 "tuning": "tuning", "evidence": "evidence"}
    for p in keys:
        if p in parts:
            continue
        if p == "examples":
            ex_files, ex_facts = example_files(model, layer, c, stats[layer], photos, settings.examples,
                                               predictions)
            parts[p] = {"key": keys[p], "files": sorted(ex_files), "facts": {"examples": ex_facts}}
            blobs |= ex_files
            continue
        mine = [f for f in by_part[p] if f in files]
        parts[p] = {"key": keys[p], "files": mine,
                    "facts": {f: v for f, v in facts.items() if fact_part.get(f) == p}}
        blobs |= {f: files[f] for f in mine}
    unit_key = content_key("", {p: v["key"] for p, v in sorted(parts.items())})
    write_unit(folder, blobs, {"key": unit_key, "layer": layer, "channel": c, "parts": parts})
