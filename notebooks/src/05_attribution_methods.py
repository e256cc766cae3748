# %% [markdown]
# # 05 · Attribution methods: which pixels mattered?
#
# **Level:** intermediate · **Time:** about 75 minutes to work through, 4 exercises; running it takes a few
# minutes on a laptop CPU (1–3 minutes with `FEATVIZ_FAST=1`).
#
# **Setup:** install featviz with the notebook extras (`pip install -e ".[dev]"` in the repository), start
# Jupyter in the `notebooks/` folder (the exercise helpers `checks.py` and `solutions.py` live there) and run
# the first code cell. `FEATVIZ_FAST=1` runs a quick version (fewer steps, smaller images), as the tests do.
#
# Feature visualization (notebook 03) asks what a channel *wants* to see. **Attribution** asks about one particular
# input: *which pixels of this photo made the model say "espresso"?* Each method gives a map over the image, one
# number per pixel. They are easy to compute — and easy to misread.
#
# **You will learn**
# - three gradient-based methods: **saliency** (the gradient), **gradient × input**, and **integrated gradients**;
# - to write integrated gradients yourself and check it against [captum](https://captum.ai) (timing included);
# - two well-known pitfalls: **saturation** (a gradient can be zero where a feature matters) and the choice of
#   **baseline** (a black baseline makes dark pixels invisible);
# - why IG's sum is only approximately complete with few steps, and a step schedule that puts the steps where the
#   logit changes (measured: where it helps and where it does not);
# - **SmoothGrad**, and the **model-randomisation sanity check** (Adebayo et al. 2018): a map that hardly changes
#   when the weights are random explains the image, not the model.
#
# **Further reading.** Sundararajan, Taly & Yan, *Axiomatic Attribution for Deep Networks* (ICML 2017), which
# introduced integrated gradients; Sturmfels, Lundberg & Lee,
# [*Visualizing the Impact of Feature Attribution Baselines*](https://distill.pub/2020/attribution-baselines/)
# (Distill 2020); Olah et al., [*The Building Blocks of Interpretability*](https://distill.pub/2018/building-blocks/)
# (Distill 2018), which combines attribution with the feature visualizations of
# [*Feature Visualization*](https://distill.pub/2017/feature-visualization/) (Distill 2017). Notebook 04 uses the
# same idea *between layers* (`fv.circuits.attribute`).

# %%
import os
import time
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")   # tqdm without ipywidgets: text bars are fine
warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require gradients")  # captum's note

import matplotlib.pyplot as plt
import torch
from captum.attr import InputXGradient, IntegratedGradients, Saliency
from torchvision.transforms.functional import gaussian_blur

import featviz as fv
import checks        # the exercise checks: each says what is wrong, not only that something is
import solutions

FAST = os.environ.get("FEATVIZ_FAST") == "1"  # the test suite runs every notebook in this quick mode
SIZE = 128 if FAST else 224        # image side; the model is trained at 224 but runs at any size
N_STEPS = 8 if FAST else 50        # integration steps for integrated gradients
torch.manual_seed(0)

model = fv.models.efficientnet_lite0()
images, names = fv.data.sample_images(size=SIZE)
photos = ["coffee"] if FAST else ["coffee", "chelsea", "motorcycle"]
x_all = images[[names.index(p) for p in photos]]                 # (P, 3, SIZE, SIZE) in [0, 1]


def f(x: torch.Tensor) -> torch.Tensor:
    """The function we explain: images in [0, 1] -> logits (B, 1000). Normalisation is part of it."""
    return model(model.preprocess(x))


with torch.no_grad():
    targets = f(x_all).argmax(1)                                  # explain the predicted class of each photo
for p, t in zip(photos, targets):
    print(f"{p}: predicted '{model.labels[t]}' at {SIZE} px")


def heat(attr: torch.Tensor) -> torch.Tensor:
    """(3, H, W) attribution -> (H, W) map: absolute value summed over colours, scaled to its 99th percentile."""
    m = attr.detach().abs().sum(0)
    return (m / m.flatten().quantile(0.99).clamp_min(1e-12)).clamp(0, 1)


def show_maps(photo: torch.Tensor, maps: dict, suptitle: str) -> None:
    fig, axes = plt.subplots(1, len(maps) + 1, figsize=(2.8 * (len(maps) + 1), 3.2))
    axes[0].imshow(photo.permute(1, 2, 0))
    axes[0].set(title="input", xlabel="x (px)", ylabel="y (px)")
    for ax, (title, attr) in zip(axes[1:], maps.items()):
        im = ax.imshow(heat(attr), cmap="inferno", vmin=0, vmax=1)
        ax.set(title=title, xlabel="x (px)")
    for ax in axes:
        ax.tick_params(labelsize=6)
    fig.colorbar(im, ax=axes, shrink=0.8, label="|attribution| (scaled)")
    fig.suptitle(suptitle)
    plt.show()


# %% [markdown]
# ## 1. Saliency: the gradient
#
# The simplest attribution: how much would the class logit change if we nudged each pixel? That is the gradient
# of the logit with respect to the input, $\partial f_c / \partial x$. We show its absolute value (Simonyan et al.
# 2014). It is one backward pass.

# %%
x = x_all[:1].clone().requires_grad_(True)                       # (1, 3, H, W)
target = int(targets[0])
logit = f(x)[0, target]
grad, = torch.autograd.grad(logit, x)                            # (1, 3, H, W)
saliency = grad.abs()

captum_saliency = Saliency(f).attribute(x_all[:1], target=target)  # captum returns |gradient| too
print("max |ours - captum| =", f"{(saliency - captum_saliency).abs().max():.1e}")
assert torch.allclose(saliency, captum_saliency, atol=1e-6)

# %% [markdown]
# ## 2. Gradient × input
#
# The gradient says how *sensitive* the logit is to a pixel, not how much the pixel *contributed*. Multiplying by
# the input gives a first-order contribution: for a linear model $f(x) = w \cdot x$ the terms $w_i x_i$ add up
# exactly to $f(x)$.
#
# ### Exercise 1 — gradient × input
# Return `x * ∂f_target/∂x` for a batch of one image. The check compares with captum's `InputXGradient`.

# %%
def grad_times_input(x: torch.Tensor, target: int) -> torch.Tensor:
    """(1, 3, H, W) -> (1, 3, H, W) attribution of the logit of `target`."""
    # EXERCISE: replace the next line (torch.autograd.grad, as in section 1).
    return solutions.grad_times_input(f, x, target)


# %%
checks.check_grad_times_input(grad_times_input, f, x_all[:1], target)   # against captum's InputXGradient
print("Exercise 1: all checks passed")

# %% [markdown]
# ## 3. Integrated gradients
#
# For a deep network, gradient × input is only a first-order approximation. **Integrated gradients** (IG) walks
# along a straight line from a **baseline** image $x'$ (e.g. black) to the photo $x$ and averages the gradient along
# the way:
#
# $$\mathrm{IG}_i(x) = (x_i - x'_i) \int_0^1 \frac{\partial f_c}{\partial x_i}\big(x' + \alpha (x - x')\big)\, d\alpha .$$
#
# Its key property is **completeness**: the exact integral adds up to $f_c(x) - f_c(x')$, the whole change of
# the logit between baseline and photo. We approximate the integral with `n_steps` points at the middle of equal
# intervals ($\alpha = (k + ½)/n$ for $k = 0 … n-1$), evaluated in batches — so *our* sum adds up only as well
# as those points sample the path (measured below).
#
# ### Exercise 2 — integrated gradients
# Fill in `integrated_gradients`. The check compares with captum (`method="riemann_middle"` uses the same points)
# for a black, a grey and a noise baseline — a version that ignores `baseline` fails.

# %%
def integrated_gradients(x: torch.Tensor, target: int, baseline: torch.Tensor, n_steps: int = 32,
                         batch_size: int = 8) -> torch.Tensor:
    """(1, 3, H, W) -> (1, 3, H, W) IG attribution of the logit of `target`, midpoint rule."""
    # EXERCISE: replace the next line. Hints: alphas = torch.linspace(0.5 / n_steps, 1 - 0.5 / n_steps, n_steps);
    # build the batch of path images baseline + alpha * (x - baseline); sum their gradients (in chunks of
    # batch_size); multiply by (x - baseline) / n_steps.
    return solutions.integrated_gradients(f, x, target, baseline, n_steps, batch_size)


# %%
black = torch.zeros_like(x_all[:1])
ig = integrated_gradients(x_all[:1], target, black, n_steps=N_STEPS)
with torch.no_grad():
    delta = (f(x_all[:1]) - f(black))[0, target].item()
checks.check_integrated_gradients(integrated_gradients, f, x_all[:1], target, N_STEPS)
print("Exercise 2: all checks passed")
gap = ig.sum().item() - delta
print(f"{N_STEPS} steps: sum of attributions {ig.sum().item():.3f} vs f(x) - f(baseline) = {delta:.3f} — off by "
      f"{abs(gap):.3f} ({abs(gap) / abs(delta):.0%} of the change)")

# %% [markdown]
# ### Ours and captum's, side by side
#
# Same numbers, same cost: both spend `n_steps` forward and backward passes, in batches of 8. We time each twice
# and keep the faster run. (captum's default integration rule, Gauss–Legendre, places its points differently;
# `method="riemann_middle"` makes captum compute the same sum as ours.) Then we measure how the completeness error
# depends on the number of steps, and on *where* the steps are placed.

# %%
def best_time(fn, repeats: int = 2) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


t_ours = best_time(lambda: integrated_gradients(x_all[:1], target, black, n_steps=N_STEPS))
t_captum = best_time(lambda: IntegratedGradients(f).attribute(
    x_all[:1], baselines=black, target=target, n_steps=N_STEPS, method="riemann_middle", internal_batch_size=8))
fig, ax = plt.subplots(figsize=(6, 2.6))
ax.barh(["ours (midpoint)", "captum (riemann_middle)"], [t_ours, t_captum], color=["tab:blue", "tab:orange"])
ax.set(title=f"Integrated gradients, {N_STEPS} steps, one {SIZE}px image",
       xlabel="seconds (one CPU thread)", ylabel="implementation")
plt.tight_layout()
plt.show()
print(f"ours {t_ours:.2f} s, captum {t_captum:.2f} s")

steps_grid = [2, 4, 8, 16] if FAST else [4, 8, 16, 32, 64]


def ig_on_schedule(x, target, baseline, alphas, weights, batch_size=8):
    """IG with any points alphas (n,) and quadrature weights (n,) that sum to 1."""
    total = torch.zeros_like(x)
    for a, w in zip(alphas.split(batch_size), weights.split(batch_size)):
        path = (baseline + a[:, None, None, None] * (x - baseline)).requires_grad_(True)   # (b, 3, H, W)
        (grad,) = torch.autograd.grad(f(path)[:, target].sum(), path)
        total += (grad * w[:, None, None, None]).sum(0, keepdim=True)
    return (x - baseline) * total


# where along the path does the logit change? (no gradients: just the logit on a fine grid of alphas)
grid = torch.cat([torch.zeros(1), torch.logspace(-3, 0, 13 if FAST else 31)])
with torch.no_grad():
    along = torch.cat([f(chunk[:, None, None, None] * x_all[:1]) for chunk in grid.split(8)])[:, target]
change = (along - along[0]) / (along[-1] - along[0])             # fraction of the total change reached
a80 = float(grid[int((change >= 0.8).nonzero()[0])])             # the alpha by which 80% has happened


def equal_change_schedule(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n intervals, each covering an equal share of (half the logit's change + half of alpha): midpoints, widths.

    The logit curve comes from forward passes only (cheap); mixing in alpha keeps flat parts sampled too."""
    cum = 0.5 * change.cummax(0).values.clamp(0, 1) + 0.5 * grid   # increasing from 0 to 1
    targets_u = torch.linspace(0, 1, n + 1)
    idx = torch.searchsorted(cum, targets_u).clamp(1, len(grid) - 1)
    lo, hi = cum[idx - 1], cum[idx]
    t = ((targets_u - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
    edges = grid[idx - 1] + t * (grid[idx] - grid[idx - 1])       # alpha where cum reaches k/n
    edges[0], edges[-1] = 0.0, 1.0
    return (edges[:-1] + edges[1:]) / 2, edges[1:] - edges[:-1]


def equal_schedule(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.linspace(0.5 / n, 1 - 0.5 / n, n), torch.full((n,), 1 / n)


errors = {"equal steps (midpoints)": [], "steps by equal logit change": []}
for n in steps_grid:
    for name, sched in zip(errors, (equal_schedule, equal_change_schedule)):
        a = ig_on_schedule(x_all[:1], target, black, *sched(n))
        errors[name].append(abs(a.sum().item() - delta) / abs(delta))

fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
axes[0].plot(grid[1:], change[1:], "o-")
axes[0].axhline(0.8, ls="--", c="gray")
axes[0].set(xscale="log", title="Where along the path the logit changes", xlabel="α (log scale)",
            ylabel="fraction of f(x) − f(x') reached")
for name, errs in errors.items():
    axes[1].plot(steps_grid, errs, "o-", label=name)
axes[1].set(xscale="log", yscale="log", title="Completeness error of integrated gradients",
            xlabel="number of steps", ylabel="|Σ attributions − Δf| / |Δf|")
axes[1].set_xticks(steps_grid, [str(n) for n in steps_grid])
axes[1].minorticks_off()
axes[1].legend(fontsize=7)
plt.tight_layout()
plt.show()
eq, adaptive = errors["equal steps (midpoints)"], errors["steps by equal logit change"]
print("steps:                      " + "".join(f"{n:>8d}" for n in steps_grid))
for name, errs in errors.items():
    print(f"{name:28s}" + "".join(f"{e:8.1%}" for e in errs))
n_last = steps_grid[-1]
print(f"80% of the logit's change has happened by α = {a80:.3g}; {n_last} equal steps put "
      f"{sum(1 for k in range(n_last) if (k + 0.5) / n_last <= a80)} of their points there.")
print(f"completeness error with {n_last} steps: equal steps {eq[-1]:.1%}, steps by equal logit change "
      f"{adaptive[-1]:.1%} — the adaptive schedule is {'better' if adaptive[-1] < eq[-1] else 'NOT better'} here "
      f"(better at {sum(a < e for a, e in zip(adaptive, eq))} of {len(steps_grid)} step counts)")
if any(later > earlier for earlier, later in zip(eq, eq[1:])):
    print("note: with equal steps the error does not fall monotonically with the number of steps — where the "
          "points happen to land in the steep stretch matters, not only how many there are")

# %% [markdown]
# The sum is complete only when the steps sample the part of the path where the logit changes. From a black
# baseline much of the change can happen in a short stretch of α (the curve on the left, printed above), and
# equal steps then spend most of their points where nothing happens. The adaptive schedule first measures the
# logit along the path with cheap forward passes, then places the intervals so that each covers an equal share
# of the change (mixed half-and-half with equal widths, so flat parts are still sampled); each gradient is
# weighted by its interval's width, so it is still an integral over [0, 1]. Whichever schedule you use, **check
# the completeness error** before trusting a map, and increase the steps until it is small.

# %% [markdown]
# ### The three maps
#
# Under each figure: the **roughness** of each heat map, the mean difference between horizontally neighbouring
# pixels of the scaled map (0 = perfectly smooth) — a number for "noisy and speckled".

# %%
def roughness(attr: torch.Tensor) -> float:
    """Mean |difference| between horizontally neighbouring pixels of the scaled heat map (0 = smooth)."""
    h = heat(attr)
    return (h[:, 1:] - h[:, :-1]).abs().mean().item()


all_maps = {}
roughest = []
for k, p in enumerate(photos):
    xi, ti = x_all[k:k + 1], int(targets[k])
    all_maps[p] = maps = {
        "saliency": Saliency(f).attribute(xi, target=ti)[0],
        "gradient × input": grad_times_input(xi, ti)[0],
        "integrated gradients": (ig if k == 0 else integrated_gradients(xi, ti, black, N_STEPS))[0],
    }
    show_maps(xi[0], maps, f"Attribution of '{model.labels[ti]}' on '{p}'")
    rough = {m: roughness(a) for m, a in maps.items()}
    roughest.append(max(rough, key=rough.get))
    print(f"{p}: roughness " + ", ".join(f"{m} {v:.3f}" for m, v in rough.items()))
n_sal = roughest.count("saliency")
print(f"roughest map: {', '.join(f'{p} {m}' for p, m in zip(photos, roughest))} — saliency is the roughest of the "
      f"three on {n_sal} of {len(photos)} photo(s)")

# %% [markdown]
# Saliency is the gradient at a single point, which can vary wildly from pixel to pixel; the roughness printed
# above says how speckled each map is here. Do gradient × input and IG "concentrate on the object"? Measure it
# instead of reading it off the picture: for photos with a well-defined object we drew its bounding box by eye (below), and compare the share of |attribution| inside the
# box with the share of the image the box covers. (The cat's face fills its photo, so it gets no box.)

# %%
BOXES_224 = {"coffee": (20, 185, 40, 200), "motorcycle": (55, 205, 0, 224)}   # (row0, row1, col0, col1) at 224 px
for p, maps in all_maps.items():
    if p not in BOXES_224:
        continue
    r0, r1, c0, c1 = (round(v * SIZE / 224) for v in BOXES_224[p])
    area = (r1 - r0) * (c1 - c0) / SIZE ** 2
    for method, attr in maps.items():
        m = attr.abs().sum(0)                                    # (H, W)
        inside = (m[r0:r1, c0:c1].sum() / m.sum()).item()
        verdict = "concentrates on the object" if inside > 1.25 * area else "does NOT concentrate on the object"
        print(f"{p:10s} {method:22s}: {inside:5.1%} of |attribution| inside a box covering {area:5.1%} of the "
              f"image (x{inside / area:.2f}) — {verdict}")

# %% [markdown]
# The ratios above are the answer, photo by photo: a method can favour the object on one photo and spread over
# the background on another. "Concentrates on the object" is a claim to measure every time.
#
# ## 4. Pitfall: saturation
#
# Scale the photo from black ($\alpha = 0$) to itself ($\alpha = 1$) and watch the class logit and the size of
# its gradient. Often the logit rises early and then levels off: by the time we reach the real photo, the
# network is *saturated* — small changes hardly matter any more, so the gradient is small, even though the image
# content is what produced the high logit (the numbers printed under the plot say whether that happens here).
# Saliency and gradient × input only look at $\alpha = 1$; IG integrates over the whole path, including the part
# where the logit was still rising.

# %%
alphas = torch.linspace(0, 1, 9 if FAST else 21)
path = alphas[:, None, None, None] * x_all[:1]                  # (A, 3, H, W): black -> photo
path.requires_grad_(True)
logits_path = f(path)[:, target]
grads_path, = torch.autograd.grad(logits_path.sum(), path)
grad_norm = grads_path.flatten(1).norm(dim=1)

fig, ax1 = plt.subplots(figsize=(7, 3.6))
ax1.plot(alphas, logits_path.detach(), "o-", c="tab:blue")
ax1.set(title=f"Along the path black → '{photos[0]}': the logit and the size of its gradient",
        xlabel="α (image = α · photo)", ylabel=f"logit '{model.labels[target]}'")
ax1.yaxis.label.set_color("tab:blue")
ax2 = ax1.twinx()
ax2.plot(alphas, grad_norm, "s--", c="tab:red")
ax2.set_ylabel("‖gradient‖", color="tab:red")
plt.tight_layout()
plt.show()
half = len(alphas) // 2
first, second = (logits_path[half] - logits_path[0]).item(), (logits_path[-1] - logits_path[half]).item()
peak = int(grad_norm.argmax())
print(f"logit gained in the first half of the path: {first:.2f}, second half: {second:.2f}; ‖gradient‖ is "
      f"largest at α = {alphas[peak]:.2f} ({grad_norm[peak]:.3g}) and {grad_norm[-1]:.3g} at the photo "
      f"({grad_norm[-1] / grad_norm[peak]:.0%} of its peak)")
saturated = abs(second) < 0.5 * abs(first) and grad_norm[-1] < 0.5 * grad_norm[peak]
print("here the logit levels off and the gradient at the photo is small: saturated" if saturated else
      "here the path does NOT show saturation (the logit still rises late, or the gradient at the photo is not "
      "small)")

# %% [markdown]
# ## 5. Pitfall: the baseline
#
# IG explains the difference between the photo and the baseline. With a **black** baseline, a black pixel has
# $x_i - x'_i = 0$, so it gets **zero** attribution however important it is — here the dark shadows and background
# around the cup.
# Sturmfels et al. (Distill 2020) compare alternatives; two simple ones are a **blurred** copy of the photo
# (removes edges and texture, keeps colour) and **uniform noise**. Each asks a different question ("compared with
# what?"), so each gives a different map.

# %%
xi = x_all[:1]
baselines = {
    "black": torch.zeros_like(xi),
    "blurred": gaussian_blur(xi, kernel_size=31, sigma=10.0),
    "uniform noise": torch.rand(xi.shape, generator=torch.Generator().manual_seed(0)),
}
attrs = {name: integrated_gradients(xi, target, b, N_STEPS)[0] for name, b in baselines.items()}
show_maps(xi[0], {f"IG, {name} baseline": a for name, a in attrs.items()},
          f"The same method, three baselines ('{photos[0]}')")

brightness = xi[0].mean(0)                                       # (H, W)
dark = brightness <= brightness.flatten().quantile(0.1)          # the darkest 10% of pixels
share = {name: (a.abs().sum(0)[dark].sum() / a.abs().sum()).item() for name, a in attrs.items()}
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(list(share), list(share.values()), color=["k", "tab:blue", "tab:gray"])
ax.axhline(0.1, ls="--", c="tab:red", label="10%: their share of the pixels")
ax.set(title="Share of |attribution| on the darkest 10% of pixels", xlabel="IG baseline",
       ylabel="fraction of total |attribution|")
ax.legend()
plt.show()
print({k: f"{v:.1%}" for k, v in share.items()})
assert share["black"] < share["blurred"], "a black baseline should under-attribute dark pixels"
assert share["black"] < 0.1, "the darkest 10% of pixels should get less than 10% of a black-baseline IG map"

# %%
print(f"with a black baseline the darkest 10% of pixels get {share['black']:.1%} of the attribution, with a blurred "
      f"one {share['blurred']:.1%}")

# %% [markdown]
# With a black baseline the darkest pixels receive less than their share of attribution (printed above): they
# are invisible to the method, not necessarily to the model.

# %% [markdown]
# ## 6. SmoothGrad
#
# The gradient of a deep ReLU network jumps from pixel to pixel. **SmoothGrad** (Smilkov et al. 2017) averages the
# gradient over noisy copies $x + \sigma \varepsilon$, $\varepsilon \sim \mathcal{N}(0, 1)$: the idea is that the
# speckle averages out and the structure the copies share stays. Whether the map really gets smoother is measured
# below with the roughness of section 3.
#
# ### Exercise 3 — SmoothGrad
# Return the mean over `n_samples` of $\partial f_{target} / \partial x$ at $x + \sigma \varepsilon$, drawing the
# noise with `torch.Generator().manual_seed(seed)` (batch the copies). The check uses a function whose answer is
# known: for $f(z) = \sum \sin z$ the average gradient is $\mathbb{E}[\cos(x + \sigma\varepsilon)] = \cos(x)\,
# e^{-\sigma^2/2}$. Like a network's, that gradient changes sign, so the order of "average" and "absolute value"
# matters: average the signed gradients; the heat map takes the absolute value afterwards.

# %%
def smoothgrad(fn, x: torch.Tensor, target: int, n_samples: int = 16, sigma: float = 0.1,
               seed: int = 0) -> torch.Tensor:
    """(1, 3, H, W) -> (1, 3, H, W) mean gradient of fn(.)[:, target] over noisy copies of x."""
    # EXERCISE: replace the next line.
    return solutions.smoothgrad(fn, x, target, n_samples, sigma, seed)


# %%
checks.check_smoothgrad(smoothgrad)
print("Exercise 3: all checks passed")

# %% [markdown]
# ### How much noise, how many samples?
#
# SmoothGrad has two settings. Smilkov et al. add noise of 10–20 % of the input's range (σ = 0.1–0.2 for images in
# [0, 1]) and average about 50 noisy copies; with a handful of copies the average is itself noisy. Below, the same
# photo for three noise levels and two sample counts, each map with its roughness (section 3's measure; saliency's
# is the reference). The sentences under the figure are generated from these numbers.

# %%
N_SG = 16 if FAST else 50                  # copies per map, as Smilkov et al. (fast mode: fewer)
SIGMAS = (0.05, 0.15, 0.3)                 # noise std for images in [0, 1]: 5%, 15%, 30% of the range
COUNTS = (4 if FAST else 8, N_SG)
sg_maps = {(s, n): smoothgrad(f, xi, target, n_samples=n, sigma=s, seed=0)[0] for s in SIGMAS for n in COUNTS}
r_sal = roughness(saliency[0])
r_sg = {key: roughness(m) for key, m in sg_maps.items()}

fig, axes = plt.subplots(len(COUNTS), len(SIGMAS) + 1, figsize=(2.6 * (len(SIGMAS) + 1), 2.8 * len(COUNTS)))
for row, n in enumerate(COUNTS):
    axes[row, 0].imshow(heat(saliency[0]), cmap="inferno", vmin=0, vmax=1)
    axes[row, 0].set_title(f"saliency\nroughness {r_sal:.3f}", fontsize=8)
    for col, s in enumerate(SIGMAS, start=1):
        axes[row, col].imshow(heat(sg_maps[s, n]), cmap="inferno", vmin=0, vmax=1)
        axes[row, col].set_title(f"σ = {s}, {n} copies\nroughness {r_sg[s, n]:.3f}", fontsize=8)
for ax in axes.flat:
    ax.set(xticks=[], yticks=[])
fig.suptitle(f"SmoothGrad |mean gradient| on '{photos[0]}': noise level (columns) and copies (rows)")
plt.tight_layout()
plt.show()

for s in SIGMAS:
    few, many = r_sg[s, COUNTS[0]], r_sg[s, COUNTS[1]]
    change = many / few - 1
    print(f"σ = {s}: roughness {few:.3f} with {COUNTS[0]} copies, {many:.3f} with {COUNTS[1]} ({change:+.0%}) — "
          + ("more copies make it smoother" if change < -0.05 else "more copies make it rougher" if change > 0.05
             else "more copies hardly change it"))
best = min(r_sg, key=r_sg.get)
print(f"smoothest: σ = {best[0]}, {best[1]} copies ({r_sg[best]:.3f}); saliency {r_sal:.3f} — SmoothGrad is "
      + (f"smoother than saliency at {sum(v < r_sal for v in r_sg.values())} of {len(r_sg)} settings"
         if r_sg[best] < r_sal else "NOT smoother than saliency at any setting tried here"))
sg = sg_maps[0.15, N_SG]                   # Smilkov et al.'s setting, used again in section 7

# %% [markdown]
# Read the two effects separately. More copies shrink the part of the map that is sampling noise (the average of
# n noisy gradients fluctuates like $1/\sqrt n$); a larger σ averages the gradient over a wider neighbourhood of
# the photo, which removes speckle but, pushed far, also blurs away the photo's structure. Whether a given σ and n
# make the map smoother than plain saliency is the measurement printed above, not an assumption.

# %% [markdown]
# ## 7. Sanity check: randomise the model
#
# Adebayo et al. ([*Sanity Checks for Saliency Maps*](https://arxiv.org/abs/1810.03292), NeurIPS 2018) asked:
# does the map change when the model's weights are replaced by random ones? A map that looks the same for a trained
# and a random network shows the **image** (its edges, its bright regions), not what the model learned.
# `fv.models.randomized(model)` is the control: the same architecture, every layer re-initialised.
#
# ### Exercise 4 — rank correlation
# Compare two maps by Spearman's rank correlation: Pearson's correlation of the *ranks* of their values (both
# flattened). Ranks make the comparison blind to how each method scales its values.

# %%
def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    # EXERCISE: replace the next line (x.flatten().argsort().argsort() gives the ranks).
    return solutions.rank_correlation(a, b)


# %%
checks.check_rank_correlation(rank_correlation)
print("Exercise 4: all checks passed")

random_model = fv.models.randomized(model, seed=0)


def f_random(x: torch.Tensor) -> torch.Tensor:
    return random_model(random_model.preprocess(x))


def attributions(fn) -> dict:
    return {
        "saliency": Saliency(fn).attribute(xi, target=target)[0],
        "gradient × input": InputXGradient(fn).attribute(xi, target=target)[0],
        "SmoothGrad": smoothgrad(fn, xi, target, n_samples=N_SG, sigma=0.15, seed=0)[0],
        "integrated gradients": IntegratedGradients(fn).attribute(
            xi, baselines=torch.zeros_like(xi), target=target, n_steps=N_STEPS, method="riemann_middle",
            internal_batch_size=8)[0],
    }


trained, randomised = attributions(f), attributions(f_random)
rho = {m: rank_correlation(heat(trained[m]), heat(randomised[m])) for m in trained}
show_maps(xi[0], {f"{m}, random net": a for m, a in randomised.items()},
          f"The same methods on a randomly initialised EfficientNet-Lite0 ('{photos[0]}')")
fig, ax = plt.subplots(figsize=(7, 3))
ax.barh(list(rho), list(rho.values()))
ax.axvline(0.5, ls="--", c="gray")
ax.set(title="Rank correlation of each map: trained vs randomised model", xlabel="Spearman ρ", xlim=(-0.2, 1),
       ylabel="method")
plt.tight_layout()
plt.show()
for m, r in rho.items():
    print(f"{m:22s} ρ = {r:+.2f} — " + ("much of the map survives random weights: it reflects the image"
                                         if r > 0.5 else "the map changes with the weights"))
rho_input = min(rho["gradient × input"], rho["integrated gradients"])
rho_grad = max(rho["saliency"], rho["SmoothGrad"])
print("the two methods that multiply by the input keep more of their map under random weights than the two that "
      f"do not (lowest ρ {rho_input:+.2f} vs highest {rho_grad:+.2f})" if rho_input > rho_grad else
      "multiplying by the input does NOT make the maps more alike here: gradient × input / IG ρ "
      f"{rho['gradient × input']:+.2f} / {rho['integrated gradients']:+.2f}, saliency / SmoothGrad "
      f"{rho['saliency']:+.2f} / {rho['SmoothGrad']:+.2f}")

# %% [markdown]
# Read the numbers above, method by method: where ρ is high, the map would look much the same for a network that
# learned nothing, so its structure cannot be evidence about *this* model. Gradient × input and IG multiply by the
# input, which can carry the image's edges into the map whatever the weights are (the last printed line compares
# them with the two gradient-only methods). (0.5 is a rule of thumb, not a
# test; Adebayo et al. randomise layer by layer from the top and watch the correlation fall.)
#
# ## Summary
#
# - **Saliency** = |gradient|: cheap, measures sensitivity rather than contribution; how speckled it is, and
#   whether SmoothGrad smooths it, is measured (roughness), not assumed.
# - **Gradient × input**: a first-order contribution; exact only for linear models.
# - **Integrated gradients**: the exact integral adds up to $f(x) - f(x')$ (completeness); a Riemann sum with
#   equal steps can be noticeably off (the completeness errors printed in section 3) when the logit changes in a
#   short stretch of the path — measure the error, and put the steps where the change is. Our 20-line version
#   matches captum's, for any baseline.
# - **SmoothGrad** averages gradients over noisy copies; how smooth the map gets depends on the noise level and
#   the number of copies (section 6 measured both). The **model-randomisation check** asks whether a map depends
#   on the trained weights at all.
# - **Pitfalls**: a gradient *can* shrink where the network saturates — section 4 measured whether it does on this
#   photo's path (its printed verdict), so check before blaming saturation; every IG map answers "compared with
#   which baseline?" — a black baseline cannot credit black pixels.
# - Attribution is a hypothesis about *this* input, to be tested with interventions (the ablations of notebooks 02
#   and 04), not a proof.
