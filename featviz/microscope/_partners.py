"""Partner short pages: (site's manifest, connections, finished units, a partner unit) -> what its page says:
the built units that name it (with links back) and the exact command that builds it in full.

A partner is a unit outside the built channels that a built page names: one of its strongest connections by
weight, an input its evidence names by attribution, or its match in another model of a multi-model site. By
default its short page renders nothing (``MicroscopeSettings.partner_renders`` renders a feature
visualization for each).

Example:
    >>> layers = [{"name": "a", "channels": [0]}, {"name": "b", "channels": [0]}]
    >>> links = {("a", "b"): {"upstream": {"0": [[3, 2.0]]}, "downstream": {"0": [[5, 1.5]]}}}
    >>> [(u["label"], u["how"]) for u in named_by(layers, 0, 3, links, {("b", 0): {"parts": {}}}, [])]
    [('b:0', ['one of its strongest inputs, by weight'])]
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from featviz.microscope._channel import MicroscopeSettings
from featviz.microscope._store import slug

__all__ = ["named_by", "full_build"]

_CLI_FLAGS = {"size": "--size", "steps": "--steps", "seed": "--seed", "examples": "--examples",
              "evidence_random": "--evidence-random"}  # settings the CLI sets with a flag of their own
_CLI_DEFAULTS = {"size": 128, "steps": 128, "seed": 0, "examples": 6, "evidence_random": 20}


def named_by(layers: list[dict], i: int, c: int, links: dict, units: dict, matches: list[dict],
             label=None) -> list[dict]:
    """The built units that name channel ``c`` of ``layers[i]`` (a partner), in site order:
    ``[{"label", "href" (None without a page), "how": [reason, ...]}, ...]``. Reasons: a connection by
    weight (it is one of the built unit's strongest inputs or outputs), its evidence (one of the inputs that
    excite or inhibit it most, by attribution), a match in another model (``matches`` of the unit's page).
    ``units``: the finished units (``{(layer, channel): meta}``) whose evidence is read."""
    label = label or (lambda n, o: f"{n}:{o}")
    name = layers[i]["name"]
    found: dict[tuple[str, int], list[str]] = {}
    for j, lists, reason in ((i - 1, "downstream", "one of its strongest outputs, by weight"),
                             (i + 1, "upstream", "one of its strongest inputs, by weight")):
        if not 0 <= j < len(layers):
            continue
        other = layers[j]["name"]
        meta = links.get((other, name) if j < i else (name, other))
        for o, lst in (meta or {}).get(lists, {}).items():
            if any(int(p) == c for p, _ in lst):
                found.setdefault((other, int(o)), []).append(reason)
    for (n, o), meta in sorted(units.items(), key=lambda kv: (_index(layers, kv[0][0]), kv[0][1])):
        if o not in _built(layers, n):
            continue
        up = ((meta.get("parts", {}).get("evidence") or {}).get("facts", {}).get("evidence") or {})
        up = up.get("upstream") or {}
        for kind in ("excitatory", "inhibitory"):
            if up.get("layer") == name and any(int(p) == c for p, _ in up.get(kind, [])):
                what = "excite" if kind == "excitatory" else "inhibit"
                found.setdefault((n, o), []).append(f"its evidence: one of the inputs that {what} it most, "
                                                    "by attribution")
    order = sorted(found, key=lambda u: (_index(layers, u[0]), u[1]))
    out = [{"label": label(n, o), "href": f"../{slug(n)}/{o}.html" if (n, o) in units else None,
            "how": found[(n, o)]} for n, o in order]
    out += [{"label": f"{m['model']} · {m['label']}", "href": m["href"],
             "how": [f"its match in {m['model']} (r = {m['correlation']:.2f})"]} for m in matches]
    return out


def _index(layers: list[dict], name: str) -> int:
    return next((k for k, la in enumerate(layers) if la["name"] == name), len(layers))


def _built(layers: list[dict], name: str) -> list[int]:
    return next((la["channels"] for la in layers if la["name"] == name), [])


def full_build(manifest: dict, out: str | Path, layer: str, c: int) -> dict:
    """How to build channel ``c`` of ``layer`` in full, into the same site ``out``: ``{"channels": c + 1,
    "cli": the featviz command or None, "api": the Python call}``. The site's channel count is a number per
    layer counted from channel 0 (``--channels``/``channels=``), so the command builds the first ``c + 1``
    channels of every layer of the site, with the site's settings (its built units are kept: same keys).
    ``cli`` is None when a setting has no flag (``diversity``, ``top_k``, ...); the call then says it all.

    Example:
        >>> m = {"model": "toy", "layers": [{"name": "relu1"}], "photos": {"source": "bundled"},
        ...      "settings": {"size": 32, "steps": 4, "evidence": False}}
        >>> full_build(m, "site", "relu1", 5)["cli"]
        'featviz microscope toy --layers relu1 --channels 6 --size 32 --steps 4 --no-evidence --out site'
    """
    s = {f.name: f.default for f in fields(MicroscopeSettings)} | manifest.get("settings", {})
    layers = [la["name"] for la in manifest["layers"]]
    own = manifest.get("photos", {}).get("source") == "your images"
    defaults = {f.name: f.default for f in fields(MicroscopeSettings)}
    changed = {k: s[k] for k in defaults if k not in ("partner_renders", "top_k")
               and _norm(s[k]) != _norm(defaults[k])}
    cli = None
    if not set(changed) - set(_CLI_FLAGS) - {"evidence", "extras"}:
        flags = [f"{_CLI_FLAGS[k]} {s[k]}" for k in _CLI_FLAGS
                 if k in ("size", "steps") or s[k] != _CLI_DEFAULTS[k]]
        flags += ["--no-evidence"] if not s["evidence"] else []
        flags += [f"--extras {','.join(s['extras'])}"] if s["extras"] else []
        flags += ["--images DIR"] if own else []
        cli = (f"featviz microscope {manifest['model']} --layers {','.join(layers)} --channels {c + 1} "
               f"{' '.join(flags)} --out {out}")
    args = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in changed.items())
    api = (f"fv.microscope.build_microscope(model, {layers!r}, {str(out)!r}, "
           f"settings=fv.microscope.MicroscopeSettings({args}), channels={c + 1}"
           f"{', images=DIR' if own else ''})")
    return {"channels": c + 1, "cli": cli, "api": api, "images": own}


def _norm(v):
    """Settings read back from JSON have lists where the dataclass has tuples."""
    return tuple(v) if isinstance(v, list | tuple) else v
