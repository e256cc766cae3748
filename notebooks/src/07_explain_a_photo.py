# %% [markdown]
# # 07 · Explaining a photo
#
# **Level:** intermediate (after 03 and 05) · **Time:** about 60 minutes to work through, 3 exercises; running it
# takes a few minutes on a laptop CPU (1–3 minutes with `FEATVIZ_FAST=1`).
#
# **Setup:** install featviz with the notebook extras (`pip install -e ".[dev]"` in the repository), start
# Jupyter in the `notebooks/` folder (the exercise helpers `checks.py` and `solutions.py` live there) and run
# the first code cell. `FEATVIZ_FAST=1` runs a quick version (fewer steps, smaller images), as the tests do.
#
# The notebooks so far were *unit-centric*: "what does `blocks.4:7` detect?". The first question people ask about a
# network is *image-centric*: **what did it see in this photo, and why did it say "espresso"?** Olah et al.,
# [*The Building Blocks of Interpretability*](https://distill.pub/2018/building-blocks/) (Distill 2018) answer it by
# combining the two tools you already know — feature visualization (03) and attribution (05) — at the level of a
# hidden layer. `fv.explain(model, photo)` assembles them:
#
# - the **semantic dictionary**: at each position of a layer's map, the channels that fire most;
# - **attribution** to the class in a hidden layer, *complete* (it adds up to the change of the logit);
# - **neuron groups** of this one photo, each with its share of that attribution;
# - an HTML page putting it together, and the **model-randomization control** that keeps us honest.
#
# **You will learn** to read each building block, to check an attribution by its sum, and to test whether "it
# looks at the object" depends on what the model learned.

# %%
import io
import os
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")   # tqdm without ipywidgets: text bars are fine
import matplotlib.pyplot as plt
import torch
from IPython.display import Image, display

import checks        # the exercise checks: each says what is wrong, not only that something is
import featviz as fv
import solutions
from featviz.viz.explanation import attribution_overlay

FAST = os.environ.get("FEATVIZ_FAST") == "1"  # the test suite runs every notebook in this quick mode
SIZE = 48 if FAST else 96          # feature-visualization size in pixels
STEPS = 12 if FAST else 128        # optimisation steps per feature visualization
torch.manual_seed(0)

model = fv.models.efficientnet_lite0()
photos = fv.data.sample_images()
photo = photos.images[photos.names.index("coffee")]        # (3, 224, 224) in [0, 1]
LAYERS = ["blocks.4", "blocks.10"]                            # 28x28 and 14x14 maps
ex = fv.explain(model, photo, layers=LAYERS)
print(ex)
print("top class:", ex.target.label)


def show(fig) -> None:
    """Display a bare matplotlib Figure (featviz's plot functions return one) as a PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    display(Image(buf.getvalue()))

# %% [markdown]
# ## 1 · The semantic dictionary
#
# One forward pass stored every layer's activations, `ex.activations[layer]` of shape (C, h, w). At each position
# the activation vector says which channels fire there. `ex.top_channels(layer, k)` lists, per position, the `k`
# strongest — a dictionary from places in the photo to channels, which the page shows with each channel's
# feature visualization.
#
# **Exercise 1.** Write `top_channels(acts, k)`: (C, H, W) -> (H, W, k) channel indices, strongest first.

# %%
def top_channels(acts: torch.Tensor, k: int) -> torch.Tensor:
    # YOUR CODE HERE (one line with torch.topk), then delete the next line
    return solutions.top_channels(acts, k)


# %%
checks.check_top_channels(top_channels)
assert torch.equal(top_channels(ex.activations["blocks.10"], 3), ex.top_channels("blocks.10", 3))
print("Exercise 1: all checks passed")

# %% [markdown]
# Where does the strongest channel change? Below, each position of `blocks.10` is coloured by its top channel,
# and we render the three channels that are top-1 at the most positions.

# %%
top1 = ex.top_channels("blocks.10", k=1)[..., 0]         # (14, 14)
counts = torch.bincount(top1.flatten(), minlength=ex.activations["blocks.10"].shape[0])
common = counts.argsort(descending=True)[:3].tolist()
fvs = ex.feature_visualizations("blocks.10", common, size=SIZE, steps=STEPS)
fig, axes = plt.subplots(1, 5, figsize=(13, 2.8))
axes[0].imshow(photo.permute(1, 2, 0))
axes[1].imshow(top1, cmap="tab20")
axes[1].set_title("top channel per position", fontsize=9)
for ax, c in zip(axes[2:], common):
    ax.imshow(fvs[c].permute(1, 2, 0))
    ax.set_title(f"blocks.10:{c}, top at {int(counts[c])} positions", fontsize=9)
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 2 · Attribution in a hidden layer, and its sum
#
# `ex.attribution(layer)` is integrated gradients in the layer's activations: they move from their values on a
# black photo to their values on this one, and each channel at each position receives the integral of the
# gradient of the logit times its change. So the (C, h, w) attribution **sums to the change of the logit**. That
# sum is a check you can always run: `ex.completeness(layer)` compares it with the logit's change measured by
# two forward passes. (With EfficientNet's ReLU6 kinks the integral needs many steps; featviz doubles them until
# the sum is within 1 %.)

# %%
for layer in LAYERS:
    c = ex.completeness(layer)
    print(f"{layer}: attribution sums to {c['sum']:.3f}, the logit changes by {c['delta']:.3f} "
          f"({c['relative_error']:.2%} apart, {c['steps']} steps)")
fig, axes = plt.subplots(1, len(LAYERS), figsize=(4 * len(LAYERS), 4))
for ax, layer in zip(axes, LAYERS):
    ax.imshow(attribution_overlay(photo, ex.attribution(layer).sum(0)))
    ax.set_title(f"{layer}: attribution to {ex.target.label}", fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# Does it look at the cup? We drew a box around the cup and coffee by hand (pixels of the 224 x 224 photo):
# rows 0-140, columns 28-196. In `blocks.10` coordinates (16 pixels per position) that is rows 0-9, columns 2-12.
#
# **Exercise 2.** Write `box_share(amap, box)`: the fraction of the **positive** attribution of a (h, w) map inside
# `box = (top, left, bottom, right)` (bottom and right exclusive, as Python slices).

# %%
def box_share(amap: torch.Tensor, box: tuple[int, int, int, int]) -> float:
    # YOUR CODE HERE, then delete the next line
    return solutions.box_share(amap, box)


# %%
checks.check_box_share(box_share)
print("Exercise 2: all checks passed")

# %% [markdown]
# ## 3 · The control: the same measurement on a randomized model
#
# A map that lands on the cup could do so because the *photo* makes it (the cup is the high-contrast part), not
# because of anything the model learned. Adebayo et al. (2018) proposed the test: randomize the weights and look
# again. We explain the same class on `fv.models.randomized(model)` and compare the share inside the box with the
# box's own share of the photo.

# %%
BOX = (0, 2, 9, 12)
area = (BOX[2] - BOX[0]) * (BOX[3] - BOX[1]) / 14 ** 2
control = fv.models.randomized(model, seed=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")     # a random net's integrand is rougher: it may miss the 1 % (the page says)
    ex0 = fv.explain(control, photo, layers=["blocks.10"], target=ex.target.channel)
    trained, randomized = (box_share(e.attribution("blocks.10").sum(0), BOX) for e in (ex, ex0))
print(f"positive attribution inside the box: trained {trained:.0%}, randomized {randomized:.0%}, "
      f"box area {area:.0%}")
if trained > randomized and trained > area:
    print("The trained model concentrates more on the cup than the box's area and than the random model: on this "
          "photo the map depends on what the model learned.")
else:
    print("The trained model does NOT concentrate on the cup more than the control here: this map alone is no "
          "evidence that the model looks at the object.")

# %% [markdown]
# One photo is an anecdote; docs/explain.md runs the same test on three photos and two layers.
#
# ## 4 · Neuron groups of this photo
#
# `ex.groups(layer, n)` factorizes this photo's activations (NMF after a ReLU, PCA on a signed layer such as
# `blocks.10`) into `n` groups and shares the attribution among them: at each (channel, position) each group gets
# the part proportional to its part of the reconstruction, `|spatial_k(p) * direction_k(c)|`.
#
# **Exercise 3.** Write `group_shares(spatial, directions, attr)` -> (K,).

# %%
groups = ex.groups("blocks.10", n=4)


def group_shares(spatial: torch.Tensor, directions: torch.Tensor, attr: torch.Tensor) -> torch.Tensor:
    # YOUR CODE HERE, then delete the next line
    return solutions.group_shares(spatial, directions, attr)


# %%
checks.check_group_shares(group_shares, groups, ex.attribution("blocks.10"))
print("Exercise 3: all checks passed")
best = int(groups.attribution.argmax())
print(f"group attributions: {[round(float(v), 2) for v in groups.attribution]}; group {best} carries the most "
      f"({float(groups.attribution[best]) / float(ex.attribution('blocks.10').sum()):.0%} of the total)")
show(ex.plot(layers=["blocks.10"]))

# %% [markdown]
# ## 5 · The page
#
# `ex.save_html(path)` writes the whole interface into one file (images inlined, works from `file://`): hover over
# the photo in a layer's section to see its dictionary entry with feature visualizations, next to the attribution
# and the groups; a static PNG is written beside it. From a shell: `featviz explain efficientnet_lite0 photo.jpg
# --out pages`.

# %%
import tempfile
from pathlib import Path

page = ex.save_html(Path(tempfile.mkdtemp()) / "coffee_explained.html", layers=["blocks.10"], size=SIZE, steps=STEPS, n_groups=4,
                    max_renders=8 if FAST else 24, progress=False)
print(page, f"{page.stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# ## Summary
#
# - The semantic dictionary maps positions to channels; attribution maps them to the class; groups compress both.
# - A hidden-layer attribution has a check built in: its sum is the logit's change. Look at the number.
# - "It looks at the object" is a claim about the model only if a randomized model does not do the same.
