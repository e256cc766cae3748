"""Microscope connections: (model, consecutive layers) -> unit ``data/_links/<src>__<dst>``: each built
channel's strongest links each way, with the connecting kernels as PNGs.

A link's strength is the L2 norm of its expanded kernel (``fv.circuits.expanded_weights``; for a (B, C) layer,
the gradient at a mid-grey image) over the mean of all channel pairs of the two layers. Connections are the
first thing a build computes: they say which partner channels get a short page.

Example:
    >>> model = fv.models.toy.edges_and_curves()
    >>> meta = connections(model, Path("site"), "relu1", "relu2", {"relu1": [0], "relu2": [0]},
    ...                    "w", top_k=2, size=32)
    >>> meta["method"], len(meta["upstream"]["0"])   # read back from meta.json: string keys
    ('expanded weights', 2)
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from featviz.circuits import expanded_weights
from featviz.core import device_of, preprocess_fn
from featviz.hooks import hooked
from featviz.microscope._channel import kernel_png
from featviz.microscope._store import content_key, read_meta, slug, unit_done, write_unit

__all__ = ["connections", "partner_channels"]


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


def partner_channels(layers: list[str], chosen: dict[str, list[int]], links: dict,
                     wanted: dict[str, list[int]] | None = None) -> dict[str, list[int]]:
    """Channels that some connection of a built channel points at (or that ``wanted`` asks for) but that are
    not built themselves.

    Example:
        >>> links = {("a", "b"): {"upstream": {"0": [[3, 2.0]]}, "downstream": {"0": [[5, 1.5]]}}}
        >>> partner_channels(["a", "b"], {"a": [0], "b": [0]}, links)
        {'a': [3], 'b': [5]}
    """
    extra: dict[str, set[int]] = {n: set((wanted or {}).get(n, ())) for n in layers}
    for (src, dst), meta in links.items():
        extra[src] |= {s for lst in meta["upstream"].values() for s, _ in lst}
        extra[dst] |= {d for lst in meta["downstream"].values() for d, _ in lst}
    return {n: sorted(extra[n] - set(chosen[n])) for n in layers}


