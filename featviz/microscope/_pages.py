"""Microscope pages: (manifest, finished units, connections) -> HTML files from the jinja2 templates.

Templates live in ``featviz/assets/templates`` and are rendered with autoescaping; every link is
relative (each page gets ``root``, the way back to the site's top folder), so the site works from
``file://``, and without JavaScript (the index's jump-to-unit box is the only script, and the page reads
the same without it). Pages are rewritten on every build; they are cheap next to the units they show.

Example:
    ``build_microscope`` calls it with what it built; here, the pages again as if no unit were done.

    >>> from featviz.microscope._build import MicroscopeSettings, build_microscope
    >>> settings = MicroscopeSettings(size=32, steps=4, diversity=0, examples=2, evidence=False)
    >>> _ = build_microscope(fv.models.toy.edges_and_curves(), ["relu1"], "site", settings=settings,
    ...                      channels=1, progress=False)
    >>> manifest = json.loads(Path("site/manifest.json").read_text())
    >>> write_site(Path("site"), manifest, units={}, links={}, complete=False)
    PosixPath('site/index.html')
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from featviz._io import atomic_write_text
from featviz._templates import template_env, write_css
from featviz.microscope._evidence import evidence_view
from featviz.microscope._partners import full_build, named_by
from featviz.microscope._store import read_meta, slug

__all__ = ["write_site", "site_paths"]


def site_paths(layers: list[str], chosen: dict[str, list[int]], extra: dict[str, list[int]],
               links: dict) -> set[str]:
    """Every file and unit folder (relative to the site) a complete build of these units writes.

    Example:
        >>> sorted(site_paths(["a"], {"a": [0]}, {"a": []}, {}))[:3]
        ['channels/a/0.html', 'data/a/0', 'index.html']
    """
    paths = {"index.html", "style.css", "manifest.json"}
    for n in layers:
        s = slug(n)
        paths.add(f"layers/{s}.html")
        for c in [*chosen[n], *extra[n]]:
            paths |= {f"channels/{s}/{c}.html", f"data/{s}/{c}"}
    paths |= {f"data/_links/{slug(a)}__{slug(b)}" for a, b in links}
    return paths


def _unit_label(layer: str, c: int, labels: list[str] | None, n_channels: int) -> str:
    """``layer:c``, with the class name for an output unit (``labels`` as long as the layer is wide)."""
    if labels and len(labels) == n_channels and 0 <= c < len(labels):
        return f"{layer}:{c} “{labels[c]}”"
    return f"{layer}:{c}"


def _flatten(meta: dict) -> tuple[set[str], dict]:
    """A unit's files and its facts, over all its parts."""
    files, facts = set(), {}
    for part in meta["parts"].values():
        files |= set(part["files"])
        facts |= part["facts"]
    return files, facts


def _thumb(units: dict, layer: str, c: int, root: str) -> dict:
    """How a page shows the feature visualization of a unit it links: ``{"fv": its path from ``root`` or
    None, "dead": rendered but no response found, "unrendered": a short page that rendered none}``; all
    empty for a unit without a page."""
    unit = units.get((layer, c))
    if unit is None:
        return {"fv": None, "dead": False, "unrendered": False}
    files, facts = _flatten(unit)
    dead = bool(facts.get("dead"))
    shown = "fv.png" in files and not dead
    return {"fv": f"{root}data/{slug(layer)}/{c}/fv.png" if shown else None, "dead": dead,
            "unrendered": not shown and not dead}


def _connections(layers: list[dict], i: int, c: int, links: dict, units: dict, label) -> list[dict]:
    """Upstream and downstream connection groups of channel ``c`` of layer ``i`` for its page.

    A built channel lists its strongest connections each way (among all channels of the neighbouring layer);
    a short page (a partner that is not built) lists the built channels that connect to it, so every
    partner links back. ``group["back"]`` tells which of the two a group is."""
    name = layers[i]["name"]
    full = c in layers[i]["channels"]
    groups = []
    for j, direction in ((i - 1, "upstream"), (i + 1, "downstream")):
        if not 0 <= j < len(layers):
            continue
        other = layers[j]["name"]
        src, dst = (other, name) if direction == "upstream" else (name, other)
        if (src, dst) not in links:
            continue
        meta = links[(src, dst)]
        folder = f"../../data/_links/{slug(src)}__{slug(dst)}"
        if full:
            found = meta[direction].get(str(c), [])
        else:  # the built channels of the other layer whose own lists name this one
            mirror = "downstream" if direction == "upstream" else "upstream"
            found = sorted(((int(o), strength) for o, lst in meta[mirror].items() for p, strength in lst
                            if p == c), key=lambda t: -t[1])
        items = []
        for o, strength in found:
            d, s = (c, o) if direction == "upstream" else (o, c)
            partner = units.get((other, o))
            items.append({"label": label(other, o), "strength": strength, "kernel": f"{folder}/d{d}_s{s}.png",
                          **_thumb(units, other, o, "../../"),
                          "href": f"../{slug(other)}/{o}.html" if partner else None,
                          "short": o not in layers[j]["channels"]})
        if not items:
            continue
        kh, kw = meta["kernel"]
        groups.append({"direction": direction, "other": other, "links": items, "method": meta["method"],
                       "kernel": f"{kh}×{kw}", "cut_off": meta.get("cut_off", False),
                       "typical": meta.get("typical"), "back": not full})
    return groups


def _attribution(evidence: dict | None, units: dict, label, n_photos: int) -> dict | None:
    """The evidence's strongest upstream channels by attribution (``evidence["upstream"]``), as linked items
    for the channel page: ``{"layer", "photos", "of", "groups": [(title, [item, ...]), ...]}``; None when
    the evidence names none."""
    up = (evidence or {}).get("upstream") or {}
    other = up.get("layer")
    if not other:
        return None
    groups = []
    for kind, title in (("excitatory", "excite it most"), ("inhibitory", "inhibit it most")):
        items = []
        for o, score in up.get(kind, []):
            o = int(o)
            partner = units.get((other, o))
            items.append({"label": label(other, o), "score": score, **_thumb(units, other, o, "../../"),
                          "href": f"../{slug(other)}/{o}.html" if partner else None})
        if items:
            groups.append((title, items))
    photos = up.get("selected_on") or (evidence.get("ablation") or {}).get("n_images")
    return {"layer": other, "photos": photos, "of": n_photos, "groups": groups} if groups else None


def _neighbour(pages: list[int], k: int, layer: dict) -> dict | None:
    """The pager's link to ``pages[k]`` (None outside the list); ``short`` when it is a short page."""
    if not 0 <= k < len(pages):
        return None
    return {"c": pages[k], "href": f"{pages[k]}.html", "short": pages[k] not in layer["channels"]}


def _svg_px(path: Path) -> dict:
    """``{"w", "h"}``: an SVG file's natural size in CSS px (matplotlib writes ``width="259.2pt"``; 1 pt is
    4/3 px), for the page's ``<img width height>``; ``{}`` when unreadable."""
    try:
        head = path.read_text(errors="replace")[:2000]
    except OSError:
        return {}
    size = {}
    for key, attr in (("w", "width"), ("h", "height")):
        m = re.search(rf'<svg[^>]*\s{attr}="([\d.]+)(pt|px)?"', head, re.S)
        if not m:
            return {}
        size[key] = round(float(m.group(1)) * (4 / 3 if m.group(2) in (None, "pt") else 1))
    return size


def _ranges(channels: list[int]) -> str:
    """Sorted channels as ranges: [0, 1, 2, 5, 7, 8] -> '0–2, 5, 7–8'; 'none' for [].

    Example:
        >>> _ranges([0, 1, 2, 5, 7, 8])
        '0–2, 5, 7–8'
    """
    out, start = [], None
    for k, c in enumerate(channels):
        start = c if start is None else start
        if k + 1 == len(channels) or channels[k + 1] != c + 1:
            out.append(f"{start}–{c}" if c > start else str(c))
            start = None
    return ", ".join(out) or "none"


def write_site(out: Path, manifest: dict, units: dict[tuple[str, int], dict], links: dict, *,
               labels: list[str] | None = None, complete: bool = True,
               matches: dict[tuple[str, int], list[dict]] | None = None) -> Path:
    """Write ``index.html``, one page per layer and one per finished unit into ``out``; returns index.html.

    ``units[(layer, c)]`` is each finished unit's ``meta.json``; ``links[(src, dst)]`` the connection
    unit's. ``complete=False`` (an interrupted build) says so on the index. ``matches[(layer, c)]``: the
    unit's matches in other models of a multi-model site (``featviz.microscope.build_microscopes``), each a
    dict ``{"model", "label", "href", "correlation", "control"}``, listed on its page; none by default.
    """
    site = _Site(Path(out), manifest, units, links, labels, matches or {})
    write_css(site.out)
    summary, index_units = [], []
    for i, layer in enumerate(site.layers):
        summary.append(site.layer_page(i, layer))
        pages = site.pages(layer)
        for k, c in enumerate(pages):
            site.channel_page(i, layer, c, pages, k)
            index_units.append([site.label(layer["name"], c), f"channels/{slug(layer['name'])}/{c}.html"])
    return site.index_page(summary, index_units, complete)


class _Site:
    """What every page of one site shares: the folder, templates, manifest, units, connections, labels."""

    def __init__(self, out: Path, manifest: dict, units: dict, links: dict, labels: list[str] | None,
                 matches: dict):
        self.out, self.manifest, self.units, self.links = out, manifest, units, links
        self.labels, self.matches, self.env = labels, matches, template_env()
        self.layers = manifest["layers"]
        nav = [{"name": la["name"], "href": f"layers/{slug(la['name'])}.html"} for la in self.layers]
        self.common = {"manifest": manifest, "nav": nav, "size": manifest["settings"]["size"]}
        self.widths = {la["name"]: la["shape"][0] for la in self.layers}

    def label(self, n: str, c: int) -> str:
        return _unit_label(n, c, self.labels, self.widths.get(n, 0))  # a layer outside the site: no class

    def pages(self, layer: dict) -> list[int]:
        """The layer's channels with a page: built and partner channels whose unit is finished."""
        return sorted(c for c in [*layer["channels"], *layer["extra"]] if (layer["name"], c) in self.units)

    def layer_page(self, i: int, layer: dict) -> dict:
        """Write ``layers/<layer>.html``; returns the layer's entry on the index."""
        name, s, pages = layer["name"], slug(layer["name"]), self.pages(layer)
        built = [c for c in layer["channels"] if (name, c) in self.units]
        cells, short_cells = [], []
        for c in pages:
            thumb = _thumb(self.units, name, c, "../")
            (cells if c in built else short_cells).append(
                {"c": c, "label": self.label(name, c), "href": f"../channels/{s}/{c}.html",
                 "img": thumb["fv"], "unrendered": thumb["unrendered"]})
        prev_next = {k: {"name": self.layers[j]["name"], "href": f"{slug(self.layers[j]['name'])}.html"}
                     if 0 <= j < len(self.layers) else None for k, j in (("prev", i - 1), ("next", i + 1))}
        html = self.env.get_template("layer.html").render(
            root="../", layer=layer, channels=cells, short=short_cells, n_extra=len(short_cells),
            unrendered=sum(ch["unrendered"] for ch in short_cells), **prev_next,
            extras=self.layer_extras(s, pages), **self.common)
        atomic_write_text(self.out / "layers" / f"{s}.html", html)
        preview = [{**ch, "img": ch["img"][3:] if ch["img"] else None} for ch in cells[:8]]
        return {**layer, "href": f"layers/{s}.html", "preview": preview, "built": len(built)}

    def layer_extras(self, s: str, pages: list[int]) -> dict:
        """The layer's groups and atlas (unit ``data/_layers/<s>``) as the layer page shows them."""
        extras = read_meta(self.out / "data" / "_layers" / s) or {}
        extras = {k: {**extras[k], "src": f"../data/_layers/{s}/{k}.png"} for k in ("groups", "atlas")
                  if k in extras and (self.out / "data" / "_layers" / s / f"{k}.png").is_file()}
        for g in extras.get("groups", {}).get("channels", []):
            g[:] = [{"c": c, "href": f"../channels/{s}/{c}.html" if c in pages else None} for c in g]
        return extras

    def channel_page(self, i: int, layer: dict, c: int, pages: list[int], k: int) -> None:
        """Write ``channels/<layer>/<c>.html``: the unit's parts, connections, evidence and matches."""
        name, s = layer["name"], slug(layer["name"])
        files, facts = _flatten(self.units[(name, c)])
        full = c in layer["channels"]
        short = None if full else {
            "named_by": named_by(self.layers, i, c, self.links, self.units, self.matches.get((name, c), []),
                                 self.label), **full_build(self.manifest, self.out, name, c)}
        facts = {"start": None, "diversity": None, "caricature": None, **facts}  # older units lack these
        img = {f.rsplit(".", 1)[0]: f"../../data/{s}/{c}/{f}" for f in files}
        figs = {f.rsplit(".", 1)[0]: {"src": f"../../data/{s}/{c}/{f}",
                                      **_svg_px(self.out / "data" / s / str(c) / f)}
                for f in sorted(files) if f.endswith(".svg")}
        html = self.env.get_template("channel.html").render(
            root="../../", layer=layer, c=c, label=self.label(name, c), img=img, figs=figs, facts=facts,
            examples=self.examples(facts.get("examples") or {}, s, c),
            full=full, short=short, layer_href=f"../../layers/{s}.html",
            connections=_connections(self.layers, i, c, self.links, self.units, self.label),
            evidence=evidence_view(facts.get("evidence")), matches=self.matches.get((name, c), []),
            attribution=_attribution(facts.get("evidence"), self.units, self.label,
                                     self.manifest["photos"]["count"]),
            prev=_neighbour(pages, k - 1, layer), next=_neighbour(pages, k + 1, layer), **self.common)
        atomic_write_text(self.out / "channels" / s / f"{c}.html", html)

    def examples(self, ex: dict, s: str, c: int) -> dict:
        """The unit's dataset examples as its page shows them: image paths, explain-page links, and which
        photos are both top and bottom examples."""
        both = {e["name"] for e in ex.get("top", [])} & {e["name"] for e in ex.get("bottom", [])}
        for kind in ("top", "bottom"):
            for e in ex.get(kind, []):
                e["src"] = f"../../data/{s}/{c}/{e['file']}"
                e.setdefault("label", None)
                page = f"data/_explain/{slug(e['name'])}/explain.html"  # built with extras "explain"
                e["explain"] = f"../../{page}" if (self.out / page).is_file() else None
                e["both"] = e["name"] in both
        return {"skipped": 0, "positions": 0, **ex, "both": sorted(both)} if ex else ex

    def index_page(self, summary: list[dict], index_units: list[list[str]], complete: bool) -> Path:
        """Write ``index.html``: the layers, the jump-to-unit box's data, and whether the build finished."""
        units_json = json.dumps(dict(index_units)).replace("<", "\\u003c")  # safe inside <script>
        layer_index = [{"name": la["name"], "width": la["shape"][0], "built": _ranges(self.pages(la)),
                        "href": f"layers/{slug(la['name'])}.html"} for la in self.layers]
        layers_json = json.dumps(layer_index).replace("<", "\\u003c")
        html = self.env.get_template("index.html").render(root="", layers=summary, complete=complete,
                                                          units=index_units, units_json=units_json,
                                                          layers_json=layers_json, **self.common)
        index = self.out / "index.html"
        atomic_write_text(index, html)
        return index
