"""Objectives: (activations: name -> tensor) -> one value per batch item, shape (B,), to be MAXIMISED.

An ``Objective`` wraps such a function with a readable name and the layer names it reads, so that
``render`` knows what to capture and where the forward pass may stop. Objectives form an algebra:
``a + b``, ``a - b``, ``-a``, ``2 * a``, ``a / 2``; strings ``"layer:3"`` are accepted wherever an
objective is and mean ``channel("layer", 3)``. The sign is lucid's: an objective is the quantity to
maximise and the optimiser minimises minus the sum over the batch. Penalties (``total_variation``,
``blur``) return the (positive) amount of the unwanted thing: subtract them.

Two special keys: ``INPUT`` holds the images in [0, 1] before the transformations, ``OUTPUT`` the
model's final output.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from featviz.core import parse_ref
from featviz.errors import BadType, BadValue, OutOfRange

INPUT = "<input>"
"""Key of the model's input image in the activations dict an objective receives."""
OUTPUT = "<output>"
"""Key of the model's output (logits) in the activations dict an objective receives."""

Acts = Mapping[str, torch.Tensor]


class Objective:
    """A function ``acts -> (B,)`` with a name, the layers it reads and the channels it indexes.

    ``per_item``: item ``i``'s value depends on item ``i``'s activations only, wherever the item sits in the
    batch (``channel``, ``neuron``, ``deepdream``, one shared ``direction``, ``batch(...)`` terms and sums of
    such objectives; not ``diversity``, which compares the items). ``fv.render(..., early_stop=)`` takes a
    converged item out of the forward batch only for such objectives. An ``Objective`` made from a function
    of your own is not per item unless you say so.

    Example:
        >>> obj = channel("blocks.2", 3) - 0.5 * channel("blocks.2", 4)
        >>> obj, obj.layers
        (Objective(channel(blocks.2:3) - 0.5 * channel(blocks.2:4)), ('blocks.2',))
    """

    def __init__(
        self,
        fn: Callable[[Acts], torch.Tensor],
        name: str,
        layers: Sequence[str] = (),
        channels: Sequence[tuple[str, int]] = (),
        per_item: bool = False,
    ) -> None:
        self.fn = fn
        self.name = name
        self.layers: tuple[str, ...] = tuple(dict.fromkeys(layers))  # ordered, unique
        self.channels: tuple[tuple[str, int], ...] = tuple(dict.fromkeys(channels))
        self.per_item = bool(per_item)

    def __call__(self, acts: Acts) -> torch.Tensor:
        value = self.fn(acts if isinstance(acts, _Acts) else _Acts(acts))
        if value.dim() != 1:
            raise BadValue(f"objective {self.name} must return one value per batch item, shape (B,), "
                             f"got shape {tuple(value.shape)}")
        return value

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    def _combine(self, other: Objective, op: Callable, name: str) -> Objective:
        return Objective(lambda acts: op(self(acts), other(acts)), name, self.layers + other.layers,
                         self.channels + other.channels, self.per_item and other.per_item)

    def __add__(self, other: object) -> Objective:
        if isinstance(other, numbers.Number) and other == 0:  # lets sum([...]) work
            return self
        other = as_objective(other)
        return self._combine(other, torch.add, f"{self.name} + {other.name}")

    __radd__ = __add__

    def __sub__(self, other: object) -> Objective:
        other = as_objective(other)
        return self._combine(other, torch.sub, f"{self.name} - {_paren(other.name)}")

    def __rsub__(self, other: object) -> Objective:
        return as_objective(other) - self

    def __neg__(self) -> Objective:
        return Objective(lambda acts: -self(acts), f"-{_paren(self.name)}", self.layers, self.channels,
                         self.per_item)

    def __mul__(self, k: object) -> Objective:
        if not isinstance(k, numbers.Real):
            raise BadType(f"an objective can be multiplied by a number only, got {type(k).__name__}")
        name = f"{k:g} * {_paren(self.name)}"
        return Objective(lambda acts: k * self(acts), name, self.layers, self.channels, self.per_item)

    __rmul__ = __mul__

    def __truediv__(self, k: object) -> Objective:
        if not isinstance(k, numbers.Real) or k == 0:
            raise BadType(f"an objective can be divided by a non-zero number only, got {k!r}")
        name = f"{_paren(self.name)} / {k:g}"
        return Objective(lambda acts: self(acts) / k, name, self.layers, self.channels, self.per_item)


class _Acts(dict):
    """The activations one evaluation of an objective reads (a plain dict to every objective function), plus
    each activation split into its batch items once, shared by all ``batch(...)`` terms of that evaluation.

    Slicing item ``i`` out of a (B, ...) tensor separately for each of B terms costs a B-sized zero
    gradient per term and B - 1 full-size additions in the backward pass (O(B^2) memory traffic, 60 %
    of a batch-8 render step on a small network); one shared split gathers all B gradients in one copy.
    """

    def __init__(self, acts: Acts, rows: Sequence[int] | None = None) -> None:
        super().__init__(acts)
        self._items: dict[str, tuple[torch.Tensor, ...]] = {}
        # the items of the whole batch these rows are (``fv.render`` with early_stop: converged items leave)
        self.rows: tuple[int, ...] | None = None if rows is None else tuple(int(r) for r in rows)

    def item(self, key: str, i: int) -> torch.Tensor:
        """``self[key][i : i + 1]``, from the shared split."""
        if key not in self._items:
            self._items[key] = self[key].split(1)
        return self._items[key][i]


def _paren(name: str) -> str:
    return f"({name})" if (" + " in name or " - " in name) else name


def as_objective(obj: Objective | str) -> Objective:
    """An ``Objective`` as is; ``"layer:3"`` becomes ``channel("layer", 3)``.

    The string is read by ``featviz.core.parse_ref``: ``"layer#2:3"`` is the second call of a reused
    module, ``"layer:-1"`` its last channel. One string is one channel; a list or range
    (``"layer:1,4"``) is refused with the calls that render several channels.

    Example:
        >>> as_objective("blocks.2:7")
        Objective(channel(blocks.2:7))
        >>> as_objective("blocks.2:-1")
        Objective(channel(blocks.2:-1))
    """
    if isinstance(obj, Objective):
        return obj
    if not isinstance(obj, str):
        raise BadType(f"expected an Objective or a 'layer:channel' string, got {type(obj).__name__}")
    try:
        ref = parse_ref(obj)
    except ValueError as e:
        raise BadValue(f"objective string must be 'layer:channel' (e.g. 'blocks.2:7'), got {obj!r}: "
                         f"{e}") from None
    if ref.channels is None:
        raise BadValue(f"objective string must be 'layer:channel' (e.g. 'blocks.2:7'), got {obj!r}; "
                         f"for a whole layer use objectives.deepdream({obj!r})")
    if len(ref.channels) != 1:
        chans = list(ref.channels)
        raise BadValue(
            f"objective string {obj!r} names {len(chans)} channels; an objective string is one channel "
            f"('layer:channel'). Render each channel: fv.render_layer(model, {ref.key!r}, channels={chans}); "
            f"or one image for their sum: " + " + ".join(f"channel({ref.key!r}, {c})" for c in chans))
    return channel(ref.key, ref.channels[0])


def _check_channel_arg(c: object) -> int:
    if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 0:
        raise BadValue(f"channel must be a non-negative int, got {c!r}; channels count from 0 (0..C-1)")
    return int(c)


def _check_channel_index(c: object) -> int:
    """A channel index: an int, negative ones counted from the end (checked against the width at run time)."""
    if isinstance(c, bool) or not isinstance(c, numbers.Integral):
        raise BadValue(f"channel must be an int (a non-negative int counts from 0, a negative one from the "
                         f"end), got {c!r}")
    return int(c)


def _spatial_mean(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).mean(1) if t.dim() > 1 else t  # (B, ...) -> (B,)


def channel(layer: str, c: int) -> Objective:
    """Mean activation of channel ``c`` of ``layer`` over all positions (works on (B, C) layers too).

    A negative ``c`` counts from the end (``-1``: the last channel).

    Example:
        >>> channel("conv", 1)({"conv": torch.ones(2, 3, 4, 4)})
        tensor([1., 1.])
    """
    c = _check_channel_index(c)
    name = f"channel({layer}:{c})"
    return Objective(lambda acts: _spatial_mean(acts[layer][:, c]), name, [layer], [(layer, c)],
                     per_item=True)


def neuron(layer: str, c: int, x: int | None = None, y: int | None = None) -> Objective:
    """Activation of channel ``c`` at one position (column ``x``, row ``y``; default the centre).

    A negative ``c`` counts from the end.

    Example:
        >>> neuron("conv", 0)({"conv": torch.arange(9.).reshape(1, 1, 3, 3)})
        tensor([4.])
    """
    c = _check_channel_index(c)

    def fn(acts: Acts) -> torch.Tensor:
        t = acts[layer][:, c]  # (B, H, W)
        h, w = t.shape[-2:]
        yy, xx = (h // 2 if y is None else y), (w // 2 if x is None else x)
        if not (0 <= yy < h and 0 <= xx < w):
            raise OutOfRange(f"neuron position (x={xx}, y={yy}) is outside {layer}'s {h}x{w} activation map")
        return t[:, yy, xx]

    where = "" if x is None and y is None else f", x={x}, y={y}"
    return Objective(fn, f"neuron({layer}:{c}{where})", [layer], [(layer, c)], per_item=True)


def _as_vectors(layer: str, vector: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """``vector`` as a float (K, C) tensor: one row per batch item, or K = 1 for one shared vector."""
    vec = torch.as_tensor(vector).detach().float()
    if vec.dim() == 1:
        vec = vec[None]
    if vec.dim() != 2 or vec.numel() == 0:
        raise BadValue(f"direction vectors for {layer} must be (C,) or (B, C), "
                         f"got shape {tuple(vec.shape)}")
    return vec


def _matched(layer: str, t: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    """``vec`` (K, C) on ``t``'s device, shaped (K, C, 1, ...) to broadcast against ``t`` (B, C, ...)."""
    if t.shape[1] != vec.shape[1]:
        raise BadValue(f"direction vector has {vec.shape[1]} entries, but {layer} has "
                         f"{t.shape[1]} channels")
    if len(vec) not in (1, t.shape[0]):
        raise BadValue(f"{len(vec)} direction vectors for a batch of {t.shape[0]}: give one vector, or "
                         f"one per batch item (render with batch={len(vec)})")
    return vec.to(t.device, t.dtype).view(*vec.shape, *([1] * (t.dim() - 2)))


def _dot_cossim(t: torch.Tensor, v: torch.Tensor, cossim_pow: float) -> torch.Tensor:
    """(B, C, ...) x (K, C, ...) -> (B, ...): dot product over channels, times max(cos, 0.1) ** cossim_pow."""
    dot = (t * v).sum(1)
    if not cossim_pow:
        return dot
    cos = dot / (t.norm(dim=1) * v.norm(dim=1) + 1e-8)
    return dot * cos.clamp(min=0.1) ** cossim_pow


def direction(layer: str, vector: torch.Tensor | Sequence[float], cossim_pow: float = 0.0) -> Objective:
    """Dot product of the activation vector at each position with ``vector``, mean over positions.

    ``vector`` is one (C,) direction for every batch item, or (B, C): item ``i`` follows row ``i``, so
    ``B`` directions (the groups of a factorization, the cells of an atlas) render in one run. With
    ``cossim_pow > 0`` each position's dot product is multiplied by ``max(cos, 0.1) ** cossim_pow``
    (lucid's ``direction_cossim``): the angle counts, not only the length along the direction.

    Example:
        >>> direction("conv", [1.0, -1.0])({"conv": torch.ones(1, 2, 3, 3)})
        tensor([0.])
        >>> direction("conv", torch.eye(2))({"conv": torch.arange(2.).view(1, 2, 1, 1).repeat(2, 1, 3, 3)})
        tensor([0., 1.])
    """
    vec = _as_vectors(layer, vector)  # (K, C)

    def fn(acts: Acts) -> torch.Tensor:
        t = acts[layer]  # (B, C, ...)
        return _spatial_mean(_dot_cossim(t, _matched(layer, t, vec), cossim_pow).unsqueeze(1))

    batched = f", {len(vec)} vectors" if len(vec) > 1 else ""
    pow_ = f", cossim_pow={cossim_pow:g}" if cossim_pow else ""
    return Objective(fn, f"direction({layer}{batched}{pow_})", [layer], per_item=len(vec) == 1)


def direction_neuron(layer: str, vector: torch.Tensor | Sequence[float], x: int | None = None,
                     y: int | None = None, cossim_pow: float = 0.0) -> Objective:
    """Dot product of the activation vector at one position (default the centre) with ``vector``.

    ``vector`` and ``cossim_pow`` as in :func:`direction`: (B, C) gives each batch item its own vector.

    Example:
        >>> t = torch.zeros(2, 2, 3, 3); t[:, :, 1, 1] = torch.tensor([1.0, 2.0])
        >>> direction_neuron("conv", [[1.0, 0.0], [0.0, 1.0]])({"conv": t})
        tensor([1., 2.])
    """
    vec = _as_vectors(layer, vector)

    def fn(acts: Acts) -> torch.Tensor:
        t = acts[layer]  # (B, C, H, W)
        if t.dim() != 4:
            raise BadValue(f"direction_neuron needs (B, C, H, W) activations, {layer} gives "
                             f"{tuple(t.shape)}")
        h, w = t.shape[-2:]
        yy, xx = (h // 2 if y is None else y), (w // 2 if x is None else x)
        if not (0 <= yy < h and 0 <= xx < w):
            raise OutOfRange(f"position (x={xx}, y={yy}) is outside {layer}'s {h}x{w} activation map")
        return _dot_cossim(t[:, :, yy, xx], _matched(layer, t[:, :, 0, 0], vec), cossim_pow)

    where = "" if x is None and y is None else f", x={x}, y={y}"
    batched = f", {len(vec)} vectors" if len(vec) > 1 else ""
    return Objective(fn, f"direction_neuron({layer}{where}{batched})", [layer], per_item=len(vec) == 1)


def deepdream(layer: str) -> Objective:
    """Mean squared activation of the whole layer (DeepDream's objective).

    Example:
        >>> deepdream("conv")({"conv": 2 * torch.ones(1, 2, 3, 3)})
        tensor([4.])
    """
    return Objective(lambda acts: _spatial_mean(acts[layer] ** 2), f"deepdream({layer})", [layer],
                     per_item=True)


def class_logit(c: int, layer: str | None = None) -> Objective:
    """Logit ``c`` of the model's output (or of ``layer``'s output, e.g. ``"fc"``).

    Example:
        >>> class_logit(1)({OUTPUT: torch.tensor([[0.0, 5.0]])})
        tensor([5.])
    """
    c = _check_channel_arg(c)
    key = OUTPUT if layer is None else layer
    return Objective(lambda acts: acts[key][:, c], f"class_logit({c})" if layer is None else
                     f"class_logit({layer}:{c})", [key], [(key, c)], per_item=True)


def diversity(layer: str) -> Objective:
    """How unlike the others each item's Gram matrix at ``layer`` is (minus its summed cosine similarity / B).

    Summed over the batch this is lucid's diversity term. Weight it against the main objective.

    Example:
        >>> diversity("conv")({"conv": torch.rand(3, 4, 5, 5)}).shape
        torch.Size([3])
    """

    def fn(acts: Acts) -> torch.Tensor:
        t = acts[layer]  # (B, C, H, W)
        b = t.shape[0]
        flat = t.flatten(2)  # (B, C, HW)
        grams = F.normalize((flat @ flat.transpose(1, 2)).flatten(1), dim=1, eps=1e-10)  # (B, C*C)
        sims = grams @ grams.T  # (B, B) cosine similarities
        return -(sims.sum(1) - sims.diagonal()) / b

    return Objective(fn, f"diversity({layer})", [layer])


def total_variation() -> Objective:
    """Penalty: mean absolute difference between neighbouring pixels of the input image. Subtract it.

    Example:
        >>> total_variation()({INPUT: torch.zeros(2, 3, 4, 4)})
        tensor([0., 0.])
    """

    def fn(acts: Acts) -> torch.Tensor:
        x = acts[INPUT]  # (B, 3, H, W)
        dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
        dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
        return dx + dy

    return Objective(fn, "total_variation()", [INPUT], per_item=True)


def blur() -> Objective:
    """Penalty: squared distance of the input image from its own 3x3 blur (blur target not differentiated).

    Subtracting it pulls each step's image towards a blurred copy (lucid's ``blur_input_each_step``).

    Example:
        >>> blur()({INPUT: torch.ones(1, 3, 5, 5)})
        tensor([0.])
    """

    def fn(acts: Acts) -> torch.Tensor:
        x = acts[INPUT]  # (B, 3, H, W)
        kernel = torch.ones(3, 1, 3, 3, device=x.device, dtype=x.dtype) / 9
        blurred = F.conv2d(F.pad(x, [1] * 4, mode="replicate"), kernel, groups=3).detach()
        return 0.5 * ((x - blurred) ** 2).flatten(1).sum(1)

    return Objective(fn, "blur()", [INPUT], per_item=True)


def batch(obj: Objective | str, i: int) -> Objective:
    """Restrict ``obj`` to batch item ``i``: it sees only item ``i``'s activations; other items get 0.

    Example:
        >>> obj = batch("conv:0", 1)
        >>> obj({"conv": torch.ones(3, 1, 2, 2)})
        tensor([0., 1., 0.])
    """
    obj = as_objective(obj)
    i = _check_channel_arg(i)

    def fn(acts: Acts) -> torch.Tensor:
        n = next(iter(acts.values())).shape[0]
        rows = getattr(acts, "rows", None)  # a part of the batch: row j is item rows[j]
        if rows is not None and i not in rows:
            first = next(iter(acts.values()))
            return torch.zeros(n, device=first.device, dtype=first.dtype)
        row = i if rows is None else rows.index(i)
        if row >= n:
            raise OutOfRange(f"batch({obj.name}, {i}) needs at least {i + 1} batch items, the batch has {n}")
        part = acts.item if isinstance(acts, _Acts) else (lambda k, i: acts[k][i : i + 1])
        value = obj({k: part(k, row) for k in obj.layers})  # (1,)
        index = torch.tensor([row], device=value.device)
        return torch.zeros(n, device=value.device, dtype=value.dtype).index_put((index,), value)

    return Objective(fn, f"batch({obj.name}, {i})", obj.layers, obj.channels, per_item=True)


__all__ = [
    "INPUT", "OUTPUT", "Objective", "as_objective", "batch", "blur", "channel", "class_logit", "deepdream",
    "direction", "direction_neuron", "diversity", "neuron", "total_variation",
]
