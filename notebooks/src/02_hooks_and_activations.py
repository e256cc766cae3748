# %% [markdown]
# # 02 · Hooks and activations
#
# A trained network computes its answer through a long chain of intermediate tensors, the **activations**. Each
# activation tensor of a convolutional layer has shape `(batch, channels, height, width)`: for every channel, a map
# over the image of how strongly that channel "fires" at each place. Interpretability starts by looking at these
# maps, then by changing them and watching what the network does.
#
# **You will learn**
# - to wrap any PyTorch model with `fv.hooked` and list the names of everything you can look at;
# - to cache activations with `run_with_cache` and plot a channel's activation map over a photo;
# - to write your own hook, and to **ablate** (switch off) channels and watch the prediction change;
# - why hooks must always be removed, and how featviz guarantees it.
#
# The model is **EfficientNet-Lite0**, an ImageNet classifier (1000 classes) with 16 convolutional blocks, shipped
# with featviz with pretrained weights (`fv.models.efficientnet_lite0()`).
#
# **Further reading.** Olah et al., [*Zoom In: An Introduction to Circuits*](https://distill.pub/2020/circuits/zoom-in/)
# (Distill 2020) treats each channel as a candidate *feature* and asks what it detects; this notebook gives you the
# instruments to ask.

# %%
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore", message="IProgress not found")   # tqdm without ipywidgets: text bars are fine
import featviz as fv
import solutions

FAST = os.environ.get("FEATVIZ_FAST") == "1"  # the test suite runs every notebook in this quick mode
torch.manual_seed(0)
torch.set_grad_enabled(False)                  # we only look in this notebook: no gradients needed

model = fv.models.efficientnet_lite0()         # pretrained, eval mode, offline
images, names = fv.data.sample_images(size=model.input_size)   # (10, 3, 224, 224) in [0, 1]
print(f"{type(model).__name__}: {sum(p.numel() for p in model.parameters()):,} parameters, "
      f"input {model.input_size} px, {len(model.labels)} classes | photos: {', '.join(names)}")

# %% [markdown]
# ## 1. What does the model see?
#
# `fv.models.predict` resizes, normalises (`model.preprocess`) and classifies. The bundled photos come from
# scikit-image: some have an ImageNet class (a cat, an espresso, a moped...), others are textures (coins,
# a retina scan) that no class really fits.

# %%
preds = fv.models.predict(model, images, k=1)
fig, axes = plt.subplots(2, 5, figsize=(14, 6))
for ax, img, name, pred in zip(axes.flat, images, names, preds):
    label, p = pred[0]
    ax.imshow(img.permute(1, 2, 0))
    ax.set(title=f"{name}\n→ {label} ({p:.0%})", xlabel="x (pixels)", ylabel="y (pixels)")
    ax.tick_params(labelsize=6)
fig.suptitle("Bundled photos and EfficientNet-Lite0's top prediction")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Hook names: every place we can look
#
# A **forward hook** is a function PyTorch calls right after a module runs, with the module's input and output;
# it may also return a replacement output. `fv.hooked(model)` wraps *any* `nn.Module` (a featviz model or your own)
# and names each place by PyTorch's own dotted module names (`named_modules()`), e.g. `blocks.2` (the output of
# block 2) or `blocks.2.depthwise_relu` (a layer inside it).

# %%
hm = fv.hooked(model)
print(hm)
print(len(hm.hook_names), "hook names; the first 12:", hm.hook_names[:12])
print("inside blocks.2:", [n for n in hm.hook_names if n.startswith("blocks.2.")])
print("good places to start (model.interesting_layers):", model.interesting_layers)

# %% [markdown]
# A misspelt name is a `KeyError` that suggests the closest real names:

# %%
try:
    hm.module("block.2")
except KeyError as err:
    print("KeyError:", err)

# %% [markdown]
# ## 3. Caching activations
#
# `hm.run_with_cache(x, names=[...])` runs the model once and returns the output together with an
# `ActivationCache`, a dictionary from name to activation. Going deeper, the maps get smaller (strided
# convolutions, notebook 01) and the channels more numerous.

# %%
x = model.preprocess(images)                     # (10, 3, 224, 224), normalised as the model expects
block_names = ["stem.relu"] + [f"blocks.{i}" for i in range(16)] + ["head.relu"]
logits, cache = hm.run_with_cache(x, names=block_names)
for name in ["stem.relu", "blocks.2", "blocks.4", "blocks.10", "head.relu"]:
    print(f"{name:10s} {tuple(cache[name].shape)}")

fig, ax = plt.subplots(figsize=(10, 3.8))
ax.plot([cache[n].shape[1] for n in block_names], "o-", label="channels")
ax.plot([cache[n].shape[2] for n in block_names], "s-", label="height = width")
ax.set_yscale("log")
ax.set_xticks(range(len(block_names)), [n.replace("blocks.", "b") for n in block_names], rotation=45)
ax.set(title="EfficientNet-Lite0: maps shrink while channels multiply", xlabel="layer (hook name)",
       ylabel="size (log scale)")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# `stop_at_last=True` stops the forward pass as soon as the last requested layer has run — handy when you only
# need early layers (the output is then `None`):

# %%
t0 = time.perf_counter()
hm.run_with_cache(x[:2], names=["blocks.2"])
t1 = time.perf_counter()
out, early = hm.run_with_cache(x[:2], names=["blocks.2"], stop_at_last=True)
t2 = time.perf_counter()
print(f"full pass {1e3 * (t1 - t0):.0f} ms, stopped after blocks.2: {1e3 * (t2 - t1):.0f} ms, output: {out}")
assert torch.allclose(early["blocks.2"], cache["blocks.2"][:2], atol=1e-5)

# %% [markdown]
# ## 4. Activation maps over the image
#
# Each channel of a layer is a map over the image. Upsample it to the photo's size and lay it over the photo to
# see *where* the channel fires. The first layer (`stem.relu`, 3×3 kernels on raw pixels) responds to colours and
# edges; a deeper layer (`blocks.4`, each unit seeing a 67-pixel patch) to larger patterns. For each layer we show
# the channels that respond most strongly to the cat photo.

# %%
def show_maps(layer: str, photo: str, n: int = 6) -> None:
    i = names.index(photo)
    acts = cache[layer][i]                                   # (C, h, w)
    top = acts.mean(dim=(1, 2)).topk(n).indices.tolist()     # the channels with the largest mean activation
    up = F.interpolate(acts[top][None], size=images.shape[-2:], mode="bilinear")[0]   # (n, 224, 224)
    fig, axes = plt.subplots(1, n + 1, figsize=(2.4 * (n + 1), 2.9))
    axes[0].imshow(images[i].permute(1, 2, 0))
    axes[0].set(title=photo, xlabel="x (pixels)", ylabel="y (pixels)")
    for ax, c, amap in zip(axes[1:], top, up):
        ax.imshow(images[i].mean(0), cmap="gray")
        ax.imshow(amap, cmap="inferno", alpha=0.7)
        ax.set(title=f"{layer}:{c}", xlabel="x (pixels)")
    for ax in axes:
        ax.tick_params(labelsize=6)
    fig.suptitle(f"Strongest channels of {layer} on '{photo}' (bright = strong activation)")
    plt.tight_layout()
    plt.show()


show_maps("stem.relu", "chelsea")
show_maps("blocks.4", "chelsea")

# %% [markdown]
# Which photo excites which channel? Averaging each channel's map gives one number per (photo, channel) — a
# first hint of what a channel is "about" (notebook 04 makes this rigorous with dataset examples and tuning
# curves).

# %%
means = cache["blocks.4"].mean(dim=(2, 3))          # (10 photos, 40 channels)
fig, ax = plt.subplots(figsize=(12, 4))
im = ax.imshow(means, cmap="viridis", aspect="auto")
ax.set_yticks(range(len(names)), names)
ax.set(title="blocks.4: mean activation of each channel on each photo", xlabel="channel", ylabel="photo")
fig.colorbar(im, ax=ax, label="mean activation")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Exercise 1 — your own hook
# Write a hook function that stores the **per-channel mean** of the output of the module it is attached to
# in the dictionary `store` under the key `"means"` (shape `(batch, channels)`). A hook has the signature
# `hook(module, inputs, output)`; returning `None` leaves the output unchanged. Register it with
# `hm.hooks([(name, hook)])`, which removes it again at the end of the `with` block.

# %%
store = {}


def mean_hook(module, inputs, output):
    # EXERCISE: replace the next line.
    solutions.mean_hook(store, output)


with hm.hooks([("blocks.4", mean_hook)]):
    hm(x[:3])

# %%
assert "means" in store, "the hook should put something in store['means']"
assert store["means"].shape == (3, 40), f"expected (batch, channels) = (3, 40), got {tuple(store['means'].shape)}"
assert torch.allclose(store["means"], cache["blocks.4"][:3].mean(dim=(2, 3)), atol=1e-5)
assert all(len(m._forward_hooks) == 0 for m in model.modules()), "a hook was left behind"
print("Exercise 1: all checks passed")

# %% [markdown]
# ## 5. Ablation: switch a channel off and watch the prediction
#
# Looking shows what *correlates* with a channel; changing it shows what the channel *causes*. An **ablation**
# replaces a channel's activation (by zero, or by its mean) and runs the rest of the network as usual.
#
# Which channels should we try? At the end of the network is a simple linear read-out: the 1280 channels of
# `head.relu` are averaged over space (`pool`) and a linear layer (`fc`) turns them into class scores (logits).
# So the logit of class `k` is exactly a sum of one **direct contribution** per channel,
# `pooled[c] × fc.weight[k, c]`, plus the bias.
#
# ### Exercise 2 — direct contributions
# Given the pooled activations of one image (shape `(1280,)`) and a class index, return the `(1280,)` vector of
# contributions. The check: they must add up (with the bias) to the model's own logit.

# %%
def direct_contributions(pooled: torch.Tensor, class_index: int) -> torch.Tensor:
    """(1280,) pooled head activations -> (1280,) contribution of each channel to the class logit."""
    # EXERCISE: replace the next line (model.fc.weight has shape (1000, 1280)).
    return solutions.direct_contributions(model, pooled, class_index)


# %%
i = names.index("chelsea")
k = int(logits[i].argmax())
pooled = cache["head.relu"][i].mean(dim=(1, 2))               # what `pool` computes: (1280,)
contrib = direct_contributions(pooled, k)
assert contrib.shape == (1280,), f"expected shape (1280,), got {tuple(contrib.shape)}"
assert torch.isclose(contrib.sum() + model.fc.bias[k], logits[i, k], atol=1e-3), "contributions + bias != logit"
print(f"Exercise 2: all checks passed — the '{model.labels[k]}' logit {logits[i, k]:.2f} = "
      f"{contrib.sum():.2f} (channels) + {model.fc.bias[k]:.2f} (bias)")

# %% [markdown]
# Now ablate the channels that contribute most to the cat's top class, one more at a time, and compare with
# ablating as many *random* channels (a control: any change could just be "damage").

# %%
def class_probs(ablate_channels: list[int]) -> torch.Tensor:
    with hm.ablate("head.relu", ablate_channels):
        return hm(x[i:i + 1])[0].softmax(0)


ks = [1, 2, 5, 10] if FAST else [1, 2, 3, 5, 10, 20]
order = contrib.argsort(descending=True).tolist()
gen = torch.Generator().manual_seed(0)
random_order = torch.randperm(1280, generator=gen).tolist()
p_top = [class_probs(order[:n])[k].item() for n in ks]
p_random = [class_probs(random_order[:n])[k].item() for n in ks]
after = class_probs(order[:1])
print(f"before: {model.labels[k]} {logits[i].softmax(0)[k]:.0%}; after ablating channel {order[0]}: "
      f"{model.labels[k]} {after[k]:.0%}, top class now '{model.labels[int(after.argmax())]}'")

fig, ax = plt.subplots(figsize=(7, 3.8))
ax.axhline(logits[i].softmax(0)[k].item(), c="gray", ls="--", label="no ablation")
ax.plot(ks, p_top, "o-", label="top direct contributors ablated")
ax.plot(ks, p_random, "s-", label="random channels ablated")
ax.set(title=f"Ablating head.relu channels on '{names[i]}'", xlabel="number of channels set to 0",
       ylabel=f"P({model.labels[k]})")
ax.legend()
plt.show()
assert p_top[-1] < p_random[-1], "the top contributors should matter more than random channels"

# %% [markdown]
# A handful of the 1280 channels carry much of the evidence for "Egyptian cat"; removing them lets the
# runner-up class ("tiger cat") win, while removing random channels barely matters. (Zero is a strong
# intervention — `value="mean"` replaces a channel by its mean instead, a gentler baseline.)
#
# ### Exercise 3 — an ablation by hand
# `hm.ablate` is a hook that returns a modified output. Write one yourself: return a copy of `output` with the
# channels in `CHANNELS` set to zero (do not modify `output` in place). The check compares with `hm.ablate`.

# %%
CHANNELS = [3, 7]


def zero_hook(module, inputs, output):
    # EXERCISE: replace the next line.
    return solutions.zero_channels(output, CHANNELS)


# %%
with hm.hooks([("blocks.2", zero_hook)]):
    mine = hm(x[:2])
with hm.ablate("blocks.2", CHANNELS):
    ref = hm(x[:2])
assert torch.allclose(mine, ref, atol=1e-5), "your hook and hm.ablate give different logits"
assert not torch.allclose(mine, logits[:2], atol=1e-3), "zeroing two channels should change the logits a little"
print("Exercise 3: all checks passed")

# %% [markdown]
# ## 6. Hooks never leak
#
# A hook that is never removed keeps firing on every later forward pass — a classic source of wrong results and
# memory leaks (caches that keep every activation alive). featviz registers every hook inside one context manager
# that removes it in a `finally:` clause, so hooks go away even when the forward pass raises:

# %%
def broken_hook(module, inputs, output):
    raise RuntimeError("something went wrong inside the forward pass")


try:
    with hm.hooks([("blocks.2", broken_hook)]):
        hm(x[:1])
except RuntimeError as err:
    print("caught:", err)
n_left = sum(len(m._forward_hooks) for m in model.modules())
print("hooks left on the model:", n_left)
assert n_left == 0

# %% [markdown]
# ## Summary
#
# - `fv.hooked(model)` names every module (`hm.hook_names`); `run_with_cache` returns the activations you ask for.
# - An activation map shows where a channel fires; averaging gives a (photo × channel) table.
# - Hooks can *change* activations: ablating a few channels with large direct contributions flips the cat
#   prediction, random channels do not — evidence about what those channels *do*, not only what they correlate with.
#
# **Next:** `03_feature_visualization.ipynb` asks the network itself what a channel wants to see
# (Olah, Mordvintsev & Schubert, [*Feature Visualization*](https://distill.pub/2017/feature-visualization/),
# Distill 2017).
