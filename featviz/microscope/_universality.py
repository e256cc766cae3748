"""A microscope site of several models: ({name: model}, photos) -> a site per model, linked by matched units.

``DIR/<name>/`` is each model's own site, built by ``build_microscope`` exactly as for one model (its own
marker, lock and resumable units). Before those builds, ``fv.circuits.match_units`` correlates the units
of corresponding layers of every pair of models over the photos the sites use (the same layer names in
both models; else their ``interesting_layers`` paired by position), each against a randomized copy of the
second model; ``fv.circuits.unit_links`` keeps the matches that reach ``min_correlation`` and beat that
control by ``min_margin``. Each unit page then lists its matches in the other models, and two pages join
the sites: ``DIR/index.html`` (the models) and ``DIR/universality.html`` (per layer pair, the matched
units side by side with their feature visualizations, correlation and control, linked to both pages).

``DIR`` follows the site rules: new, empty or a featviz site (``force`` otherwise), one build at a time
(its lock), and only what this builder wrote there is ever removed (a model folder never is).

Example:
    >>> settings = MicroscopeSettings(size=32, steps=4, diversity=0, examples=2, evidence=False)
    >>> a, b = fv.models.toy.edges_and_curves(), fv.models.toy.edges_and_curves()
    >>> build_microscopes({"a": a, "b": b}, "sites", ["relu1"], settings=settings, channels=2,
    ...                   progress=False)
    PosixPath('sites/index.html')
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

from torch import nn

from featviz import __version__
from featviz._io import atomic_write_text
from featviz._templates import template_env, write_css
from featviz.circuits.universality import match_units, unit_links
from featviz.core import evaluating, input_size_of
from featviz.errors import BadValue
from featviz.microscope._build import build_microscope
from featviz.microscope._channel import MicroscopeSettings
from featviz.microscope._examples import bundled_photos, image_folder
from featviz.microscope._plan import check_layers, default_layers
from featviz.microscope._store import (
    SiteLock,
    check_site_folder,
    clean_temps,
    read_meta,
    remove_stale,
    slug,
    write_marker,
)

__all__ = ["build_microscopes", "pair_layers"]

_RESERVED = {"channels", "layers", "data"}  # folders of a one-model site: a model may not be called so
_PAGES = {"index.html", "universality.html", "style.css"}


def pair_layers(model_a: nn.Module, layers_a: Sequence[str], model_b: nn.Module,
                layers_b: Sequence[str]) -> list[tuple[str, str]]:
    """Corresponding layers of two sites: the names both have (in ``layers_a``'s order); when they share
    none, each model's ``interesting_layers`` that its site shows (else its layers), paired by position.

    Example:
        >>> pair_layers(nn.Identity(), ["x", "y"], nn.Identity(), ["y", "z"])
        [('y', 'y')]
        >>> pair_layers(nn.Identity(), ["x", "y"], nn.Identity(), ["p", "q", "r"])
        [('x', 'p'), ('y', 'q')]
    """
    common = [n for n in layers_a if n in layers_b]
    if common:
        return [(n, n) for n in common]

    def ordered(model: nn.Module, layers: Sequence[str]) -> list[str]:
        own = [n for n in getattr(model, "interesting_layers", None) or [] if n in layers]
        return own or list(layers)

    return list(zip(ordered(model_a, layers_a), ordered(model_b, layers_b)))


def build_microscopes(models: Mapping[str, nn.Module], out: str | Path = "featviz-microscope",
                      layers: Sequence[str] | Mapping[str, Sequence[str]] | None = None, *,
                      settings: MicroscopeSettings | None = None, channels: int | None = None,
                      images: str | Path | None = None, workers: int = 1, address: str | None = None,
                      force: bool = False, progress: bool = True, seeds: Sequence[int] = (0,),
                      min_correlation: float = 0.3, min_margin: float = 0.1) -> Path:
    """Build (or resume) one microscope site per model in ``out/<name>/`` and the pages that join them;
    returns ``out/index.html``.

    Args:
        models: two or more models by name (the name is the model's folder, as ``slug(name)``).
        layers: layer names for every model, or per model name (default: ``default_layers`` of each).
        settings: as ``build_microscope``, for every model.
        channels: as ``build_microscope``, for every model.
        images: as ``build_microscope``, for every model.
        workers: as ``build_microscope``, for every model.
        address: as ``build_microscope``, for every model.
        force: as ``build_microscope``, for every model.
        progress: show tqdm progress bars; ``False`` turns them off.
        seeds: the randomized copies each match is compared with (``fv.models.randomized(model_b, seed)``).
        min_correlation: a unit links to its best match in another model when their correlation reaches
            ``min_correlation`` ...
        min_margin: ... and beats the randomized control by ``min_margin``.
    """
    folders = _folders(models, channels)  # 1. every argument, before any work
    settings = settings or MicroscopeSettings()
    site_layers, shapes = _site_layers(models, layers)
    pairs = _layer_pairs(models, site_layers, shapes)
    out = Path(out)
    old = check_site_folder(out, force)
    with SiteLock(out):
        clean_temps(out, {p for p in old if Path(p).parts[0] not in folders.values()})
        write_marker(out, old | _PAGES)
        # 2. the matches, on the photos the sites use (at the largest input size; each model resizes)
        matches = _matches(models, pairs, images, seeds, progress)
        built = {n: {la: min(s[1], channels or s[1]) for la, s in shapes[n].items()} for n in models}
        sections, partners = _sections(matches, folders, built, min_correlation, min_margin)
        pages = {n: {la: set(range(k)) | partners.get(n, {}).get(la, set()) for la, k in built[n].items()}
                 for n in models}
        unit_pages = _unit_matches(matches, folders, pages, min_correlation, min_margin)
        # 3. each model's own site, its unit pages listing their matches (matched units outside the built
        #    channels get a short page, so every row of the universality page links to two pages)
        for n in models:
            build_microscope(models[n], site_layers[n], out / folders[n], settings=settings,
                             channels=channels, images=images, workers=workers, address=address, force=force,
                             progress=progress, matches=unit_pages.get(n, {}),
                             partners={la: sorted(cs) for la, cs in partners.get(n, {}).items()},
                             name=n)
        # 4. the pages that join them
        index = _write_pages(out, list(models), folders, sections, min_correlation, min_margin, seeds)
        stale = {p for p in old - _PAGES if Path(p).parts and Path(p).parts[0] not in folders.values()}
        remove_stale(out, stale)
        write_marker(out, set(_PAGES))
    return index


def _folders(models: Mapping[str, nn.Module], channels: int | None) -> dict[str, str]:
    """``{model name: its site's folder}``; raises ``BadValue`` for fewer than two models, a name that cannot
    be a folder, two names with one folder, or a bad channel count."""
    names = list(models)
    if len(names) < 2:
        raise BadValue(f"a multi-model site needs two or more models, got {len(names)}; build one model's "
                       "site with build_microscope")
    folders = {n: slug(n) for n in names}
    for n, f in folders.items():
        if f.startswith(".") or f in _RESERVED or f.endswith(".html"):
            raise BadValue(f"model name {n!r} cannot be a site folder (names starting with '.', ending in "
                           f"'.html' and {sorted(_RESERVED)} are taken); rename it")
    if len(set(folders.values())) < len(names):
        raise BadValue(f"two models would share a folder: {sorted(folders.values())}; give distinct names")
    if channels is not None and int(channels) < 1:
        raise BadValue(f"channels (--channels) must be a positive number per layer, got {channels}")
    return folders


def _site_layers(models: Mapping[str, nn.Module], layers: Sequence[str] | Mapping[str, Sequence[str]] | None
                 ) -> tuple[dict[str, list[str]], dict[str, dict[str, tuple[int, ...]]]]:
    """Each model's site layers (given, per model or for all, else ``default_layers``) and their shapes
    (``check_layers``)."""
    site_layers: dict[str, list[str]] = {}
    shapes: dict[str, dict[str, tuple[int, ...]]] = {}
    for n, model in models.items():
        given = layers.get(n) if isinstance(layers, Mapping) else layers
        site_layers[n] = list(dict.fromkeys(given if given is not None else default_layers(model)))
        if not site_layers[n]:
            raise BadValue(f"model {n!r} declares no interesting_layers: name its layers "
                           "(layers=[...] / --layers L1,L2)")
        shapes[n] = check_layers(model, site_layers[n], "layers")
    return site_layers, shapes


def _layer_pairs(models: Mapping[str, nn.Module], site_layers: dict[str, list[str]],
                 shapes: dict[str, dict[str, tuple[int, ...]]]) -> dict[tuple[str, str], list[tuple]]:
    """``{(model a, model b): [(layer a, layer b)]}`` for every pair of models: ``pair_layers`` of their
    (B, C, H, W) layers."""
    names, pairs = list(models), {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            conv_a = [la for la in site_layers[a] if len(shapes[a][la]) == 4]
            conv_b = [lb for lb in site_layers[b] if len(shapes[b][lb]) == 4]
            pairs[(a, b)] = pair_layers(models[a], conv_a, models[b], conv_b)
    return pairs


def _matches(models: Mapping[str, nn.Module], pairs: dict, images, seeds, progress) -> list:
    """``match_units`` for every model pair and layer pair, on the sites' photos (streamed)."""
    if not any(pairs.values()):
        return []
    size = max(int(input_size_of(m, 224)) for m in models.values())
    photos = image_folder(images, size) if images is not None else bundled_photos(size)
    out = []
    for (a, b), layer_pairs in pairs.items():
        with ExitStack() as stack:
            stack.enter_context(evaluating(models[a], freeze_grads=True))
            stack.enter_context(evaluating(models[b], freeze_grads=True))
            for la, lb in layer_pairs:
                out.append(match_units(models[a], la, models[b], lb, photos.batches(16), seeds=seeds,
                                       names=(a, b), progress=progress))
    return out


def _unit_matches(matches: list, folders: dict[str, str], pages: dict, min_correlation: float,
                  min_margin: float) -> dict[str, dict[tuple[str, int], list[dict]]]:
    """Per model, ``{(layer, channel): [link dicts for the channel page]}``: only links between units that
    have a page (``pages[model][layer]``: built channels and matched partners)."""
    def split(node: str) -> tuple[str, int]:
        layer, c = node.rsplit(":", 1)
        return layer, int(c)

    out: dict[str, dict[tuple[str, int], list[dict]]] = {}
    for (model, node), links in unit_links(matches, min_correlation, min_margin).items():
        layer, c = split(node)
        if c not in pages[model].get(layer, ()):
            continue
        for link in links:
            other_layer, oc = split(link.node)
            if oc not in pages[link.model].get(other_layer, ()):
                continue
            href = f"../../../{folders[link.model]}/channels/{slug(other_layer)}/{oc}.html"
            out.setdefault(model, {}).setdefault((layer, c), []).append(
                {"model": link.model, "label": link.node, "href": href, "correlation": link.correlation,
                 "control": link.control})
    return out


def _thumb(out: Path, folder: str, layer: str, c: int) -> str | None:
    """The unit's feature visualization, relative to ``out``; None when it found no response or is absent."""
    meta = read_meta(out / folder / "data" / slug(layer) / str(c)) or {}
    fv = meta.get("parts", {}).get("fv")
    if not fv or fv["facts"].get("dead") or "fv.png" not in fv["files"]:
        return None
    return f"{folder}/data/{slug(layer)}/{c}/fv.png"


def _rendered(out: Path, folder: str, layer: str, c: int) -> bool:
    """Whether the unit has a feature visualization part (a partner's short page renders none by default)."""
    meta = read_meta(out / folder / "data" / slug(layer) / str(c)) or {}
    return "fv" in meta.get("parts", {})


def _sections(matches: list, folders: dict[str, str], built: dict, min_correlation: float,
              min_margin: float) -> tuple[list[dict], dict[str, dict[str, set[int]]]]:
    """The universality page's sections, one per layer pair, and the matched units outside the built
    channels (``{model: {layer: {channel}}}``: they get short pages, so every row links to two pages).

    Matches are computed over whole layers (``match_units`` compares every unit of one layer with every unit
    of the other), so a partial build (``channels``) loses no pair: a row is kept when either of its two
    units is built. ``misses`` lists, when no built unit matches, each built responding unit's best
    correlation and control, so a reader sees how far from the thresholds it was.
    """
    sections, partners = [], {}
    for m in matches:
        fa, fb = folders[m.name_a], folders[m.name_b]
        n_a, n_b = built[m.name_a][m.layer_a], built[m.name_b][m.layer_b]
        whole = m.pairs(min_correlation, min_margin)
        rows = _rows(m, whole, folders, n_a, n_b, partners)
        live = ~m.dead_a
        misses = []
        if not any(i < n_a for i, *_ in whole):
            best, r, ctl = m.best, m.best_correlation, m.control_best_correlation
            misses = [{"label": f"{m.layer_a}:{i}", "href": f"{fa}/channels/{slug(m.layer_a)}/{i}.html",
                       "partner": f"{m.layer_b}:{int(best[i])}", "r": float(r[i]), "control": float(ctl[i])}
                      for i in range(n_a) if bool(live[i])]
        sections.append({"a": m.name_a, "b": m.name_b, "layer_a": m.layer_a, "layer_b": m.layer_b,
                         "rows": rows, "misses": misses, "n_images": m.n_images, "grid": list(m.grid),
                         "built_a": n_a, "built_b": n_b, "width_a": int(m.correlation.shape[0]),
                         "width_b": int(m.correlation.shape[1]), "live_a": int(live.sum()),
                         "built_live_a": int(live[:n_a].sum()),
                         "matched_built": sum(i < n_a for i, *_ in whole), "matched_whole": len(whole),
                         "id": f"{fa}--{slug(m.layer_a)}--{fb}--{slug(m.layer_b)}"})
    return sections, partners


def _rows(m, whole: list, folders: dict[str, str], n_a: int, n_b: int, partners: dict) -> list[dict]:
    """The universality page's rows of match ``m``: each matched pair ``whole`` with a built unit on either
    side, both units linked; a matched unit that is not built is added to ``partners`` (a short page)."""
    rows = []
    for i, j, r, ctl in whole:
        if i >= n_a and j >= n_b:
            continue
        units = []
        sides = ((m.name_a, m.layer_a, i, n_a), (m.name_b, m.layer_b, j, n_b))
        for model, layer, c, n in sides:
            if c >= n:
                partners.setdefault(model, {}).setdefault(layer, set()).add(c)
            f = folders[model]
            units.append({"model": model, "label": f"{layer}:{c}", "layer": layer, "c": c, "folder": f,
                          "built": c < n, "href": f"{f}/channels/{slug(layer)}/{c}.html"})
        rows.append({"r": r, "control": ctl, "units": units})
    return rows


def _preview(out: Path, folder: str, manifest: dict, k: int = 8) -> list[dict]:
    """Up to ``k`` feature visualizations of a model's site (its first layer's built channels) for the
    landing page: ``{"img", "label"}`` each (``img`` None for a channel with no response)."""
    layers = manifest.get("layers") or []
    if not layers:
        return []
    name = layers[0]["name"]
    return [{"img": _thumb(out, folder, name, c), "label": f"{name}:{c}"}
            for c in layers[0]["channels"][:k] if read_meta(out / folder / "data" / slug(name) / str(c))]


def _write_pages(out: Path, names: list[str], folders: dict[str, str], sections: list[dict],
                 min_correlation: float, min_margin: float, seeds: Sequence[int]) -> Path:
    env = template_env()
    write_css(out)
    for s in sections:
        for row in s["rows"]:
            for u in row["units"]:
                u["img"] = _thumb(out, u["folder"], u["layer"], u["c"])
                u["unrendered"] = u["img"] is None and not _rendered(out, u["folder"], u["layer"], u["c"])
    common = {"featviz": __version__, "min_correlation": min_correlation, "min_margin": min_margin,
              "seeds": list(seeds)}
    html = env.get_template("universality.html").render(root="", sections=sections, **common)
    atomic_write_text(out / "universality.html", html)
    sites = []
    for n in names:
        try:
            manifest = json.loads((out / folders[n] / "manifest.json").read_text())
        except (OSError, ValueError):
            manifest = {}
        sites.append({"name": n, "href": f"{folders[n]}/index.html", "model": manifest.get("model", n),
                      "weights": manifest.get("weights_sha256", "")[:12],
                      "layers": [{"name": la["name"], "built": len(la["channels"]), "width": la["shape"][0]}
                                 for la in manifest.get("layers", [])],
                      "matched": sum(len(s["rows"]) for s in sections if n in (s["a"], s["b"])),
                      "preview": _preview(out, folders[n], manifest)})
    index = out / "index.html"
    atomic_write_text(index, env.get_template("sites.html").render(
        root="", sites=sites, n_pairs=len(sections), n_rows=sum(len(s["rows"]) for s in sections), **common))
    return index
