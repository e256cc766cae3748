"""Regenerate docs/explain.md: does fv.explain's attribution to the predicted class land on the object?

For photos of the bundled set with a hand-drawn object box (pixels of the 224 x 224 centre crop, stated in the
page), the positive part of the attribution map (summed over channels, upsampled to the photo) is measured
inside the box, for the trained EfficientNet-Lite0 and for its model-randomization control
(``fv.models.randomized``, Adebayo et al. 2018), explaining the same class. Also records the completeness
error and the integration steps used. About 2-4 CPU-minutes on one thread.

    python docs/generate/explain_boxes.py
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import torch

import featviz as fv

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "explain.md"
LAYERS = ["blocks.4", "blocks.10"]
# (top, left, bottom, right) in pixels of the 224 x 224 centre crop, drawn by hand on a 28-px grid
BOXES = {"coffee": (0, 28, 140, 196),        # the cup and the coffee in it (saucer and spoon outside)
         "rocket": (56, 84, 224, 140),       # the rocket on its pad (towers outside)
         "motorcycle": (40, 0, 200, 224)}    # the motorcycle (garage wall and floor outside)


def share_inside(amap: torch.Tensor, box: tuple[int, int, int, int]) -> float:
    """Fraction of the positive attribution (h, w), upsampled to 224 x 224, inside ``box``."""
    up = torch.nn.functional.interpolate(amap[None, None], size=(224, 224), mode="bilinear",
                                         align_corners=False)[0, 0].clamp(min=0)
    t, l, b, r = box
    return float(up[t:b, l:r].sum() / up.sum().clamp(min=1e-12))


def main() -> None:
    torch.set_num_threads(1)
    model = fv.models.efficientnet_lite0()
    control = fv.models.randomized(model, seed=0)
    photos = fv.data.sample_images()
    rows, start = [], time.process_time()
    for name, box in BOXES.items():
        image = photos.images[photos.names.index(name)]
        ex = fv.explain(model, image, layers=LAYERS)
        rand = fv.explain(control, image, layers=LAYERS, target=ex.target.channel)
        area = (box[2] - box[0]) * (box[3] - box[1]) / 224 ** 2
        for layer in LAYERS:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                c, c0 = ex.completeness(layer), rand.completeness(layer)
            rows.append((name, ex.target.label, layer, area, share_inside(ex.attribution(layer).sum(0), box),
                         share_inside(rand.attribution(layer).sum(0), box), c, c0, len(caught)))
            print(rows[-1], flush=True)
    seconds = time.process_time() - start
    table = ["| photo | explained class | layer | box area | positive attribution in box: trained | "
             "randomized control | completeness error (steps): trained | randomized |",
             "|---|---|---|---|---|---|---|---|"]
    for name, label, layer, area, s, s0, c, c0, _ in rows:
        table.append(f"| {name} | {label} | {layer} | {area:.0%} | {s:.0%} | {s0:.0%} | "
                     f"{c['relative_error']:.2%} ({c['steps']}) | {c0['relative_error']:.2%} ({c0['steps']}) |")
    wins = sum(r[4] > r[5] and r[4] > r[3] for r in rows)
    missed = sum(r[7]["relative_error"] > 0.01 for r in rows)
    ratio = max(abs(r[7]["delta"]) / abs(r[6]["delta"]) for r in rows)
    boxes = "\n".join(f"- `{n}`: rows {t}-{b}, columns {l}-{r}" for n, (t, l, b, r) in BOXES.items())
    DOC.write_text(f"""# Explaining a photo

`fv.explain(model, image)` answers the image-centric question "what did the network see in this photo, and
why did it say that?" with the interfaces of Olah et al., [*The Building Blocks of
Interpretability*](https://distill.pub/2018/building-blocks/) (Distill 2018):

```python
import featviz as fv

model = fv.models.efficientnet_lite0()
photos = fv.data.sample_images()
ex = fv.explain(model, photos.images[photos.names.index("coffee")], layers=["blocks.4", "blocks.10"])
ex.target.label                          # 'espresso (967)': the top class unless target= says otherwise
ex.top_channels("blocks.10", k=4)        # (14, 14, 4) the semantic dictionary: strongest channels per position
ex.attribution("blocks.10")              # (112, 14, 14) integrated gradients to the class, complete to 1 %
ex.channel_attribution("blocks.10")      # (112,) summed over space
ex.spatial_attribution("blocks.4", "blocks.10")   # (14, 14, 28, 28) which earlier positions feed each later one
ex.groups("blocks.10", n=6)              # neuron groups of this photo, each with its share of the attribution
ex.activation_grid("blocks.10")          # one feature visualization per cell, rendered jointly (batched)
ex.save_html("coffee.html")              # the interface: one self-contained page (+ coffee.png, static)
```

or from the command line: `featviz explain efficientnet_lite0 photo.jpg --out pages`.

## What the attribution is, and how complete it is

`ex.attribution(layer)` is integrated gradients in the layer's activation space: the activations move on a
straight line from their values on a baseline image (black unless `baseline=` says otherwise) to their values
on the photo, and each channel at each position gets the path integral of the gradient times its change. The
total equals target(photo) - target(layer at its baseline activations), which is target(photo) -
target(black image) where nothing skips around the layer (`ex.completeness(layer)` reports both numbers).
The integral is a Gauss-Legendre sum; EfficientNet's ReLU6 kinks make the integrand jump, and on the sample
photos 32 nodes were off by up to 15 %, 64 by up to 2.4 %, 128 by up to 1.2 %. So the node count starts at
`steps=64` and doubles until the sum is within `tolerance=0.01` (up to `max_steps=256`, else a warning states
the gap). The planted-net tests (tests/test_explain.py) compare the attribution with captum's
`LayerIntegratedGradients` and check that a stimulus at a known position is named by the dictionary and gets
the attribution.

## Sanity check: does the attribution land on the object?

Generated by `docs/generate/explain_boxes.py` ({seconds / 60:.1f} CPU-minutes on one thread). For each photo
an object box was drawn by hand on the 224 x 224 centre crop (rows and columns in pixels):

{boxes}

The share of the *positive* attribution (summed over channels, upsampled to the photo) inside the box is
compared with the box's share of the photo and with the same measurement on the model-randomization control
(`fv.models.randomized(model, seed=0)`, explaining the same class index). A map that concentrates on the object
for the trained model but not for the random one depends on what the model learned, not on the photo alone.

{chr(10).join(table)}

In {wins} of {len(rows)} rows the trained model puts more of its positive attribution inside the box than both
the box's area and the randomized control. The chelsea photo is left out (the cat fills the frame, so no box
can tell object from background) and so is astronaut (Lite0's top class for it is 'bobsled': there is no
object of that class to draw a box around).

The control's own integrals are rougher: in {missed} of {len(rows)} rows its attribution misses completeness by
more than 1 % even at 256 steps (featviz warns), and its logit changes by at most {ratio:.1%} of the trained
model's change, so its relative errors are large. Its box shares come from those less accurate maps; the
trained model's rows are all within 1 %.

## What it costs

Measured in `bench/explain.py` (see bench/README.md): the dictionary, attribution and groups of one photo at
three Lite0 layers, and the activation grid rendered as one batch against cell by cell.
""")
    print(f"wrote {DOC} ({seconds:.0f} CPU-s)")


if __name__ == "__main__":
    main()
