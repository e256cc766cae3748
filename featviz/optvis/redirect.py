"""Redirected ReLU: (model) -> a scope in which ReLU/ReLU6 modules pass gradient that revives dead inputs.

A channel whose ReLU input is negative everywhere for the starting image has zero gradient, so a
feature visualization of it never moves (a flat grey square). lucid's remedy, written here as a
custom autograd function put on by scoped forward hooks: inside :func:`redirected_relus`, every
``ReLU`` / ``ReLU6`` *module* (torch's or featviz's, found by class name) keeps its forward values
exactly, but its backward, for a batch item through which the ordinary gradient is zero everywhere,
lets through the gradient that would move a negative input up (and, for ReLU6, an input above 6
down). Items where any ordinary gradient gets through keep the ordinary gradient.

Sign convention: ``grad`` is d(loss)/d(output) and the optimiser *descends*, so a negative ``grad``
pushes the input up.

=======  ================  ==================================================
regime   ordinary ReLU      redirected (only for items whose ordinary grad is 0)
=======  ================  ==================================================
x <= lo  0                 grad where grad < 0 (pushes up), else 0
lo<x<hi  grad              grad
x >= hi  0 (ReLU6 only)    grad where grad > 0 (pushes down), else 0
=======  ================  ==================================================

Limitation: only modules are redirected. A ``F.relu`` / ``torch.relu`` / ``x.clamp(min=0)`` call
inside a user's ``forward`` has no module to hook and keeps its ordinary gradient; replace it by an
``nn.ReLU`` attribute to get redirection.

Example:
    >>> net = nn.Sequential(nn.Linear(2, 1), nn.ReLU())
    >>> with redirected_relus(net) as names:
    ...     y = net(torch.ones(1, 2))
    >>> names, len(net[1]._forward_hooks)
    (['1'], 0)
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
from torch import Tensor, nn

__all__ = ["REDIRECTED", "redirected_grad", "redirected_relus"]

# class name -> (lower bound, upper bound or None) of the clamp the module computes
REDIRECTED: dict[str, tuple[float, float | None]] = {"ReLU": (0.0, None), "ReLU6": (0.0, 6.0)}
"""Module class name -> (low, high) active range of the activations whose gradient is redirected."""


def redirected_grad(x: Tensor, grad: Tensor, lo: float = 0.0, hi: float | None = None) -> Tensor:
    """The redirected gradient of ``clamp(x, lo, hi)`` for upstream ``grad``; dim 0 of ``x`` is the batch.

    Per batch item: the ordinary gradient (``grad`` where ``lo < x < hi``, else 0) if it is non-zero
    anywhere in the item; otherwise ``grad`` with the entries that would push ``x`` further out of
    ``(lo, hi)`` zeroed (``x <= lo`` and ``grad > 0``, or ``x >= hi`` and ``grad < 0``).

    Example:
        >>> x, g = torch.tensor([[-1.0], [2.0]]), torch.tensor([[-1.0], [-1.0]])
        >>> redirected_grad(x, g).flatten().tolist()         # two items: the dead one is redirected
        [-1.0, -1.0]
        >>> redirected_grad(x.T, g.T).flatten().tolist()     # one item: x=2 passes, so no redirect
        [0.0, -1.0]
    """
    active = x > lo
    if hi is not None:
        active = active & (x < hi)
    zero = torch.zeros((), dtype=grad.dtype, device=grad.device)
    ordinary = torch.where(active, grad, zero)
    outward = (x <= lo) & (grad > 0)
    if hi is not None:
        outward = outward | ((x >= hi) & (grad < 0))
    redirected = torch.where(outward, zero, grad)
    flat = ordinary.reshape(ordinary.shape[0], -1) if ordinary.dim() > 0 else ordinary.reshape(1, 1)
    alive = (flat != 0).any(dim=1)  # (B,): some ordinary gradient gets through this item
    alive = alive.reshape(-1, *([1] * (ordinary.dim() - 1))) if ordinary.dim() > 0 else alive[0]
    return torch.where(alive, ordinary, redirected)


class _RedirectedClamp(torch.autograd.Function):
    """Forward: the module's own output, unchanged. Backward: :func:`redirected_grad` w.r.t. its input."""

    @staticmethod
    def forward(ctx, x: Tensor, out: Tensor, lo: float, hi: float | None) -> Tensor:
        ctx.save_for_backward(x)
        ctx.bounds = (lo, hi)
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return redirected_grad(x, grad, *ctx.bounds), None, None, None


def _hook(module: nn.Module, inputs: tuple, output: Tensor, lo: float, hi: float | None) -> Tensor | None:
    x = inputs[0] if inputs else None
    if not (torch.is_grad_enabled() and isinstance(x, Tensor) and isinstance(output, Tensor)
            and x.requires_grad and x.shape == output.shape):
        return None
    return _RedirectedClamp.apply(x, output.detach(), lo, hi)


@contextlib.contextmanager
def redirected_relus(model: nn.Module) -> Iterator[list[str]]:
    """Within the block, every ReLU/ReLU6 module of ``model`` has the redirected backward; yields their names.

    Forward values are exactly the module's own. ``inplace=True`` modules run with ``inplace=False``
    inside the block (their input is needed for the backward) and get their flag back on exit. The
    hooks are removed and the flags restored on exit, also when the block raises. Functional
    ``F.relu`` calls are not affected (see the module docstring).

    Example:
        >>> net = nn.Sequential(nn.Linear(2, 1), nn.ReLU(inplace=True))
        >>> _ = nn.init.constant_(net[0].bias, -10.0)   # the unit is off for every input near 1
        >>> x = torch.ones(1, 2, requires_grad=True)
        >>> with redirected_relus(net):
        ...     net(x).sum().neg().backward()     # maximise the (dead) unit
        >>> bool(x.grad.abs().sum() > 0), net[1].inplace
        (True, True)
    """
    if not isinstance(model, nn.Module):  # a HookedModel: redirect the module it wraps
        model = model.model
    targets = [(name, m) for name, m in model.named_modules() if type(m).__name__ in REDIRECTED]
    handles = []
    flipped: list[nn.Module] = []
    try:
        for _, m in targets:
            if getattr(m, "inplace", False) is True:
                m.inplace = False
                flipped.append(m)
            lo, hi = REDIRECTED[type(m).__name__]
            handles.append(m.register_forward_hook(functools.partial(_hook, lo=lo, hi=hi)))
        yield [name for name, _ in targets]
    finally:
        for h in handles:
            h.remove()
        for m in flipped:
            m.inplace = True
