"""Optimise images to maximise an objective: (model, objective) -> Rendering with images (B, 3, H, W).

``render`` is the batteries-included call; it is built from the small pieces in ``param``,
``transform`` and ``objectives``. During a run the model's parameters are frozen (``requires_grad``
restored afterwards, also on errors), the model is in eval mode, hooks live only inside
``fv.hooked``'s scoped ``run_with_cache``, and the forward pass stops right after the last layer the
objective reads. Only the image parameters get gradients. On a CPU the model gets its input in
channels-last memory (same values; torch's pooling and convolutions are faster on it).
"""
from __future__ import annotations

import contextlib
import numbers
import re
import warnings
import weakref
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from featviz.core import channel_list, device_of, evaluating, module_layout, preprocess_fn, split_call
from featviz.errors import BadValue, NonFinite, OutOfRange
from featviz.hooks import HookedModel, hooked
from featviz.optvis import objectives as obj_mod
from featviz.optvis._polyphase import polyphase_stems
from featviz.optvis._steps import Convergence, check_early_stop, lr_at
from featviz.optvis.objectives import INPUT, OUTPUT, Objective, _Acts, as_objective
from featviz.optvis.param import random_background
from featviz.optvis.redirect import redirected_relus
from featviz.optvis.rendering import Rendering, dead_items
from featviz.optvis.settings import RenderSettings
from featviz.optvis.transform import Transform, compose, standard_transforms

EARLY_STOP_MIN_AFTER_REDIRECT = 16  # early_stop waits this many steps after the redirected ones
STUCK_TOL = 1e-5  # max pixel change from the start below which an item never moved (Adam moves ~lr per step)
ALPHA_PENALTY = 1.0  # alpha=True maximises objective - ALPHA_PENALTY * |objective| * mean opacity


def frozen(model: nn.Module) -> contextlib.AbstractContextManager[nn.Module]:
    """Deprecated: ``featviz.core.evaluating(model, freeze_grads=True)`` (eval mode, no parameter requires
    grad; modes, ``requires_grad`` and BatchNorm buffers restored on exit, also when the block raises).

    Example:
        >>> model = fv.models.toy.edges_and_curves()
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     with frozen(model):
        ...         assert not any(p.requires_grad for p in model.parameters())
        >>> all(p.requires_grad for p in model.parameters())
        True
    """
    warnings.warn("featviz.optvis.render.frozen(model) is deprecated: use "
                  "featviz.core.evaluating(model, freeze_grads=True)", DeprecationWarning, stacklevel=2)
    return evaluating(model, freeze_grads=True)


def capture(hm: HookedModel, x: torch.Tensor, objective: Objective) -> dict[str, torch.Tensor]:
    """Run the model on ``x`` just far enough for ``objective``; returns ``{layer: activation}``.

    Activations stay in the autograd graph. ``OUTPUT`` is filled only when the objective reads it
    (then the whole model runs). A (B, C, H, W) input on a CPU goes in as channels-last memory; a model
    whose forward then fails on the layout (a ``.view`` that needs contiguous memory) gets it as it was,
    now and from then on.

    Example:
        >>> model, x = fv.models.toy.edges_and_curves(), torch.rand(1, 3, 32, 32)
        >>> acts = capture(fv.hooked(model), x, fv.objectives.channel("relu1", 0))   # conv2 never runs
        >>> {name: a.shape for name, a in acts.items()}
        {'relu1': torch.Size([1, 8, 32, 32])}
    """
    if _channels_last_ok(hm, x):
        try:
            return _capture(hm, x.contiguous(memory_format=torch.channels_last), objective)
        except (AssertionError, RuntimeError) as e:
            if not _LAYOUT_ERROR.search(str(e)):
                raise
            acts = _capture(hm, x, objective)  # raises the model's own error if the layout was not the cause
            _REFUSES_CHANNELS_LAST[hm.model] = True
            return acts
    return _capture(hm, x, objective)


# errors that a memory layout causes: torch's ``.view`` on a non-contiguous tensor, extensions' checks
_LAYOUT_ERROR = re.compile(r"contiguous|stride", re.IGNORECASE)
# models whose forward raised such an error on channels-last input and ran in torch's default layout
_REFUSES_CHANNELS_LAST: weakref.WeakKeyDictionary[nn.Module, bool] = weakref.WeakKeyDictionary()


def _channels_last_ok(hm: HookedModel, x: torch.Tensor) -> bool:
    """Feed ``x`` (B, C, H, W) to the model in channels-last memory? On a CPU, yes (same values and shape:
    torch's CPU max-pool and oneDNN convolutions run 1.3-4x faster on it, bench/README.md "render.py"),
    unless this model refused it before. Elsewhere (a GPU) the layout is left as it is."""
    return (isinstance(x, torch.Tensor) and x.dim() == 4 and x.device.type == "cpu"
            and x.is_floating_point() and hm.model not in _REFUSES_CHANNELS_LAST)


def _capture(hm: HookedModel, x: torch.Tensor, objective: Objective) -> dict[str, torch.Tensor]:
    names = [n for n in objective.layers if n not in (INPUT, OUTPUT)]
    acts: dict[str, torch.Tensor] = {}
    if OUTPUT in objective.layers:
        out, cache = hm.run_with_cache(x, names=names, detach=False) if names else (hm(x), {})
        acts[OUTPUT] = out
    elif names:
        _, cache = hm.run_with_cache(x, names=names, stop_at_last=True, detach=False)
    else:
        cache = {}
    for n in names:
        if not isinstance(cache[n], torch.Tensor):
            inside = [m for m in hm.hook_names if m.startswith(split_call(n)[0] + ".")][:3]
            what = (f"a {type(cache[n]).__name__} of {len(cache[n])} tensors"
                    if isinstance(cache[n], (list, tuple)) else f"a {type(cache[n]).__name__}")
            raise BadValue(f"layer {n!r} outputs {what} (e.g. HRNet's parallel branches), not one "
                           f"(B, C, H, W) tensor, so it has no channels to render; pick a layer inside it"
                           + (f", e.g. {inside}" if inside else ""))
    acts.update({n: _channels_first(hm, n, cache[n]) for n in names})
    return acts


def _channels_first(hm: HookedModel, name: str, t: torch.Tensor) -> torch.Tensor:
    """Channels-last maps (B, H, W, C) as (B, C, H, W) and tokens (B, N, D) as (B, D, N), so that channel
    ``c`` of every objective is a feature (``featviz.core.layout``), never an image row or a token."""
    kind = module_layout(hm.model, name, t)
    if kind == "channels_last":
        return t.permute(0, 3, 1, 2)
    return t.transpose(1, 2) if kind == "tokens" else t


def check_objective(hm: HookedModel, objective: Objective, acts: dict | None = None) -> None:
    """Raise ``KeyError`` for unknown layer names; with ``acts``, ``IndexError`` for channels out of range.

    Example:
        >>> check_objective(fv.hooked(fv.models.toy.edges_and_curves()), fv.objectives.channel("nope", 0))
        Traceback (most recent call last):
        featviz.errors.UnknownName: unknown layer 'nope'; 4 names, e.g. ['conv1', 'relu1', 'conv2', 'relu2']
    """
    for name in objective.layers:
        if name not in (INPUT, OUTPUT):
            hm.parse(name)
    if acts is None:
        return
    for name, c in objective.channels:
        t = acts[name]
        n = t.shape[1] if t.dim() > 1 else 0
        if name == OUTPUT:
            if not 0 <= c < n:
                raise OutOfRange(f"class {c} is out of range: the model's output has {n} classes "
                                 f"(0..{n - 1})")
        else:
            hm.check_channel(name, c, n)


def _check_args(size: object, steps: object, lr: object, batch: object, thresholds: Sequence[int]) -> None:
    if not (isinstance(size, int) or (isinstance(size, tuple) and len(size) == 2)):
        raise BadValue(f"size must be an int or an (H, W) tuple, got {size!r}")
    for name, v in (("steps", steps), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise BadValue(f"{name} must be a positive int, got {v!r}")
    if not isinstance(lr, numbers.Real) or lr <= 0:
        raise BadValue(f"lr must be a positive number, got {lr!r}")
    bad = [t for t in thresholds if not (isinstance(t, numbers.Integral) and 1 <= t <= steps)]
    if bad:
        raise BadValue(f"thresholds must be steps between 1 and steps={steps}, got {bad}")


def _resolve_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    own = device_of(model)
    if device is None:
        return own
    device = torch.device(device)
    has_tensors = any(True for _ in model.parameters()) or any(True for _ in model.buffers())
    if has_tensors and device.type != own.type:
        raise BadValue(f"device={str(device)!r} but the model is on {own}; move the model first "
                         f"(model.to({str(device)!r})) or leave device=None")
    return device


def _check_images(images: torch.Tensor, batch: int, size: int | tuple[int, int]) -> None:
    h, w = (size, size) if isinstance(size, int) else size
    if tuple(images.shape) != (batch, 3, h, w):
        raise BadValue(f"param's image_fn returned shape {tuple(images.shape)}; expected "
                         f"{(batch, 3, h, w)} for batch={batch}, size={size}")


def _adam(params: Sequence[torch.Tensor], lr: float) -> torch.optim.Adam:
    """Adam, with torch's fused one-kernel step for CPU/CUDA floating-point parameters (the same update; 5x
    cheaper than the per-op step on a CPU: 1 ms instead of 6 ms for a batch of eight 224 px spectra). On a
    CPU only from torch 2.4 (``featviz._compat.fused_adam_ok``); before, the per-op step."""
    from featviz._compat import fused_adam_ok

    params = list(params)
    return torch.optim.Adam(params, lr=lr, fused=True if fused_adam_ok(params) else None)


class _Stopper:
    """``render``'s early stop: which items still run, their rows of the batch, and holding the others.

    Without ``early_stop`` every method passes its input through (the run is the one without it)."""

    def __init__(self, s: RenderSettings, obj: Objective, params: Sequence[torch.Tensor], batch: int) -> None:
        tol = check_early_stop(s.early_stop)
        self.params, self.batch = list(params), batch
        self.conv = None if tol is None else Convergence(
            batch, tol, min_steps=s.redirect_steps + EARLY_STOP_MIN_AFTER_REDIRECT)
        # items leave the batch only when the objective allows it and each parameter is one row per item
        self.per_item = obj.per_item and all(p.dim() > 0 and p.shape[0] == batch for p in self.params)
        self.active: torch.Tensor | None = None  # (A,) indices of the running items; None: all
        self.held: list[torch.Tensor] = []  # the parameters as of each stopped item's last step
        self.last: torch.Tensor | None = None  # (B,) last objective value per item

    def rows_of(self, t: torch.Tensor) -> torch.Tensor:
        """(B, ...) -> the running items' rows (A, ...)."""
        return t if self.active is None else t[self.active.to(t.device)]

    def acts(self, acts: dict) -> dict:
        """The activations, telling ``batch(...)`` objectives which items the rows are."""
        return acts if self.active is None else _Acts(acts, rows=self.active.tolist())

    def all_values(self, values: torch.Tensor) -> torch.Tensor:
        """(A,) values of the running items -> (B,), a stopped item's last value repeated."""
        if self.active is None:
            return values
        full = self.last.clone()
        full[self.active.to(full.device)] = values
        return full

    def hold(self) -> None:
        if self.active is not None:
            with torch.no_grad():
                stopped = self._stopped()
                for p, h in zip(self.params, self.held, strict=True):
                    p[stopped] = h[stopped]

    def _stopped(self) -> torch.Tensor:
        mask = torch.ones(self.batch, dtype=torch.bool)
        mask[self.active] = False
        return mask.nonzero().flatten()

    def update(self, values: torch.Tensor, step: int) -> bool:
        """Record this step's (B,) values; True when the run should end here."""
        if self.conv is None:
            return False
        self.last = values.detach()
        converged = self.conv.update(values)
        if not self.per_item:
            return bool(converged.all())
        running = torch.ones(self.batch, dtype=torch.bool) if self.active is None else \
            torch.zeros(self.batch, dtype=torch.bool).index_fill(0, self.active, True)
        running &= ~converged
        if not running.any():
            return True
        if self.active is None or int(running.sum()) < len(self.active):
            # hold() already put the items stopped before back, so the parameters as they are now hold
            # every stopped item where it stopped
            self.held = [p.detach().clone() for p in self.params]
            self.active = running.nonzero().flatten()
        return False


def _as_transform(transforms: Transform | Sequence[Transform] | None) -> Transform:
    if transforms is None:
        return standard_transforms()
    if callable(transforms):
        return transforms
    return compose(transforms)


def render(
    model: nn.Module,
    objective: Objective | str,
    *,
    settings: RenderSettings | None = None,
    size: int | tuple[int, int] | None = None,
    steps: int | None = None,
    lr: float | None = None,
    batch: int = 1,
    param: Callable | None = None,
    transforms: Transform | Sequence[Transform] | None = None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    thresholds: Sequence[int] | None = None,
    redirect_steps: int | None = None,
    alpha: bool | None = None,
    schedule: str | None = None,
    early_stop: float | None = None,
) -> Rendering:
    """Optimise ``batch`` images of ``size`` px so that ``objective`` is as large as possible.

    Every setting that decides the picture can come as one ``settings`` value
    (:class:`~featviz.optvis.settings.RenderSettings`) or as keywords; a keyword left at ``None`` takes
    the value from ``settings`` (whose defaults are the ones listed here), a keyword given wins.

    Args:
        model: any ``nn.Module`` (or ``fv.hooked`` model); not modified (parameters are frozen and
            the model is in eval mode only during the run).
        objective: what to maximise: an ``Objective`` (``fv.objectives.channel``, ``neuron``,
            ``diversity``, sums and scalings of them) or a ``"layer:channel"`` string (one channel).
        settings: a ``fv.optvis.RenderSettings`` holding the settings below (size ... alpha) as one
            value, e.g. shared by several calls; default ``RenderSettings()``.
        size: the images' side in px, or (H, W); default 128. What a unit can show is limited by its
            receptive field, not by the image; larger images take longer per step.
        steps: optimisation steps (Adam); default 256, a clear picture; 32-64 a rough preview.
        lr: Adam's learning rate on the parameterisation; default 0.05 (suits ``fft_image``).
        batch: number of images optimised together, each from its own random start.
        param: ``param(size, batch, seed=, device=) -> (params, image_fn)``; ``fft_image`` (default)
            or ``pixel_image``.
        transforms: applied to the images each step before the model; default ``standard_transforms()``;
            a list is composed; ``[]`` for none.
        preprocess: maps [0, 1] images to the model's input; default ``model.preprocess`` (featviz
            models carry their normalisation), else identity.
        seed: seeds the initial image and the random transformations (the global RNG is not used);
            default 0.
        device: where the image lives; default the model's device.
        progress: show a tqdm progress bar over the steps; ``False`` turns it off.
        thresholds: steps at which to keep a copy of the images (``Rendering.snapshots``); default none.
        redirect_steps: for the first this many steps the model's ReLU/ReLU6 *modules* pass the
            gradient that lifts a dead unit back into its active range (``optvis.redirect``, lucid's
            trick), so a channel that is off everywhere for the starting image can still be optimised.
            Forward values are unchanged. 0 disables it. The default 16 is lucid's: enough for a dead
            channel to switch on (the redirect applies only to items whose ordinary gradient is all
            zero), short enough that the rest of the run optimises the true objective. ``F.relu``
            calls inside a model's ``forward`` are not redirected.
        alpha: also optimise an opacity per pixel, default ``False`` (Mordvintsev et al., "Differentiable
            Image Parameterizations", Distill 2018). Each step the image is composited over a fresh random
            background (``param.random_background``) before the transforms, and the optimiser maximises
            ``objective - |objective| * mean(alpha)`` (the penalty scales with the objective and takes no
            gradient through it), so pixels the unit does not need become transparent. ``param`` must
            accept ``alpha=True`` (``fft_image`` and ``pixel_image`` do). ``Rendering.images`` are then the
            colours, ``Rendering.alpha`` (B, 1, H, W) the opacity; ``activations`` are measured on the
            final images composited over mid-grey; ``save`` writes RGBA PNGs. A param whose
            ``image_fn`` has an ``alpha()`` method (``maco_image``: its attribution map) fills
            ``Rendering.alpha`` from it instead.
        schedule: the learning rate over the steps (``optvis._steps.lr_at``): ``"constant"`` (default,
            ``lr`` at every step), ``"cosine"`` (from ``lr`` at step 1 down towards 0 at ``steps``) or
            ``"linear"`` (from ``lr`` down to ``lr / steps``). A decaying schedule reaches a given
            activation in fewer steps (bench/README.md, "render steps and schedules (issue 21)").
        early_stop: ``None`` (default) runs every step; a number ``tol`` in (0, 1) stops an item once the
            mean of its objective over the last 16 steps gained less than ``tol`` (relative) over the 16
            before (``optvis._steps.Convergence``; not before step 32 nor during the redirect steps + 16).
            For a per-item objective (``Objective.per_item``: one channel, ``render_layer``'s batches) a
            stopped item leaves the forward batch and its image stays as it was at that step; otherwise
            (``diversity`` compares the items) the run stops when all items have converged. The run ends
            when every item has stopped. ``Rendering.losses`` keeps ``steps`` rows: a stopped item's later
            rows repeat its last value; a snapshot asked for after an item stopped shows its stopped image.

    ``Rendering.dead`` flags the items where no response was found and they are drawn as "no
    response found" tiles: final activation ~0 (``rendering.dead_items``), or an image that never
    changed from its start (no pixel moved by more than 1e-5: the gradient was zero at every step,
    so the value is the unit's constant response to the start image, e.g. a BatchNorm shift passed
    through when the unit's inputs are all off).

    Raises:
        KeyError / IndexError: unknown layer / channel out of range, before the first step.
        FloatingPointError: the objective became NaN or Inf (names the step).

    Example:
        >>> model = fv.models.efficientnet_lite0()
        >>> r = fv.render(model, "blocks.2:7", size=64, steps=8, progress=False)   # 256 steps look better
        >>> r.images.shape, r.activations.shape
        (torch.Size([1, 3, 64, 64]), torch.Size([1]))
        >>> quick = fv.render(model, "blocks.2:7", size=64, steps=48, lr=0.1, schedule="cosine",
        ...                   early_stop=0.02, progress=False)
        >>> quick.losses.shape   # steps rows: an item's rows after it stopped repeat its last value
        torch.Size([48, 1])
    """
    s = RenderSettings.resolve(settings, size=size, steps=steps, lr=lr, param=param, transforms=transforms,
                               preprocess=preprocess, seed=seed, device=device, thresholds=thresholds,
                               redirect_steps=redirect_steps, alpha=alpha, schedule=schedule,
                               early_stop=early_stop)
    size, steps, lr, param, transforms = s.size, s.steps, s.lr, s.param, s.transforms
    preprocess = s.preprocess
    seed, device, redirect_steps, alpha = s.seed, s.device, s.redirect_steps, s.alpha
    hm = hooked(model)
    obj = as_objective(objective)
    thresholds = sorted(set(s.thresholds))
    _check_args(size, steps, lr, batch, thresholds)
    if isinstance(redirect_steps, bool) or not isinstance(redirect_steps, numbers.Integral) \
            or redirect_steps < 0:
        raise BadValue(f"redirect_steps must be an int >= 0 (0 disables), got {redirect_steps!r}")
    check_objective(hm, obj)
    device = _resolve_device(hm.model, device)
    prep = preprocess_fn(hm, preprocess)
    transform = _as_transform(transforms)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**63:
        raise BadValue(f"seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")
    gen = torch.Generator().manual_seed(int(seed))

    if alpha:
        try:
            params, image_fn = param(size, batch, seed=seed, device=device, alpha=True)
        except TypeError as e:
            raise BadValue(f"alpha=True needs a param that takes alpha=True (fft_image, pixel_image); "
                             f"{getattr(param, '__name__', param)!r} does not ({e})") from None
    else:
        params, image_fn = param(size, batch, seed=seed, device=device)
    optimizer = _adam(params, lr)
    stop = _Stopper(s, obj, params, batch)
    resize_back = False  # set once the model refused a size the transforms made
    history: list[torch.Tensor] = []
    snapshots: dict[int, torch.Tensor] = {}
    with evaluating(hm.model, freeze_grads=True), polyphase_stems(hm.model):
        for step in tqdm(range(1, steps + 1), desc=f"render {obj.name}"[:60], disable=not progress):
            if s.schedule != "constant":
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(s.schedule, lr, step, steps)
            raw = images = stop.rows_of(image_fn())  # (B, 3, H, W) in [0, 1]; (B, 4, H, W) RGBA with alpha
            if alpha:
                opacity = raw[:, 3:]  # (B, 1, H, W)
                bg = random_background(raw[:, :3].shape, gen, device=raw.device)
                images = raw[:, :3] * opacity + bg * (1 - opacity)
            with redirected_relus(hm.model) if step <= redirect_steps else contextlib.nullcontext():
                seen = transform(images, gen)
                if resize_back and seen.shape[-2:] != images.shape[-2:]:
                    seen = _resized(seen, images)
                try:
                    acts = capture(hm, prep(seen), obj)
                except (AssertionError, RuntimeError) as e:
                    if seen.shape[-2:] == images.shape[-2:]:
                        if step == 1:
                            _raise_if_too_small(hm, obj, prep, size, device, e)
                            _raise_if_size_refused(hm, obj, prep, size, device, e)
                        raise
                    # the model refused the size the transforms made (a ViT's fixed patch grid, DLA's
                    # tree merges that need sizes divisible by 32, HRNet's fused branches): from now on
                    # the transformed images are resized back to the image's own size
                    try:
                        acts = capture(hm, prep(_resized(seen, images)), obj)
                    except (AssertionError, RuntimeError) as e2:
                        if step == 1:
                            _raise_if_too_small(hm, obj, prep, size, device, e2)
                            _raise_if_size_refused(hm, obj, prep, size, device, e2)
                        raise
                    resize_back = True
                    warnings.warn(f"the model refused the {tuple(seen.shape[-2:])} input the transforms made "
                                  f"from the {tuple(images.shape[-2:])} image at step {step} ("
                                  f"{' '.join(str(e).split())[:120]}); from now on transformed images are "
                                  f"resized back to {tuple(images.shape[-2:])} (models with a fixed input "
                                  f"size or size constraints: pass transforms=[] or size-keeping transforms "
                                  f"to avoid this)", stacklevel=2)
            acts[INPUT] = images
            if step == 1:
                _check_images(images, batch, size)
                check_objective(hm, obj, acts)
                start = raw.detach().clone()  # (B, 3|4, H, W): to tell a stuck item from a found one
            values = obj(stop.acts(acts))  # (B,), or (active items,) once items have stopped
            loss = -values.sum()
            if alpha:
                loss = loss + ALPHA_PENALTY * (values.detach().abs() * opacity.mean((1, 2, 3))).sum()
            if not torch.isfinite(loss):
                raise NonFinite(
                    f"objective {obj.name} became {loss.item()} at step {step} of {steps}; "
                    f"try a smaller lr (now {lr}) or check the model for NaN/Inf outputs")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            stop.hold()  # stopped items' parameters back where they stopped (Adam's momentum moves them)
            history.append(stop.all_values(values.detach()))
            if step in thresholds:
                with torch.no_grad():
                    snapshots[step] = image_fn()[:, :3].cpu()
            if stop.update(history[-1], step):
                with torch.no_grad():  # no more steps: later snapshots show the stopped images
                    snapshots.update({t: image_fn()[:, :3].cpu() for t in thresholds if t > step})
                history += [history[-1]] * (steps - step)
                break
        with torch.no_grad():
            raw = images = image_fn()
            if alpha:  # the value is measured over mid-grey
                images = raw[:, :3] * raw[:, 3:] + 0.5 * (1 - raw[:, 3:])
            try:  # the untransformed image: the first pass at `size` when transforms enlarge it
                acts = capture(hm, prep(images), obj)
            except (AssertionError, RuntimeError) as e:
                _raise_if_too_small(hm, obj, prep, size, device, e)
                _raise_if_size_refused(hm, obj, prep, size, device, e)
                raise
            acts[INPUT] = images
            final = obj(acts)
    raw, final = raw.detach().cpu(), final.detach().cpu()
    # an image the optimiser never changed (zero gradient at every step) shows the start, not a feature
    stuck = (raw - start.cpu()).abs().flatten(1).amax(dim=1) <= STUCK_TOL
    labels = [obj.name] * batch
    images, opacity = raw[:, :3], (raw[:, 3:] if alpha else None)  # colours; (B, 1, H, W) opacity
    if opacity is None and callable(getattr(image_fn, "alpha", None)):  # e.g. maco_image's attribution map
        opacity = image_fn.alpha().detach().cpu()
    return Rendering(images, torch.stack(history).cpu(), final, labels, obj.name, snapshots,
                     dead_items(images, final) | stuck, alpha=opacity)


def render_layer(
    model: nn.Module,
    layer: str,
    channels: Sequence[int] | None = None,
    batch_size: int = 16,
    *,
    settings: RenderSettings | None = None,
    size: int | tuple[int, int] | None = None,
    seed: int | None = None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: bool = True,
    **kwargs,
) -> Rendering:
    """Render every channel of ``layer`` (or ``channels``), ``batch_size`` channels per optimisation.

    Item ``i`` of each batch maximises ``channel(layer, c_i)`` (``objectives.batch``), so one forward
    pass serves ``batch_size`` channels. Batch ``k`` is seeded with ``seed + k``. The render settings come
    from ``settings`` (a ``fv.optvis.RenderSettings``; default ``RenderSettings()``: size 128, seed 0, ...)
    with the keywords given here (``size``, ``seed``, ``preprocess`` and any other ``render`` setting in
    ``kwargs``, e.g. ``steps``) applied over it; other keywords go to ``render``. Returns one ``Rendering``
    with one image per channel, labelled ``"layer:c"``.

    Example:
        >>> model = fv.models.efficientnet_lite0()
        >>> grid = fv.render_layer(model, "blocks.0", channels=range(8), size=64, steps=8, progress=False)
        >>> grid.images.shape, grid.labels[:2]
        (torch.Size([8, 3, 64, 64]), ['blocks.0:0', 'blocks.0:1'])
    """
    given = {k: kwargs.pop(k) for k in list(kwargs) if k in RenderSettings.__dataclass_fields__}
    s = RenderSettings.resolve(settings, size=size, seed=seed, preprocess=preprocess, **given)
    hm = hooked(model)
    name = hm.layer(layer)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise BadValue(f"batch_size must be a positive int, got {batch_size!r}")
    n = _n_channels(hm, name, s.size, s.preprocess)
    if channels is not None and not isinstance(channels, int) and len(list(channels)) == 0:
        raise BadValue(f"channels is empty; give some of {name}'s {n} channels or None for all")
    channels = channel_list(channels, n, name)  # ints only: True or 1.7 is refused, not read as channel 1
    parts = []
    with tqdm(total=len(channels), desc=f"render_layer {name}", disable=not progress) as bar:
        for k, start in enumerate(range(0, len(channels), batch_size)):
            chunk = channels[start : start + batch_size]
            obj = sum(obj_mod.batch(obj_mod.channel(name, c), i) for i, c in enumerate(chunk))
            r = render(hm, obj, settings=s.replace(seed=s.seed + k), batch=len(chunk), progress=False,
                       **kwargs)
            r.labels = [f"{name}:{c}" for c in chunk]
            parts.append(r)
            bar.update(len(chunk))
    return Rendering.cat(parts, objective=f"channels of {name}")


def _n_channels(hm: HookedModel, name: str, size: int | tuple[int, int], preprocess: Callable | None) -> int:
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.full((1, 3, h, w), 0.5, device=device_of(hm.model))
    prep = preprocess_fn(hm, preprocess)
    try:
        with torch.no_grad(), evaluating(hm.model, freeze_grads=True):
            _, cache = hm.run_with_cache(prep(x), names=[name], stop_at_last=True)
    except (AssertionError, RuntimeError) as e:
        obj = obj_mod.channel(name, 0)
        _raise_if_too_small(hm, obj, prep, size, x.device, e)
        _raise_if_size_refused(hm, obj, prep, size, x.device, e)
        raise
    t = _channels_first(hm, name, cache[name]) if isinstance(cache[name], torch.Tensor) else cache[name]
    if t.dim() < 2:
        raise BadValue(f"{name}'s output has shape {tuple(t.shape)}; render_layer needs (B, C, ...) "
                         "activations")
    return t.shape[1]


def _resized(seen: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """``seen`` (B, C, h, w) resized (bilinear) to the (H, W) of ``images``."""
    return torch.nn.functional.interpolate(seen, size=tuple(images.shape[-2:]), mode="bilinear",
                                           align_corners=False)


def _raise_if_size_refused(hm: HookedModel, obj: Objective, prep: Callable, size: int | tuple[int, int],
                           device: torch.device, error: BaseException) -> None:
    """After ``error`` from the model on images of ``size`` (not too small): if the next multiple of 8, 16, 32
    or 64 runs, raise a ``BadValue`` naming it (DLA's tree merges need sizes divisible by 32); otherwise
    return, and the caller re-raises ``error``.

    Example:
        >>> class Halves(nn.Module):   # adds a stride-2 path to a twice-downsampled one: needs even sizes
        ...     def forward(self, x):
        ...         return nn.functional.avg_pool2d(x, 2) + nn.functional.avg_pool2d(x, 2, ceil_mode=True)
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 1), Halves())
        >>> hm, obj = fv.hooked(net), fv.objectives.channel("1", 0)
        >>> _raise_if_size_refused(hm, obj, lambda x: x, 9, torch.device("cpu"), RuntimeError("size"))
        Traceback (most recent call last):
        featviz.errors.BadValue: the model cannot run on 9x9 images (size); it runs at 16x16: pass size=16
    """
    h, w = (size, size) if isinstance(size, int) else size
    for m in (8, 16, 32, 64):
        hh, ww = -(-h // m) * m, -(-w // m) * m
        if (hh, ww) == (h, w):
            continue
        x = torch.full((1, 3, hh, ww), 0.5, device=device)
        try:
            with torch.no_grad():
                capture(hm, prep(x), obj)
        except (AssertionError, RuntimeError):
            continue
        fix = hh if isinstance(size, int) and hh == ww else (hh, ww)
        first = " ".join(str(error).split())[:160]
        raise BadValue(f"the model cannot run on {h}x{w} images ({first}); it runs at {hh}x{ww}: pass "
                       f"size={fix}") from None


def _raise_if_too_small(hm: HookedModel, obj: Objective, prep: Callable, size: int | tuple[int, int],
                        device: torch.device, error: BaseException) -> None:
    """After ``error`` from the model on images of ``size``: if a larger image runs (no grad, batch 1, as far
    as ``obj`` needs), raise a ``BadValue`` naming the smallest size that does, found by doubling then
    bisecting; otherwise return, and the caller re-raises ``error``.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 3))
        >>> hm, obj = fv.hooked(net), fv.objectives.channel("2", 0)
        >>> _raise_if_too_small(hm, obj, lambda x: x, 4, torch.device("cpu"), RuntimeError("kernel size"))
        Traceback (most recent call last):
        featviz.errors.BadValue: size=4 is too small for this model: ... is 5x5 pixels: pass size=5 or larger
    """
    h, w = (size, size) if isinstance(size, int) else size

    def runs(n: int) -> bool:  # an n x n image, or the asked one where that side is larger
        x = torch.full((1, 3, max(h, n), max(w, n)), 0.5, device=device)
        try:
            with torch.no_grad():
                capture(hm, prep(x), obj)
        except (AssertionError, RuntimeError):
            return False
        return True

    lo, hi = min(h, w), max(min(h, w), 1) * 2  # lo failed; look for a hi that runs
    while not runs(hi):
        if hi >= 1024:  # not a matter of size (or a fixed input size): the caller re-raises the model's error
            return
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if runs(mid) else (mid, hi)
    side = min(h, w)
    if any(runs(s) for s in {-(-side // m) * m for m in (8, 16, 32, 64)} if side < s < hi):
        return  # not a minimum: some sizes run, others not (DLA: divisible by 32); _raise_if_size_refused
    first = " ".join(str(error).split())[:160]
    fix = hi if isinstance(size, int) else (max(h, hi), max(w, hi))
    layers = ", ".join(repr(n) for n in obj.layers)
    raise BadValue(f"size={size!r} is too small for this model: at {h}x{w} pixels the image cannot reach "
                   f"{layers} ({first}); the smallest size that does is {hi}x{hi} pixels: pass size={fix} "
                   "or larger") from None
