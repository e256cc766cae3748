# %% [markdown]
# # 03 · Feature visualization
#
# **Level:** intermediate · **Time:** about 75 minutes to work through, 4 exercises; running it takes a few
# minutes on a laptop CPU (1–3 minutes with `FEATVIZ_FAST=1`).
#
# **Setup:** install featviz with the notebook extras (`pip install -e ".[dev]"` in the repository), start
# Jupyter in the `notebooks/` folder (the exercise helpers `checks.py` and `solutions.py` live there) and run
# the first code cell. `FEATVIZ_FAST=1` runs a quick version (fewer steps, smaller images), as the tests do.
#
# In notebook 02 we asked "where in this photo does channel *c* fire?". Feature visualization turns the question
# around: **what image would make channel *c* fire as much as possible?** We start from noise and follow the
# gradient of the channel's activation with respect to the *pixels* — the network's weights never change.
#
# Done naively, this produces noisy, adversarial-looking patterns that excite the channel for the wrong reasons.
# Olah, Mordvintsev & Schubert, [*Feature Visualization*](https://distill.pub/2017/feature-visualization/)
# (Distill 2017) showed which ingredients make the images meaningful: a better **parameterisation** of the image
# (Fourier space, decorrelated colours) and **transformation robustness** (jitter, scale, rotate at every step).
# We rebuild that progression, then compare objectives (channel, neuron, diversity), render a whole layer, and put
# the images next to the real photo patches that excite the same channel (*dataset examples*).
#
# **You will learn**
# - gradient ascent on an image, written out by hand, and what `fv.render` adds to it;
# - why naive images are "adversarial", measured by how fragile their activation is to a small zoom or rotation;
# - to write the Fourier parameterisation with decorrelated colours, and a transform, yourself;
# - the objective algebra (`fv.objectives`): channel, neuron, diversity, sums and differences;
# - to read a layer grid (`fv.render_layer`) critically, with dataset examples beside it.

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import torch

warnings.filterwarnings("ignore", message="IProgress not found")   # tqdm without ipywidgets: text bars are fine
import featviz as fv
import checks        # the exercise checks: each says what is wrong, not only that something is
import solutions

FAST = os.environ.get("FEATVIZ_FAST") == "1"  # the test suite runs every notebook in this quick mode
SIZE = 64 if FAST else 128        # image side in pixels
STEPS = 24 if FAST else 256       # optimisation steps per rendering
torch.manual_seed(0)

model = fv.models.efficientnet_lite0()
hm = fv.hooked(model)
LAYER, CH = "blocks.4", 5         # a mid-level channel: block 4 sees 67-pixel patches (docs/models.md)
print(f"{'fast' if FAST else 'full'} mode: {SIZE}px, {STEPS} steps; visualizing {LAYER}:{CH}")


def show_images(images, titles, suptitle, ncol=None, scale=2.2):
    """Images (B, 3, H, W) in [0, 1] in a grid, with a title per panel and pixel axes."""
    n = len(images)
    ncol = ncol or n
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(scale * ncol, scale * nrow + 0.6), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        ax.imshow(images[k].permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(titles[k], fontsize=8)
        ax.tick_params(labelsize=6)
        if k // ncol == nrow - 1 or k + ncol >= n:
            ax.set_xlabel("x (px)", fontsize=7)
        if k % ncol == 0:
            ax.set_ylabel("y (px)", fontsize=7)
    fig.suptitle(suptitle)
    plt.tight_layout()
    plt.show()


# %% [markdown]
# ## 1. Gradient ascent on pixels, by hand
#
# The recipe, in plain PyTorch and our hooks:
# 1. make an image tensor with `requires_grad=True` (here: one free number per pixel and colour);
# 2. run the model up to `blocks.4` (`stop_at_last=True`, `detach=False` so gradients flow);
# 3. the **objective** is the channel's mean activation; we want it *large*, so the optimiser minimises its
#    negative;
# 4. step, repeat. The model's parameters are never updated — only the image is in the optimiser.

# %%
gen = torch.Generator().manual_seed(0)
logit_image = (0.01 * torch.randn(1, 3, SIZE, SIZE, generator=gen)).requires_grad_(True)   # before a sigmoid
optimizer = torch.optim.Adam([logit_image], lr=0.05)
naive_curve = []
for step in range(STEPS):
    image = torch.sigmoid(logit_image)                           # (1, 3, H, W) in [0, 1]
    _, cache = hm.run_with_cache(model.preprocess(image), names=[LAYER], stop_at_last=True, detach=False)
    objective = cache[LAYER][:, CH].mean()                       # the thing to maximise
    optimizer.zero_grad()
    (-objective).backward()
    optimizer.step()
    naive_curve.append(objective.item())
naive = torch.sigmoid(logit_image).detach()
print(f"{LAYER}:{CH} mean activation: {naive_curve[0]:.2f} at step 1 -> {naive_curve[-1]:.2f} at step {STEPS}")
assert naive_curve[-1] > naive_curve[0], "gradient ascent should increase the objective"

# %% [markdown]
# The activation goes up a lot — look at the image (first panel below). It is not white noise: it is a fine,
# repetitive texture, and below we measure how much of its energy sits at high spatial frequencies compared with
# real photos and with the other renderings. `fv.render` runs the same loop with
# switchable ingredients: `param=` (how the image is made from the optimised numbers) and `transforms=`
# (random jitter/scale/rotation applied before every step; `[]` for none).
#
# ## 2. The paper's progression, side by side
#
# | | parameterisation | transforms |
# |---|---|---|
# | (a) | pixels (our loop above) | none |
# | (b) | pixels, decorrelated colours (`fv.optvis.pixel_image`) | `standard_transforms()` |
# | (c) | Fourier spectrum, decorrelated colours (`fv.optvis.fft_image`) | none |
# | (d) | Fourier spectrum, decorrelated colours | `standard_transforms()` — `fv.render`'s default |
#
# The **Fourier parameterisation** optimises the image's frequency spectrum. The optimised coefficients all have
# the same scale (they start as noise of one standard deviation, and a gradient step moves each of them alike);
# the image is made from them after multiplying frequency $f$ by $1/f$. So the *image* starts with most of its
# energy at low frequencies, like a photo, and a step on the coefficients changes coarse structure as readily as
# fine — whereas a step on raw pixels mostly adds fine detail. (The cell after the figure measures both spectra.)
# **Decorrelated colours** optimise in a colour space whose axes are uncorrelated in natural images.
# **Transformation robustness** asks the image to keep exciting the channel when jittered by a few pixels,
# slightly scaled and rotated — which noise cannot do.

# %%
settings = {
    "(b) pixels + transforms": dict(param=fv.optvis.pixel_image, transforms=fv.optvis.standard_transforms()),
    "(c) fft + decorrelation": dict(param=fv.optvis.fft_image, transforms=[]),
    "(d) fft + decorrelation + transforms": dict(param=fv.optvis.fft_image),
}
results = {}
for name, kwargs in settings.items():
    t0 = time.perf_counter()
    results[name] = fv.render(model, f"{LAYER}:{CH}", size=SIZE, steps=STEPS, seed=0, progress=False,
                              thresholds=(STEPS // 4, STEPS // 2, STEPS), **kwargs)
    print(f"{name:38s} {time.perf_counter() - t0:5.1f} s, final activation {results[name].activations.item():.2f}")

all_images = torch.cat([naive] + [r.images for r in results.values()])
all_titles = ["(a) pixels, no transforms"] + list(results)
show_images(all_images, all_titles, f"Four ways to visualize {LAYER}:{CH} ({STEPS} steps, {SIZE} px)", scale=3)


def high_freq_share(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B,) share of the (mean-removed) power above half the Nyquist frequency."""
    power = torch.fft.rfft2(images - images.mean(dim=(2, 3), keepdim=True)).abs() ** 2   # (B, 3, H, W//2+1)
    high = (fv.optvis.param.rfft2d_freqs(*images.shape[-2:]) > 0.25).to(power.dtype)
    return (power * high).sum(dim=(1, 2, 3)) / power.sum(dim=(1, 2, 3))


photos, _ = fv.data.sample_images(size=SIZE)
hf = high_freq_share(all_images)
hf_photos = high_freq_share(photos)
for t, v in zip(all_titles, hf):
    print(f"{t:38s} {v:6.1%} of its power above 0.25 cycles/px")
print(f"{'the 10 sample photos (mean)':38s} {hf_photos.mean():6.1%}")
print(f"the naive image (a) has {hf[0] / hf_photos.mean():.1f}x the photos' share of high-frequency power and "
      f"{hf[0] / hf[3]:.1f}x that of rendering (d)")

# %% [markdown]
# And the spectra the Fourier parameterisation starts from: the coefficients have the same scale at every
# frequency, the image made from them does not. Below, the radial amplitude spectrum (log-log) of the initial
# coefficients, of the initial image, and of the photos; the slope of a straight-line fit is printed.

# %%
def radial_amplitude(spec: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., h, w//2+1) complex/real amplitudes -> (frequency bins, mean amplitude per bin), DC excluded."""
    freqs = fv.optvis.param.rfft2d_freqs(h, w)
    amp = spec.abs().reshape(-1, *freqs.shape).mean(0)
    bins = torch.linspace(1 / max(h, w), 0.5, 12)
    idx = torch.bucketize(freqs, bins)
    keep = [(bins[k - 1] + bins[k]) / 2 for k in range(1, len(bins)) if ((idx == k) & (freqs > 0)).any()]
    vals = [amp[(idx == k) & (freqs > 0)].mean() for k in range(1, len(bins)) if ((idx == k) & (freqs > 0)).any()]
    return torch.stack(keep), torch.stack(vals)


def slope(f_bins: torch.Tensor, a: torch.Tensor) -> float:
    return float(torch.linalg.lstsq(torch.stack([f_bins.log(), torch.ones_like(f_bins)], 1),
                                    a.log()[:, None]).solution[0])


params, image_fn = fv.optvis.fft_image(SIZE, batch=4, seed=0)
with torch.no_grad():
    coeff_spec = torch.view_as_complex(params[0].detach())                # the optimised numbers
    image_spec = torch.fft.rfft2(image_fn() - 0.5)                       # the image made from them
photo_spec = torch.fft.rfft2(photos - photos.mean(dim=(2, 3), keepdim=True))
fig, ax = plt.subplots(figsize=(6.5, 3.6))
slopes = {}
for name, spec in [("optimised coefficients", coeff_spec), ("initial fft_image", image_spec),
                   ("sample photos", photo_spec)]:
    fb, a = radial_amplitude(spec, SIZE, SIZE)
    slopes[name] = slope(fb, a)
    ax.plot(fb, a / a[0], "o-", label=f"{name} (slope {slopes[name]:.2f})")
ax.set(xscale="log", yscale="log", title="Radial amplitude spectra (normalised at the lowest frequency)",
       xlabel="frequency (cycles / pixel)", ylabel="mean |amplitude|")
ax.legend(fontsize=7)
plt.show()
print(", ".join(f"{k}: slope {v:.2f}" for k, v in slopes.items()))
assert abs(slopes["optimised coefficients"]) < 0.3 < -slopes["initial fft_image"], "flat coefficients, 1/f image"

# %% [markdown]
# ### How "adversarial" is each image?
#
# A real feature should still be detected when the image is zoomed in by 10% or turned by 5 degrees — changes a
# person would barely notice. We measure the activation of each image before and after these two changes (with
# the same functions `fv.optvis.random_scale` / `random_rotate` that `standard_transforms` draws from, here with
# a single fixed value). The numbers printed under the figure say how much each rendering keeps.

# %%
def activation(images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        _, c = hm.run_with_cache(model.preprocess(images), names=[LAYER], stop_at_last=True)
    return c[LAYER][:, CH].mean(dim=(1, 2))                     # (B,)


perturbations = {"zoom 10%": fv.optvis.random_scale([1.1]), "rotate 5°": fv.optvis.random_rotate([5])}
original = activation(all_images)
kept = {name: activation(change(all_images)) / original for name, change in perturbations.items()}

fig, ax = plt.subplots(figsize=(8, 3.5))
for k, (name, frac) in enumerate(kept.items()):
    ax.barh([y + 0.4 * k for y in range(len(all_titles))], frac.numpy(), height=0.4, label=name)
ax.axvline(1.0, c="gray", ls="--")
ax.set_yticks([y + 0.2 for y in range(len(all_titles))], all_titles)
ax.invert_yaxis()
ax.set(title="How much activation survives a small zoom or rotation",
       xlabel="activation after the change / activation before", ylabel="rendering")
ax.legend(loc="lower right")
plt.tight_layout()
plt.show()
for k, t in enumerate(all_titles):
    print(f"{t:38s} activation {original[k]:6.2f}; kept: " +
          ", ".join(f"{name} {frac[k]:.0%}" for name, frac in kept.items()))
assert kept["zoom 10%"][0] < kept["zoom 10%"][3], "the naive image should be more fragile than rendering (d)"
no_tf, with_tf = [0, 2], [1, 3]                                  # (a), (c) were optimised without transforms
for name, frac in kept.items():
    lost_no = 1 - frac[no_tf].mean().item()
    lost_with = 1 - frac[with_tf].mean().item()
    print(f"{name}: images optimised without transforms lose {lost_no:.0%} of their activation on average, "
          f"images optimised with transforms {lost_with:.0%}")
worst_with = min(frac[k].item() for frac in kept.values() for k in with_tf)
best_without = max(frac[k].item() for frac in kept.values() for k in no_tf)
print(f"every image optimised with transforms keeps at least {worst_with:.0%}, every one without at most "
      f"{best_without:.0%}: the robustness comes with the transforms, in pixel and Fourier space alike"
      if worst_with > best_without else
      "the transforms alone do NOT separate robust from fragile images here (see the fractions above)")
print(f"high-frequency power: pixels {hf[0]:.0%} / {hf[1]:.0%}, Fourier {hf[2]:.0%} / {hf[3]:.0%} (without / with "
      "transforms): " + ("the Fourier parameterisation lowers it, with or without transforms"
                         if max(hf[2], hf[3]) < min(hf[0], hf[1]) else
                         "the Fourier parameterisation does NOT lower it in both cases"))

# %% [markdown]
# Finally, how the standard rendering (d) develops: `thresholds=` keeps snapshots during the optimisation, and
# `Rendering.losses` holds the objective at every step (measured on the randomly transformed image the optimiser
# saw, hence the noise).

# %%
r = results["(d) fft + decorrelation + transforms"]
snaps = sorted(r.snapshots)
show_images(torch.cat([r.snapshots[s] for s in snaps]), [f"step {s}" for s in snaps],
            "Rendering (d) during the optimisation", scale=2.5)

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(range(1, STEPS + 1), naive_curve, label="(a) pixels, no transforms")
for name, res in results.items():
    ax.plot(range(1, STEPS + 1), res.losses[:, 0].numpy(), label=name)
ax.set(title=f"Objective during optimisation ({LAYER}:{CH} mean activation)", xlabel="step",
       ylabel="objective (higher is better)")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ### Exercise 1 — an objective is just a function
# An objective maps the captured activations (a dictionary `name -> (B, C, H, W)` tensor) to one number per batch
# item, shape `(B,)`. Write the channel objective yourself: the mean of channel `c` over all positions. The check
# compares with `fv.objectives.channel`.

# %%
def my_channel_objective(acts: dict, layer: str, c: int) -> torch.Tensor:
    """(B,) mean activation of channel c of layer."""
    # EXERCISE: replace the next line.
    return solutions.channel_objective(acts, layer, c)


# %%
checks.check_channel_objective(my_channel_objective)     # against fv.objectives.channel
print("Exercise 1: all checks passed")

# %% [markdown]
# ## 3. Channel, neuron, diversity
#
# - `fv.objectives.channel(layer, c)` — the mean over every position: the image fills with the pattern, like a
#   texture.
# - `fv.objectives.neuron(layer, c)` — one position (the centre): a single instance of the pattern, in the part of
#   the image that position can see (its receptive field), and the rest of the image stays unconstrained.
# - `fv.objectives.diversity(layer)` — with a batch of images, rewards items whose activation statistics (Gram
#   matrices) differ from each other. One image may hide that a channel responds to several things; a diverse
#   batch shows several facets (the article's "Diversity" section).
#
# Objectives add and scale: `channel + 0.5 * diversity`, or `channel(a) - channel(b)` to find what excites `a` but
# not `b`.

# %%
n_div = 3 if FAST else 4
objectives = {
    "channel": fv.objectives.channel(LAYER, CH),
    "neuron (centre)": fv.objectives.neuron(LAYER, CH),
}
obj_images, obj_titles = [], []
for name, obj in objectives.items():
    r = fv.render(model, obj, size=SIZE, steps=STEPS, seed=1, progress=False)
    if name == "channel":
        r_channel = r                                             # the single best image, for the diversity cost
    obj_images.append(r.images)
    obj_titles.append(f"{name}\n{r.activations.item():.1f}")
show_images(torch.cat(obj_images), obj_titles, f"Objectives for {LAYER}:{CH} (number: final objective value)")


def gram_similarity(images: torch.Tensor) -> float:
    """Mean cosine similarity between the items' Gram matrices at LAYER (1 = the same statistics)."""
    acts = {LAYER: hm.run_with_cache(model.preprocess(images), names=[LAYER], stop_at_last=True)[1][LAYER]}
    return float(-fv.objectives.diversity(LAYER)(acts).mean() * len(images) / (len(images) - 1))


batches = {}
for weight in (2.0, 20.0):
    obj = fv.objectives.channel(LAYER, CH) + weight * fv.objectives.diversity(LAYER)
    batches[weight] = fv.render(model, obj, batch=n_div, size=SIZE, steps=STEPS, seed=1, progress=False)
others = fv.render_layer(model, LAYER, channels=[0, CH, 9, 20][:n_div], size=SIZE, steps=STEPS, progress=False)
with torch.no_grad():
    sims = {w: gram_similarity(r.images) for w, r in batches.items()}
    reference = gram_similarity(others.images)                      # renderings of different channels
# r.activations is the whole objective (channel + weight x diversity); the channel alone, measured on the images:
channel_act = {w: activation(r.images) for w, r in batches.items()}
show_images(torch.cat([r.images for r in batches.values()]),
            [f"weight {w:g}, item {i}\nchannel {channel_act[w][i]:.1f}" for w in batches for i in range(n_div)],
            f"channel + weight x diversity for {LAYER}:{CH}", ncol=n_div)
for w, sim in sims.items():
    verdict = ("about as different as renderings of DIFFERENT channels" if sim < 1.5 * reference else
               "near-identical statistics: this batch is NOT diverse")
    print(f"diversity weight {w:g}: Gram similarity between items {sim:.2f} — {verdict} "
          f"({n_div} renderings of different channels: {reference:.2f})")
diverse = batches[20.0]
single = activation(r_channel.images).item()
print(f"channel activation of the items: weight 2 mean {channel_act[2.0].mean():.1f}, weight 20 mean "
      f"{channel_act[20.0].mean():.1f} (range {channel_act[20.0].min():.1f} to {channel_act[20.0].max():.1f}); "
      f"the single channel rendering above: {single:.1f}; the diversity term is at most 1 per pair")
assert single > 5, "the argument below: the channel's activation is many times the diversity term's scale (1)"
print("the diverse batch pays in activation: every item is below the single best image" if
      channel_act[20.0].max() < single else
      "the diverse batch does NOT pay in activation here: an item matches or beats the single rendering")

# %% [markdown]
# The weight matters: the diversity term is a cosine similarity (at most 1 per pair), while the channel's mean
# activation is many times larger (printed above), so a small weight barely moves the items apart; the printed
# similarities say which batch is actually diverse. Whether the diverse batch pays for it in activation — facets
# that are weaker stimuli than the single best image — is the last printed line.

# %% [markdown]
# ### Exercise 2 — the objective algebra
# Build an objective that maximises channel `CH` of `blocks.4` **while keeping channel 0 of the same layer low**
# (weight 1 for both). The check evaluates it on random activations.

# %%
# EXERCISE: replace the next line with an expression built from fv.objectives.channel.
contrast = solutions.contrast_objective(LAYER, CH, 0)

# %%
checks.check_contrast(contrast, LAYER, CH, 0)
print("Exercise 2: all checks passed —", contrast)

# %% [markdown]
# ## 4. Build the ingredients yourself
#
# ### Exercise 3 — the Fourier parameterisation with decorrelated colours
# `fv.optvis.fft_image` keeps a spectrum tensor of shape `(B, 3, H, W//2+1, 2)` (real and imaginary parts of an
# `rfft2`). Write the function that turns it into an image:
# 1. `torch.view_as_complex` the spectrum, and multiply every coefficient by $1/\max(f, 1/\max(H, W))$, with $f$
#    from `fv.optvis.param.rfft2d_freqs(H, W)` (cycles per pixel; the cap keeps the constant term finite);
# 2. `torch.fft.irfft2(..., s=(H, W), norm="ortho")`, then divide by 4 (keeps the sigmoid out of saturation);
# 3. mix the three channels with the 3×3 matrix `fv.optvis.param.COLOR_CORRELATION` (decorrelated → RGB: the
#    optimised channels are uncorrelated, the colours they make are correlated like a photo's);
# 4. a sigmoid maps the result into [0, 1].

# %%
def fft_image_fn(spectrum: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, 3, h, w//2+1, 2) -> (B, 3, h, w) RGB in [0, 1]."""
    # EXERCISE: replace the next line (about 6 lines).
    return solutions.fft_image_fn(spectrum, h, w)


# %%
checks.check_fft_image(fft_image_fn)           # against fv.optvis.fft_image's own image_fn
print("Exercise 3: all checks passed")


def my_fft_param(size, batch=1, seed=0, device=None, **kwargs):
    """A parameterisation for fv.render built on your fft_image_fn: (params, image_fn)."""
    params, _ = fv.optvis.fft_image(size, batch, seed=seed, device=device)
    return params, lambda: fft_image_fn(params[0], size, size)


mine = fv.render(model, f"{LAYER}:{CH}", size=SIZE, steps=STEPS, seed=0, progress=False, param=my_fft_param)
ref = results["(d) fft + decorrelation + transforms"]
print(f"fv.render with your parameterisation: activation {mine.activations.item():.2f} "
      f"(fv.optvis.fft_image: {ref.activations.item():.2f})")

# %% [markdown]
# ### Exercise 4 — a transform, and why transforms matter
# A transform is a function `(images, generator) -> images`. Write `my_jitter(d)`: it returns a transform that
# crops a random window `d` pixels smaller in each dimension (the same offset for the whole batch; draw the two
# offsets in `0..d` from `generator`, so a seed reproduces them). Then we use it alone — no scale, no rotation —
# and measure what it buys: the activation that survives a shift by a few pixels.

# %%
def my_jitter(d: int):
    # EXERCISE: replace the next line (a closure: def transform(x, generator=None): ...; return transform).
    return solutions.my_jitter(d)


# %%
checks.check_jitter(my_jitter)
print("Exercise 4: all checks passed")

runs = {name: fv.render(model, f"{LAYER}:{CH}", size=SIZE, steps=STEPS, seed=0, progress=False,
                        param=fv.optvis.fft_image, transforms=tf)
        for name, tf in [("no transforms", []), ("my_jitter(8) only", [my_jitter(8)])]}


def shifted_activation(images: torch.Tensor, shift: int) -> torch.Tensor:
    """(B,) activation of the images moved by `shift` px (wrapped around), relative to unshifted."""
    return activation(torch.roll(images, shifts=(shift, shift), dims=(2, 3))) / activation(images)


shifts = [1, 2, 4]
kept_shift = {name: [shifted_activation(r.images, s).item() for s in shifts] for name, r in runs.items()}
for name, values in kept_shift.items():
    print(f"{name:18s} kept after a shift of " + ", ".join(f"{s} px: {v:.0%}" for s, v in zip(shifts, values)))
better = sum(a > b for a, b in zip(kept_shift["my_jitter(8) only"], kept_shift["no transforms"]))
print(f"jitter alone makes the rendering more robust to {better} of {len(shifts)} shifts")

# %% [markdown]
# A network's units are not perfectly shift-invariant (stride-2 layers sample the image on a grid), so an image
# optimised at one exact position can exploit that grid. Jitter makes every step see the image at another
# offset: only patterns that work *wherever* they sit survive — the printed numbers say how much that helps here.
# `standard_transforms()` adds padding, small scalings and rotations for the same reason.
#
# %% [markdown]
# ## 5. A whole layer at once
#
# `fv.render_layer` renders many channels in one batch — item *i* of the batch maximises channel *i* — so a layer
# costs only a few optimisations. Below are channels of `blocks.2` (24 channels, 19-pixel receptive field; 16 of
# them in full mode, 8 in fast mode): which look like colours, which like oriented edges, which like fine
# textures? Olah et al. find early layers simple and later ones more object-like — try `blocks.10` and compare.

# %%
grid_channels = range(8) if FAST else range(16)
grid_size, grid_steps = (SIZE, STEPS) if FAST else (96, 128)   # a whole layer: smaller and shorter
t0 = time.perf_counter()
grid = fv.render_layer(model, "blocks.2", channels=grid_channels, batch_size=16, size=grid_size,
                       steps=grid_steps, progress=False)
print(f"{len(grid)} channels in {time.perf_counter() - t0:.1f} s:", grid)
show_images(grid.images, grid.labels, "fv.render_layer: channels of blocks.2", ncol=8, scale=1.8)

# %% [markdown]
# ## 6. Feature visualization next to dataset examples
#
# A rendering shows what a channel *can* respond to; **dataset examples** — the patches of real images where the
# channel fires most — show what it responds to *in practice*. The article argues you need both: each can mislead
# on its own (a rendering may exaggerate one facet, examples may share an irrelevant correlate).
#
# Our "dataset" here is just the 10 bundled photos (in full mode also at half scale, as 2×2 mosaics); a real study
# would use thousands. For every image we find the position where `blocks.4:CH` is largest and cut out the patch
# around it. (`fv.circuits.dataset_examples` does this for any stream of images; here we do it by hand once.)

# %%
images, names = fv.data.sample_images(size=224)
dataset = images if FAST else torch.cat([images, torch.nn.functional.interpolate(
    images, scale_factor=0.5, mode="bilinear").repeat(1, 1, 2, 2)])   # originals (+ 2x2 mosaics of half size)
with torch.no_grad():
    _, c = hm.run_with_cache(model.preprocess(dataset), names=[LAYER], stop_at_last=True)
amap = c[LAYER][:, CH]                                        # (20, 28, 28)
best = amap.flatten(1).max(1)
top = best.values.argsort(descending=True)[:6]
stride = dataset.shape[-1] // amap.shape[-1]                  # 8 pixels per activation cell
patches, titles = [], []
for n in top.tolist():
    y, x = divmod(int(best.indices[n]), amap.shape[-1])
    cy, cx = y * stride + stride // 2, x * stride + stride // 2
    y0, x0 = min(max(cy - 33, 0), 224 - 67), min(max(cx - 33, 0), 224 - 67)   # the 67-px receptive field
    patches.append(dataset[n, :, y0:y0 + 67, x0:x0 + 67])
    titles.append(f"{names[n % 10]}{' (½)' if n >= 10 else ''}\n{best.values[n]:.1f}")
show_images(torch.stack(patches), titles, f"Dataset examples: patches where {LAYER}:{CH} fires most")
show_images(diverse.images, [f"rendering {i}" for i in range(n_div)], f"Renderings of {LAYER}:{CH} (diverse batch)")

# %% [markdown]
# Do the renderings and the patches share a pattern (texture, colour, orientation)? Write down a hypothesis for
# what `blocks.4:CH` detects — then test it the way notebook 04 does, with synthetic stimuli and ablations.
#
# ## Summary
#
# - Feature visualization maximises an objective by gradient ascent **on the input**; parameters stay frozen.
# - Naive pixel optimisation finds a fragile, fine-grained texture (measured: far more high-frequency power than
#   photos). Two ingredients, measured separately in section 2: random transformations make the activation
#   survive small zooms and rotations, and a Fourier parameterisation (flat coefficients, 1/f image) with
#   decorrelated colours moves the image's power towards low frequencies (Olah et al. 2017).
# - A diversity batch is only diverse if the diversity term is weighted against the objective's scale: measure
#   the similarity of the items.
# - Objectives are functions `acts -> (B,)` with an algebra; channel, neuron and diversity show different facets.
# - Renderings and dataset examples complement each other; neither alone proves what a channel does.
#
# **Next:** `04_circuits_zoom_in.ipynb` — how channels are *built* from earlier ones (Olah et al., *Zoom In*, 2020;
# Cammarata et al., [*Curve Detectors*](https://distill.pub/2020/circuits/curve-detectors/), 2020).
