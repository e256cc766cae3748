"""How many steps a render takes and how large: (schedule, lr, step, steps) -> lr, and per-item convergence.

``lr_at`` gives the learning rate of step ``t`` (1-based) of a ``schedule``; ``Convergence`` watches the
objective per batch item, step by step, and says which items stopped gaining (``fv.render``'s
``early_stop``). Measured in bench/README.md, "render steps and schedules (issue 21)".

Example:
    >>> [round(lr_at("linear", 0.1, t, 4), 3) for t in range(1, 5)]
    [0.1, 0.075, 0.05, 0.025]
"""
from __future__ import annotations

import math

import torch

from featviz.errors import BadValue

SCHEDULES = ("constant", "cosine", "linear")
EARLY_STOP_WINDOW = 16  # steps averaged on each side of the gain (the objective is noisy under transforms)


def lr_at(schedule: str, lr: float, step: int, steps: int) -> float:
    """The learning rate of step ``step`` (1 .. ``steps``) for a peak ``lr``.

    ``"constant"``: ``lr`` at every step. ``"cosine"``: ``lr * (1 + cos(pi * (step - 1) / steps)) / 2``,
    from ``lr`` at step 1 down towards 0 (never reached: the last step has
    ``lr * (1 - cos(pi / steps)) / 2``).
    ``"linear"``: ``lr * (steps - step + 1) / steps``, from ``lr`` down to ``lr / steps``.

    Example:
        >>> lr_at("constant", 0.05, 7, 8), lr_at("cosine", 0.1, 1, 8), round(lr_at("cosine", 0.1, 5, 8), 6)
        (0.05, 0.1, 0.05)
    """
    check_schedule(schedule)
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * (1 + math.cos(math.pi * (step - 1) / steps)) / 2
    return lr * (steps - step + 1) / steps


def check_schedule(schedule: object) -> str:
    """``schedule`` if it is one of ``SCHEDULES``; else a ``BadValue`` naming them."""
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise BadValue(f"schedule must be one of {', '.join(map(repr, SCHEDULES))}, got {schedule!r}")
    return schedule


def check_early_stop(early_stop: object) -> float | None:
    """``early_stop`` if it is ``None`` or a number in (0, 1); else a ``BadValue``."""
    if early_stop is None:
        return None
    if isinstance(early_stop, bool) or not isinstance(early_stop, int | float) or not 0 < early_stop < 1:
        raise BadValue(f"early_stop must be None (run every step) or a relative gain in (0, 1), e.g. 0.02, "
                       f"got {early_stop!r}")
    return float(early_stop)


class Convergence:
    """Per batch item: has its objective stopped gaining?

    After each step, ``update(values)`` takes the (B,) objective values of that step. Item ``i`` has
    converged at step ``t`` when ``t >= min_steps`` (and ``t >= 2 * window``) and the mean of its last
    ``window`` values gained less than ``tol`` over the mean of the ``window`` values before them, relative
    to the larger of the two means' magnitudes: ``(recent - before) / max(|recent|, |before|) < tol``. A
    falling objective has converged too; an item whose two means are both 0 (a dead channel) as well.

    Example:
        >>> conv = Convergence(batch=2, tol=0.05, window=2)
        >>> [conv.update(torch.tensor([1.0, float(t)])).tolist() for t in range(1, 6)][-2:]
        [[True, False], [True, False]]
    """

    def __init__(self, batch: int, tol: float, window: int = EARLY_STOP_WINDOW, min_steps: int = 0) -> None:
        self.tol, self.window, self.min_steps = tol, window, max(int(min_steps), 2 * window)
        self._values: list[torch.Tensor] = []  # (B,) per step, the last 2 * window kept
        self.step = 0

    def update(self, values: torch.Tensor) -> torch.Tensor:
        """(B,) bool: the items converged as of this step (``values`` (B,): this step's objective)."""
        self.step += 1
        self._values = (self._values + [values.detach().float().cpu()])[-2 * self.window:]
        if self.step < self.min_steps:
            return torch.zeros(len(values), dtype=torch.bool)
        history = torch.stack(self._values)  # (2 * window, B)
        before, recent = history[: self.window].mean(0), history[self.window:].mean(0)
        scale = torch.maximum(recent.abs(), before.abs())
        gain = torch.where(scale > 0, (recent - before) / scale.clamp(min=1e-30), torch.zeros_like(scale))
        return gain < self.tol
