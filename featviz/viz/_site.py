"""Microscope pages: (manifest, finished units, connections) -> HTML files from the jinja2 templates.

Templates live in ``featviz/assets/templates`` and are rendered with autoescaping; every link is
relative (each page gets ``root``, the way back to the site's top folder), so the site works from
``file://``. Pages are rewritten on every build; they are cheap next to the units they show.

Example:
    >>> write_site(Path("site"), manifest, units, links)   # doctest: +SKIP
    PosixPath('site/index.html')
"""
from __future__ import annotations

from importlib.resources import files as package_files
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from featviz.viz._store import slug, write_text_atomic

__all__ = ["write_site", "template_env", "write_css"]


def template_env() -> Environment:
    """The jinja2 environment of featviz's page templates (autoescaped HTML, undefined names are errors)."""
    return Environment(loader=PackageLoader("featviz", "assets/templates"),
                       autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def write_css(out: Path) -> None:
    """Copy the pages' stylesheet to ``out/style.css``."""
    css = package_files("featviz").joinpath("assets/templates/style.css").read_text()
    write_text_atomic(Path(out) / "style.css", css)


def _links(layers: list[dict], i: int, c: int, links: dict) -> list[dict]:
    """Upstream and downstream connection groups of channel ``c`` of layer ``i`` for its page."""
    name = layers[i]["name"]
    groups = []
    for j, direction in ((i - 1, "upstream"), (i + 1, "downstream")):
        if not 0 <= j < len(layers):
            continue
        other = layers[j]["name"]
        src, dst = (other, name) if direction == "upstream" else (name, other)
        meta = links[(src, dst)]
        folder = f"../../data/_links/{slug(src)}__{slug(dst)}"
        items = []
        for o, strength in meta[direction].get(str(c), []):
            d, s = (c, o) if direction == "upstream" else (o, c)
            built = o in layers[j]["channels"]
            items.append({"label": f"{other}:{o}", "strength": strength, "thumb": f"{folder}/d{d}_s{s}.png",
                          "href": f"../{slug(other)}/{o}.html" if built else None})
        title = f"Strongest {'inputs from' if direction == 'upstream' else 'outputs to'} {other}"
        kh, kw = meta["kernel"]
        groups.append({"title": f"{title} (expanded weights, {kh}×{kw}; red positive, blue negative)",
                       "links": items})
    return groups


def write_site(out: Path, manifest: dict, units: dict[tuple[str, int], dict], links: dict) -> Path:
    """Write ``index.html``, one page per layer and one per channel into ``out``; returns index.html.

    ``units[(layer, c)]`` is each channel's ``meta.json``; ``links[(src, dst)]`` the connection unit's.
    """
    out = Path(out)
    env = template_env()
    size = manifest["settings"]["size"]
    write_css(out)
    layers = manifest["layers"]
    summary = []
    for i, layer in enumerate(layers):
        s = slug(layer["name"])
        channels = [{"c": c, "href": f"../channels/{s}/{c}.html", "img": f"../data/{s}/{c}/fv.png"}
                    for c in layer["channels"]]
        nav = {k: {"name": layers[j]["name"], "href": f"{slug(layers[j]['name'])}.html"}
               for k, j in (("prev", i - 1), ("next", i + 1)) if 0 <= j < len(layers)}
        html = env.get_template("layer.html").render(root="../", manifest=manifest, layer=layer, size=size,
                                                     channels=channels, prev=nav.get("prev"),
                                                     next=nav.get("next"))
        write_text_atomic(out / "layers" / f"{s}.html", html)
        preview = [{"c": ch["c"], "img": ch["img"][3:]} for ch in channels[:8]]
        summary.append({**layer, "href": f"layers/{s}.html", "preview": preview})
        for k, c in enumerate(layer["channels"]):
            meta = units[(layer["name"], c)]
            img = {f[:-4]: f"../../data/{s}/{c}/{f}" for f in meta["files"]}
            nb = layer["channels"]
            html = env.get_template("channel.html").render(
                root="../../", manifest=manifest, layer=layer, c=c, size=size, img=img, facts=meta["facts"],
                layer_href=f"../../layers/{s}.html", connections=_links(layers, i, c, links),
                prev=f"{nb[k - 1]}.html" if k > 0 else None,
                next=f"{nb[k + 1]}.html" if k + 1 < len(nb) else None)
            write_text_atomic(out / "channels" / s / f"{c}.html", html)
    index = out / "index.html"
    html = env.get_template("index.html").render(root="", manifest=manifest, layers=summary)
    write_text_atomic(index, html)
    return index
