"""Randomised controls: (model, seed) -> a deep copy of the model with every layer re-initialised.

A feature that a randomly initialised copy of the same architecture also "has" is evidence about the
architecture or the probe, not about what training learned (Adebayo et al. 2018, "Sanity checks for
saliency maps"). ``randomized`` gives that copy: same modules, names, attributes and mode, fresh weights.

A copy whose BatchNorm layers keep the reset statistics (mean 0, var 1) is nearly silent deep down
(EfficientNet-Lite0's ``blocks.6.depthwise_relu``: mean activation ~1e-6 against 0.29 trained), and a silent
control compares scales, not features. So by default (``bn_stats="auto"``) the copy's BatchNorm statistics are
re-estimated on photos, as a freshly initialised network is normalised in its first training steps;
``activation_scale`` puts the two networks' scales side by side.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from featviz.core import input_size_of
from featviz.errors import BadType, BadValue

__all__ = ["activation_scale", "randomized"]

BN_STATS = ("auto", "photos", "reset")


def _is_batchnorm(module: nn.Module) -> bool:
    return hasattr(module, "running_mean") and hasattr(module, "running_var")


def _constant(t: Tensor) -> bool:
    return t.numel() == 0 or bool((t == t.reshape(-1)[0]).all())


def _generic_init_(module: nn.Module, name: str, p: Tensor, original: Tensor) -> None:
    """Re-initialise parameter ``name`` of ``module`` in place, without help from the module.

    BatchNorm-like affine parameters -> 1 / 0; a weight with dim >= 2 (and a bias beside it) ->
    U(-b, b) with b = 1 / sqrt(fan_in), the Kaiming-uniform rule of featviz and torch layers; any
    other tensor -> N(0, s²) with s the original's std (its mean magnitude, or 1, if it has none).
    """
    weight = getattr(module, "weight", None)
    if _is_batchnorm(module) and name in ("weight", "bias"):
        p.fill_(1.0 if name == "weight" else 0.0)
    elif p.dim() >= 2 or (name == "bias" and isinstance(weight, Tensor) and weight.dim() >= 2):
        fan_in = (weight if p.dim() < 2 else p)[0].numel()
        p.uniform_(-1 / math.sqrt(max(fan_in, 1)), 1 / math.sqrt(max(fan_in, 1)))
    else:
        o = original.float()
        std = float(o.std()) if o.numel() > 1 else 0.0
        std = std if std > 0 else (float(o.abs().mean()) or 1.0)
        p.normal_(0.0, std)


def _reset_running_stats(module: nn.Module) -> None:
    if callable(getattr(module, "reset_running_stats", None)):
        module.reset_running_stats()
    elif isinstance(module.running_mean, Tensor):
        module.running_mean.zero_()
        module.running_var.fill_(1.0)
        tracked = getattr(module, "num_batches_tracked", None)
        if isinstance(tracked, Tensor):
            tracked.zero_()


def randomized(model: nn.Module, seed: int = 0, *, bn_stats: str = "auto", images: Tensor | None = None
               ) -> nn.Module:
    """A deep copy of ``model`` with every layer re-initialised: the randomised-weights control.

    ``bn_stats``: what the copy's BatchNorm running statistics become. "reset": mean 0, var 1 (deep layers of
    a BatchNorm network then fall nearly silent); "photos": re-estimated (cumulative average, BatchNorm layers
    in train mode, nothing else) on ``images`` (N, 3, H, W) in [0, 1] — default: the bundled sample photos at
    ``model.input_size`` — passed through ``model.preprocess``; "auto" (default): "photos" when the model has
    BatchNorm and ``images`` are given or the model declares ``input_size`` (the featviz zoo,
    ``fv.models.wrap``), else "reset".

    Every submodule with ``reset_parameters()`` (featviz and torch layers) calls it; BatchNorm running
    statistics are reset (mean 0, var 1); parameters of modules that cannot re-initialise themselves
    get a generic init (BatchNorm affine 1 / 0, Kaiming-uniform for weights, a normal with the
    original's std otherwise), as does any non-constant parameter still equal to the original.
    Parameters whose fresh init is a constant (BatchNorm's weight 1, bias 0) may equal an original
    that was never trained. Other buffers are kept.

    The weights are drawn on the CPU from a forked RNG seeded with ``seed``: the same seed gives the
    same weights on any device, and the global torch RNG state is left as it was. ``model`` is not
    touched; the copy keeps its device(s), training/eval mode and plain attributes (``preprocess``,
    ``labels``, ``input_size``, ``interesting_layers``). A ``HookedModel`` gives a copy of the model
    it wraps (a plain ``nn.Module``).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
        >>> rand = randomized(net, seed=0)    # no input_size, no images: "auto" keeps the reset statistics
        >>> float(rand[1].running_var[0])
        1.0
        >>> fit = randomized(net, seed=0, images=torch.rand(8, 3, 16, 16))   # re-estimated on those images
        >>> fit[1](fit[0](torch.rand(8, 3, 16, 16))).std().item() > 0.5
        True
        >>> torch.equal(rand[0].weight, net[0].weight), rand.training
        (False, False)
        >>> torch.equal(rand[0].weight, randomized(net, seed=0)[0].weight)
        True
    """
    if not isinstance(model, nn.Module) and isinstance(getattr(model, "model", None), nn.Module):
        model = model.model  # a HookedModel: randomise what it wraps
    if not isinstance(model, nn.Module):
        raise BadType(f"randomized() needs an nn.Module (or a HookedModel), got {type(model).__name__}")
    if bn_stats not in BN_STATS:
        raise BadValue(f"bn_stats must be one of {BN_STATS}, got {bn_stats!r}")
    originals = {name: p.detach().cpu().clone() for name, p in model.named_parameters()}
    rand = copy.deepcopy(model)
    tensors = [*rand.parameters(), *rand.buffers()]
    devices = {id(t): t.device for t in tensors}
    for t in tensors:  # draw on the CPU: same weights for a seed whatever the device
        t.data = t.data.cpu()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.random.default_generator.manual_seed(int(seed))
        for module in rand.modules():
            own = dict(module.named_parameters(recurse=False))
            if callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
            elif own:
                for name, p in own.items():
                    _generic_init_(module, name, p, p.detach().clone())
            if _is_batchnorm(module):
                _reset_running_stats(module)
        for module_name, module in rand.named_modules():  # whatever reset_parameters() left untouched
            for name, p in module.named_parameters(recurse=False):
                old = originals.get(f"{module_name}.{name}" if module_name else name)
                if old is not None and not _constant(old) and torch.equal(p, old):
                    _generic_init_(module, name, p, old)
    for t in tensors:
        t.data = t.data.to(devices[id(t)])
    has_bn = any(_is_batchnorm(m) for m in rand.modules())
    if bn_stats == "auto":
        known = images is not None or input_size_of(rand)
        bn_stats = "photos" if has_bn and known else "reset"
    if bn_stats == "photos" and has_bn:
        _reestimate_bn(rand, images)
    return rand


def _reestimate_bn(model: nn.Module, images: Tensor | None, batch_size: int = 16) -> None:
    """Running statistics of every BatchNorm of ``model`` from ``images`` (default: the bundled photos at
    ``model.input_size``): cumulative averages, BatchNorm layers alone in train mode, modes restored."""
    from featviz.core import device_of, preprocess_fn

    if images is None:
        from featviz.data import sample_images

        images = sample_images(size=int(input_size_of(model, 224))).images
    if not isinstance(images, Tensor) or images.dim() != 4:
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise BadValue(f"images must be a (N, C, H, W) tensor of photos in [0, 1], got {got}")
    bns = [m for m in model.modules() if _is_batchnorm(m)]
    modes = [(m, m.training) for m in model.modules()]
    momenta = [(m, getattr(m, "momentum", None)) for m in bns]
    prep = preprocess_fn(model)
    device = device_of(model)
    try:
        model.eval()
        for m in bns:
            _reset_running_stats(m)
            m.momentum = None  # cumulative moving average: every batch counts equally
            m.train()
        with torch.no_grad():
            for k in range(0, len(images), batch_size):
                model(prep(images[k:k + batch_size].to(device).float()))
    finally:
        for m, mom in momenta:
            m.momentum = mom
        for m, mode in modes:
            m.training = mode


def activation_scale(model: nn.Module, layer: str, images: Tensor) -> float:
    """The mean absolute activation of ``layer`` over ``images`` (through ``model.preprocess``): the scale a
    trained network and its randomized copy are compared at.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
        >>> activation_scale(net, "1", torch.rand(2, 3, 8, 8)) >= 0
        True
    """
    from featviz.core import preprocess_fn
    from featviz.hooks import hooked

    hm = hooked(model)
    with torch.no_grad():
        _, cache = hm.run_with_cache(preprocess_fn(hm.model)(images), names=[layer], stop_at_last=True)
    return float(cache[layer].abs().mean())
