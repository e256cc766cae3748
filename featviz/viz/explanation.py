"""Drawing an Explanation: (Explanation, layers) -> a matplotlib Figure, or one self-contained HTML page.

The page is the Building Blocks interface (Olah et al., Distill 2018) for one photo: per layer, the photo
with the semantic dictionary on hover or click (position -> its strongest channels, their feature
visualizations and activations), the attribution to the target laid over the photo, the channels that
matter most, and the photo's neuron groups with their part of the attribution. Every image is inlined as a
``data:`` URI, so the one file works from ``file://`` and can be mailed; without JavaScript the page shows
the static figure (also written beside it as a PNG).

Example:
    >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
    >>> save_explanation(ex, "page.html", size=16, steps=2, n_groups=2, progress=False)
    PosixPath('page.html')
"""
from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image
from tqdm.auto import tqdm

from featviz._io import atomic_write_bytes, atomic_write_text
from featviz._templates import template_env
from featviz.optvis.factorize import group_colors
from featviz.viz.figures import figure_png, save

__all__ = ["plot_explanation", "save_explanation", "explanation_html", "attribution_overlay", "png_uri"]

N_IMPORTANT = 8  # channels listed under "channels that matter most"


def png_uri(image: torch.Tensor | np.ndarray) -> str:
    """A (3, H, W) tensor or (H, W, 3) array in [0, 1] as a ``data:image/png;base64,...`` URI.

    Example:
        >>> png_uri(torch.zeros(3, 2, 2))[:22]
        'data:image/png;base64,'
    """

    is_t = isinstance(image, torch.Tensor)
    arr = image.detach().cpu().permute(1, 2, 0).numpy() if is_t else np.asarray(image)
    buf = io.BytesIO()
    Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _upsample(m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return torch.nn.functional.interpolate(m[None, None].float(), size=size, mode="bilinear",
                                           align_corners=False)[0, 0]


def attribution_overlay(image: torch.Tensor, amap: torch.Tensor) -> np.ndarray:
    """(H, W, 3) the photo (greyed) with an attribution map (h, w) laid over it: red where the target
    rises, blue where it falls, opacity by |value| / max |value|.

    Example:
        >>> attribution_overlay(torch.rand(3, 8, 8), torch.randn(4, 4)).shape
        (8, 8, 3)
    """
    img = image.detach().cpu().float().permute(1, 2, 0).numpy()
    grey = 0.4 + 0.5 * img.mean(2, keepdims=True).repeat(3, 2)
    m = _upsample(amap.cpu(), tuple(image.shape[-2:])).numpy()
    scale = float(np.abs(m).max()) or 1.0
    a = np.clip(np.abs(m) / scale, 0, 1)[..., None]
    color = np.where(m[..., None] >= 0, np.array([0.84, 0.15, 0.16]), np.array([0.12, 0.35, 0.8]))
    return np.clip((1 - 0.85 * a) * grey + 0.85 * a * color, 0, 1)


def _channel_map(top: torch.Tensor) -> np.ndarray:
    """(h, w) channel indices -> (h, w, 3) colours, one per channel (hashed onto tab20)."""

    cmap = colormaps["tab20"]
    return np.array([[cmap((int(c) * 7) % 20)[:3] for c in row] for row in top.tolist()])


def plot_explanation(ex, layers: Sequence[str] | None = None, path: str | Path | None = None):
    """The static figure: per layer, the attribution over the photo, the strongest channel at each position
    (colour per channel, numbered on small maps), the photo tinted by its neuron groups and each group's
    attribution. Returns a ``matplotlib.figure.Figure`` (PNG with ``path``).

    Example:
        >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
        >>> len(plot_explanation(ex, ["relu1", "relu2"]).axes)
        8
    """

    layers = list(layers or ex.layers)
    fig = Figure(figsize=(13, 3.2 * len(layers) + 0.4))
    axes = fig.subplots(len(layers), 4, squeeze=False)
    fig.suptitle(f"{type(ex.model.model).__name__}: attribution to {ex.resolve_target().label}", fontsize=11)
    for row, layer in zip(axes, layers):
        attr = ex.attribution(layer)
        row[0].imshow(attribution_overlay(ex.image, attr.sum(0)))
        row[0].set_title(f"{layer}: attribution (red +, blue -)", fontsize=9)
        top = ex.top_channels(layer, k=1)[..., 0]
        row[1].imshow(_channel_map(top))
        h, w = top.shape
        if h * w <= 196:
            for i in range(h):
                for j in range(w):
                    row[1].text(j, i, str(int(top[i, j])), ha="center", va="center", fontsize=6)
        row[1].set_title(f"{layer}: strongest channel per position", fontsize=9)
        g = ex.groups(layer, n=min(6, ex.activations[layer].shape[0]))
        row[2].imshow(g.factorization.overlay(0).permute(1, 2, 0).clamp(0, 1).numpy())
        row[2].set_title(f"{layer}: {len(g)} neuron groups", fontsize=9)
        for ax in row[:3]:
            ax.axis("off")
        values = g.attribution.numpy()
        row[3].barh(np.arange(len(values)), values, color=group_colors(len(values)))
        row[3].invert_yaxis()
        row[3].set_yticks(np.arange(len(values)), [f"group {k}" for k in range(len(values))], fontsize=8)
        row[3].axvline(0, color="#444", lw=0.6)
        row[3].set_title("attribution of each group", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def _render_channels(ex, layer: str, k: int, max_renders: int) -> list[int]:
    """The channels a layer's page section shows pictures of: the strongest in the dictionary (summed top-k
    activation over positions), then those with the largest attribution."""
    values, channels = ex.top_values(layer, min(k, ex.activations[layer].shape[0]))
    score = torch.zeros(ex.activations[layer].shape[0]).index_add_(0, channels.flatten(),
                                                                     values.flatten().clamp(min=0))
    ranked = [int(c) for c in score.argsort(descending=True) if score[c] > 0][:max_renders]
    important = ex.channel_attribution(layer).abs().argsort(descending=True)[:N_IMPORTANT].tolist()
    return list(dict.fromkeys(ranked + [int(c) for c in important]))


def _layer_view(ex, layer: str, k: int, n_groups: int, size: int, steps: int, max_renders: int,
                unit_url: Callable[[str, int], str | None] | None) -> dict:
    acts = ex.activations[layer]
    values, channels = ex.top_values(layer, min(k, acts.shape[0]))
    thumbs = ex.feature_visualizations(layer, _render_channels(ex, layer, k, max_renders), size=size,
                                       steps=steps)
    attr = ex.attribution(layer)
    per_channel = attr.sum((1, 2))
    important = per_channel.abs().argsort(descending=True)[:N_IMPORTANT].tolist()
    check = ex.completeness(layer)
    groups = ex.groups(layer, n=min(n_groups, acts.shape[0]))
    renders = groups.render(ex.model, size=size, steps=steps, seed=ex.seed, preprocess=ex.preprocess,
                            progress=False)
    colors = group_colors(len(groups))
    spatial = groups.factorization.spatial[0].clamp(min=0)  # (K, h, w)
    vmax = float(spatial.amax()) or 1.0
    group_views = []
    for g in range(len(groups)):
        m = (_upsample(spatial[g], tuple(ex.image.shape[-2:])) / vmax).clamp(0, 1).numpy()[..., None]
        img = ex.image.permute(1, 2, 0).numpy()
        tinted = (0.25 + 0.75 * m) * (0.5 * img + 0.5 * colors[g])
        top_dir = groups.factorization.directions[g].abs().argsort(descending=True)[:3].tolist()
        group_views.append({"index": g, "color": "#" + "".join(f"{int(255 * v):02x}" for v in colors[g]),
                            "fv": png_uri(renders.images[g]), "map": png_uri(np.clip(tinted, 0, 1)),
                            "attribution": float(groups.attribution[g]), "channels": top_dir})
    scale = max(abs(v["attribution"]) for v in group_views) or 1.0
    for v in group_views:
        v["bar"] = round(100 * abs(v["attribution"]) / scale)
    links = {}
    if unit_url is not None:
        for c in set(channels.flatten().tolist()) | set(important) | set(thumbs):
            url = unit_url(layer, int(c))
            if url:
                links[int(c)] = url
    return {
        "name": layer, "channels": acts.shape[0], "h": acts.shape[1], "w": acts.shape[2],
        "attribution_png": png_uri(attribution_overlay(ex.image, attr.sum(0))),
        "groups_png": png_uri(groups.factorization.overlay(0)),
        "sum": check["sum"], "delta": check["delta"], "error": check["relative_error"],
        "steps": check["steps"],
        "important": [{"channel": int(c), "value": float(per_channel[c]), "fv": thumbs.get(int(c)) is not None
                       and png_uri(thumbs[int(c)]) or None, "url": links.get(int(c))} for c in important],
        "groups": group_views, "unassigned": groups.unassigned, "method": groups.factorization.method,
        "data": {"h": acts.shape[1], "w": acts.shape[2],
                 "top": [[[[int(c), round(float(v), 4)] for c, v in zip(cs, vs)]
                          for cs, vs in zip(crow, vrow)]
                         for crow, vrow in zip(channels.tolist(), values.tolist())],
                 "thumbs": {int(c): png_uri(img) for c, img in thumbs.items()},
                 "links": links},
    }


def explanation_html(ex, views: list[dict], static_png: str, title: str = "photo") -> str:
    """The page's HTML from per-layer views (``save_explanation`` builds them) and the static PNG URI."""

    prediction = []
    if ex.logits is not None:
        probs = ex.logits.softmax(0)
        for p, c in zip(*probs.topk(min(5, len(probs)))):
            name = ex.labels[int(c)] if ex.labels else str(int(c))
            prediction.append({"label": f"{name} ({int(c)})", "p": float(p)})
    base = ex.baseline
    baseline = "the given baseline image" if isinstance(base, torch.Tensor) else \
        ("a black image" if float(base) == 0 else f"a uniform image of value {float(base):g}")
    t = ex.resolve_target()
    return template_env().get_template("explain.html").render(
        title=title, model=type(ex.model.model).__name__, photo=png_uri(ex.image), target=t.label,
        target_value=ex.target_value(), prediction=prediction, baseline=baseline, tolerance=ex.tolerance,
        layers=views, static_png=static_png, data={"layers": [v["data"] for v in views]})


def save_explanation(ex, path: str | Path, layers: Sequence[str] | None = None, *, k: int = 4,
                     n_groups: int = 6, size: int = 64, steps: int = 64, max_renders: int = 24,
                     progress: bool = True, unit_url: Callable[[str, int], str | None] | None = None,
                     title: str | None = None) -> Path:
    """Write ``path`` (the self-contained page) and ``path`` with ``.png`` (its static figure), atomically.

    Example:
        >>> ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
        >>> p = save_explanation(ex, "ex.html", ["relu2"], size=16, steps=2, n_groups=2, progress=False)
        >>> "data:image/png;base64," in p.read_text(), p.with_suffix(".png").is_file()
        (True, True)
    """
    path = Path(path)
    layers = [ex._layer(name) for name in (layers or ex.layers)]
    views = [_layer_view(ex, layer, k, n_groups, size, steps, max_renders, unit_url)
             for layer in tqdm(layers, desc=f"explain {path.name}"[:60], disable=not progress)]
    fig = plot_explanation(ex, layers)
    png = figure_png(fig, dpi=80)
    static = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    atomic_write_bytes(path.with_suffix(".png"), png)
    atomic_write_text(path, explanation_html(ex, views, static, title or path.stem))
    return path
