"""Causal checks: (model, src channels, dst channel, images) -> change of dst on ablation, against chance.

Where attribution says "src channel c feeds dst channel o", ablating c (setting it to zero, or to its
mean) and watching dst fall confirms it causally. ``ablation_test`` adds the control: the same ablation
on random channel sets of the same size from the same layer, so an effect can be read as a z-score and
an empirical p-value rather than a bare number.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from featviz.circuits._common import (
    as_hooked,
    check_channels,
    check_images,
    device_of,
    preprocess_fn,
    raw_model,
    resolve_ref,
)
from featviz.hooks import HookedModel

__all__ = ["AblationTest", "ablation_effect", "ablation_test"]

STD_FLOOR = 1e-8  # z-scores divide by max(std(random effects), STD_FLOOR)


def _refs(hm: HookedModel, src: str, dst: str) -> tuple[str, list[int], str, list[int]]:
    """(src layer, src channels, dst layer, [dst channel]) after checking src names channels, dst one."""
    src_name, src_channels = resolve_ref(hm, src)
    dst_name, dst_channels = resolve_ref(hm, dst)
    if not src_channels:
        raise ValueError(f"src must name the channels to ablate, as in '{src_name}:3' or '{src_name}:1,4'")
    if not dst_channels or len(dst_channels) != 1:
        raise ValueError(f"dst must name one channel, as in '{dst_name}:0'; got {dst!r}")
    return src_name, src_channels, dst_name, dst_channels


def ablation_effect(model: nn.Module, src: str, dst: str, inputs: torch.Tensor, *,
                    value: float | str = 0.0, relative: bool = False,
                    preprocess: Callable | bool | None = None) -> float:
    """How much the dst channel's mean activation drops when the src channels are ablated.

    ``src`` is ``"layer:c1,c2"`` (the channels to ablate, through ``HookedModel.ablate`` with
    ``value``: a number or ``"mean"``), ``dst`` is ``"layer:channel"``. Returns
    ``mean(dst) - mean(dst | ablated)`` over ``inputs`` (images as ``model.preprocess`` expects; it is
    applied) and space: positive when the src channels excite dst, ~0 when they do not reach it.
    ``relative=True`` divides by ``mean(dst)``.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
        >>> drop = ablation_effect(net, "1:0,3", "2:1", torch.rand(2, 3, 8, 8))
        >>> isinstance(drop, float)
        True
    """
    hm = as_hooked(model)
    x = preprocess_fn(hm, preprocess)(check_images(inputs))
    src_name, src_channels, dst_name, dst_channels = _refs(hm, src, dst)
    with torch.no_grad():
        _, cache = hm.run_with_cache(x, names=[src_name, dst_name], stop_at_last=True)
        check_channels(hm, src_name, src_channels, cache[src_name].shape[1])
        (d,) = check_channels(hm, dst_name, dst_channels, cache[dst_name].shape[1])
        base = cache[dst_name][:, d].mean()
        with hm.ablate(src_name, src_channels, value=value):
            _, ablated = hm.run_with_cache(x, names=[dst_name], stop_at_last=True)
        drop = base - ablated[dst_name][:, d].mean()
    return float(drop / base) if relative else float(drop)


@dataclass
class AblationTest:
    """An ablation against chance: ``effect`` (relative change of dst) beside ``random_effects``.

    ``effect = (ablated - base) / |base|`` (negative: dst falls); ``random_effects`` (n_random,) are the
    same for random channel sets ``random_channels`` (n_random, k) of the src layer. ``z`` and the
    two-sided empirical ``p`` say how unusual ``effect`` is among them.

    Example:
        >>> t = AblationTest("a:1", "b:0", base=2.0, ablated=1.0, effect=-0.5,
        ...                  random_effects=torch.tensor([0.0, -0.1, 0.1, 0.0]),
        ...                  random_channels=torch.tensor([[0], [2], [3], [4]]))
        >>> round(t.z, 2), t.p     # -0.5 is 6.12 stds below the random mean; none is as far: p = 1/5
        (-6.12, 0.2)
    """

    src: str
    dst: str
    base: float  # dst's activation without ablation (mean over inputs, and space for position="mean")
    ablated: float  # ... with the src channels ablated
    effect: float  # (ablated - base) / |base|
    random_effects: torch.Tensor  # (n_random,)
    random_channels: torch.Tensor  # (n_random, k) the channel sets behind random_effects
    value: float | str = 0.0
    position: str = "mean"

    @property
    def n_random(self) -> int:
        """How many random channel sets were ablated."""
        return len(self.random_effects)

    @property
    def z(self) -> float:
        """``(effect - mean(random)) / std(random)``, the std floored at ``STD_FLOOR``."""
        r = self.random_effects.double()
        return float((self.effect - r.mean()) / r.std().clamp_min(STD_FLOOR))

    @property
    def p(self) -> float:
        """Two-sided empirical p-value: ``(1 + #{|r - mean| >= |effect - mean|}) / (n_random + 1)``."""
        r = self.random_effects.double()
        mean = r.mean()
        extreme = int(((r - mean).abs() >= abs(self.effect - float(mean))).sum())
        return (1 + extreme) / (self.n_random + 1)

    @property
    def significant(self) -> bool:
        """``p < 0.05`` and ``|z| >= 2``: the effect is stronger than ablating random channels."""
        return self.p < 0.05 and abs(self.z) >= 2

    def summary(self) -> str:
        """One sentence with the numbers and the conclusion drawn from them."""
        if isinstance(self.value, str):
            verb = "Mean-ablating"
        elif float(self.value) == 0:
            verb = "Zeroing"
        else:
            verb = f"Setting to {float(self.value):g}"
        k = self.random_channels.shape[1]
        r = 100 * self.random_effects.double()
        where = "" if self.position == "mean" else f" ({self.position} unit)"
        verdict = "stronger than chance" if self.significant else "not distinguishable from chance"
        if not self.significant and self.n_random < 19:
            verdict += (f" (with {self.n_random} random sets the smallest possible p is "
                        f"{1 / (self.n_random + 1):.2g}: use n_random >= 19)")
        z = f"z = {self.z:.2f}" if abs(self.z) < 1e6 else "z = ±∞, no random set changes it"
        return (f"{verb} {self.src} changes {self.dst}{where} by {100 * self.effect:.1f} % (random sets of "
                f"{k} channel{'s' if k != 1 else ''}: {float(r.mean()):.1f} ± {float(r.std()):.1f} %, "
                f"{z}, p = {self.p:.2g}): {verdict}.")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        """Plain floats, ints, strings and lists (``json.dumps``-ready)."""
        return {"src": self.src, "dst": self.dst, "value": self.value, "position": self.position,
                "base": float(self.base), "ablated": float(self.ablated), "effect": float(self.effect),
                "random_effects": [float(v) for v in self.random_effects],
                "random_channels": [[int(c) for c in row] for row in self.random_channels],
                "n_random": self.n_random, "z": self.z, "p": self.p, "significant": self.significant,
                "summary": self.summary()}

    def plot(self, ax=None, path: str | None = None):
        """Histogram of the random effects (%) with a line at the effect; saves a PNG when ``path`` is given.

        Example:
            >>> t = AblationTest("a:1", "b:0", 2, 1, -0.5, torch.tensor([0, -0.1]), torch.tensor([[0], [2]]))
            >>> len(t.plot().axes[0].lines)
            1
        """
        from matplotlib.figure import Figure

        from featviz.viz.figures import save

        fig = None
        if ax is None:
            fig = Figure(figsize=(4.5, 3), dpi=100)
            ax = fig.add_subplot()
        ax.hist((100 * self.random_effects.double()).numpy(), bins=max(5, min(30, self.n_random // 2)),
                color="0.7", label=f"{self.n_random} random sets")
        ax.axvline(100 * self.effect, color="C3", lw=2, label=f"{self.src}")
        ax.set_xlabel(f"change of {self.dst} (%)")
        ax.set_ylabel("random channel sets")
        ax.set_title(f"z = {self.z:.2f}, p = {self.p:.2g}", fontsize=9)
        ax.legend(fontsize=7, loc="best")
        return save(fig or ax.figure, path)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Every submodule in eval mode for the block; each one's own mode restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _dst_value(hm: HookedModel, x: torch.Tensor, src_name: str, channels: Sequence[int] | None, dst_name: str,
               d: int, position: str, value: float | str) -> torch.Tensor:
    """Sum over the batch of dst channel ``d``'s per-image response, ``channels`` ablated (None: none)."""
    if channels is None:
        _, cache = hm.run_with_cache(x, names=[dst_name], stop_at_last=True)
    else:
        with hm.ablate(src_name, list(channels), value=value):
            _, cache = hm.run_with_cache(x, names=[dst_name], stop_at_last=True)
    a = cache[dst_name][:, d]  # (b, ...)
    if position == "center":
        if a.dim() != 3:
            raise ValueError(f"position='center' needs a spatial map at {dst_name!r}, got shape "
                             f"{tuple(cache[dst_name].shape)}; use position='mean'")
        return a[:, a.shape[-2] // 2, a.shape[-1] // 2].double().sum()
    return a.reshape(len(a), -1).double().mean(1).sum()


def ablation_test(model: nn.Module, src: str, dst: str, inputs: torch.Tensor, n_random: int = 20,
                  seed: int = 0, *, value: float | str = 0.0, position: str = "mean",
                  preprocess: Callable | bool | None = None, batch_size: int = 64) -> AblationTest:
    """Ablate the ``src`` channels, and ``n_random`` random channel sets of the same size, and compare.

    ``src`` is ``"layer:c1,c2,..."`` (ablated through ``HookedModel.ablate`` with ``value``: a number, or
    ``"mean"``, each channel's mean over the batch of ``batch_size`` images and space); ``dst`` is
    ``"layer:channel"``. dst's response is its mean over ``inputs`` and space (``position="mean"``) or
    its map-centre unit ``(H // 2, W // 2)`` averaged over inputs (``position="center"``). The effect is
    ``(ablated - base) / |base|``; the random sets are drawn from the src layer's other channels with a
    generator seeded by ``seed``. Inputs are images as ``model.preprocess`` expects (it is applied, see
    ``preprocess``). Runs without gradients in eval mode and restores every module's mode.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1))
        >>> t = ablation_test(net, "1:0,3", "2:1", torch.rand(2, 3, 8, 8), n_random=5)
        >>> t.random_channels.shape, bool((t.random_channels != 0).all() and (t.random_channels != 3).all())
        (torch.Size([5, 2]), True)
    """
    if position not in ("mean", "center"):
        raise ValueError(f"position must be 'mean' or 'center', got {position!r}")
    if int(n_random) < 2:
        raise ValueError(f"n_random must be >= 2 to estimate the spread of random effects, got {n_random}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    hm = as_hooked(model)
    inputs = check_images(inputs)
    prep = preprocess_fn(hm, preprocess)
    src_name, src_channels, dst_name, dst_channels = _refs(hm, src, dst)
    device = device_of(raw_model(hm))
    batches = [inputs[k:k + batch_size] for k in range(0, len(inputs), batch_size)]
    with torch.no_grad(), _eval_mode(raw_model(hm)):
        first = prep(batches[0].to(device))
        _, cache = hm.run_with_cache(first, names=[src_name, dst_name], stop_at_last=True)
        n_src, n_dst = cache[src_name].shape[1], cache[dst_name].shape[1]
        chans = list(dict.fromkeys(c % n_src for c in check_channels(hm, src_name, src_channels, n_src)))
        (d,) = check_channels(hm, dst_name, dst_channels, n_dst)
        others = torch.tensor([c for c in range(n_src) if c not in chans])
        if len(others) < len(chans):
            raise ValueError(f"layer {src_name!r} has {n_src} channels: too few to draw random sets of "
                             f"{len(chans)} channels outside the {len(chans)} ablated ones")
        g = torch.Generator().manual_seed(int(seed))
        sets = torch.stack([others[torch.randperm(len(others), generator=g)[:len(chans)]].sort().values
                            for _ in range(int(n_random))])  # (n_random, k)

        def response(channels: Sequence[int] | None) -> float:
            total = sum(_dst_value(hm, prep(b.to(device)), src_name, channels, dst_name, d, position, value)
                        for b in batches)
            return float(total) / len(inputs)

        base = response(None)
        if base == 0:
            raise ValueError(f"{dst_name}:{d} is exactly 0 on these inputs (position={position!r}): a "
                             "relative change is undefined; give inputs that drive it")
        ablated = response(chans)
        effects = torch.tensor([(response(s.tolist()) - base) / abs(base) for s in sets], dtype=torch.float64)
    return AblationTest(src=f"{src_name}:{','.join(map(str, chans))}", dst=f"{dst_name}:{d}", base=base,
                        ablated=ablated, effect=(ablated - base) / abs(base), random_effects=effects,
                        random_channels=sets, value=value, position=position)
