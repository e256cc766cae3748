"""``featviz demo``: pretrained EfficientNet-Lite0 -> DIR/index.html: two layer grids, one traced circuit.

Sized to finish in a few minutes on a 2-core CPU: 96 px renders, 64 steps, 24 channels of an early
layer and of a middle layer, one circuit of depth 2 into the middle channel that the optimisation
excited most.

Example:
    The command line's ``featviz demo --out DIR`` calls ``run_demo(DIR)``.

    >>> from featviz.demo import run_demo
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from featviz._io import atomic_write_text
from featviz._templates import template_env, write_css

__all__ = ["run_demo", "DEMO_LAYERS"]

DEMO_LAYERS = ("blocks.2", "blocks.7")  # end of stage 2 (24 ch, 56x56) and of stage 4 (80 ch, 14x14)
"""The EfficientNet-Lite0 layers ``featviz demo`` renders: the ends of stage 2 (24 channels) and 4 (80)."""
DEMO_CHANNELS = 24


def run_demo(out: str | Path = "featviz-demo", *, size: int = 96, steps: int = 64, seed: int = 0,
             channels: int = DEMO_CHANNELS, depth: int = 2, top_k: int = 3, progress: bool = True) -> Path:
    """Render grids for an early and a middle layer, trace one circuit, write ``out/index.html``.

    Example:
        >>> run_demo("demo", size=32, steps=2, channels=4, depth=1, top_k=2, progress=False)  # seconds
        PosixPath('demo/index.html')
        >>> sorted(p.name for p in Path("demo").iterdir())
        ['blocks.2.png', 'blocks.7.png', 'circuit.json', 'circuit.png', 'index.html', 'style.css']
    """
    import featviz as fv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = fv.models.efficientnet_lite0(pretrained=True)
    grids = []
    for layer in DEMO_LAYERS:
        r = fv.render_layer(model, layer, channels=range(channels), batch_size=8, size=size,
                            steps=steps, seed=seed, progress=progress)  # batches of 8: a moving progress bar
        r.save(out / f"{layer}.png", ncol=8)
        grids.append({"layer": layer, "png": f"{layer}.png", "labels": r.labels,
                      "activations": [round(float(a), 3) for a in r.activations]})
    best = int(torch.tensor(grids[-1]["activations"]).argmax())
    ref = f"{DEMO_LAYERS[-1]}:{best}"
    circuit = fv.circuits.trace(model, ref, depth=depth, top_k=top_k, progress=progress)
    thumbs = fv.viz.thumbnails_for(model, circuit, size=min(size, 64), steps=steps, seed=seed)
    circuit.plot(thumbnails=thumbs, path=str(out / "circuit.png"))
    circuit.to_json(out / "circuit.json")
    write_css(out)
    html = template_env().get_template("demo.html").render(
        grids=grids, ref=ref, depth=depth, top_k=top_k, size=size, steps=steps, seed=seed,
        seconds=round(time.perf_counter() - start), threads=torch.get_num_threads(), version=fv.__version__)
    index = out / "index.html"
    atomic_write_text(index, html)
    return index
