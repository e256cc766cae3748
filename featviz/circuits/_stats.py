"""Statistics behind the evidence verdicts: (numbers) -> empirical p-values, bootstrap intervals, BH q-values.

Nothing here knows about models. ``empirical_p`` is the permutation-style ``(k + 1) / (n + 1)`` (Phipson &
Smyth 2010: never 0, valid for any n); ``bootstrap_interval`` resamples photos; ``benjamini_hochberg``
controls the false discovery rate when a scan tests many units.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from featviz.errors import BadValue

__all__ = ["ALTERNATIVES", "empirical_p", "n_for_alpha", "bootstrap_interval", "benjamini_hochberg"]

ALTERNATIVES = ("two-sided", "less", "greater")


def empirical_p(effect: float, null: torch.Tensor, alternative: str = "two-sided") -> float:
    """``(k + 1) / (n + 1)`` with k the null draws at least as extreme as ``effect``.

    ``alternative``: "less" (extreme = at most ``effect``), "greater" (at least), "two-sided" (at least as far
    from the null mean, either way).

    Example:
        >>> empirical_p(-1.0, torch.tensor([0.0, 0.5, -0.5, -2.0]), "less")   # one of 4 is as low: 2 / 5
        0.4
    """
    if alternative not in ALTERNATIVES:
        raise BadValue(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    r = null.double()
    if alternative == "less":
        k = int((r <= effect).sum())
    elif alternative == "greater":
        k = int((r >= effect).sum())
    else:
        m = float(r.mean())
        k = int(((r - m).abs() >= abs(effect - m) - 1e-12).sum())
    return (k + 1) / (len(r) + 1)


def n_for_alpha(alpha: float, n_tests: int = 1) -> int:
    """The fewest null draws whose smallest p-value ``1 / (n + 1)`` can pass ``alpha`` after a Bonferroni-
    style share ``alpha / n_tests`` (BH's strictest step), rounded up to a multiple of 100 minus 1.

    Example:
        >>> n_for_alpha(0.05), n_for_alpha(0.05, n_tests=40)
        (99, 899)
    """
    need = n_tests / alpha  # 1 / (n + 1) < alpha / n_tests
    return int(100 * (int(need) // 100 + 1) - 1)


def bootstrap_interval(stat: Callable[[torch.Tensor], torch.Tensor], n: int, *, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over ``n`` items (photos).

    ``stat(idx)`` takes index rows (B, n), each a resample with replacement, and returns (B,) values.

    Example:
        >>> x = torch.arange(10.0)
        >>> lo, hi = bootstrap_interval(lambda i: x[i].mean(1), 10)
        >>> lo < 4.5 < hi
        True
    """
    if n < 1:
        raise BadValue("a bootstrap needs at least one photo")
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(0, n, (int(n_boot), n), generator=g)
    vals = stat(idx).double()
    vals = vals[torch.isfinite(vals)]
    if len(vals) == 0:
        return float("nan"), float("nan")
    q = torch.tensor([(1 - level) / 2, 1 - (1 - level) / 2], dtype=torch.float64)
    lo, hi = torch.quantile(vals, q).tolist()
    return lo, hi


def benjamini_hochberg(p: Sequence[float] | torch.Tensor, alpha: float = 0.05
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Benjamini–Hochberg: (q-values, rejected) for p-values of many tests; ``q_i <= alpha`` is rejected at
    false discovery rate ``alpha``. NaN p-values (tests not run) stay NaN and are never rejected.

    Example:
        >>> q, rej = benjamini_hochberg([0.01, 0.04, 0.03, 0.5])
        >>> [round(v, 3) for v in q.tolist()], rej.tolist()
        ([0.04, 0.053, 0.053, 0.5], [True, False, False, False])
    """
    p = torch.as_tensor(p, dtype=torch.float64).flatten()
    q = torch.full_like(p, float("nan"))
    ok = ~torch.isnan(p)
    m = int(ok.sum())
    if m:
        pv = p[ok]
        order = pv.argsort()
        ranked = pv[order] * m / torch.arange(1, m + 1, dtype=torch.float64)
        ranked = ranked.flip(0).cummin(0).values.flip(0).clamp(max=1.0)
        out = torch.empty_like(pv)
        out[order] = ranked
        q[ok] = out
    return q, (q <= alpha) & ok
