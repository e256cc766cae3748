# %% [markdown]
# # 06 · Beyond single channels
#
# **Level:** advanced (after 03) · **Time:** about 45 minutes to work through, 2 exercises; running it takes a few
# minutes on a laptop CPU (1–3 minutes with `FEATVIZ_FAST=1`).
#
# **Setup:** install featviz with the notebook extras (`pip install -e ".[dev]"` in the repository), start
# Jupyter in the `notebooks/` folder (the exercise helpers `checks.py` and `solutions.py` live there) and run
# the first code cell. `FEATVIZ_FAST=1` runs a quick version (fewer steps, smaller images), as the tests do.
#
# Notebooks 03 and 04 looked at one channel at a time. Networks do not think in single channels: a concept is
# often a *direction* in activation space, shared by several channels that fire together. This notebook goes past
# the channel with five tools, each a single call in featviz:
#
# - **neuron groups** (`fv.factorize`): a matrix factorization of a layer's activations on photos finds a few
#   channel groups and where each is active (Olah et al., *The Building Blocks of Interpretability*, Distill 2018);
# - **feature inversion and caricatures** (`fv.invert`, `fv.caricature`): what a layer keeps of a photo, and what
#   it would like to see more of;
# - **transparency** (`fv.render(..., alpha=True)`): render only the part of the image a unit needs
#   (Mordvintsev et al., *Differentiable Image Parameterizations*, Distill 2018);
# - **MaCo** (`param=fv.optvis.maco_image`): fix the Fourier magnitude to a natural image's, optimise only the
#   phase (Fel et al., NeurIPS 2023);
# - an **activation atlas** (`fv.atlas`): thousands of activation vectors laid out in 2-D, each region rendered
#   (Carter et al., *Activation Atlas*, Distill 2019).
#
# **You will learn** to read a factorization's groups against the photos, to check an inversion by the number it
# optimises (cosine similarity), and why every batched call here runs all its images in *one* optimisation.
#
# **Exercises:** (1) reconstruct a layer's activations from its factorization; (2) the cosine similarity an
# inversion maximises, checked against a noise control. Checks come from [`checks.py`](checks.py).

# %%
import io
import os
import warnings

import matplotlib.pyplot as plt
import torch
from IPython.display import Image, display

warnings.filterwarnings("ignore", message="IProgress not found")   # tqdm without ipywidgets: text bars are fine
import featviz as fv
import checks        # the exercise checks: each says what is wrong, not only that something is
import solutions

FAST = os.environ.get("FEATVIZ_FAST") == "1"  # the test suite runs every notebook in this quick mode
SIZE = 48 if FAST else 128        # render size in pixels
STEPS = 12 if FAST else 256       # optimisation steps per rendering
torch.manual_seed(0)

model = fv.models.efficientnet_lite0()
photos, names = fv.data.sample_images(96 if FAST else 224)
LAYER = "blocks.4.depthwise_relu"  # after a ReLU6: activations are >= 0, as NMF needs
print(len(photos), "photos:", names)


def show(fig) -> None:
    """Display a figure made without pyplot (featviz's ``plot`` methods return a bare ``Figure``).

    Jupyter only draws a bare Figure as an image once pyplot's inline backend has registered its formatter;
    before that it prints "<Figure size ...>". A PNG always displays."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    display(Image(buf.getvalue()))

# %% [markdown]
# ## 1 · Neuron groups
#
# Every position of every photo gives one activation vector (C,). `fv.factorize` stacks them into an
# (N·h·w, C) matrix and factorizes it: `acts ≈ spatial @ directions`. With NMF both factors are non-negative, so
# each direction is a *group of channels that fire together* and its spatial map says where. (Ask for NMF on a
# layer with negative values and featviz says which later layer to use instead.)

# %%
groups = fv.factorize(model, LAYER, photos[:4], n_groups=4, method="nmf")
print(groups.directions.shape, groups.spatial.shape)   # (K, C) and (N, K, h, w)
top = groups.directions.topk(3, dim=1).indices
for k in range(len(groups)):
    print(f"group {k}: strongest channels {top[k].tolist()}")

# %% [markdown]
# ### Exercise 1 — put the groups back together
# `acts ≈ spatial @ directions`: write `reconstruct(spatial, directions)`, (N, K, h, w) and (K, C) -> (N, C, h, w),
# the activations the factorization predicts (each group's direction weighted by its strength at each position).
# Then measure how much of the layer the 4 groups explain.

# %%
def reconstruct(spatial: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    # EXERCISE: replace the next line (one einsum).
    return solutions.reconstruct(spatial, directions)


# %%
checks.check_reconstruct(reconstruct)
print("Exercise 1: all checks passed")
with torch.no_grad():
    acts = fv.hooked(model).run_with_cache(model.preprocess(photos[:4]), names=[LAYER])[1][LAYER]
rel_err = ((reconstruct(groups.spatial, groups.directions) - acts).norm() / acts.norm()).item()
print(f"{len(groups)} groups of {acts.shape[1]} channels reconstruct the layer's activations with a relative error "
      f"of {rel_err:.0%} (L2)")

# %% [markdown]
# The groups of a factorization are rendered in **one** run: `objectives.direction(layer, vectors)` with a
# (K, C) matrix gives batch item *k* its own direction. `plot` draws what it is given — it does not optimise
# behind your back.

# %%
renders = groups.render(model, size=SIZE, steps=STEPS, progress=False)
show(groups.plot(renders, n_images=3))

# %% [markdown]
# **Check yourself.** PCA finds directions of largest variance; they may be negative and mix groups. Try
# `method="pca"` and `method="ica"`, or pass any scikit-learn decomposition, e.g.
# `sklearn.decomposition.NMF(4, beta_loss="kullback-leibler", solver="mu")`.

# %% [markdown]
# ## 2 · Feature inversion and caricatures
#
# `fv.invert` looks for an image whose activations at a layer point the same way as a photo's (cosine similarity
# of the whole (C, h, w) map). The photo gets the same random jitter/scale/rotation as the image at every step,
# so the two maps stay aligned. `Rendering.activations` is the cosine reached.

# %%
photo = photos[7:8]   # the motorcycle
inv = fv.invert(model, "blocks.2", photo, steps=STEPS * 2, progress=False)
car = fv.caricature(model, "blocks.2", photo, steps=STEPS * 2, progress=False)
print(f"inversion cosine {inv.activations.item():.3f}; caricature length along the photo "
      f"{car.activations.item():.1f}")
fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
for ax, img, title in zip(axes, [photo[0], inv.images[0], car.images[0]], ["photo", "inversion", "caricature"]):
    ax.imshow(img.permute(1, 2, 0).clamp(0, 1))
    ax.set_title(title, fontsize=9)
    ax.axis("off")

# %% [markdown]
# ### Exercise 2 — the number an inversion optimises
# Write `map_cosine(a, b)`: (N, C, h, w) twice -> (N,), the cosine similarity of each pair of *whole* maps (flatten
# channels and positions together). Then check the inversion yourself, on the final images without the random
# transforms the optimisation used.

# %%
def map_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # EXERCISE: replace the next line.
    return solutions.map_cosine(a, b)


# %%
checks.check_map_cosine(map_cosine)
print("Exercise 2: all checks passed")
with torch.no_grad():
    hm6 = fv.hooked(model)
    a_photo = hm6.run_with_cache(model.preprocess(photo), names=["blocks.2"])[1]["blocks.2"]
    a_inv = hm6.run_with_cache(model.preprocess(inv.images), names=["blocks.2"])[1]["blocks.2"]
    a_noise = hm6.run_with_cache(model.preprocess(torch.rand_like(photo)), names=["blocks.2"])[1]["blocks.2"]
cos_inv, cos_noise = float(map_cosine(a_inv, a_photo)[0]), float(map_cosine(a_noise, a_photo)[0])
print(f"cosine with the photo's blocks.2 map: inversion {cos_inv:.3f}, uniform noise {cos_noise:.3f} (the control)")

# %% [markdown]
# ## 3 · Transparency
#
# With `alpha=True` the render also optimises an opacity per pixel. Each step the image is composited over fresh
# random noise, and opacity costs a little objective: pixels the unit does not use fade out. A *neuron* objective
# (one position) sees only its receptive field, so the rest should go transparent — the opacity inside and outside
# the field is printed below. `save` writes an RGBA PNG.

# %%
neuron = fv.objectives.neuron("blocks.2", 7)
r = fv.render(model, neuron, size=SIZE, steps=STEPS * 2, alpha=True, progress=False)
rf = fv.circuits.receptive_field(model, "blocks.2:7", size=SIZE)   # the centre unit, as neuron() uses
(cy, cx), (fh, fw) = rf.center, rf.size
inside = torch.zeros(SIZE, SIZE, dtype=torch.bool)
inside[max(round(cy - fh / 2), 0):round(cy + fh / 2) + 1, max(round(cx - fw / 2), 0):round(cx + fw / 2) + 1] = True
a_in, a_out = r.alpha[0, 0][inside].mean().item(), r.alpha[0, 0][~inside].mean().item()
print(r.alpha.shape, f"mean opacity {r.alpha.mean():.2f}: {a_in:.2f} inside the unit's {fh}x{fw} px receptive "
      f"field ({inside.float().mean():.0%} of the image), {a_out:.2f} outside")
print("outside its receptive field the image has gone (mostly) transparent" if a_out < 0.5 * a_in else
      "the opacity does NOT concentrate in the receptive field here")
fig, axes = plt.subplots(1, 2, figsize=(5, 2.6))
axes[0].imshow(r.rgba()[0].permute(1, 2, 0).clamp(0, 1))
axes[0].set_title("RGBA over white", fontsize=9)
axes[1].imshow(r.alpha[0, 0], cmap="gray", vmin=0, vmax=1)
axes[1].set_title("alpha", fontsize=9)
for ax in axes:
    ax.axis("off")

# %% [markdown]
# ## 4 · MaCo: only the phase is free
#
# `maco_image` keeps the magnitude spectrum of natural photos and optimises the phase. The phase is an angle, so
# it likes a larger learning rate. MaCo's by-product is an attribution map (where the gradient was over the run),
# returned as `Rendering.alpha`. `bench/maco.py` compares it with horama, the reference implementation.

# %%
m = fv.render(model, "blocks.9:3", size=SIZE, steps=STEPS * 2, lr=0.25, param=fv.optvis.maco_image,
              progress=False)
fig, axes = plt.subplots(1, 2, figsize=(5, 2.6))
axes[0].imshow(m.images[0].permute(1, 2, 0))
axes[0].set_title(f"MaCo, activation {m.activations.item():.1f}", fontsize=9)
axes[1].imshow(m.alpha[0, 0], cmap="magma")
axes[1].set_title("attribution", fontsize=9)
for ax in axes:
    ax.axis("off")

# %% [markdown]
# ## 5 · An activation atlas
#
# `fv.atlas` samples activation vectors at random positions of the photos, lays them out in 2-D (UMAP by default;
# PCA in fast mode, because UMAP compiles for ~30 s the first time), cuts the layout into a grid, and renders each
# cell's mean vector — all cells in one batched run. Each cell shows its sample count. The class atlas colours
# cells by the ImageNet class their mean vector pushes up most. With your own photos:
# `featviz atlas efficientnet_lite0 blocks.9 --images DIR --out atlas`.

# %%
atlas = fv.atlas(model, "blocks.9", photos, grid=4 if FAST else 10, n_samples=200 if FAST else 2000,
                 reducer="pca" if FAST else "umap", size=32 if FAST else 64, steps=STEPS, progress=False)
print(f"{int(atlas.counts.sum())} samples, {len(atlas.cells)} cells rendered")
show(atlas.plot("features"))

# %%
show(atlas.plot("classes"))

# %% [markdown]
# **Check yourself.** An atlas is only as good as its photos: ten photos give a sparse map. Point the CLI at a few
# hundred of your own, and compare `--reducer pca` with `--reducer umap` — which one keeps similar cells together?

# %% [markdown]
# ## Summary
#
# The cell below writes the summary from the numbers computed above.

# %%
from IPython.display import Markdown

display(Markdown(f"""
- **Neuron groups:** `fv.factorize` split `{LAYER}` on 4 photos into {len(groups)} NMF groups; together they
  reconstruct its activations with a relative error of {rel_err:.0%} (Exercise 1), and all groups render in one run.
- **Inversion:** the image `fv.invert` found matches the photo's `blocks.2` map with cosine {cos_inv:.3f}, against
  {cos_noise:.3f} for uniform noise (Exercise 2); a caricature pushes further along the photo's direction.
- **Transparency:** a neuron's render kept opacity {a_in:.2f} inside its receptive field and {a_out:.2f} outside
  ({'concentrated' if a_out < 0.5 * a_in else 'NOT concentrated'} in the field in this mode).
- **MaCo:** only the phase is optimised; activation {m.activations.item():.1f}, with an attribution map for free.
- **Atlas:** {int(atlas.counts.sum())} activation vectors in a {atlas.grid}×{atlas.grid} grid, {len(atlas.cells)}
  cells rendered in one batched run; ten photos make a sparse map.
"""))
