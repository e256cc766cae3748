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
from pathlib import Path

from featviz._io import atomic_write_text
from featviz._templates import template_env, write_css
from featviz.microscope._evidence import evidence_view
from featviz.microscope._store import slug

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
            dead = bool(partner and _flatten(partner)[1].get("dead"))
            items.append({"label": label(other, o), "strength": strength, "kernel": f"{folder}/d{d}_s{s}.png",
                          "fv": f"../../data/{slug(other)}/{o}/fv.png" if partner and not dead else None,
                          "dead": dead, "href": f"../{slug(other)}/{o}.html" if partner else None,
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
            dead = bool(partner and _flatten(partner)[1].get("dead"))
            items.append({"label": label(other, o), "score": score, "dead": dead,
                          "fv": f"../../data/{slug(other)}/{o}/fv.png" if partner and not dead else None,
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
    import re

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
    unit's matches in other models of a multi-model site (``featviz.microscope._universality``), each a dict
    ``{"model", "label", "href", "correlation", "control"}``, listed on its page; none by default.
    """
    out = Path(out)
    env = template_env()
    write_css(out)
    layers = manifest["layers"]
    nav = [{"name": la["name"], "href": f"layers/{slug(la['name'])}.html"} for la in layers]
    common = {"manifest": manifest, "nav": nav, "size": manifest["settings"]["size"]}
    index_units, summary = [], []
    widths = {la["name"]: la["shape"][0] for la in layers}

    def label(n: str, c: int) -> str:
        return _unit_label(n, c, labels, widths[n])

    for i, layer in enumerate(layers):
        name, s = layer["name"], slug(layer["name"])

        built = [c for c in layer["channels"] if (name, c) in units]
        pages = sorted(c for c in [*layer["channels"], *layer["extra"]] if (name, c) in units)
        cells, short_cells = [], []
        for c in pages:
            dead = bool(_flatten(units[(name, c)])[1].get("dead"))
            (cells if c in built else short_cells).append(
                {"c": c, "label": label(name, c), "href": f"../channels/{s}/{c}.html",
                 "img": None if dead else f"../data/{s}/{c}/fv.png"})
        prev_next = {k: {"name": layers[j]["name"], "href": f"{slug(layers[j]['name'])}.html"}
                     if 0 <= j < len(layers) else None for k, j in (("prev", i - 1), ("next", i + 1))}
        from featviz.microscope._store import read_meta

        extras = read_meta(out / "data" / "_layers" / s) or {}
        extras = {k: {**extras[k], "src": f"../data/_layers/{s}/{k}.png"} for k in ("groups", "atlas")
                  if k in extras and (out / "data" / "_layers" / s / f"{k}.png").is_file()}
        for g in extras.get("groups", {}).get("channels", []):
            g[:] = [{"c": c, "href": f"../channels/{s}/{c}.html" if c in pages else None} for c in g]
        html = env.get_template("layer.html").render(root="../", layer=layer, channels=cells,
                                                     short=short_cells, n_extra=len(short_cells), **prev_next,
                                                     extras=extras, **common)
        atomic_write_text(out / "layers" / f"{s}.html", html)
        preview = [{**ch, "img": ch["img"][3:] if ch["img"] else None} for ch in cells[:8]]
        summary.append({**layer, "href": f"layers/{s}.html", "preview": preview, "built": len(built)})
        for k, c in enumerate(pages):
            files, facts = _flatten(units[(name, c)])
            facts = {"start": None, "diversity": None, "caricature": None, **facts}  # older units lack these
            img = {f.rsplit(".", 1)[0]: f"../../data/{s}/{c}/{f}" for f in files}
            figs = {f.rsplit(".", 1)[0]: {"src": f"../../data/{s}/{c}/{f}",
                                          **_svg_px(out / "data" / s / str(c) / f)}
                    for f in sorted(files) if f.endswith(".svg")}
            ex = facts.get("examples") or {}
            both = {e["name"] for e in ex.get("top", [])} & {e["name"] for e in ex.get("bottom", [])}
            for kind in ("top", "bottom"):
                for e in ex.get(kind, []):
                    e["src"] = f"../../data/{s}/{c}/{e['file']}"
                    e.setdefault("label", None)
                    page = f"data/_explain/{slug(e['name'])}/explain.html"  # built with extras "explain"
                    e["explain"] = f"../../{page}" if (out / page).is_file() else None
                    e["both"] = e["name"] in both
            if ex:
                ex = {"skipped": 0, "positions": 0, **ex, "both": sorted(both)}
            html = env.get_template("channel.html").render(
                root="../../", layer=layer, c=c, label=label(name, c), img=img, figs=figs, facts=facts,
                examples=ex,
                full=c in layer["channels"], layer_href=f"../../layers/{s}.html",
                connections=_connections(layers, i, c, links, units, label),
                evidence=evidence_view(facts.get("evidence")), matches=(matches or {}).get((name, c), []),
                attribution=_attribution(facts.get("evidence"), units, label, manifest["photos"]["count"]),
                prev=_neighbour(pages, k - 1, layer), next=_neighbour(pages, k + 1, layer),
                **common)
            atomic_write_text(out / "channels" / s / f"{c}.html", html)
            index_units.append([label(name, c), f"channels/{s}/{c}.html"])
    index = out / "index.html"
    units_json = json.dumps(dict(index_units)).replace("<", "\\u003c")  # safe inside <script>
    layer_index = []
    for la in layers:
        have = sorted(c for c in [*la["channels"], *la["extra"]] if (la["name"], c) in units)
        layer_index.append({"name": la["name"], "width": la["shape"][0], "built": _ranges(have),
                            "href": f"layers/{slug(la['name'])}.html"})
    layers_json = json.dumps(layer_index).replace("<", "\\u003c")
    html = env.get_template("index.html").render(root="", layers=summary, complete=complete,
                                                 units=index_units, units_json=units_json,
                                                 layers_json=layers_json, **common)
    atomic_write_text(index, html)
    return index
