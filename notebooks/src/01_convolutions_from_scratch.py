# %% [markdown]
# # 01 · Convolutions from scratch
#
# **Level:** beginner (Python and a little PyTorch) · **Time:** about 90 minutes to work through, 8 exercises; running it takes a few
# minutes on a laptop CPU (1–3 minutes with `FEATVIZ_FAST=1`).
#
# **Setup:** install featviz with the notebook extras (`pip install -e ".[dev]"` in the repository), start
# Jupyter in the `notebooks/` folder (the exercise helpers `checks.py` and `solutions.py` live there) and run
# the first code cell. `FEATVIZ_FAST=1` runs a quick version (fewer steps, smaller images), as the tests do.
#
# A vision network is mostly a stack of convolutions. Before we look *inside* one (notebooks 02–05), we
# build the operation ourselves, so that every number we later inspect is something we could compute by hand.
#
# **You will learn**
# - what a convolution computes, and how big its output is (the output-size formula, with worked shapes);
# - how a tensor is laid out in memory (*strides*), and how `as_strided` turns an image into a grid of
#   sliding windows without copying a single number;
# - how `featviz.nn.functional.conv2d` and `maxpool2d` are written that way, checked against PyTorch;
# - how `featviz.nn.Conv2d` stores and initialises its weights (PyTorch's default bound, and He's for deep ReLU
#   networks), and
# - why a convolution needs far fewer parameters than a fully connected layer, and why that helps it generalise.
#
# **Exercises.** Cells marked *Exercise* contain a function for you to write. Until you do, it calls the hidden
# reference solution in `notebooks/solutions.py`, so the notebook runs from top to bottom. Replace that line
# with your own code and re-run the check cell under it; `solutions.show("name")` prints our solution.
#
# **Further reading.** Olah et al., [*Zoom In: An Introduction to Circuits*](https://distill.pub/2020/circuits/zoom-in/),
# Distill 2020, argues that the features these layers learn, and the weights connecting them, can be read
# like code; we follow that thread from notebook 02 on.

# %%
import math
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

warnings.filterwarnings("ignore", message="IProgress not found")   # tqdm without ipywidgets: text bars are fine
import featviz as fv
import checks        # the exercise checks: each says what is wrong, not only that something is
import solutions

FAST = os.environ.get("FEATVIZ_FAST") == "1"  # the test suite runs every notebook in this quick mode
torch.manual_seed(0)
print("fast mode" if FAST else "full mode", "| torch", torch.__version__)

# %% [markdown]
# ## 1. What a convolution computes
#
# A convolution slides a small **kernel** (a block of learned weights) across the input. At every position it
# multiplies the kernel with the patch of input underneath, element by element, and adds everything up: one
# number per position. With several input channels the kernel has one slice per channel and the sum runs
# over all of them, so each output number is a sum of `in_channels × kernel_height × kernel_width` products.
# Each **output channel** has its own kernel.
#
# Compared with a linear layer, where every output looks at every input, a convolution builds in a prior of
# **locality** (an output only sees a small patch) and **weight sharing** (the same kernel is used everywhere).
#
# (Deep-learning libraries actually compute a *cross-correlation*: the kernel is not flipped. Everything below,
# PyTorch included, uses that convention.)
#
# Let us compute one output value by hand. The image is a dark square on the left and a bright one on the right;
# the kernel responds to a step from dark (left) to bright (right), i.e. a vertical edge.

# %%
image = torch.zeros(1, 1, 6, 6)          # (B, C, H, W): one greyscale 6x6 image
image[..., 3:] = 1.0                      # right half bright: a vertical edge between columns 2 and 3
kernel = torch.tensor([[-1.0, 0.0, 1.0]] * 3).reshape(1, 1, 3, 3)   # (out, in, kh, kw)

out = F.conv2d(image, kernel)            # PyTorch's convolution, no padding, stride 1 -> (1, 1, 4, 4)
row, col = 1, 1                           # output position; its patch is rows 1..3, columns 1..3
patch = image[0, 0, row:row + 3, col:col + 3]
by_hand = (patch * kernel[0, 0]).sum()
print(f"by hand: {by_hand.item():.1f}   torch: {out[0, 0, row, col].item():.1f}")
assert torch.isclose(by_hand, out[0, 0, row, col])

fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
panels = [(image[0, 0], "input (6x6)", "gray"), (kernel[0, 0], "kernel (3x3)", "RdBu_r"),
          (out[0, 0], "output (4x4)", "RdBu_r")]
for ax, (data, title, cmap) in zip(axes, panels):
    lim = data.abs().max().item()
    im = ax.imshow(data, cmap=cmap, vmin=-lim if cmap == "RdBu_r" else 0, vmax=lim)
    for (i, j), v in np.ndenumerate(data.numpy()):
        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=8, color="k" if abs(v) < lim * .6 else "w")
    ax.set(title=title, xlabel="column", ylabel="row", xticks=range(data.shape[1]), yticks=range(data.shape[0]))
axes[0].add_patch(plt.Rectangle((col - .5, row - .5), 3, 3, fill=False, ec="orange", lw=3))
axes[2].add_patch(plt.Rectangle((col - .5, row - .5), 1, 1, fill=False, ec="orange", lw=3))
fig.suptitle("A vertical-edge kernel: the orange patch gives the orange output value")
plt.tight_layout()
plt.show()

# %% [markdown]
# The output is large only where the kernel sits across the edge: the kernel is an **edge detector**. Trained
# networks learn kernels like this one in their first layers (notebook 04 finds them in a real model).
#
# ### Several input channels, and padding
#
# A colour image has three channels, so a kernel has three slices: each slice is laid over its own channel and
# **all** `3 × 3 × 3` products are added into *one* output number. **Padding** adds a border of zeros first, so
# that windows centred on the edge pixels exist too: with `k = 3` and `p = 1` the output is as large as the input.
# Below, a 2-channel 5×5 input, padding 1 (the grey zeros), one 2×3×3 kernel; the orange window gives the orange
# output value, and the sum is checked against PyTorch.

# %%
x2 = torch.arange(50.0).reshape(1, 2, 5, 5) % 7 - 3           # (B, C_in=2, 5, 5): small integers
k2 = torch.tensor([[[0., 1, 0], [1, -4, 1], [0, 1, 0]], [[1., 0, -1], [1, 0, -1], [1, 0, -1]]])[None]  # (1, 2, 3, 3)
padded = F.pad(x2, (1, 1, 1, 1))                                # (1, 2, 7, 7): zeros all round
out2 = F.conv2d(x2, k2, padding=1)                              # (1, 1, 5, 5): same size as the input
r0, c0 = 0, 3                                                   # an output on the top border
terms = [(padded[0, c, r0:r0 + 3, c0:c0 + 3] * k2[0, c]).sum() for c in range(2)]
print(f"output ({r0}, {c0}) = channel 0: {terms[0]:g} + channel 1: {terms[1]:g} = {sum(terms):g}; "
      f"torch: {out2[0, 0, r0, c0]:g}")
assert torch.isclose(sum(terms), out2[0, 0, r0, c0]) and out2.shape[-2:] == x2.shape[-2:]

fig, axes = plt.subplots(1, 5, figsize=(16, 3.6), gridspec_kw={"width_ratios": [7, 7, 3, 3, 5]})
panels = [(padded[0, 0], "input channel 0, padded"), (padded[0, 1], "input channel 1, padded"),
          (k2[0, 0], "kernel slice 0"), (k2[0, 1], "kernel slice 1"), (out2[0, 0], "output (5x5)")]
for ax, (data, title) in zip(axes, panels):
    lim = max(data.abs().max().item(), 1e-6)
    ax.imshow(data, cmap="RdBu_r", vmin=-lim, vmax=lim)
    for (i, j), v in np.ndenumerate(data.numpy()):
        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7)
    ax.set(title=title, xlabel="column", ylabel="row", xticks=range(data.shape[1]), yticks=range(data.shape[0]))
for ax in axes[:2]:
    ax.add_patch(plt.Rectangle((-.5, -.5), 7, 7, fill=False, ec="0.5", lw=6, alpha=0.4))  # the zero border
    ax.add_patch(plt.Rectangle((c0 - .5, r0 - .5), 3, 3, fill=False, ec="orange", lw=3))
axes[4].add_patch(plt.Rectangle((c0 - .5, r0 - .5), 1, 1, fill=False, ec="orange", lw=3))
fig.suptitle("Two input channels, padding 1: one output value = the sum over BOTH channels' 3x3 windows")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. How big is the output?
#
# A convolution has four important settings: the **kernel size** `k`, the **stride** `s` (how far the kernel
# moves each step), the **padding** `p` (how many zeros are added on each side) and the number of **output
# channels**. Along each spatial axis,
#
# $$L_{\text{out}} = \left\lfloor \frac{L_{\text{in}} + 2p - k}{s} \right\rfloor + 1 .$$
#
# Read it as: the padded input has `L_in + 2p` positions, the first window starts at 0, and the last start
# position must leave room for `k` values; in between we step by `s`.
#
# Worked shapes:
#
# | input | kernel `k` | stride `s` | padding `p` | output length | why |
# |---|---|---|---|---|---|
# | 28 | 3 | 1 | 1 | ⌊(28+2−3)/1⌋+1 = **28** | "shape-preserving": `k=3, p=1, s=1` |
# | 28 | 3 | 2 | 1 | ⌊(28+2−3)/2⌋+1 = ⌊13.5⌋+1 = **14** | halves the image |
# | 32 | 5 | 1 | 0 | ⌊(32−5)/1⌋+1 = **28** | no padding shrinks by `k−1` |
# | 7 | 3 | 2 | 0 | ⌊(7−3)/2⌋+1 = **3** | |
# | 224 | 3 | 2 | 1 | ⌊(224+2−3)/2⌋+1 = **112** | the first layer of EfficientNet-Lite0 |
#
# So a 3-channel 28×28 image through a 3×3 convolution with stride 2, padding 1 and 5 output channels goes from
# shape **(3, 28, 28) to (5, 14, 14)**: the channel count is the number of kernels, the spatial size comes from
# the formula.
#
# A handy rule: with `k=3, p=1` the output length is ⌊(L−1)/s⌋+1 = ⌈L/s⌉, which is `L // s` whenever `s`
# divides `L` — a stack of stride-2 3×3 convolutions halves the image each time.
#
# ### Exercise 1 — the output-size formula
# Write `output_size`. The check compares it with the shape PyTorch actually produces.

# %%
def output_size(L_in: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution along one axis."""
    # EXERCISE: replace the next line with the formula above.
    return solutions.output_size(L_in, kernel_size, stride, padding)


# %%
checks.check_output_size(output_size)      # PyTorch's own output shape is the reference
print("Exercise 1: all checks passed")

# %% [markdown]
# The featviz layer agrees with the worked example:

# %%
conv = fv.nn.Conv2d(in_channels=3, out_channels=5, kernel_size=3, stride=2, padding=1)
x = torch.rand(3, 28, 28)
y = conv(x[None])[0]                      # layers take a batch: (1, 3, 28, 28) -> (1, 5, 14, 14)
print(conv)
print(tuple(x.shape), "->", tuple(y.shape))
assert y.shape == (5, 14, 14)

# %% [markdown]
# ## 3. Strides: how a tensor sits in memory
#
# A tensor is a flat block of memory plus two tuples: its **shape** and its **strides**. The stride of a dimension
# says how many elements to skip in memory to move one step along that dimension. Element `x[i, j]` of a 2-D
# tensor lives at memory offset `i * stride[0] + j * stride[1]`.
#
# Many operations (transpose, slicing with a step, `expand`) only change the strides: no data is copied.

# %%
x = torch.arange(12).reshape(3, 4)
print("x =\n", x, "\nshape", tuple(x.shape), "strides", x.stride())
print("x.T strides", x.T.stride(), "- same memory:", x.T.data_ptr() == x.data_ptr())
print("x[:, ::2] strides", x[:, ::2].stride())
i, j = 2, 1
assert x.flatten()[i * x.stride(0) + j * x.stride(1)] == x[i, j]

# %% [markdown]
# `torch.as_strided(size, stride)` lets us choose the shape and strides ourselves. The trick behind a from-scratch
# convolution: choose them so that **the same memory is read many times**, once for every window that covers it.
#
# For a 1-D signal of length 8 and windows of length 3, ask for shape `(6, 3)` and strides `(1, 1)`: moving to the
# next window moves one element in memory, and so does moving within a window. The picture shows which memory
# element each entry of the view reads — the diagonal bands are the overlaps.

# %%
signal = torch.arange(8.0)
windows = signal.as_strided(size=(6, 3), stride=(1, 1))          # (L_out, k): no copy
print(windows)
assert windows.data_ptr() == signal.data_ptr()

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [8, 3]})
axes[0].imshow(signal[None].numpy(), cmap="viridis", vmin=0, vmax=7)
for k in range(8):
    axes[0].text(k, 0, f"{k}", ha="center", va="center", color="w")
axes[0].set(title="memory: the flat buffer of `signal`", xlabel="memory offset", ylabel="buffer", yticks=[],
            xticks=range(8))
axes[1].imshow(windows.numpy(), cmap="viridis", vmin=0, vmax=7)
for (a, b), v in np.ndenumerate(windows.numpy()):
    axes[1].text(b, a, f"{v:g}", ha="center", va="center", color="w")
axes[1].set(title="as_strided((6, 3), (1, 1)):\noffset each entry reads", xlabel="position in window",
            ylabel="window", xticks=range(3), yticks=range(6))
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Exercise 2 — sliding windows with a stride
# Return the windows of length `kernel_size` that start every `stride` elements, as an `as_strided` view
# (no copying, no Python loop). Hint: the step *between* windows is `stride` elements, i.e. `stride * x.stride(0)`
# in memory; the step *within* a window is one element. The length of the first axis is the output-size formula
# with no padding. `Tensor.unfold` is PyTorch's own version; the check compares with it — also on tensors that
# are *not* contiguous (`x[::2]`, a matrix column), whose memory stride is not 1: read it from `x.stride()`.

# %%
def sliding_windows_1d(x: torch.Tensor, kernel_size: int, stride: int = 1) -> torch.Tensor:
    """(L,) -> (L_out, kernel_size), a view of x."""
    # EXERCISE: replace the next line (use x.as_strided).
    return solutions.sliding_windows_1d(x, kernel_size, stride)


# %%
checks.check_sliding_windows_1d(sliding_windows_1d)   # against Tensor.unfold, contiguous or not; must be a view
print("Exercise 2: all checks passed")

# %% [markdown]
# ### Windows over an image
#
# In 2-D, a `(H, W)` image with memory strides `(sH, sW)` has windows of shape `(kh, kw)` starting every `s`
# pixels. The view has shape `(H_out, W_out, kh, kw)` and strides `(sH·s, sW·s, sH, sW)`: the first two axes pick
# the window, the last two walk inside it. Below, a 7×7 image, 3×3 windows, stride 2: each small panel is one
# output pixel and highlights the memory offsets its window reads. Neighbouring windows share a row or column.

# %%
img = torch.arange(49.0).reshape(7, 7)
k, s = 3, 2
sH, sW = img.stride()
H_out = W_out = output_size(7, k, s)
win2d = img.as_strided(size=(H_out, W_out, k, k), stride=(sH * s, sW * s, sH, sW))
print("windows:", tuple(win2d.shape), "| window (1, 2) reads\n", win2d[1, 2])
assert torch.equal(win2d[1, 2], img[2:5, 4:7])

fig, axes = plt.subplots(H_out, W_out, figsize=(8, 8.4))
for (a, b), ax in np.ndenumerate(axes):
    mask = np.zeros((7, 7))
    mask[a * s:a * s + k, b * s:b * s + k] = 1                       # the pixels window (a, b) reads
    ax.imshow(mask, cmap="Oranges", vmin=0, vmax=1.5)
    for (i, j), v in np.ndenumerate(img.numpy()):
        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7, color="k" if mask[i, j] else "0.6")
    ax.set(title=f"output ({a}, {b})", xticks=range(7), yticks=range(7))
    ax.tick_params(labelsize=7)
    if a == H_out - 1:
        ax.set_xlabel("column")
    if b == 0:
        ax.set_ylabel("row")
fig.suptitle("as_strided windows: 3x3, stride 2, on a 7x7 image (numbers = memory offsets)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. A convolution = windows + one `einsum`
#
# With batch and channels, the window view of `x` of shape `(B, C, H, W)` is `(B, C, H_out, W_out, kh, kw)`. Each
# output value is the sum over `C, kh, kw` of window × kernel, for each output channel `o`:
#
# ```
# out[b, o, h, w] = Σ_c Σ_i Σ_j  windows[b, c, h, w, i, j] · weight[o, c, i, j]
# ```
#
# which is exactly `torch.einsum("bchwij,ocij->bohw", windows, weight)`.
#
# ### Exercise 3 — a minimal `conv2d`
# No padding, no bias, the same stride on both axes. Build the 6-D window view with `as_strided` (use
# `x.stride()` for the memory strides — the check also passes a channels-last tensor and a crop, whose strides
# are not those of a fresh tensor of the same shape), then one `einsum`.

# %%
def conv2d_minimal(x: torch.Tensor, weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """(B, C, H, W), (O, C, kh, kw) -> (B, O, H_out, W_out)."""
    # EXERCISE: replace the next line.
    return solutions.conv2d_minimal(x, weight, stride)


# %%
checks.check_conv2d_minimal(conv2d_minimal)      # against F.conv2d, on contiguous and non-contiguous x
print("Exercise 3: all checks passed")

# %% [markdown]
# ### The featviz version
#
# `featviz.nn.functional.conv2d` is the same idea grown up. It pads first (padding is just a bigger input), takes
# the window view with `featviz.nn.functional.windows2d` (the `as_strided` call you just wrote, plus dilation),
# copies the windows once into the memory order a matrix product likes (`im2col`), and finishes with one grouped
# `einsum`. It also handles bias, separate strides per axis, dilation and groups (EfficientNet's depthwise
# convolutions have `groups = channels`). We check it against `torch.nn.functional.conv2d` on several settings,
# including the lesson's 28×28 / k3 / s2 / p1 example.

# %%
import featviz.nn.functional as sf   # the from-scratch functional ops

cases = [  # (input shape, out channels, kernel, stride, padding, groups)
    ((1, 3, 28, 28), 5, 3, 2, 1, 1),
    ((2, 4, 13, 9), 6, (3, 5), (2, 1), (1, 2), 1),
    ((1, 8, 12, 12), 8, 5, 2, 2, 8),      # depthwise, as in EfficientNet
]
for shape, out_ch, k, s, p, g in cases:
    kh, kw = (k, k) if isinstance(k, int) else k
    x = torch.randn(shape)
    w, b = torch.randn(out_ch, shape[1] // g, kh, kw), torch.randn(out_ch)
    ours = sf.conv2d(x, w, b, stride=s, padding=p, groups=g)
    ref = F.conv2d(x, w, b, stride=s, padding=p, groups=g)
    err = (ours - ref).abs().max().item()
    print(f"x{shape} k={k} s={s} p={p} groups={g}: output {tuple(ours.shape)}, max |ours - torch| = {err:.1e}")
    assert ours.shape == ref.shape and err < 1e-4

# %% [markdown]
# ## 5. Max pooling
#
# A max-pooling layer keeps the largest value in each window (per channel — channels are never mixed). It shrinks
# the image and keeps the *strongest* evidence: a "wheel detector" cares whether a wheel is *somewhere* in the
# window, not exactly where. The output size follows the same formula (padding uses −∞, so padded values never win).
#
# ### Exercise 4 — a minimal `maxpool2d`
# Non-overlapping `k × k` windows (stride `k`), no padding, input sides divisible by `k`. Same window view as in
# Exercise 3, then a maximum over the last two axes.

# %%
def maxpool2d_minimal(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H // k, W // k)."""
    # EXERCISE: replace the next line.
    return solutions.maxpool2d_minimal(x, kernel_size)


# %%
checks.check_maxpool2d_minimal(maxpool2d_minimal)   # against F.max_pool2d
print("Exercise 4: all checks passed")

# %% [markdown]
# featviz's `maxpool2d` adds stride, padding and dilation. `fv.nn.MaxPool2d` follows the lesson's defaults
# (stride = kernel size, padding 1). Below: it on a small image with bright dots, against PyTorch.

# %%
for shape, k, s, p in [((1, 3, 28, 28), 3, 2, 1), ((2, 2, 11, 7), 2, 2, 0), ((1, 1, 6, 6), 3, 1, 1)]:
    x = torch.randn(shape)
    ours, ref = sf.maxpool2d(x, k, s, p), F.max_pool2d(x, k, s, p)
    assert torch.equal(ours, ref), f"x{shape} k={k} s={s} p={p}"
print("featviz maxpool2d == torch max_pool2d on all cases")

pool = fv.nn.MaxPool2d(kernel_size=2, padding=0)
dots = torch.zeros(1, 1, 8, 8)
dots[0, 0, [1, 2, 5, 6], [1, 6, 2, 5]] = torch.tensor([1.0, 0.5, 0.8, 0.3])
pooled = pool(dots)
print(pool, ":", tuple(dots.shape), "->", tuple(pooled.shape))
fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
for ax, data, title in [(axes[0], dots, "input (8x8)"), (axes[1], pooled, "after MaxPool2d(2): 4x4")]:
    ax.imshow(data[0, 0], cmap="magma", vmin=0, vmax=1)
    ax.set(title=title, xlabel="column", ylabel="row", xticks=range(data.shape[-1]), yticks=range(data.shape[-2]))
fig.suptitle("Max pooling keeps each window's strongest value")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 6. The `Conv2d` layer and its initialisation
#
# A layer stores its kernels as a parameter `weight` of shape `(out_channels, in_channels, kernel_height,
# kernel_width)` — the same layout as PyTorch, so weights can be loaded either way.
#
# **Initialisation.** Weights start uniformly random in `[−b, b]` with
# $b = 1/\sqrt{N_{in}}$, where $N_{in}$ = `in_channels × kernel_height × kernel_width`: **PyTorch's default**
# for `nn.Conv2d`. (PyTorch writes it as `kaiming_uniform_(w, a=√5)`; with $a = \sqrt 5$ Kaiming's formula gives
# $1/\sqrt{N_{in}}$. In this notebook "He's bound" is the other Kaiming bound, $\sqrt{6/N_{in}}$, below.) Why
# that product? Each output value is a sum of exactly that many products, just as a
# linear layer's output is a sum of `in_features` products. Scaling by $1/\sqrt{N_{in}}$ keeps the output's size
# from growing with the number of terms — but it does **not** keep a deep ReLU network's signal alive: we measure
# that right after the exercise.
#
# ### Exercise 5 — the weight of a `Conv2d`
# Fill in `__init__`: create `self.weight` as an `nn.Parameter` with the right shape and values drawn uniformly
# from `[−b, b]` with PyTorch's default $b = 1/\sqrt{N_{in}}$, so that your layer starts like `nn.Conv2d`
# (hint: `2 * torch.rand(...) - 1` is uniform in `[−1, 1]`). The check draws a large layer and tests the bound,
# the centre and that the values are really uniform.

# %%
class MyConv2d(nn.Module):
    """Same as torch.nn.Conv2d with bias=False and a square kernel."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        # EXERCISE: replace the next line — define and initialise self.weight.
        self.weight = solutions.conv2d_weight(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        keys = ["in_channels", "out_channels", "kernel_size", "stride", "padding"]
        return ", ".join(f"{key}={getattr(self, key)}" for key in keys)


# %%
checks.check_conv2d_weight(MyConv2d)   # bound 1/sqrt(N_in), centred, uniform (not normal), a parameter
mine = MyConv2d(24, 12, kernel_size=3, stride=2, padding=1)
ref = nn.Conv2d(24, 12, kernel_size=3, stride=2, padding=1, bias=False)
bound = 1 / math.sqrt(24 * 3 * 3)
ref.load_state_dict(mine.state_dict())          # same layout as torch: the state dict loads as is
x = torch.randn(2, 24, 16, 16)
assert torch.allclose(mine(x), ref(x), atol=1e-5)
print("Exercise 5: all checks passed —", mine)

# %% [markdown]
# `featviz.nn.Conv2d` is this layer with the rest of PyTorch's options (bias, pairs, dilation, groups, asymmetric
# padding). Its weights follow the same rule, and so do PyTorch's. The histograms should be flat between the dashed
# lines at ±b:

# %%
fv_conv = fv.nn.Conv2d(24, 12, kernel_size=3, stride=2, padding=1)
torch_conv = nn.Conv2d(24, 12, kernel_size=3, stride=2, padding=1, bias=False)
print(fv_conv, "| bound b = 1/sqrt(24*3*3) =", round(bound, 4))
assert fv_conv.weight.abs().max() <= bound

fig, ax = plt.subplots(figsize=(7, 3.5))
bins = np.linspace(-1.2 * bound, 1.2 * bound, 41)
ax.hist(fv_conv.weight.detach().flatten(), bins=bins, alpha=0.6, label="featviz.nn.Conv2d")
ax.hist(torch_conv.weight.detach().flatten(), bins=bins, alpha=0.6, label="torch.nn.Conv2d")
for v in (-bound, bound):
    ax.axvline(v, ls="--", c="k")
ax.set(title="Initial weights of a 24→12, 3x3 convolution: uniform in ±1/sqrt(24·3·3)",
       xlabel="weight value", ylabel="number of weights")
ax.legend()
plt.show()

# %% [markdown]
# ### Does the signal survive ten layers? An experiment
#
# Push random images through 10 convolutions (16 → 16 channels, 3×3, padding 1), each followed by a ReLU, and
# measure the standard deviation of the signal after every layer. Two initialisations:
#
# - PyTorch's default bound $b = 1/\sqrt{N_{in}}$ (the rule above). A uniform weight in $[-b, b]$ has variance
#   $b^2/3 = 1/(3 N_{in})$, so a sum of $N_{in}$ terms has about $1/3$ of its input's second moment, and the ReLU
#   keeps half of that: each layer multiplies the signal's power by about $1/6$.
# - **He's bound** for ReLU networks, $b = \sqrt{6/N_{in}}$ (`kaiming_uniform_(w, nonlinearity="relu")`): weight
#   variance $2/N_{in}$, which cancels both factors (He et al. 2015, *Delving Deep into Rectifiers*).
#
# *Predict before you run:* after 10 layers, roughly how small is the signal with the default bound?

# %%
def signal_std_through_layers(bound_fn, n_layers: int = 10, channels: int = 16, seed: int = 0) -> list[float]:
    """Std of the activations after each of n_layers ReLU(conv3x3) layers, weights uniform in +-bound_fn(N_in)."""
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(8, channels, 32, 32, generator=gen)           # (B, C, H, W), std 1
    n_in = channels * 3 * 3
    stds = []
    for _ in range(n_layers):
        w = bound_fn(n_in) * (2 * torch.rand(channels, channels, 3, 3, generator=gen) - 1)
        h = F.relu(F.conv2d(h, w, padding=1))
        stds.append(h.std().item())
    return stds


inits = {"default: 1/sqrt(N_in)": lambda n: 1 / math.sqrt(n), "He: sqrt(6/N_in)": lambda n: math.sqrt(6 / n)}
stds = {name: signal_std_through_layers(fn) for name, fn in inits.items()}
fig, ax = plt.subplots(figsize=(7, 3.5))
for name, values in stds.items():
    ax.plot(range(1, 11), values, "o-", label=name)
ax.set(yscale="log", title="Signal std through 10 ReLU conv layers (input std 1)", xlabel="layer",
       ylabel="std of the activations (log scale)")
ax.legend()
plt.show()
default_10, he_10 = stds["default: 1/sqrt(N_in)"][-1], stds["He: sqrt(6/N_in)"][-1]
ratio = (default_10 / stds["default: 1/sqrt(N_in)"][0]) ** (1 / 9)
ratio_he = (he_10 / stds["He: sqrt(6/N_in)"][0]) ** (1 / 9)
print(f"after 10 layers the std is {default_10:.1e} with 1/sqrt(N_in) (each layer multiplies it by about "
      f"{ratio:.2f}, close to sqrt(1/6) = {math.sqrt(1 / 6):.2f}) and {he_10:.2f} with He's sqrt(6/N_in) (each "
      f"layer multiplies it by about {ratio_he:.2f})")
assert default_10 < 1e-3 < 0.1 < he_10 < 10, "the experiment should show vanishing vs preserved signals"
assert abs(ratio - math.sqrt(1 / 6)) < 0.1 and ratio_he > 2 * ratio, "the factors quoted in the text"

# %% [markdown]
# So $1/\sqrt{N_{in}}$ makes the output independent of *how many* terms are summed, but through ReLU layers the
# signal still shrinks geometrically; He's $\sqrt{6/N_{in}}$ keeps it at roughly the same scale (it drifts down
# slowly in this 16-channel experiment: the per-layer factors are printed above). (PyTorch keeps the
# smaller default for historical reasons; deep ReLU networks add BatchNorm or residual connections — section 8 —
# or use `nn.init.kaiming_uniform_(w, nonlinearity="relu")`.)
#
# ### Two backends, one layer
#
# Every featviz layer can compute with PyTorch's fast kernels (`"torch"`, the default) or with the from-scratch
# functions of this notebook (`"strided"`). `fv.nn.use_backend` switches for a block of code; the answers agree.

# %%
x = torch.randn(4, 24, 32, 32)
t0 = time.perf_counter()
y_torch = fv_conv(x)
t1 = time.perf_counter()
with fv.nn.use_backend("strided"):
    y_strided = fv_conv(x)
t2 = time.perf_counter()
print(f"max difference {(y_torch - y_strided).abs().max():.1e} | torch {1e3 * (t1 - t0):.1f} ms, "
      f"strided {1e3 * (t2 - t1):.1f} ms")
assert torch.allclose(y_torch, y_strided, atol=1e-4)

# %% [markdown]
# ## 7. Why convolutions generalise better than linear layers
#
# Suppose we want to map a 3×28×28 image to a 5×14×14 feature map. A convolution (3×3, stride 2) uses one 3×3×3
# kernel per output channel. A fully connected layer needs a separate weight for every (input pixel, output pixel)
# pair. Fewer parameters means fewer ways to fit noise in the training set: the convolution can only express
# *local*, *translation-equivariant* maps, which is exactly the structure natural images have. Section 9 tests
# what happens when that structure is taken away.
#
# ### Exercise 6 — count parameters

# %%
def n_params_conv(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    # EXERCISE: replace the next line.
    return solutions.n_params_conv(in_channels, out_channels, kernel_size, bias)


def n_params_linear(in_features: int, out_features: int, bias: bool = True) -> int:
    # EXERCISE: replace the next line.
    return solutions.n_params_linear(in_features, out_features, bias)


# %%
checks.check_n_params(n_params_conv, n_params_linear)   # against the layers' own parameter counts
print("Exercise 6: all checks passed")

# %%
layers = {  # layer: number of parameters
    "Conv2d 3→5, 3x3, s2": n_params_conv(3, 5, 3),
    "Linear 3·28·28 → 5·14·14": n_params_linear(3 * 28 * 28, 5 * 14 * 14),
    "Conv2d 32→64, 3x3 (112x112 maps)": n_params_conv(32, 64, 3),
    "Linear 32·112·112 → 64·112·112": n_params_linear(32 * 112 * 112, 64 * 112 * 112),
}
for name, n in layers.items():
    print(f"{name:34s} {n:>22,d} parameters")

fig, ax = plt.subplots(figsize=(8, 3.5))
ax.barh(list(layers), list(layers.values()), color=["tab:blue", "tab:red"] * 2)
ax.set_xscale("log")
ax.invert_yaxis()
ax.set(title="Same input and output shape, very different parameter counts",
       xlabel="number of parameters (log scale)", ylabel="layer")
plt.tight_layout()
plt.show()

# %% [markdown]
# The linear layer at 224 px would need about 3 × 10¹¹ weights — more than a terabyte of memory — while the
# convolution needs 18 496.
#
# Weight sharing also gives **translation equivariance**: shift the input, and the output shifts the same way.
# A cat's ear is detected by the same kernel wherever it appears. Check it (away from the borders, where padding
# differs):

# %%
conv = fv.nn.Conv2d(3, 4, kernel_size=3, padding=1)
x = torch.randn(1, 3, 20, 20)
shifted = torch.roll(x, shifts=(3, 5), dims=(2, 3))
lhs = conv(shifted)
rhs = torch.roll(conv(x), shifts=(3, 5), dims=(2, 3))
inner = (slice(None), slice(None), slice(4, -1), slice(6, -1))       # skip the rows/columns that wrapped around
print("max |conv(shift(x)) - shift(conv(x))| away from borders:", f"{(lhs - rhs)[inner].abs().max():.1e}")
assert torch.allclose(lhs[inner], rhs[inner], atol=1e-5)

# %% [markdown]
# **A caveat: stride.** A stride-2 convolution computes every second window only. Shift the input by 2 px and its
# output shifts by 1; shift it by 1 px and the output windows land *between* the old ones — the output is not a
# shifted copy of anything. Equivariance holds only for shifts that are multiples of the stride (the same goes for
# pooling), which is why a deep network's response can change when an object moves by one pixel.

# %%
conv_s2 = fv.nn.Conv2d(3, 4, kernel_size=3, stride=2, padding=1)
out = conv_s2(x)                                                       # (1, 4, 10, 10)
inner_s2 = (slice(None), slice(None), slice(3, -1), slice(3, -1))
err = {}
for shift in (2, 1):
    y = conv_s2(torch.roll(x, shifts=(shift, shift), dims=(2, 3)))
    best = min((y - torch.roll(out, shifts=(a, b), dims=(2, 3)))[inner_s2].abs().max().item()
               for a in (0, 1) for b in (0, 1))                        # the best whole-pixel shift of the output
    err[shift] = best / out[inner_s2].abs().max().item()
    print(f"stride 2, input shifted by {shift} px: the output differs from the nearest shifted copy of the "
          f"original output by {err[shift]:.1%} of its largest value")
assert err[2] < 1e-5 < 0.1 < err[1], "the text above: equivariant for a shift of 2 px, not of 1 px"

# %% [markdown]
# ## 8. Shape-preserving convolutions and skip connections
#
# A **residual block** (ResNet; EfficientNet's blocks too) computes `x + f(x)`: the block only learns a
# correction, and the signal — and its gradient — also flows along the identity path, which is what makes networks
# of 50 or 100 layers trainable. The sum needs `f(x)` to have **exactly** the shape of `x`. So the convolutions
# inside use stride 1 and "same" padding, and the number of channels comes back to where it started.
#
# ### Exercise 7 — "same" padding
# Return the padding that keeps a stride-1 convolution's output as large as its input, for an odd `kernel_size`
# and a `dilation` (a dilated kernel has gaps of `dilation − 1` pixels between its taps, so it spans
# `dilation · (kernel_size − 1) + 1` pixels).

# %%
def same_padding(kernel_size: int, dilation: int = 1) -> int:
    # EXERCISE: replace the next line.
    return solutions.same_padding(kernel_size, dilation)


# %%
checks.check_same_padding(same_padding)
print("Exercise 7: all checks passed")

# %% [markdown]
# With it, a residual block is three lines — and a convolution that changes the shape cannot be added to its input:

# %%
class Residual(nn.Module):
    """x + conv2(relu(conv1(x))): both convolutions keep the shape (stride 1, same padding, C -> C)."""

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        p = same_padding(kernel_size)
        self.conv1 = fv.nn.Conv2d(channels, channels, kernel_size, padding=p)
        self.conv2 = fv.nn.Conv2d(channels, channels, kernel_size, padding=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


x = torch.randn(2, 8, 14, 14)
print("residual block:", tuple(x.shape), "->", tuple(Residual(8, 5)(x).shape))
try:
    x + fv.nn.Conv2d(8, 8, 3, stride=2, padding=1)(x)                # a stride-2 conv halves the map
except RuntimeError as err:
    print("x + stride-2 conv(x):", str(err).split("\n")[0])
# Through a stack of residual blocks the signal keeps its scale even with the default (small) init of section 6:
h = torch.randn(8, 16, 32, 32)
for _ in range(10):
    h = Residual(16)(h)
print(f"std after 10 residual blocks (default init): {h.std().item():.2f} (the input's was 1.00)")
assert 0.5 < h.std().item() < 5

# %% [markdown]
# When a block must change the shape (the first block of an EfficientNet stage halves the map and changes the
# channel count), the skip connection is dropped or gets its own 1×1 strided convolution to match.
#
# ## 9. Predict, then check: shuffled pixels, CNN vs MLP
#
# Take a fixed random permutation of the 144 pixel positions of 12×12 images and apply it to **every** image,
# training and test alike. No information is lost — the permutation can be undone — but neighbouring pixels are no
# longer neighbours.
#
# The task: is the short bar in a noisy image horizontal or vertical (anywhere in the image)? Two models: a small
# CNN (two 3×3 convolutions, a global max-pool, a linear read-out) and an MLP (one hidden layer of 64). Both are
# trained on the same 2048 images (1024 in fast mode): enough for the MLP, which must learn the bar at every
# position separately, to learn the task too — a comparison with a model that never learned it would prove
# nothing.
#
# **Predict before you run**, and write your prediction down: which model's test accuracy changes when the pixels
# are shuffled, and by how much? Why?
#
# ### Exercise 8 — shuffle the pixels, and train
# `permute_pixels(images, perm)`: output pixel `i` (row-major over H, W) is input pixel `perm[i]`, the same for
# every image and channel. `train(model, x, y, steps, lr)`: full-batch Adam on the cross-entropy, returning the loss
# of every step (remember `zero_grad`).

# %%
def permute_pixels(images: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W), (H*W,) -> (B, C, H, W)."""
    # EXERCISE: replace the next line.
    return solutions.permute_pixels(images, perm)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> list[float]:
    # EXERCISE: replace the next line (about 10 lines: an optimizer, then zero_grad / loss / backward / step).
    return solutions.train(model, x, y, steps, lr)


# %%
checks.check_permute_pixels(permute_pixels)
checks.check_train(train)
print("Exercise 8: all checks passed")


# %%
def bars(n: int, size: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n noisy images (n, 1, size, size) with one 5-px bar; label 0 = horizontal, 1 = vertical."""
    gen = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(n, 1, size, size, generator=gen)
    y = torch.randint(2, (n,), generator=gen)
    corners = torch.randint(0, size - 5, (n, 2), generator=gen)
    for i, (r, c) in enumerate(corners.tolist()):
        if y[i] == 0:
            x[i, 0, r + 2, c:c + 5] += 1.0
        else:
            x[i, 0, r:r + 5, c + 2] += 1.0
    return x, y


def make(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "CNN":
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                             nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    return nn.Sequential(nn.Flatten(), nn.Linear(12 * 12, 64), nn.ReLU(), nn.Linear(64, 2))


x_train, y_train = bars(1024 if FAST else 2048, seed=0)
x_test, y_test = bars(500 if FAST else 2000, seed=1)
perm = torch.randperm(12 * 12, generator=torch.Generator().manual_seed(2))
accuracy = {}
for kind in ["CNN", "MLP"]:
    for shuffled in [False, True]:
        model = make(kind)
        xtr, xte = (permute_pixels(x_train, perm), permute_pixels(x_test, perm)) if shuffled else (x_train, x_test)
        if kind == "MLP" and shuffled:      # the same initial function: permute the first layer's input weights
            with torch.no_grad():
                model[1].weight.copy_(model[1].weight[:, perm])
        train(model, xtr, y_train, steps=100 if FAST else 150, lr=1e-2)
        with torch.no_grad():
            accuracy[kind, shuffled] = (model(xte).argmax(1) == y_test).float().mean().item()

fig, axes = plt.subplots(1, 3, figsize=(12, 3.3), gridspec_kw={"width_ratios": [1, 1, 2]})
axes[0].imshow(x_test[0, 0], cmap="gray")
axes[0].set(title=f"a test image (label {int(y_test[0])})", xlabel="column", ylabel="row")
axes[1].imshow(permute_pixels(x_test, perm)[0, 0], cmap="gray")
axes[1].set(title="the same, pixels shuffled", xlabel="column", ylabel="row")
for k, shuffled in enumerate([False, True]):
    axes[2].bar([j + 0.4 * k for j in range(2)], [accuracy["CNN", shuffled], accuracy["MLP", shuffled]],
                width=0.4, label="shuffled pixels" if shuffled else "original pixels")
axes[2].axhline(0.5, ls="--", c="gray", label="chance")
axes[2].set_xticks([0.2, 1.2], ["CNN", "MLP"])
axes[2].set(title="Test accuracy", ylabel="accuracy", ylim=(0, 1.05))
axes[2].legend(fontsize=7)
plt.tight_layout()
plt.show()
for kind in ["CNN", "MLP"]:
    print(f"{kind}: test accuracy {accuracy[kind, False]:.1%} on original pixels, {accuracy[kind, True]:.1%} "
          f"on shuffled pixels")
assert accuracy["MLP", False] == accuracy["MLP", True], "an MLP with permuted first-layer weights is the same model"
assert accuracy["MLP", False] > 0.8, "the MLP should learn the task on original pixels (the text above)"
drop = accuracy["CNN", False] - accuracy["CNN", True]
print(f"shuffling costs the CNN {100 * drop:.1f} points and the MLP none; on shuffled pixels the MLP leads the CNN "
      f"by {100 * (accuracy['MLP', True] - accuracy['CNN', True]):+.1f} points")
assert accuracy["CNN", False] > accuracy["MLP", False], "the text below: the CNN is the more accurate on original pixels"
assert drop > 0.15 and accuracy["MLP", True] > accuracy["CNN", True], "the text below"

# %% [markdown]
# The MLP's accuracy is *identical* with and without shuffling: its first layer gives every pixel its own weight,
# so a permutation of the pixels is just a permutation of those weights — the same function, trained the same way
# (we started it from the correspondingly permuted weights, so even the training run is the same). The CNN's
# locality and weight sharing are an assumption about images — neighbouring pixels belong together, and the same
# pattern means the same thing anywhere. On the original pixels that assumption is true and the CNN is the more
# accurate of the two; on shuffled pixels it describes nothing real, the CNN's accuracy drops,
# and the MLP, which assumed nothing, now does better (printed above). Was your prediction right?
#
# ## 10. A convolution explorer
#
# Change the kernel size, stride, padding and channels and see the output shape, the padded input with the window
# of one output pixel, and the `as_strided` view's shape and strides. In Jupyter with `ipywidgets` installed
# (`pip install featviz[widgets]`) the sliders are live (second cell). A widget needs a running kernel, so an
# exported HTML page cannot show it: the first cell draws the static figure for the values given.

# %%
conv_explorer = fv.viz.explore_conv(size=7, kernel_size=3, stride=2, padding=1, in_channels=2, out_channels=3)
conv_explorer.figure(row=1, col=1)    # the static view: what an exported page or a run without widgets shows
plt.show()

# %%
conv_explorer                        # live sliders in Jupyter with ipywidgets; nothing more on an exported page

# %% [markdown]
# ## Summary
#
# - A convolution is a sum of `in_channels × kh × kw` products per output value, with one kernel per output channel;
#   its output length is ⌊(L + 2p − k)/s⌋ + 1 (28×28, k3, s2, p1 → 14×14).
# - Strides describe how a tensor sits in memory; `as_strided` builds every sliding window as a view, and one
#   `einsum` (or a `max`) turns the windows into a convolution (or a max-pool). featviz's `conv2d`/`maxpool2d` match
#   PyTorch's.
# - `Conv2d` weights are `(out, in, kh, kw)`, uniform in ±1/√(in·kh·kw) (PyTorch's default,
#   `kaiming_uniform_(a=√5)`); through ten ReLU layers that bound shrinks the signal geometrically, He's √(6/N_in)
#   keeps it at roughly the same scale (measured above).
# - Residual blocks need shape-preserving convolutions (stride 1, padding `(k − 1)/2`).
# - Locality and weight sharing cost orders of magnitude fewer parameters than a linear layer — and they are an
#   assumption about images: shuffle the pixels and the CNN loses its advantage, while an MLP does not
#   notice.
#
# **Next:** `02_hooks_and_activations.ipynb` opens up a trained network and looks at what its convolutions
# respond to. For what those learned features turn out to be — edge, curve and eventually object detectors —
# read Olah et al., [*Zoom In*](https://distill.pub/2020/circuits/zoom-in/) (Distill 2020) and
# [*An Overview of Early Vision in InceptionV1*](https://distill.pub/2020/circuits/early-vision/) (Distill 2020).
