# %% [markdown]
# # 05 · Attribution methods: which pixels mattered?
#
# Feature visualization (notebook 03) asks what a channel *wants* to see. **Attribution** asks about one particular
# input: *which pixels of this photo made the model say "espresso"?* Each method gives a map over the image, one
# number per pixel. They are easy to compute — and easy to misread.
#
# **You will learn**
# - three gradient-based methods: **saliency** (the gradient), **gradient × input**, and **integrated gradients**;
# - to write integrated gradients yourself and check it against [captum](https://captum.ai) (timing included);
# - two well-known pitfalls: **saturation** (a gradient can be zero where a feature matters) and the choice of
#   **baseline** (a black baseline makes dark pixels invisible).
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
    m = attr.abs().sum(0)
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
gxi = grad_times_input(x_all[:1], target)
ref = InputXGradient(f).attribute(x_all[:1], target=target)
assert gxi.shape == ref.shape, f"shape {tuple(gxi.shape)}, captum gives {tuple(ref.shape)}"
assert torch.allclose(gxi, ref, atol=1e-6), "differs from captum's InputXGradient"
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
# Its key property is **completeness**: the attributions add up to $f_c(x) - f_c(x')$, the whole change of the
# logit between baseline and photo. We approximate the integral with `n_steps` points at the middle of equal
# intervals ($\alpha = (k + ½)/n$ for $k = 0 … n-1$), evaluated in batches.
#
# ### Exercise 2 — integrated gradients
# Fill in `integrated_gradients`. The check verifies completeness and compares with captum
# (`method="riemann_middle"` uses the same points).

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
assert ig.shape == x_all[:1].shape
print(f"sum of attributions {ig.sum().item():.3f} vs f(x) - f(baseline) = {delta:.3f}")
assert abs(ig.sum().item() - delta) < 0.25 * abs(delta), "completeness: the attributions should add up (roughly)"

ig_captum = IntegratedGradients(f).attribute(x_all[:1], baselines=black, target=target, n_steps=N_STEPS,
                                             method="riemann_middle", internal_batch_size=8)
err = ((ig - ig_captum).norm() / ig_captum.norm()).item()
print(f"relative difference from captum (L2 norm): {err:.1e}")
assert err < 1e-3, "differs from captum's IntegratedGradients(method='riemann_middle')"
print("Exercise 2: all checks passed")

# %% [markdown]
# ### Ours and captum's, side by side
#
# Same numbers, same cost: both spend `n_steps` forward and backward passes, in batches of 8. We time each twice
# and keep the faster run. (captum's default integration rule, Gauss–Legendre, places its points differently; the
# second plot compares how quickly each approaches completeness as the number of steps grows.)

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

steps_grid = [2, 4, 8] if FAST else [4, 8, 16, 32, 64]
errors = {"ours (midpoint)": [], "captum gausslegendre": []}
for n in steps_grid:
    a = integrated_gradients(x_all[:1], target, black, n_steps=n)
    b = IntegratedGradients(f).attribute(x_all[:1], baselines=black, target=target, n_steps=n, internal_batch_size=8)
    errors["ours (midpoint)"].append(abs(a.sum().item() - delta))
    errors["captum gausslegendre"].append(abs(b.sum().item() - delta))
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, errs in errors.items():
    ax.plot(steps_grid, errs, "o-", label=name)
ax.set(xscale="log", yscale="log", title="Completeness error of integrated gradients",
       xlabel="number of steps", ylabel="|sum of attributions − (f(x) − f(x'))|")
ax.set_xticks(steps_grid, [str(n) for n in steps_grid])
ax.minorticks_off()
ax.legend()
plt.show()

# %% [markdown]
# ### The three maps

# %%
for k, p in enumerate(photos):
    xi, ti = x_all[k:k + 1], int(targets[k])
    maps = {
        "saliency": Saliency(f).attribute(xi, target=ti)[0],
        "gradient × input": grad_times_input(xi, ti)[0],
        "integrated gradients": (ig if k == 0 else integrated_gradients(xi, ti, black, N_STEPS))[0],
    }
    show_maps(xi[0], maps, f"Attribution of '{model.labels[ti]}' on '{p}'")

# %% [markdown]
# Saliency is noisy and speckled: the gradient at a single point varies wildly from pixel to pixel. Gradient ×
# input and IG are sharper and concentrate on the object, but they differ in detail — which one is "right" is
# exactly the question the pitfalls below make hard.
#
# ## 4. Pitfall: saturation
#
# Scale the photo from black ($\alpha = 0$) to itself ($\alpha = 1$) and watch the class logit and the size of
# its gradient. Typically the logit rises early and then levels off: by the time we reach the real photo, the
# network is *saturated* — small changes hardly matter any more, so the gradient is small, even though the image
# content is what produced the high logit. Saliency and gradient × input only look at $\alpha = 1$; IG integrates
# over the whole path, including the part where the logit was still rising.

# %%
alphas = torch.linspace(0, 1, 9 if FAST else 21)
path = alphas[:, None, None, None] * x_all[:1]                  # (A, 3, H, W): black -> photo
path.requires_grad_(True)
logits_path = f(path)[:, target]
grads_path, = torch.autograd.grad(logits_path.sum(), path)
grad_norm = grads_path.flatten(1).norm(dim=1)

fig, ax1 = plt.subplots(figsize=(7, 3.6))
ax1.plot(alphas, logits_path.detach(), "o-", c="tab:blue")
ax1.set(title=f"Along the path black → '{photos[0]}': the logit saturates, the gradient shrinks",
        xlabel="α (image = α · photo)", ylabel=f"logit '{model.labels[target]}'")
ax1.yaxis.label.set_color("tab:blue")
ax2 = ax1.twinx()
ax2.plot(alphas, grad_norm, "s--", c="tab:red")
ax2.set_ylabel("‖gradient‖", color="tab:red")
plt.tight_layout()
plt.show()
half = len(alphas) // 2
print(f"logit gained in the first half of the path: {logits_path[half] - logits_path[0]:.2f}, "
      f"second half: {logits_path[-1] - logits_path[half]:.2f}")

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

# %% [markdown]
# With a black baseline the darkest pixels receive far less than their share of attribution: they are invisible to
# the method, not necessarily to the model.
#
# ## Summary
#
# - **Saliency** = |gradient|: cheap, noisy, measures sensitivity rather than contribution.
# - **Gradient × input**: a first-order contribution; exact only for linear models.
# - **Integrated gradients**: adds up exactly (completeness) to $f(x) - f(x')$; our 20-line version matches captum's.
# - **Pitfalls**: gradients vanish where the network saturates; every IG map answers "compared with which
#   baseline?" — a black baseline cannot credit black pixels.
# - Attribution is a hypothesis about *this* input, to be tested with interventions (the ablations of notebooks 02
#   and 04), not a proof.
