"""One core for every package: ``"layer#call:channels"`` references and the plumbing around a forward pass.

References (:class:`Ref`, :func:`parse_ref`, :func:`channel_list`) are the one parser of
``"name"``, ``"name:3"``, ``"name:1,4"``, ``"name:0-3"`` (inclusive range), ``"name:-1"`` (counted
from the end, normalised once the layer's width is known) and ``"name#2"`` (the second call of a
module that runs several times per forward pass; plain ``"name"`` is its first call, ``"name#1"``).
The plumbing (:func:`device_of`, :func:`dtype_of`, :func:`preprocess_fn`, :func:`probe_input`,
:func:`input_channels`, :func:`evaluating`, :class:`StopForward`, :func:`layout`, :func:`channel_values`)
is what hooks, circuits, optvis, viz and models share instead of keeping copies.

Example:
    >>> parse_ref("layer1.0.relu#2:0-2,-1")
    Ref(name='layer1.0.relu', call=2, channels=(0, 1, 2, -1))
    >>> channel_list(parse_ref("conv:-1").channels, 8, "conv")
    [7]
"""
from __future__ import annotations

import hashlib
import re
import warnings
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from featviz.errors import BadType, BadValue, OutOfRange

__all__ = ["Ref", "parse_ref", "format_ref", "channel_list", "device_of", "check_materialized", "dtype_of",
           "preprocess_fn", "Normalize", "library_stats", "NoPreprocessWarning",
           "probe_input", "input_size_of", "input_channels", "evaluating", "StopForward", "layout",
           "channel_values", "split_call", "as_images", "as_float_images", "check_pixels", "ACTIVATIONS",
           "PASS_THROUGH", "ELEMENTWISE", "channel_dim", "reusing", "reuse_store", "remembered", "tensor_key"]

_ITEM = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")
_CALL = re.compile(r"^(.*)#(\d+)$")


@dataclass(frozen=True)
class Ref:
    """A parsed reference: module ``name``, its ``call`` (1 = first) and ``channels`` (``None``: all).

    Example:
        >>> str(Ref("relu", 2, (3,)))
        'relu#2:3'
    """

    name: str
    call: int = 1
    channels: tuple[int, ...] | None = None

    @property
    def key(self) -> str:
        """The activation's name without channels: ``"name"`` for the first call, else ``"name#k"``."""
        return self.name if self.call == 1 else f"{self.name}#{self.call}"

    def __str__(self) -> str:
        return format_ref(self.key, self.channels)


def split_call(key: str) -> tuple[str, int]:
    """``"relu#2"`` -> ``("relu", 2)``; ``"relu"`` -> ``("relu", 1)``.

    Example:
        >>> split_call("layer1.0.relu#3")
        ('layer1.0.relu', 3)
    """
    m = _CALL.match(key)
    if not m:
        return key, 1
    call = int(m.group(2))
    if call < 1:
        raise BadValue(f"bad call index in {key!r}: calls count from 1 ('name#1' is the first call)")
    return m.group(1), call


def _channels(text: str, ref: str) -> tuple[int, ...]:
    out: list[int] = []
    for item in text.split(","):
        m = _ITEM.match(item)
        if not m:
            raise BadValue(f"bad channels in {ref!r}: the part after ':' must be a channel index or a list "
                           f"of them, as in 'layer:3', 'layer:1,4', 'layer:0-3' or 'layer:-1'")
        a = int(m.group(1))
        if m.group(2) is None:
            out.append(a)
            continue
        b = int(m.group(2))
        if (a < 0) != (b < 0) or b < a:
            raise BadValue(f"bad channel range {item.strip()!r} in {ref!r}: write 'first-last' with "
                           f"first <= last, both counted from the same end")
        out.extend(range(a, b + 1))
    return tuple(out)


def parse_ref(ref: str | Ref) -> Ref:
    """Parse ``"name[#call][:channels]"`` (syntax only; names are checked by ``HookedModel.module``).

    Example:
        >>> parse_ref("conv2:1,4")
        Ref(name='conv2', call=1, channels=(1, 4))
    """
    if isinstance(ref, Ref):
        return ref
    if not isinstance(ref, str):
        raise BadType(f"a layer reference is a string 'name' or 'name:channel', got {type(ref).__name__}")
    head, sep, tail = ref.rpartition(":")
    if not sep:
        head, channels = ref, None
    elif not tail.strip():
        raise BadValue(f"no channel after ':' in {ref!r}: expected 'name:3' or 'name:1,4'")
    else:
        channels = _channels(tail, ref)
    name, call = split_call(head.strip())
    if not name:
        raise BadValue(f"no layer name in {ref!r}: expected 'name' or 'name:channel'")
    return Ref(name, call, channels)


def format_ref(key: str, channels: Iterable[int] | int | None = None) -> str:
    """The reference text for an activation ``key`` and channels.

    Example:
        >>> format_ref("relu#2", [1, 4])
        'relu#2:1,4'
    """
    if channels is None:
        return key
    if isinstance(channels, int):
        return f"{key}:{channels}"
    return f"{key}:{','.join(str(int(c)) for c in channels)}"


def channel_list(channels: Iterable[int] | int | range | None, n: int, name: str) -> list[int]:
    """Channels as non-negative ints checked against the layer's width ``n`` (``None``: all of them).

    Negative channels count from the end; one out of range is an ``IndexError`` stating ``n``.

    Example:
        >>> channel_list([0, -1], 4, "conv")
        [0, 3]
    """
    if channels is None:
        return list(range(n))
    items = [channels] if isinstance(channels, int) else list(channels)
    if not items:
        raise BadValue(f"no channels given for {name!r}: give at least one, or None for all {n}")
    out = []
    for c in items:
        if isinstance(c, bool) or not hasattr(c, "__index__"):
            raise BadType(f"a channel is an int, got {c!r}")
        c = int(c)
        if not -n <= c < n:
            raise OutOfRange(f"layer {name!r} has {n} channels (0..{n - 1}); got channel {c}")
        out.append(c % n)
    return out


def _per_channel(value: float | Sequence[float], what: str) -> tuple[float, ...]:
    values = (float(value),) if isinstance(value, (int, float)) else tuple(float(v) for v in value)
    if len(values) not in (1, 3):
        raise BadValue(f"{what} must be one number or one per RGB channel (3 numbers), got {len(values)}")
    return values


class Normalize:
    """``(x - mean) / std`` per channel; a plain callable (not an ``nn.Module``), so attaching it to a
    model as ``model.preprocess`` adds no submodule, hook name or state-dict key.

    ``mean`` and ``std`` are one number or three (RGB). The constants are made on the input's
    device and dtype at each call.

    Example:
        >>> norm = Normalize(mean=0.5, std=0.5)
        >>> norm(torch.ones(1, 3, 2, 2)).unique()
        tensor([1.])
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]):
        self.mean = _per_channel(mean, "mean")
        self.std = _per_channel(std, "std")
        if any(s <= 0 for s in self.std):
            raise BadValue(f"std must be positive, got {self.std}")

    def __call__(self, x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, 3, H, W)
        if x.dim() != 4 or x.shape[1] != 3:
            raise BadValue(f"expected images of shape (B, 3, H, W), got {tuple(x.shape)}")
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(-1, 1, 1)
        return (x - mean) / std

    def inverse(self, x: Tensor) -> Tensor:
        """Undo the normalisation: ``x * std + mean`` (e.g. to show a normalised tensor as an image).

        Example:
            >>> norm = Normalize(0.5, 0.5)
            >>> x = torch.rand(1, 3, 4, 4)
            >>> bool(torch.allclose(norm.inverse(norm(x)), x))
            True
        """
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(-1, 1, 1)
        return x * std + mean

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


# -- model plumbing ------------------------------------------------------------------------------
def _module(model: nn.Module) -> nn.Module:
    return getattr(model, "model", model) if not isinstance(model, nn.Module) else model


def input_size_of(model: nn.Module, default: int | None = None) -> int | tuple[int, int] | None:
    """The input size ``model`` declares (``model.input_size``, also through a HookedModel), else ``default``;
    a declared ``None`` counts as none.

    Example:
        >>> net = nn.Conv2d(3, 4, 3)
        >>> input_size_of(net, 224), setattr(net, "input_size", 96), input_size_of(net, 224)
        (224, None, 96)
    """
    size = getattr(_module(model), "input_size", None)
    return default if size is None else size


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with neither).

    Example:
        >>> device_of(nn.Linear(2, 2))
        device(type='cpu')
    """
    m = _module(model)
    for t in (*m.parameters(), *m.buffers()):
        return t.device
    return torch.device("cpu")


def check_materialized(model: nn.Module) -> None:
    """Raise :class:`~featviz.errors.BadValue` when a parameter or buffer of ``model`` is on the ``meta``
    device (built under ``torch.device("meta")`` or an empty-weights context: shapes without values, so
    every result would be made up).

    Example:
        >>> with torch.device("meta"):
        ...     net = nn.Linear(2, 2)
        >>> check_materialized(net)
        Traceback (most recent call last):
        featviz.errors.BadValue: the model's weight is on the 'meta' device: ...
    """
    m = _module(model)
    for name, t in (*m.named_parameters(), *m.named_buffers()):
        if t.is_meta:
            raise BadValue(f"the model's {name} is on the 'meta' device: it has a shape but no values, so "
                           f"every result would be made up; give it real weights first, e.g. "
                           f"model.to_empty(device='cpu') then model.load_state_dict(...)")


def dtype_of(model: nn.Module) -> torch.dtype:
    """The model's floating-point dtype (its first floating parameter or buffer; float32 without one).

    Example:
        >>> dtype_of(nn.Linear(2, 2).double())
        torch.float64
    """
    m = _module(model)
    for t in (*m.parameters(), *m.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def preprocess_fn(model: nn.Module, preprocess: Callable | bool | None = None) -> Callable:
    """The one preprocessing rule: ``None``/``True`` -> the model's ``preprocess``; ``False`` -> identity;
    a callable -> itself.

    A model without a ``preprocess`` attribute: a timm model is normalised with its ``pretrained_cfg``
    mean and std; another model gets its images unchanged, and a torchvision model (trained on
    normalised images) also a one-time ``NoPreprocessWarning`` naming the fix,
    ``fv.models.wrap(model, mean=..., std=...)``. ``model.preprocess = None`` says "unchanged" quietly.

    Example:
        >>> preprocess_fn(nn.Identity(), None)(torch.ones(1))
        tensor([1.])
    """
    if preprocess is False:
        return _identity
    if preprocess is None or preprocess is True:
        m = _module(model)
        if hasattr(m, "preprocess"):
            fn = m.preprocess
            return fn if callable(fn) else _identity
        stats = library_stats(m)
        if stats is not None:
            return Normalize(*stats[:2])
        _warn_unnormalised(m)
        return _identity
    if not callable(preprocess):
        raise BadType(f"preprocess must be a callable, None or False, got {type(preprocess).__name__}")
    return preprocess


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def library_stats(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...], int | None] | None:
    """(mean, std, input size or None) a model from a library declares about its inputs: timm's
    ``pretrained_cfg`` (or ``default_cfg``), or a torchvision weights ``transforms`` object kept on the
    model as ``model.transforms``; None when it declares nothing.

    Example:
        >>> net = nn.Conv2d(3, 4, 3)
        >>> net.pretrained_cfg = {"mean": (0.5,) * 3, "std": (0.25,) * 3, "input_size": (3, 96, 96)}
        >>> library_stats(net)
        ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 96)
    """
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    if isinstance(cfg, Mapping) and cfg.get("mean") is not None and cfg.get("std") is not None:
        size = cfg.get("input_size")
        side = int(size[-1]) if isinstance(size, (tuple, list)) and size else None
        return tuple(map(float, cfg["mean"])), tuple(map(float, cfg["std"])), side
    t = getattr(model, "transforms", None)  # torchvision: weights.transforms() (ImageClassification)
    if t is not None and getattr(t, "mean", None) is not None and getattr(t, "std", None) is not None:
        crop = getattr(t, "crop_size", None)
        side = int(crop[0]) if isinstance(crop, (tuple, list)) and crop else None
        return tuple(map(float, t.mean)), tuple(map(float, t.std)), side
    return None


class NoPreprocessWarning(UserWarning):
    """A library model (torchvision) without ``preprocess`` gets its images in [0, 1], unnormalised."""


_WARNED: weakref.WeakSet = weakref.WeakSet()


def _warn_unnormalised(m: nn.Module) -> None:
    if not type(m).__module__.startswith("torchvision.") or m in _WARNED:
        return
    _WARNED.add(m)
    warnings.warn(f"{type(m).__name__} has no .preprocess, so featviz gives it images in [0, 1] without "
                  f"normalisation; torchvision's weights expect ImageNet-normalised input: run "
                  f"fv.models.wrap(model, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) (or "
                  f"wrap(model, weights=...) with its weights enum); model.preprocess = None silences this",
                  NoPreprocessWarning, stacklevel=3)


def probe_input(model: nn.Module, size: int | tuple[int, int] | None = None, *, seed: int = 0,
                batch: int = 1) -> torch.Tensor:
    """A (batch, C, H, W) input for a shape probe: uniform noise in [0, 1] through the model's preprocess,
    on its device and dtype. Size: ``size``, else the model's ``input_size``, else 224; C: the first
    conv's input channels (3 without a conv).

    Example:
        >>> probe_input(nn.Conv2d(1, 2, 3), 8).shape
        torch.Size([1, 1, 8, 8])
    """
    m = _module(model)
    own = size is None
    size = size or input_size_of(m) or (library_stats(m) or (0, 0, None))[2] or 224
    h, w = (size, size) if isinstance(size, int) else tuple(size)[-2:]
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (h, w)):
        where = "the model's input_size" if own else "size"
        raise BadValue(f"{where} is {size!r}, but an image size is a positive whole number of pixels (or an "
                       f"(H, W) pair of them)" + ("; fix model.input_size or pass size=" if own else ""))
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, input_channels(m), int(h), int(w), generator=gen).to(device_of(m), dtype_of(m))
    return preprocess_fn(m, None)(x)


def input_channels(model: nn.Module) -> int:
    """The channels of the model's input images: the first conv's input channels (3 without a conv).

    Example:
        >>> input_channels(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3, groups=4)))
        1
    """
    first = next((c for c in _module(model).modules() if isinstance(getattr(c, "weight", None), torch.Tensor)
                  and c.weight.dim() == 4 and hasattr(c, "stride")), None)
    return int(first.weight.shape[1] * int(getattr(first, "groups", 1))) if first is not None else 3


@contextmanager
def evaluating(model: nn.Module, freeze_grads: bool = False) -> Iterator[nn.Module]:
    """The one eval-mode block of featviz: within it the model is in eval mode and, with
    ``freeze_grads=True``, no parameter requires grad. On exit every module's mode, every parameter's
    ``requires_grad`` and every buffer (BatchNorm running statistics) are restored, also when the block
    raises.

    Example:
        >>> net = nn.Sequential(nn.BatchNorm2d(2)).train()
        >>> with evaluating(net, freeze_grads=True):
        ...     net.training, net[0].weight.requires_grad
        (False, False)
        >>> net.training, net[0].weight.requires_grad
        (True, True)
    """
    m = _module(model)
    modes = [(sub, sub.training) for sub in m.modules()]
    buffers = [(b, b.detach().clone()) for b in m.buffers()] if any(f for _, f in modes) else []
    grads = [(p, p.requires_grad) for p in m.parameters()] if freeze_grads else []
    try:
        for p, _ in grads:
            p.requires_grad_(False)
        m.eval()
        yield m
    finally:
        for p, flag in grads:
            p.requires_grad_(flag)
        for sub, flag in modes:
            sub.training = flag
        with torch.no_grad():
            for b, saved in buffers:
                if not torch.equal(b, saved):
                    b.copy_(saved)


_REUSE: ContextVar[dict | None] = ContextVar("featviz_reuse", default=None)


@contextmanager
def reusing(store: dict | None = None) -> Iterator[dict]:
    """Within the block, featviz's analyses remember results they computed from the same model, weights
    and inputs, and reuse them instead of computing them again: the dst responses of each ablated channel
    set (``fv.circuits.ablation_test``, ``evidence``'s ablations: a family test and random sets are the
    same for every channel of a layer), every channel's responses to the same stimuli or photos
    (``layer_responses``, ``tuning_curve``, ``evidence``'s photo statistics). Keys hold the model's
    identity and a stamp of its parameters and buffers (an in-place edit of a weight changes it) and the
    inputs' bytes, so a changed input is never served an old result. What the key cannot see: hooks the
    caller adds or removes inside the block (e.g. an ``ablate`` context around some calls and not
    others); enter ``reusing`` where the model is fixed. ``store``: a dict to keep results in (reuse
    across several blocks); default a new one, dropped at the end of the block. Nested blocks share the
    outer store unless given their own.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        >>> from featviz.hooks import hooked
        >>> from featviz.circuits.tuning import layer_responses
        >>> x = torch.rand(2, 3, 8, 8)
        >>> with reusing() as store:
        ...     a = layer_responses(hooked(net), "1", x)
        ...     b = layer_responses(hooked(net), "1", x)   # served from the store
        >>> torch.equal(a, b), sum(len(v) for v in store.values())
        (True, 1)
    """
    outer = _REUSE.get()
    token = _REUSE.set(store if store is not None else (outer if outer is not None else {}))
    try:
        yield _REUSE.get()
    finally:
        _REUSE.reset(token)


def reuse_store(kind: str, model: nn.Module) -> dict | None:
    """The active ``reusing`` block's results of ``kind`` for ``model`` at its current weights (a dict
    to read and fill), or None outside a block (compute as usual, remember nothing).

    Example:
        >>> net = nn.Linear(2, 2)
        >>> reuse_store("x", net) is None
        True
        >>> with reusing():
        ...     reuse_store("x", net)["k"] = 1
        ...     with torch.no_grad():
        ...         _ = net.weight.mul_(2)          # an in-place edit: a new stamp, nothing remembered
        ...     reuse_store("x", net)
        {}
    """
    store = _REUSE.get()
    if store is None:
        return None
    m = _module(model)
    stamp = tuple((id(t), t._version) for t in (*m.parameters(), *m.buffers()))
    return store.setdefault((kind, id(m), stamp), {})


def remembered(kind: str, model: nn.Module, key: Hashable, compute: Callable[[], tuple]) -> tuple:
    """``compute()`` (a tuple of tensors or None), or, within ``reusing``, the result stored under ``key``
    for ``model`` at its current weights; stored and handed out as copies, so a caller may edit its
    result in place. Outside a block: ``compute()`` as it is.

    Example:
        >>> net, calls = nn.Linear(2, 2), []
        >>> with reusing():
        ...     for _ in range(2):
        ...         _ = remembered("demo", net, "k", lambda: calls.append(1) or (torch.ones(1),))
        >>> len(calls)
        1
    """
    memo = reuse_store(kind, model)
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = _copies(compute())
    return _copies(memo[key])


def _copies(values: tuple) -> tuple:
    return tuple(None if t is None else t.clone() for t in values)


def tensor_key(t: Tensor) -> tuple:
    """A hashable key of a tensor's shape, dtype and bytes (a digest: equal keys, equal tensors).

    Example:
        >>> one = tensor_key(torch.ones(2))
        >>> one == tensor_key(torch.ones(2)), one == tensor_key(torch.zeros(2))
        (True, False)
    """
    data = t.detach().cpu().contiguous()
    digest = hashlib.blake2b(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"",
                             digest_size=16).hexdigest()
    return tuple(data.shape), str(data.dtype), digest


class StopForward(Exception):
    """Raised inside a hook to end a forward pass early (once everything wanted has run)."""


# -- images: the one rule for what a function that takes images accepts ----------------------------
def as_images(images: object, what: str = "images", *, channels: int | None = 3, unit: bool = True,
              empty: bool = False) -> Tensor:
    """The one images rule of featviz: ``images`` as a float (B, C, H, W) tensor.

    - an ``fv.data.Images`` (``images, names``) gives its tensor;
    - one image (C, H, W) gets a batch dimension: (1, C, H, W);
    - uint8 pixels (0..255) become float32 in [0, 1]; bool becomes 0.0 / 1.0; a float tensor keeps its
      dtype; any other dtype is a :class:`~featviz.errors.BadType` (:func:`as_float_images`);
    - ``channels`` (3 by default; ``None``: any) is the number of colour channels wanted;
    - ``unit=True`` (the default: featviz images are in [0, 1]) refuses float values outside [0, 1]; NaN
      and infinite values are refused always (:func:`check_pixels`);
    - an empty batch is refused unless ``empty=True``.

    Anything else is a :class:`~featviz.errors.BadType` / :class:`~featviz.errors.BadValue` that says what
    was given and what is wanted.

    Example:
        >>> as_images(torch.full((3, 2, 2), 255, dtype=torch.uint8)).shape
        torch.Size([1, 3, 2, 2])
        >>> float(as_images(torch.full((3, 2, 2), 255, dtype=torch.uint8)).max())
        1.0
    """
    want = f"(B, {channels if channels else 'C'}, H, W)"
    if isinstance(images, tuple) and images and isinstance(images[0], Tensor):  # fv.data.Images
        images = images[0]
    if not isinstance(images, Tensor):
        raise BadType(f"{what} must be a {want} tensor in [0, 1] (float, or uint8 in 0..255), e.g. "
                      f"fv.data.load_images(folder).images; got {type(images).__name__}")
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4 or (channels is not None and images.shape[1] != channels):
        hint = " (channels last? use x.permute(0, 3, 1, 2))" if images.dim() == 4 and channels is not None \
            and images.shape[-1] == channels else ""
        raise BadValue(f"{what} must have shape {want} (or one image, ({want[4:]}), got "
                       f"{tuple(images.shape)}{hint}")
    if len(images) == 0 and not empty:
        raise BadValue(f"{what} is empty (shape {tuple(images.shape)}): give at least one image")
    return as_float_images(images, what, unit=unit)


def as_float_images(images: Tensor, what: str = "images", *, unit: bool = False) -> Tensor:
    """The one uint8 rule of featviz: uint8 pixels (0..255) become float32 in [0, 1] (divided by 255);
    float tensors pass unchanged (their dtype kept); bool becomes 0.0 / 1.0. Other integer dtypes are
    ambiguous (0..255? 0..65535? labels?) and raise :class:`~featviz.errors.BadType` with the fix.
    NaN or infinite values are a :class:`~featviz.errors.BadValue` (they would give NaN results).
    ``unit=True`` (functions whose images must be in [0, 1], e.g. ``predict``) also refuses float
    values outside [0, 1] (images in 0..255 divided by nothing), naming the fix.

    The dtype half of :func:`as_images` (which also checks the shape); shapes are not checked here.

    Example:
        >>> as_float_images(torch.tensor([0, 51, 255], dtype=torch.uint8))
        tensor([0.0000, 0.2000, 1.0000])
        >>> as_float_images(torch.tensor([0.5])).dtype
        torch.float32
    """
    if not isinstance(images, Tensor):
        raise BadType(f"{what} must be a torch.Tensor (B, 3, H, W) in [0, 1], got {type(images).__name__}; "
                      "convert with torch.as_tensor(...)")
    if images.dtype == torch.uint8:
        return images.float() / 255
    if images.dtype == torch.bool:
        return images.float()
    if images.is_floating_point():
        check_pixels(images, what, unit=unit)
        return images
    raise BadType(f"{what} have dtype {images.dtype}, which featviz cannot read as pixels; give float values "
                  "in [0, 1] or uint8 in 0..255 (e.g. images.to(torch.uint8) or images.float() / 255)")


def check_pixels(images: Tensor, what: str = "images", *, unit: bool = False) -> None:
    """Raise :class:`~featviz.errors.BadValue` for NaN / infinite values and, with ``unit=True``, for float
    values outside [0, 1] (a tolerance of 1e-3 allows rounding).

    Example:
        >>> check_pixels(torch.full((1, 3, 2, 2), 200.0), unit=True)
        Traceback (most recent call last):
        featviz.errors.BadValue: images hold values up to 200 but must be in [0, 1]: ... divide by 255 ...
    """
    finite = torch.isfinite(images)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        kind = "NaN" if bool(torch.isnan(images).any()) else "infinite"
        raise BadValue(f"{what} hold {bad} {kind} value(s) (of {images.numel()}); every pixel must be a "
                       f"number (check how the images were made; torch.nan_to_num(x) replaces them)")
    if unit and images.numel():
        lo, hi = float(images.min()), float(images.max())
        if hi > 1 + 1e-3:
            hint = "images in 0..255: divide by 255 (x / 255), or pass uint8" if hi <= 255.5 else \
                "rescale them to [0, 1]"
            raise BadValue(f"{what} hold values up to {hi:g} but must be in [0, 1]: {hint}")
        if lo < -1e-3:
            raise BadValue(f"{what} hold values down to {lo:g} but must be in [0, 1] (normalised images? "
                           f"pass the raw [0, 1] images; the model's preprocess normalises them)")


# -- layouts: where the channels of an activation are ---------------------------------------------
def layout(module: nn.Module | None, output: object, channels_last: bool = False) -> str:
    """Where an activation keeps its channels: ``"maps"`` (B, C, H, W), ``"channels_last"`` (B, H, W, C),
    ``"vector"`` (B, C), ``"tokens"`` (B, N, D: a transformer layer) or ``"other"`` (tuples, dicts,
    anything else). A 4-D output is channels-last when ``module`` works on the last dimension
    (a Linear or LayerNorm whose width is that dimension) or ``channels_last`` says its input was.

    Example:
        >>> layout(nn.Linear(4, 6), torch.zeros(1, 5, 5, 6))
        'channels_last'
    """
    if not isinstance(output, torch.Tensor):
        return "other"
    if output.dim() == 2:
        return "vector"
    if output.dim() == 3:  # a Conv1d / BatchNorm1d keeps (B, C, L); anything else is (B, N, D) tokens
        weight = getattr(module, "weight", None)
        one_d = (isinstance(weight, torch.Tensor) and weight.dim() == 3) or "1d" in type(module).__name__
        return "maps" if one_d else "tokens"
    if output.dim() != 4:
        return "other"
    width = getattr(module, "out_features", None) or _norm_width(module)
    if width is not None and output.shape[-1] == width and output.shape[1] != width:
        return "channels_last"
    return "channels_last" if channels_last else "maps"


ACTIVATIONS = frozenset({"ReLU", "ReLU6", "Hardtanh", "LeakyReLU", "ELU", "GELU", "SiLU", "Hardswish",
                         "Hardsigmoid", "Sigmoid", "Tanh", "Mish"})
"""Class names of the elementwise activation functions (one output per input value, same shape)."""
PASS_THROUGH = frozenset({"Identity", "Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "DropPath",
                          "StochasticDepth"})
"""Class names of modules that, in eval mode, return their input unchanged."""
ELEMENTWISE = ACTIVATIONS | PASS_THROUGH
"""The one elementwise-module table: activations and eval-mode pass-throughs (matched by class name, so
featviz's, torch's and timm's modules of the same name all count)."""


def module_layout(model: nn.Module, name: str, output: object) -> str:
    """``layout`` of module ``name``'s output, where an elementwise module (an activation, dropout, identity)
    keeps the layout of the module registered just before it in the same parent: the GELU between two
    Linears of a ConvNeXt block is channels-last too, although nothing in the GELU says so.

    Example:
        >>> block = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 4))
        >>> module_layout(block, "1", torch.zeros(1, 5, 5, 6)), layout(block[1], torch.zeros(1, 5, 5, 6))
        ('channels_last', 'maps')
    """
    modules = dict(_module(model).named_modules())
    module = modules.get(split_call(name)[0])
    kind = layout(module, output)
    if kind != "maps" or type(module).__name__ not in ELEMENTWISE:
        return kind
    parent_name, _, child = split_call(name)[0].rpartition(".")
    previous = None
    for key, sibling in modules.get(parent_name, _module(model)).named_children():
        if key == child:
            break
        previous = sibling
    return layout(previous, output) if previous is not None else kind


def _norm_width(module: nn.Module | None) -> int | None:
    shape = getattr(module, "normalized_shape", None)
    if isinstance(shape, (tuple, list)) and len(shape) == 1 and type(module).__name__ != "LayerNorm2d":
        return int(shape[0])
    return None


def channel_dim(kind: str, name: str = "the activation") -> int:
    """The channel axis of an activation of layout ``kind`` (:func:`layout`): 1 for maps and vectors, -1
    for channels-last maps and tokens; ``"other"`` has none (:class:`~featviz.errors.BadValue`).

    Example:
        >>> channel_dim("maps"), channel_dim("channels_last")
        (1, -1)
    """
    if kind in ("maps", "vector"):
        return 1
    if kind in ("channels_last", "tokens"):
        return -1
    raise BadValue(f"{name} is not a (B, C, ...) tensor, so it has no channels; pick a layer whose output "
                   f"is one")


def channel_values(t: torch.Tensor, kind: str) -> torch.Tensor:
    """One value per channel and item, (B, C): the mean over positions (maps, channels-last) or tokens.

    Example:
        >>> channel_values(torch.ones(2, 5, 5, 3), "channels_last").shape
        torch.Size([2, 3])
    """
    if kind == "maps":
        return t.mean((-2, -1))
    if kind == "channels_last":
        return t.mean((1, 2))
    if kind == "tokens":
        return t.mean(1)
    if kind == "vector":
        return t
    raise BadValue(f"an output of type {type(t).__name__} has no channels")
