# %% [markdown]
# # 02 · Hooks and activations
#
# **Level:** beginner to intermediate (after 01) · **Time:** about 60 minutes to work through, 4 exercises; running it takes a few
# minutes on a laptop CPU (1–3 minutes with `FEATVIZ_FAST=1`).
#
# **Setup:** install featviz with the notebook extras (`pip install -e ".[dev]"` in the repository), start
# Jupyter in the `notebooks/` folder (the exercise helpers `checks.py` and `solutions.py` live there) and run
# the first code cell. `FEATVIZ_FAST=1` runs a quick version (fewer steps, smaller images), as the tests do.
#
# A trained network computes its answer through a long chain of intermediate tensors, the **activations**. Each
# activation tensor of a convolutional layer has shape `(batch, channels, height, width)`: for every channel, a map
# over the image of how strongly that channel "fires" at each place. Interpretability starts by looking at these
# maps, then by changing them and watching what the network does.
#
# **You will learn**
# - to wrap any PyTorch model with `fv.hooked` and list the names of everything you can look at;
# - to cache activations with `run_with_cache` and plot a channel's activation map over a photo;
# - to write your own hook, and to **ablate** (switch off) channels and watch the prediction change — and to tell
#   an ablation that adds causal evidence from one that only re-measures a linear read-out;
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
import checks        # the exercise checks: each says what is wrong, not only that something is
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
checks.check_mean_hook(store, cache["blocks.4"][:3], model)
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
checks.check_direct_contributions(direct_contributions, model, pooled, k, float(logits[i, k]))
contrib = direct_contributions(pooled, k)
print(f"Exercise 2: all checks passed — the '{model.labels[k]}' logit {logits[i, k]:.2f} = "
      f"{contrib.sum():.2f} (channels) + {model.fc.bias[k]:.2f} (bias)")

# %% [markdown]
# Now ablate the channels that contribute most to the cat's top class, one more at a time, and compare with
# ablating as many *random* channels (a control: any change could just be "damage").

# %%
def class_probs(layer: str, ablate_channels: list[int]) -> torch.Tensor:
    with hm.ablate(layer, ablate_channels):
        return hm(x[i:i + 1])[0].softmax(0)


ks = [1, 2, 5, 10] if FAST else [1, 2, 3, 5, 10, 20]
order = contrib.argsort(descending=True).tolist()
gen = torch.Generator().manual_seed(0)
random_order = torch.randperm(1280, generator=gen).tolist()
p_top = [class_probs("head.relu", order[:n])[k].item() for n in ks]
p_random = [class_probs("head.relu", random_order[:n])[k].item() for n in ks]
p_before = logits[i].softmax(0)

fig, ax = plt.subplots(figsize=(7, 3.8))
ax.axhline(p_before[k].item(), c="gray", ls="--", label="no ablation")
ax.plot(ks, p_top, "o-", label="top direct contributors ablated")
ax.plot(ks, p_random, "s-", label="random channels ablated")
ax.set(title=f"Ablating head.relu channels on '{names[i]}'", xlabel="number of channels set to 0",
       ylabel=f"P({model.labels[k]})")
ax.legend()
plt.show()
assert p_top[-1] < p_random[-1], "the top contributors should matter more than random channels"

# %% [markdown]
# **Does this ablation tell us anything new?** Between `head.relu` and the logit there is only an average and a
# linear layer, so zeroing channel `c` lowers the logit by *exactly* its direct contribution — an ablation here
# re-measures Exercise 2, it adds no causal evidence. Check it:

# %%
n_abl = ks[-1]
with hm.ablate("head.relu", order[:n_abl]):
    logit_after = hm(x[i:i + 1])[0, k]
drop, predicted = (logits[i, k] - logit_after).item(), contrib[order[:n_abl]].sum().item()
print(f"ablating the top {n_abl} head.relu channels lowers the '{model.labels[k]}' logit by {drop:.4f}; their "
      f"direct contributions add up to {predicted:.4f}")
assert abs(drop - predicted) < 1e-3 * max(1.0, abs(predicted)), "a linear read-out: ablation == contributions"

# %% [markdown]
# And the prediction after ablating the top contributors — is it a clear "flip" to another class? Read the
# probabilities, not only the arg-max:

# %%
def top2(p: torch.Tensor) -> str:
    (pa, pb), (ca, cb) = p.topk(2)
    return f"'{model.labels[ca]}' {pa:.0%}, '{model.labels[cb]}' {pb:.0%}"


p_after = class_probs("head.relu", order[:n_abl])
(pa, pb), (ca, cb) = p_after.topk(2)
margin = (pa - pb).item()
kind = ("a near-tie between the two classes, not a confident flip" if margin <= 0.2 else
        "a clear change of prediction" if ca != k else "no change of prediction")
margin_before = (p_before.topk(2).values[0] - p_before.topk(2).values[1]).item()
print(f"before: {top2(p_before)} (margin {margin_before:.0%}{', already close' if margin_before <= 0.2 else ''}); "
      f"after ablating {n_abl} top contributors: {top2(p_after)} — {kind}")

# %% [markdown]
# ### An ablation that adds evidence: upstream of a nonlinearity
#
# Earlier in the network, a channel's effect on the logit passes through 1×1 convolutions, BatchNorm and ReLUs, so
# a linear estimate (gradient × activation, summed over the map — the *attribution* of notebook 05) is only a
# first-order guess. Ablating there is a real experiment: does the logit drop as much as the estimate says, and
# more than for random channels?

# %%
LAYER_UP = "blocks.15"                                          # (1, 320, 7, 7), before head.conv + BN + ReLU
with torch.enable_grad():
    out_up, cache_up = hm.run_with_cache(x[i:i + 1], names=[LAYER_UP], detach=False)
    act = cache_up[LAYER_UP]
    (grad,) = torch.autograd.grad(out_up[0, k], act)
estimate = (grad * act).sum(dim=(0, 2, 3)).detach()             # (320,) first-order effect of removing each
up_order = estimate.argsort(descending=True).tolist()
n_up = 5
with hm.ablate(LAYER_UP, up_order[:n_up]):
    actual = (logits[i, k] - hm(x[i:i + 1])[0, k]).item()
random_drops = []
for seed in range(5 if FAST else 20):
    chans = torch.randperm(act.shape[1], generator=torch.Generator().manual_seed(seed))[:n_up].tolist()
    with hm.ablate(LAYER_UP, chans):
        random_drops.append((logits[i, k] - hm(x[i:i + 1])[0, k]).item())
linear = estimate[up_order[:n_up]].sum().item()
rand_max = max(random_drops)
print(f"{LAYER_UP}: ablating the {n_up} channels with the largest attribution lowers the logit by {actual:.2f} "
      f"(the linear estimate said {linear:.2f}, {actual / linear:.0%} of it); {len(random_drops)} random sets of "
      f"{n_up} change it by {min(random_drops):.2f} to {rand_max:.2f}")
assert abs(actual - linear) > 1e-3, "upstream of a nonlinearity the ablation is not just the linear estimate"
print("the top channels lower the logit more than every random set" if actual > rand_max else
      "the top channels do NOT beat every random set: the attribution ranking is not confirmed here")

# %% [markdown]
# Here the ablation measures something the weights alone do not give: the nonlinear layers between `blocks.15`
# and the logit decide how much of the estimated effect survives, and the random sets say how large an effect
# *any* five channels would have. (Zero is a strong intervention — `value="mean"` replaces a channel by its mean
# instead, a gentler baseline.)
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
checks.check_zero_hook(zero_hook, CHANNELS, hm, x[:2])   # also: `output` must not be modified in place
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
# ## 7. Reading the wiring: expanded weights by hand
#
# Ablations ask what a channel *does*; weights say how it is *built*. Two convolutions in a row with a ReLU
# between them act, wherever the ReLU is on, like one bigger convolution. Its kernel — the **expanded weights**
# of *Zoom In* — says how each channel two layers down reads each channel of the layer below, pixel by pixel.
#
# ### Exercise 4 — expanded weights
# For `w1` of shape `(M, C, k1, k1)` and `w2` of shape `(O, M, k2, k2)` (no padding, stride 1, the ReLU treated as
# the identity), return the `(O, C, k1 + k2 − 1, k1 + k2 − 1)` kernel of `conv2(conv1(x))`. Think about where
# tap `(a, b)` of `w2` reads conv1's output, and where *that* unit reads the input (PyTorch's convolutions do not
# flip their kernels). About 10 lines with a loop over `(a, b)` and an `einsum`.

# %%
def expand_weights(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """(M, C, k1, k1), (O, M, k2, k2) -> (O, C, k1 + k2 - 1, k1 + k2 - 1)."""
    # EXERCISE: replace the next line.
    return solutions.expand_weights(w1, w2)


# %%
checks.check_expand_weights(expand_weights)      # against autograd's Jacobian of conv2(conv1(x))
print("Exercise 4: all checks passed")

# %% [markdown]
# `fv.circuits.expanded_weights` computes the same thing on any model (through padding, BatchNorm, residual adds),
# so your function should agree with it on a small network whose convolutions we know:

# %%
torch.manual_seed(0)
small = torch.nn.Sequential()
small.add_module("conv1", fv.nn.Conv2d(3, 4, 3, padding=1, bias=False))
small.add_module("relu1", fv.nn.ReLU())
small.add_module("conv2", fv.nn.Conv2d(4, 5, 3, padding=1, bias=False))
small.add_module("relu2", fv.nn.ReLU())
small.add_module("conv3", fv.nn.Conv2d(5, 2, 3, padding=1, bias=False))
small.eval()
with torch.enable_grad():                        # expanded weights are a Jacobian: gradients on here
    lib = fv.circuits.expanded_weights(small, "relu1", "conv3", size=16, progress=False)   # (2, 4, 5, 5)
mine = expand_weights(small.conv2.weight.detach(), small.conv3.weight.detach())
print(f"fv.circuits.expanded_weights {tuple(lib.shape)}, yours {tuple(mine.shape)}, max difference "
      f"{(lib - mine).abs().max():.1e}")
assert torch.allclose(lib, mine, atol=1e-5)
fv.viz.plot_weights(mine)
plt.show()

# %% [markdown]
# ## 8. Exploring a circuit
#
# `fv.viz.explore(model, "layer:channel")` puts the two together: a circuit graph whose edges carry expanded
# weights (hover an edge to see its pattern); clicking a node's button expands its strongest upstream units (one
# `fv.circuits.trace` step) and shows the node's feature visualization, dataset examples and evidence in a side
# panel. It needs `ipywidgets` (`pip install featviz[widgets]`) and a live Jupyter kernel; an exported page or a
# run without widgets shows the static figure below. We explore the hand-wired toy model of notebook 04, whose
# wiring is known: unit 1 of `relu2` was wired by hand to add up edge units 1, 2 and 3 at positions along an arc,
# inhibited by edge unit 6, so the graph the explorer draws can be checked against the truth (asserted below).
#
# The side panel shows one of those inputs, edge unit `relu1:2` (planted: an edge detector whose edge direction,
# dark → bright, is 90°: bright on top, in `featviz.data.stimuli`'s convention of degrees counter-clockwise from +x):
# its feature visualization and, in full mode, its evidence — the lines printed under the figure come from it. A render that
# found no response is drawn as "no response found", as in notebook 04. (The root `relu2:1` makes a poor side-panel
# showcase: it is a single-position template, so a render of the channel's mean finds almost no response and the
# position-tolerant curve test fails; notebook 04, B4–B5, measures why.)

# %%
torch.set_grad_enabled(True)                     # tracing and rendering need gradients again
toy = fv.models.toy.edges_and_curves()
explorer = fv.viz.explore(toy, "relu2:1", top_k=4, render_steps=16 if FAST else 128, evidence=not FAST)
planted = sorted(f"relu1:{c}" for c, *_ in toy.ground_truth["conv2"][1]["inputs"])
print(f"upstream of relu2:1: {sorted(explorer.nodes[1:])}; planted: {planted}")
assert sorted(explorer.nodes[1:]) == planted
explorer.click("relu1:2")                        # select an input unit for the side panel (nothing upstream of it)
explorer

# %%
explorer.figure(details=True)                    # the static view with the side panel: what an exported page shows
plt.show()
panel = explorer.details()
planted_angle = toy.ground_truth["conv1"][2]["angle"]
print(f"side panel: {panel['node']} (planted: edge detector, edge direction dark → bright {planted_angle:.0f}°, "
      "counter-clockwise from +x), feature visualization "
      f"activation {panel['activation']:.2f}" + (" — no response found" if panel["dead"] else ""))
for line in panel.get("verdict", ["(evidence is computed in full mode only)"]):
    if line.startswith(("Step edges", "Curve tests", "(evidence")):
        print(" ", line)

# %% [markdown]
# ## Summary
#
# - `fv.hooked(model)` names every module (`hm.hook_names`); `run_with_cache` returns the activations you ask for.
# - An activation map shows where a channel fires; averaging gives a (photo × channel) table.
# - Hooks can *change* activations. Ablating `head.relu` channels only re-measures the linear read-out (the drop
#   equals their direct contributions); ablating upstream of nonlinear layers, against random channel sets, is an
#   experiment — and a changed arg-max can be a near-tie, so report the probabilities.
# - Two convolutions compose into one bigger kernel, the expanded weights; `fv.viz.explore` walks a circuit
#   with them.
#
# **Next:** `03_feature_visualization.ipynb` asks the network itself what a channel wants to see
# (Olah, Mordvintsev & Schubert, [*Feature Visualization*](https://distill.pub/2017/feature-visualization/),
# Distill 2017).
