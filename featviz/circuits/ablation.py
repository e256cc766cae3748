"""Causal checks: (model, src channels, dst channel, photos) -> change of dst on ablation, tested vs chance.

Where attribution says "src channel c feeds dst channel o", ablating c and watching dst fall confirms it
causally. ``ablation_test`` asks whether a *pre-specified* set (a family found on stimuli, or one the user
names: ``.hypothesis``) changes dst more than random sets of the same size drawn from ``.null`` (default:
the whole src layer), with ``p = (k + 1) / (n + 1)`` over hundreds of random sets (all ablations run batched
through the segment src -> dst), a bootstrap interval over photos, and no p-value where the wiring fixes the
answer (``.structural``: dst reads only these channels). A set chosen from data is a description, not a test
(``descriptive=True``). ``ablation_scan`` tests many dst units with Benjamini–Hochberg q-values.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from featviz.circuits._keywords import images_keyword
from featviz.circuits._segment import segment_responses, wiring
from featviz.circuits._stats import (
    ALTERNATIVES,
    benjamini_hochberg,
    bootstrap_interval,
    empirical_p,
    n_for_alpha,
)
from featviz.core import Ref, as_images, channel_list, device_of, evaluating, preprocess_fn
from featviz.errors import BadValue
from featviz.hooks import HookedModel, hooked

__all__ = ["AblationScan", "AblationTest", "ablation_effect", "ablation_scan", "ablation_test",
           "benjamini_hochberg"]

STD_FLOOR = 1e-8  # z-scores divide by max(std(random effects), STD_FLOOR)


def _one_channel(hm: HookedModel, ref: str) -> Ref:
    """``ref`` parsed, after checking that it names exactly one channel (``hm.unit``'s error if not); its
    width is checked later, on the images' own forward pass (no probe at the model's input size)."""
    r = hm.ref(ref)
    if r.channels is None or len(r.channels) != 1:
        hm.unit(ref)  # raises: "needs one channel, e.g. 'layer:3'"
    return r


def _src(hm: HookedModel, src: str) -> tuple[str, tuple[int, ...]]:
    """(src layer, src channels) after checking that src names the channels to ablate."""
    s = hm.ref(src)
    if not s.channels:
        raise BadValue(f"src must name the channels to ablate, as in '{s.key}:3' or '{s.key}:1,4'")
    return s.key, s.channels


@images_keyword("inputs")
def ablation_effect(model: nn.Module, src: str, dst: str, images: torch.Tensor, *,
                    value: float | str = 0.0, relative: bool = False,
                    preprocess: Callable | bool | None = None) -> float:
    """How much the dst channel's mean activation drops when the src channels are ablated.

    ``src`` is ``"layer:c1,c2"`` (the channels to ablate, through ``HookedModel.ablate`` with
    ``value``: a number or ``"mean"``), ``dst`` is ``"layer:channel"``. Returns
    ``mean(dst) - mean(dst | ablated)`` over ``images`` (as ``model.preprocess`` expects them; it is
    applied) and space: positive when the src channels excite dst, ~0 when they do not reach it.
    ``relative=True`` divides by ``mean(dst)``.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
        >>> drop = ablation_effect(net, "1:0,3", "2:1", torch.rand(2, 3, 8, 8))
        >>> isinstance(drop, float)
        True
    """
    hm = hooked(model)
    x = preprocess_fn(hm, preprocess)(as_images(images, "images", channels=None, unit=False))
    (src_name, src_channels), dst_name = _src(hm, src), _one_channel(hm, dst).key
    with torch.no_grad(), evaluating(hm.model):  # eval mode; a train-mode model's BatchNorm stats kept
        _, cache = hm.run_with_cache(x, names=[src_name, dst_name], stop_at_last=True)
        channel_list(src_channels, cache[src_name].shape[1], src_name)
        _, d = hm.unit(dst, n_channels=cache[dst_name].shape[1])
        base = cache[dst_name][:, d].mean()
        with hm.ablate(src_name, src_channels, value=value):
            _, ablated = hm.run_with_cache(x, names=[dst_name], stop_at_last=True)
        drop = base - ablated[dst_name][:, d].mean()
    return float(drop / base) if relative else float(drop)



@dataclass
class AblationTest:
    """A pre-specified set of src channels ablated, against random sets of the same size.

    ``effect = (ablated - base) / |base|`` (negative: dst falls) over the test photos; ``random_effects``
    (n_random,) are the same for the random channel sets ``random_channels`` (n_random, k), drawn from the
    channels ``null`` names (default: the whole src layer). ``hypothesis`` names the set (a family found on
    stimuli, or a set the user chose). ``p = (k + 1) / (n + 1)`` with k the random sets at least as extreme
    (``alternative``). ``structural``: dst reads only these src channels (or none of them) — the result is
    fixed by the wiring and there is no p-value. ``descriptive``: the set was chosen from data (e.g. by
    attribution on other photos, ``selected_on`` of them): an effect size with an interval, no test.
    ``interval``: a 95 % bootstrap interval of ``effect`` over the photos; ``excess_interval``: of
    ``effect - mean(random_effects)``.

    Example:
        >>> t = AblationTest("a:1", "b:0", base=2.0, ablated=1.0, effect=-0.5,
        ...                  random_effects=torch.tensor([0.0, -0.1, 0.1, 0.0]),
        ...                  random_channels=torch.tensor([[0], [2], [3], [4]]))
        >>> round(t.z, 2), t.p     # -0.5 is 6.12 stds below the random mean; none is as far: p = 1/5
        (-6.12, 0.2)
    """

    src: str
    dst: str
    base: float  # dst's activation without ablation (mean over images, and space for position="mean")
    ablated: float  # ... with the src channels ablated
    effect: float  # (ablated - base) / |base|
    random_effects: torch.Tensor  # (n_random,)
    random_channels: torch.Tensor  # (n_random, k) the channel sets behind random_effects
    value: float | str = 0.0
    position: str = "mean"
    null: str = "the rest of the layer"  # where the random sets come from, in words
    hypothesis: str = "a set named by the user"
    structural: bool = False
    reads: list[int] | None = None  # the src channels dst reads at all (None: not checked)
    descriptive: bool = False
    selected_on: int = 0  # photos the set was chosen on (0: chosen without data)
    alternative: str = "two-sided"
    alpha: float = 0.05
    q: float | None = None  # Benjamini–Hochberg q-value when part of a scan
    photo_base: torch.Tensor | None = field(default=None, repr=False)  # (N,) per-photo responses
    photo_ablated: torch.Tensor | None = field(default=None, repr=False)  # (N,)
    photo_random: torch.Tensor | None = field(default=None, repr=False)  # (n_random, N)
    seed: int = 0
    _intervals: dict = field(default_factory=dict, repr=False)

    @property
    def n_random(self) -> int:
        """How many random channel sets were ablated."""
        return len(self.random_effects)

    @property
    def n_images(self) -> int:
        """How many photos the effect was measured on (0 when unknown)."""
        return 0 if self.photo_base is None else len(self.photo_base)

    @property
    def z(self) -> float:
        """``(effect - mean(random)) / std(random)``, the std floored at ``STD_FLOOR``."""
        r = self.random_effects.double()
        return float((self.effect - r.mean()) / r.std().clamp_min(STD_FLOOR))

    @property
    def p(self) -> float | None:
        """``(1 + #{random sets as extreme}) / (n_random + 1)``; None for a structural or descriptive line."""
        if self.structural or self.descriptive:
            return None
        return empirical_p(self.effect, self.random_effects, self.alternative)

    @property
    def significant(self) -> bool:
        """``p < alpha`` (``q < alpha`` in a scan); never for a structural or descriptive line."""
        p = self.p
        if p is None:
            return False
        return (self.q if self.q is not None else p) < self.alpha

    def _boot(self) -> dict:
        if not self._intervals and self.photo_base is not None and len(self.photo_base) > 1:
            b, a, r = self.photo_base.double(), self.photo_ablated.double(), self.photo_random.double()

            def eff(idx):
                mb = b[idx].mean(1)
                return (a[idx].mean(1) - mb) / mb.abs()

            def excess(idx):
                mb = b[idx].mean(1)  # (B,)
                rnd = ((r[:, idx].mean(-1) - mb) / mb.abs()).mean(0)  # (B,)
                return eff(idx) - rnd

            n = len(b)
            self._intervals["effect"] = bootstrap_interval(eff, n, seed=self.seed)
            self._intervals["excess"] = bootstrap_interval(excess, n, n_boot=400, seed=self.seed)
        return self._intervals

    @property
    def interval(self) -> tuple[float, float] | None:
        """95 % percentile-bootstrap interval of ``effect`` over the photos (None without per-photo data)."""
        return self._boot().get("effect")

    @property
    def excess_interval(self) -> tuple[float, float] | None:
        """95 % bootstrap interval of ``effect - mean(random_effects)`` over the photos."""
        return self._boot().get("excess")

    def summary(self) -> str:
        """One sentence with the numbers, the null and hypothesis they test, and what follows from them."""
        if isinstance(self.value, str):
            verb = "Mean-ablating"
        elif float(self.value) == 0:
            verb = "Zeroing"
        else:
            verb = f"Setting to {float(self.value):g}"
        k = self.random_channels.shape[1]
        r = 100 * self.random_effects.double()
        where = "" if self.position == "mean" else f" ({self.position} unit)"
        ci = self.interval
        photos = f" over {self.n_images} photos" if self.n_images else ""
        ci_txt = (f" (95 % CI {100 * ci[0]:.1f} to {100 * ci[1]:.1f} %{photos})" if ci is not None
                  else photos and f" ({photos.strip()})")
        chosen = (f", chosen on {self.selected_on} other photos" if self.selected_on else "")
        head = (f"{verb} {self.src} ({self.hypothesis}{chosen}) changes {self.dst}{where} by "
                f"{100 * self.effect:.1f} %{ci_txt}")
        plural = "s" if k != 1 else ""
        rnd = (f"random sets of {k} channel{plural} from {self.null}: {float(r.mean()):.1f} ± "
               f"{float(r.std()):.1f} %")
        layer = self.src.rsplit(":", 1)[0]
        if self.structural:
            inside = self.reads is not None and set(self.reads) <= set(_channels_of(self.src))
            fixed = (f"{self.dst} reads only these channels of {layer}" if inside else
                     f"{self.dst} reads none of these channels of {layer}")
            return f"{head}; {fixed}, so the result is fixed by the wiring (no test, no p-value)."
        if self.descriptive:
            return (f"{head}; {rnd} (a description, not a test: the set was chosen on data, so no "
                    f"p-value).")
        z = f"z = {self.z:.2f}" if abs(self.z) < 1e6 else "z = ±∞, no random set changes it"
        q = f", BH q = {self.q:.2g}" if self.q is not None else ""
        side = "" if self.alternative == "two-sided" else f", one-sided ({self.alternative})"
        if self.significant:
            verdict = ("changes it more than random sets do: stronger than chance"
                       if abs(self.effect) > abs(float(self.random_effects.double().mean()))
                       else "changes it less than random sets do: weaker than chance")
        else:
            verdict = "not distinguishable from chance"
            if 1 / (self.n_random + 1) >= self.alpha:
                verdict += (f" (with {self.n_random} random sets the smallest possible p is "
                            f"{1 / (self.n_random + 1):.2g}: use n_random >= {n_for_alpha(self.alpha)})")
        return (f"{head}; {rnd} ({self.n_random} sets), {z}, p = {self.p:.2g}{side}{q}: {verdict}.")

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        """Plain floats, ints, strings and lists (``json.dumps``-ready)."""
        ci, ex = self.interval, self.excess_interval
        return {"src": self.src, "dst": self.dst, "value": self.value, "position": self.position,
                "base": float(self.base), "ablated": float(self.ablated), "effect": float(self.effect),
                "interval": None if ci is None else list(ci),
                "excess_interval": None if ex is None else list(ex),
                "random_effects": [float(v) for v in self.random_effects],
                "random_channels": [[int(c) for c in row] for row in self.random_channels],
                "n_random": self.n_random, "n_images": self.n_images, "selected_on": self.selected_on,
                "null": self.null, "hypothesis": self.hypothesis, "structural": self.structural,
                "descriptive": self.descriptive, "reads": self.reads, "alternative": self.alternative,
                "z": self.z, "p": self.p, "q": self.q, "significant": self.significant,
                "summary": self.summary()}

    def plot(self, ax=None, path: str | None = None):
        """Histogram of the random effects (%) with a line at the effect (``featviz.viz.plot_ablation_test``);
        saves a PNG when ``path`` is given."""
        from featviz.viz.evidence_plot import plot_ablation_test

        return plot_ablation_test(self, ax, path)

    def _repr_png_(self) -> bytes:
        from featviz.viz.figures import figure_png

        return figure_png(self.plot())


def _channels_of(ref: str) -> list[int]:
    return [int(c) for c in ref.rsplit(":", 1)[1].split(",")]


@dataclass
class AblationScan:
    """One src set tested against random sets for many dst channels, Benjamini–Hochberg corrected.

    ``tests``: one ``AblationTest`` per dst channel (with ``.q``); ``rejected``: the dst channels whose
    ``q < alpha`` (false discovery rate ``alpha`` over the scan).
    """

    tests: list[AblationTest]
    alpha: float = 0.05

    @property
    def rejected(self) -> list[str]:
        """The dst units the set changes beyond chance at false discovery rate ``alpha``."""
        return [t.dst for t in self.tests if t.significant]

    def __len__(self) -> int:
        return len(self.tests)

    def summary(self) -> str:
        """One sentence: how many dst units were tested and which the set changes beyond chance."""
        if not self.tests:
            return "No dst unit tested (every one was exactly 0 on these images)."
        t = self.tests[0]
        hits = ", ".join(self.rejected) or "none"
        return (f"Ablating {t.src} ({t.hypothesis}) against random sets from {t.null}, over {len(self)} dst "
                f"units: changed beyond chance at false discovery rate {self.alpha:g}: {hits}.")

    def to_dict(self) -> dict:
        """Every test's ``to_dict`` and the rejected units (``json.dumps``-ready)."""
        return {"alpha": self.alpha, "rejected": self.rejected, "tests": [t.to_dict() for t in self.tests],
                "summary": self.summary()}


def _draw_sets(pool: torch.Tensor, k: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(seed))
    keys = torch.rand(int(n), len(pool), generator=g)
    return pool[keys.argsort(1)[:, :k]].sort(1).values  # (n, k), distinct within a set


def _null_pool(null: str | Sequence[int], n_src: int, chans: list[int], src_name: str
               ) -> tuple[torch.Tensor, str]:
    if isinstance(null, str):
        if null == "layer":
            return torch.arange(n_src), f"all {n_src} channels of {src_name}"
        if null == "others":
            pool = torch.tensor([c for c in range(n_src) if c not in chans], dtype=torch.long)
            if len(pool) < len(chans):
                raise BadValue(f"layer {src_name!r} has {n_src} channels: too few to draw random sets of "
                                 f"{len(chans)} channels outside the {len(chans)} ablated ones")
            return pool, f"the other {len(pool)} channels of {src_name}"
        raise BadValue(f"null must be 'layer' (the whole src layer), 'others' (the layer without the set) "
                         f"or a list of channels, got {null!r}")
    pool = torch.tensor(sorted({int(c) % n_src for c in null}), dtype=torch.long)
    if len(pool) < len(chans):
        raise BadValue(f"null has {len(pool)} channels: too few for random sets of {len(chans)}")
    return pool, f"{len(pool)} named channels of {src_name}"


@images_keyword("inputs")
def ablation_scan(model: nn.Module, src: str, dst: str, images: torch.Tensor, n_random: int | None = None,
                  seed: int = 0, *, channels: Sequence[int] | None = None, alpha: float = 0.05,
                  **kwargs) -> AblationScan:
    """``ablation_test`` of one src set against every channel of layer ``dst`` (or ``channels``) from the same
    batched ablations, with Benjamini–Hochberg q-values over the channels tested (structural ones excluded).
    ``n_random`` defaults to enough sets for the smallest p to pass BH's strictest step.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1))
        >>> scan = ablation_scan(net, "1:0,3", "2", torch.rand(6, 3, 8, 8), n_random=19)
        >>> len(scan), all(t.q is not None for t in scan.tests)
        (4, True)
    """
    hm = hooked(model)
    name = hm.layer(dst)  # a scan covers the layer; pick its channels with channels=
    if n_random is None:
        n_random = n_for_alpha(alpha, n_tests=len(channels) if channels is not None else 16)
    tests = _run(hm, src, name, channels, images, int(n_random), seed, alpha=alpha, **kwargs)
    q, _ = benjamini_hochberg([float("nan") if t.p is None else t.p for t in tests], alpha)
    for t, v in zip(tests, q.tolist()):
        t.q = None if v != v else v
    return AblationScan(tests, alpha)


@images_keyword("inputs")
def ablation_test(model: nn.Module, src: str, dst: str, images: torch.Tensor, n_random: int = 199,
                  seed: int = 0, *, value: float | str = 0.0, position: str = "mean",
                  preprocess: Callable | bool | None = None, batch_size: int = 64,
                  null: str | Sequence[int] = "layer", hypothesis: str | None = None,
                  alternative: str = "two-sided", alpha: float = 0.05, descriptive: bool = False,
                  selected_on: int = 0, check_wiring: bool = True) -> AblationTest:
    """Ablate the ``src`` channels, and ``n_random`` random channel sets of the same size, and compare.

    ``src`` is ``"layer:c1,c2,..."``: the hypothesis, a set fixed before looking at ``images`` (named by
    ``hypothesis``, e.g. "edge detectors found on gratings"); ``dst`` is ``"layer:channel"``. Ablation sets
    channels to ``value`` (a number, or ``"mean"``: each channel's mean over the batch of ``batch_size``
    photos and space). dst's response is its mean over space (``position="mean"``) or its map-centre unit
    (``"center"``), averaged over ``images`` (as ``model.preprocess`` expects them; it is applied).
    ``effect = (ablated - base) / |base|``. The random sets are drawn (seed ``seed``) from ``null``: "layer"
    (the whole src layer, default), "others" (the layer without the set) or a list of channels;
    ``p = (k + 1) / (n_random + 1)``, so ``n_random`` must be at least ``1 / alpha - 1`` for p to reach
    ``alpha`` (default 199: p down to 0.005). All the ablations run batched through the segment src -> dst
    only. With ``check_wiring`` it checks which src channels dst reads at all: if only these (or none of
    these), the result is ``structural`` (fixed by the wiring, no p-value). A set chosen on data (e.g. the
    top channels by attribution) is ``descriptive=True`` (``selected_on``: how many other photos chose it):
    an effect size with a bootstrap interval, no verdict. Runs in eval mode and restores every module's mode.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1))
        >>> t = ablation_test(net, "1:0,3", "2:1", torch.rand(2, 3, 8, 8), n_random=5, null="others")
        >>> t.random_channels.shape, bool((t.random_channels != 0).all() and (t.random_channels != 3).all())
        (torch.Size([5, 2]), True)
    """
    hm = hooked(model)
    _src(hm, src)
    d = _one_channel(hm, dst)
    (test,) = _run(hm, src, d.key, list(d.channels), images, n_random, seed, value=value, position=position,
                   preprocess=preprocess, batch_size=batch_size, null=null, hypothesis=hypothesis,
                   alternative=alternative, alpha=alpha, descriptive=descriptive, selected_on=selected_on,
                   check_wiring=check_wiring)
    return test


def _run(hm: HookedModel, src: str, dst_name: str, dst_channels: Sequence[int] | None, images: torch.Tensor,
         n_random: int, seed: int, *, value: float | str = 0.0, position: str = "mean",
         preprocess: Callable | bool | None = None, batch_size: int = 64, null: str | Sequence[int] = "layer",
         hypothesis: str | None = None, alternative: str = "two-sided", alpha: float = 0.05,
         descriptive: bool = False, selected_on: int = 0, check_wiring: bool = True) -> list[AblationTest]:
    if position not in ("mean", "center"):
        raise BadValue(f"position must be 'mean' or 'center', got {position!r}")
    if int(n_random) < 2:
        raise BadValue(f"n_random must be >= 2 to estimate the spread of random effects, got {n_random}")
    if int(batch_size) < 1:
        raise BadValue(f"batch_size must be >= 1, got {batch_size}")
    if alternative not in ALTERNATIVES:
        raise BadValue(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    src_name, src_channels = _src(hm, src)
    images = as_images(images, "images", channels=None, unit=False)
    prep = preprocess_fn(hm, preprocess)
    device = device_of(hm.model)
    batches = [images[k:k + batch_size] for k in range(0, len(images), batch_size)]
    with torch.no_grad(), evaluating(hm.model):
        _, cache = hm.run_with_cache(prep(batches[0][:1].to(device)), names=[src_name, dst_name],
                                     stop_at_last=True)
        n_src, n_dst = cache[src_name].shape[1], cache[dst_name].shape[1]
        chans = list(dict.fromkeys(c % n_src for c in channel_list(src_channels, n_src, src_name)))
        ds = (list(range(n_dst)) if dst_channels is None
              else [c % n_dst for c in channel_list(dst_channels, n_dst, dst_name)])
        pool, null_text = _null_pool(null, n_src, chans, src_name)
        sets = _draw_sets(pool, len(chans), n_random, seed)  # (n_random, k)
        masks = torch.zeros(2 + len(sets), n_src, dtype=torch.bool)
        masks[1, chans] = True
        masks[torch.arange(2, 2 + len(sets))[:, None], sets] = True
        resp = segment_responses(hm, batches, prep, src_name, dst_name, masks, value=value,
                                 position=position).cpu()  # (2 + n, N, C_dst)
    reads = None
    if check_wiring:
        with evaluating(hm.model):
            reads = wiring(hm, prep(batches[0][:2].to(device)), src_name, dst_name, ds, seed=seed)
    src_ref = f"{src_name}:{','.join(map(str, chans))}"
    out = []
    for j, d in enumerate(ds):
        r = resp[:, :, d]  # (2 + n, N)
        base = float(r[0].mean())
        if base == 0:
            if dst_channels is not None:
                raise BadValue(f"{dst_name}:{d} is exactly 0 on these images (position={position!r}): a "
                                 "relative change is undefined; give images that drive it")
            continue
        ablated = float(r[1].mean())
        effects = (r[2:].mean(1) - base) / abs(base)
        structural, read = False, None
        if reads is not None:
            read = [int(c) for c in reads[j].nonzero().flatten()]
            if read:
                structural = set(read) <= set(chans) or not (set(read) & set(chans))
        out.append(AblationTest(
            src=src_ref, dst=f"{dst_name}:{d}", base=base, ablated=ablated,
            effect=(ablated - base) / abs(base),
            random_effects=effects, random_channels=sets, value=value, position=position, null=null_text,
            hypothesis=hypothesis or ("a set chosen from data" if descriptive else "a set named by the user"),
            structural=structural, reads=read, descriptive=descriptive, selected_on=int(selected_on),
            alternative=alternative, alpha=float(alpha), photo_base=r[0], photo_ablated=r[1],
            photo_random=r[2:], seed=seed))
    return out
