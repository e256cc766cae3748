"""A static microscope site: (model, layers) -> a folder of HTML pages and PNGs, built resumably.

Pages: ``index.html`` (the layers), ``layers/<layer>.html`` (every channel's feature visualization),
``channels/<layer>/<c>.html`` (feature visualization, diversity batch, dataset examples, tuning curve
for early layers, i.e. maps at least ``input_size / 8`` wide, top upstream/downstream connections
with weight thumbnails). Links are relative; the site works from ``file://``.

Builds are resumable: each channel's results are one unit under ``data/`` (written to a temporary
folder, then renamed), keyed by the hash of the model's weights and the settings. A rerun skips every
finished unit, so Ctrl-C loses nothing already finished. ``manifest.json`` records the settings and
versions. ``workers > 1`` spreads channels over Ray (``pip install 'featviz[distributed]'``).

Example:
    >>> index = build_microscope(model, ["blocks.1", "blocks.4"], "site", channels=8)   # doctest: +SKIP
    >>> index                                                                           # doctest: +SKIP
    PosixPath('site/index.html')
"""
from __future__ import annotations

import json
import platform
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from featviz.hooks import hooked
from featviz.viz._channel import ChannelWorker, MicroscopeSettings, kernel_png, png_bytes
from featviz.viz._store import (
    content_key,
    read_meta,
    slug,
    unit_done,
    weights_hash,
    write_text_atomic,
    write_unit,
)

__all__ = ["MicroscopeSettings", "build_microscope", "layer_shapes", "save_png", "slug", "EARLY_STRIDE"]

EARLY_STRIDE = 8  # layers whose map is at least input_size / 8 wide count as early (get tuning curves)


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Write one (3, H, W) image in [0, 1] as a PNG, atomically.

    Example:
        >>> save_png(torch.rand(3, 8, 8), "x.png")   # doctest: +SKIP
        PosixPath('x.png')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(png_bytes(image))
    tmp.replace(path)
    return path


def layer_shapes(model: nn.Module, names: Sequence[str] | None = None,
                 size: int | None = None) -> dict[str, tuple[int, ...]]:
    """Output shape of each layer in ``names`` (default: every hook name) for one mid-grey image.

    The image has ``size`` pixels (default ``model.input_size``, else 224) and goes through
    ``model.preprocess`` when the model has one. A layer that did not run or gave a non-tensor gets ``()``.

    Example:
        >>> layer_shapes(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)), size=32)
        {'0': (1, 8, 30, 30)}
    """
    hm = hooked(model)
    size = int(size or getattr(model, "input_size", 224))
    param = next(model.parameters(), None)
    x = torch.full((1, 3, size, size), 0.5, device=param.device if param is not None else "cpu")
    prep = getattr(model, "preprocess", None) or (lambda t: t)
    names = hm.hook_names if names is None else list(names)
    with torch.no_grad():
        _, cache = hm.run_with_cache(prep(x), names=names, stop_at_last=len(names) < len(hm.hook_names))
    return {n: tuple(cache[n].shape) if isinstance(cache.get(n), torch.Tensor) else () for n in names}


def _conv_shapes(model: nn.Module, layers: Sequence[str]) -> dict[str, tuple[int, ...]]:
    shapes = layer_shapes(model, layers)
    for name, shape in shapes.items():
        if len(shape) != 4:
            raise ValueError(f"layer {name!r} gives activations of shape {shape}; the microscope needs "
                             "conv-like (B, C, H, W) layers (see `featviz layers MODEL`)")
    return shapes


def _run_local(worker: ChannelWorker, todo, commit, bar) -> None:
    for layer, c, early in todo:
        files, facts = worker.compute(layer, c, early)
        commit(layer, c, files, facts)
        bar.update(1)


def _connections(model: nn.Module, out: Path, src: str, dst: str, chosen: dict[str, list[int]],
                 wkey: str, top_k: int) -> dict:
    """Unit ``data/_links/<src>__<dst>``: top-k links each way between the built channels, with thumbnails."""
    from featviz.circuits import expanded_weights

    key = content_key(wkey, {"src": src, "dst": dst, "top_k": top_k, "channels": [chosen[src], chosen[dst]]})
    folder = out / "data" / "_links" / f"{slug(src)}__{slug(dst)}"
    if not unit_done(folder, key):
        w = expanded_weights(model, src, dst, progress=False)  # (C_dst, C_src, kh, kw)
        strength = w.flatten(2).norm(dim=2)  # (C_dst, C_src): L2 norm of each expanded kernel
        files, up, down = {}, {}, {}
        for d in chosen[dst]:  # strongest inputs of each built dst channel, among all src channels
            top = strength[d].topk(min(top_k, strength.shape[1])).indices.tolist()
            up[d] = [(s, round(float(strength[d, s]), 6)) for s in top]
        for s in chosen[src]:  # strongest outputs of each built src channel, among all dst channels
            top = strength[:, s].topk(min(top_k, strength.shape[0])).indices.tolist()
            down[s] = [(d, round(float(strength[d, s]), 6)) for d in top]
        pairs = {(d, s) for d, lst in up.items() for s, _ in lst}
        pairs |= {(d, s) for s, lst in down.items() for d, _ in lst}
        for d, s in sorted(pairs):
            files[f"d{d}_s{s}.png"] = kernel_png(w[d, s])
        write_unit(folder, files, {"key": key, "src": src, "dst": dst, "kernel": list(w.shape[2:]),
                                   "upstream": up, "downstream": down})
    return read_meta(folder)


def build_microscope(model: nn.Module, layers: Sequence[str], out: str | Path, *,
                     settings: MicroscopeSettings | None = None, channels: int | None = None,
                     workers: int = 1, address: str | None = None, progress: bool = True) -> Path:
    """Build (or resume) the microscope site for ``layers`` of ``model`` in ``out``; returns index.html.

    Args:
        layers: layer names (from ``fv.hooked(model).hook_names``), early to late; consecutive
            layers are linked by their expanded weights.
        settings: what to compute per channel (``MicroscopeSettings()`` by default).
        channels: build the first ``channels`` channels of each layer (default: all).
        workers: ``> 1`` computes channels on that many Ray workers; results are the same files.
        address: Ray cluster to join (default: a local Ray started for this build).

    The model is used in eval mode. Ctrl-C keeps every finished channel; rerunning resumes.

    Example:
        >>> settings = MicroscopeSettings(size=64, steps=32)
        >>> build_microscope(model, ["conv1", "conv2"], "site", settings=settings)   # doctest: +SKIP
        PosixPath('site/index.html')
    """
    from featviz import __version__
    from featviz.viz._site import write_site

    settings = settings or MicroscopeSettings()
    hm = hooked(model)
    layers = list(dict.fromkeys(layers))
    if not layers:
        raise ValueError("build_microscope needs at least one layer name, e.g. layers=['blocks.1']")
    for ref in layers:
        if hm.parse(ref)[1] is not None:
            raise ValueError(f"{ref!r} names a channel; give layer names (channels=N picks how many)")
    if channels is not None and int(channels) < 1:
        raise ValueError(f"channels must be a positive number of channels per layer, got {channels}")
    if int(workers) < 1:
        raise ValueError(f"workers must be 1 (in-process) or more (Ray), got {workers}")
    out = Path(out)
    for stale in out.glob("**/.*.tmp"):  # left by a build that was killed without any cleanup (SIGKILL)
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    shapes = _conv_shapes(model, layers)
    size = int(getattr(model, "input_size", 224))
    chosen = {name: list(range(min(shape[1], channels or shape[1]))) for name, shape in shapes.items()}
    early = {name: shape[-1] * EARLY_STRIDE >= size for name, shape in shapes.items()}
    wkey = weights_hash(model)
    key = content_key(wkey, settings.channel_settings())

    def unit(layer: str, c: int) -> Path:
        return out / "data" / slug(layer) / str(c)

    def commit(layer: str, c: int, files: dict, facts: dict) -> None:
        write_unit(unit(layer, c), files, {"key": key, "layer": layer, "channel": c, "files": sorted(files),
                                          "facts": facts})

    todo = [(name, c, early[name]) for name in layers for c in chosen[name]
            if not unit_done(unit(name, c), key)]
    total = sum(len(v) for v in chosen.values())
    with tqdm(total=total, initial=total - len(todo), desc=f"microscope {out}", disable=not progress) as bar:
        if workers > 1 and todo:
            from featviz.viz._distributed import run_ray

            run_ray(model, settings, todo, commit, bar, workers=workers, address=address)
        elif todo:
            _run_local(ChannelWorker(model, settings), todo, commit, bar)
    links = {(a, b): _connections(model, out, a, b, chosen, wkey, settings.top_k)
             for a, b in zip(layers, layers[1:])}
    manifest = {
        "featviz": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "model": type(model).__name__, "weights_sha256": wkey, "channel_key": key,
        "settings": {**asdict(settings), "tuning_angles": list(settings.tuning_angles)},
        "layers": [{"name": n, "shape": list(shapes[n][1:]), "channels": chosen[n], "early": early[n]}
                   for n in layers],
    }
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
    units = {(n, c): read_meta(unit(n, c)) for n in layers for c in chosen[n]}
    return write_site(out, manifest, units, links)
