"""Hidden solutions to the notebook exercises: one function per exercise, named as in the notebook.

Each exercise cell in a notebook calls the matching function here so that the notebook runs top to
bottom; a student replaces that call with their own code. ``show("name")`` prints a solution when
you want to compare (try first!).

Example:
    >>> import solutions
    >>> solutions.output_size(28, kernel_size=3, stride=2, padding=1)
    14
"""
from __future__ import annotations

import inspect
import math
import sys

import torch
from torch import Tensor, nn

# ----------------------------------------------------------------------------- 01 convolutions


def output_size(L_in: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Length of a convolution's output along one axis: floor((L_in + 2p - k) / s) + 1."""
    return (L_in + 2 * padding - kernel_size) // stride + 1


def sliding_windows_1d(x: Tensor, kernel_size: int, stride: int = 1) -> Tensor:
    """(L,) -> (L_out, kernel_size): window i is x[i*stride : i*stride + kernel_size], no copy."""
    (s,) = x.stride()
    L_out = (x.shape[0] - kernel_size) // stride + 1
    return x.as_strided(size=(L_out, kernel_size), stride=(s * stride, s))


def conv2d_minimal(x: Tensor, weight: Tensor, stride: int = 1) -> Tensor:
    """(B, C, H, W), (O, C, kh, kw) -> (B, O, H', W'); no padding, no bias, square stride."""
    B, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    sB, sC, sH, sW = x.stride()
    H_out, W_out = (H - kh) // stride + 1, (W - kw) // stride + 1
    windows = x.as_strided(size=(B, C, H_out, W_out, kh, kw),
                           stride=(sB, sC, sH * stride, sW * stride, sH, sW))
    return torch.einsum("bchwij,ocij->bohw", windows, weight)


def maxpool2d_minimal(x: Tensor, kernel_size: int) -> Tensor:
    """(B, C, H, W) -> (B, C, H // k, W // k): max over non-overlapping k x k windows (stride k)."""
    B, C, H, W = x.shape
    k = kernel_size
    sB, sC, sH, sW = x.stride()
    windows = x.as_strided(size=(B, C, H // k, W // k, k, k), stride=(sB, sC, sH * k, sW * k, sH, sW))
    return windows.amax(dim=(-2, -1))


def conv2d_weight(in_channels: int, out_channels: int, kernel_size: int) -> nn.Parameter:
    """Kaiming-uniform weight (out, in, k, k) drawn from U(-b, b), b = 1 / sqrt(in * k * k)."""
    bound = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
    return nn.Parameter(bound * (2 * torch.rand(out_channels, in_channels, kernel_size, kernel_size) - 1))


def n_params_conv(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    """Number of parameters of a Conv2d: one (in, k, k) kernel per output channel (+ one bias each)."""
    return out_channels * in_channels * kernel_size * kernel_size + (out_channels if bias else 0)


def n_params_linear(in_features: int, out_features: int, bias: bool = True) -> int:
    """Number of parameters of a Linear layer: one weight per (input, output) pair (+ one bias each)."""
    return in_features * out_features + (out_features if bias else 0)


# ----------------------------------------------------------------------------- 02 hooks


def mean_hook(store: dict, output: Tensor) -> None:
    """Body of a forward hook: store the per-channel mean (B, C) of a (B, C, H, W) output."""
    store["means"] = output.mean(dim=(2, 3))


def direct_contributions(model: nn.Module, pooled: Tensor, class_index: int) -> Tensor:
    """(C,) pooled activations -> (C,) terms of the class logit: pooled[c] * fc.weight[class, c]."""
    return pooled * model.fc.weight[class_index]


def zero_channels(output: Tensor, channels: list[int]) -> Tensor:
    """A copy of a (B, C, H, W) output with ``channels`` set to 0 (the input is left untouched)."""
    out = output.clone()
    out[:, channels] = 0
    return out


# ----------------------------------------------------------------------------- 03 feature visualization


def channel_objective(acts: dict, layer: str, c: int) -> Tensor:
    """(B,) mean of channel ``c`` of ``acts[layer]`` (B, C, H, W) over all positions."""
    return acts[layer][:, c].mean(dim=(1, 2))


def contrast_objective(layer: str, c_up: int, c_down: int):
    """An objective that raises channel ``c_up`` and lowers ``c_down`` of ``layer``."""
    import featviz as fv

    return fv.objectives.channel(layer, c_up) - fv.objectives.channel(layer, c_down)


# ----------------------------------------------------------------------------- 04 circuits


def fold_batchnorm(weight: Tensor, bn: nn.Module) -> tuple[Tensor, Tensor]:
    """Conv weight (O, C, kh, kw) (no bias) followed by eval-mode BatchNorm -> one conv's (weight, bias)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)              # (O,) gamma / sqrt(var + eps)
    return (weight * scale[:, None, None, None]).detach(), (bn.bias - bn.running_mean * scale).detach()


def read_wiring(weights: Tensor, k: int) -> list[tuple[int, int, int, float]]:
    """(C_dst, C_src, kh, kw) -> sorted (src, drow, dcol, weight) of unit k's non-zero kernel entries."""
    ch, cw = weights.shape[-2] // 2, weights.shape[-1] // 2
    return sorted((int(c), int(i) - ch, int(j) - cw, float(weights[k, c, i, j]))
                  for c, i, j in torch.nonzero(weights[k]).tolist())


# ----------------------------------------------------------------------------- 05 attribution


def grad_times_input(f, x: Tensor, target: int) -> Tensor:
    """(1, 3, H, W) -> x * d f(x)[0, target] / dx."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x)[0, target], x)
    return x.detach() * grad


def integrated_gradients(f, x: Tensor, target: int, baseline: Tensor, n_steps: int = 32,
                         batch_size: int = 8) -> Tensor:
    """(1, 3, H, W) -> (x - baseline) * mean over alpha of the gradient at baseline + alpha (x - baseline)."""
    alphas = torch.linspace(0.5 / n_steps, 1 - 0.5 / n_steps, n_steps)  # midpoints of n equal intervals
    total = torch.zeros_like(x)
    for chunk in alphas.split(batch_size):
        path = (baseline + chunk[:, None, None, None] * (x - baseline)).requires_grad_(True)  # (b, 3, H, W)
        (grad,) = torch.autograd.grad(f(path)[:, target].sum(), path)
        total += grad.sum(0, keepdim=True)
    return (x - baseline) * total / n_steps


# ----------------------------------------------------------------------------- helpers


def show(name: str) -> None:
    """Print the source of the solution called ``name``.

    Example:
        >>> show("output_size")   # doctest: +ELLIPSIS
        def output_size(...
    """
    fn = getattr(sys.modules[__name__], name, None)
    if fn is None or name.startswith("_") or name == "show":
        names = [n for n, f in inspect.getmembers(sys.modules[__name__], inspect.isfunction)
                 if f.__module__ == __name__ and n != "show"]
        raise KeyError(f"no solution called {name!r}; solutions are: {', '.join(names)}")
    print(inspect.getsource(fn))
