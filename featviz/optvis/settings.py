"""How to render: one frozen ``RenderSettings`` value shared by ``render``, ``render_layer``, ``atlas`` and
the callers that render thumbnails (evidence, circuit plots, the microscope).

The settings hold what decides the picture (size, steps, lr, seed, param, transforms, preprocess, device,
thresholds, redirect_steps, alpha, schedule, early_stop); how many images and whether a progress bar shows
stay arguments of each call. A function given ``settings=`` takes every setting from it; an explicit keyword
still wins.

Example:
    >>> quick = RenderSettings(size=32, steps=8)
    >>> quick.replace(seed=3)
    RenderSettings(size=32, steps=8, seed=3)
"""
from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from featviz.errors import BadType, BadValue
from featviz.optvis._steps import check_early_stop, check_schedule
from featviz.optvis.param import fft_image
from featviz.optvis.transform import Transform

__all__ = ["RenderSettings"]


@dataclass(frozen=True)
class RenderSettings:
    """The settings of one rendering (``fv.render``'s arguments that decide the picture), as one value.

    Fields (their defaults are ``fv.render``'s):
        size: the images' side in px, or (H, W).
        steps: optimisation steps (Adam).
        lr: Adam's learning rate on the parameterisation.
        seed: seeds the initial image and the random transformations.
        param: the image parameterisation, ``param(size, batch, seed=, device=) -> (params, image_fn)``.
        transforms: robustness transforms; ``None`` is ``standard_transforms()``, ``()`` none.
        preprocess: [0, 1] images -> the model's input; ``None``: the model's own.
        device: where the image lives; ``None``: the model's device.
        thresholds: steps at which to keep a copy of the images.
        redirect_steps: steps during which ReLU gradients are redirected (0: never).
        alpha: also optimise an opacity per pixel.
        schedule: the learning rate over the steps: ``"constant"``, ``"cosine"`` or ``"linear"`` decay.
        early_stop: ``None`` (every step), or stop an item once its objective gains less than this
            (relative, e.g. 0.02) over a 16-step window; see ``fv.render``.

    Frozen: ``replace(**changes)`` gives a changed copy. ``fv.render(model, obj, settings=s)`` equals
    ``fv.render(model, obj, **s.to_dict())``; keywords given beside ``settings`` override it.

    Example:
        >>> s = RenderSettings(size=64, steps=32)
        >>> s.steps, s.replace(steps=128).steps, s.lr
        (32, 128, 0.05)
        >>> RenderSettings(steps=48, lr=0.1, schedule="cosine", early_stop=0.02)
        RenderSettings(steps=48, lr=0.1, schedule='cosine', early_stop=0.02)
    """

    size: int | tuple[int, int] = 128
    steps: int = 256
    lr: float = 0.05
    seed: int = 0
    param: Callable = fft_image
    transforms: Transform | Sequence[Transform] | None = None
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None
    device: torch.device | str | None = None
    thresholds: Sequence[int] = field(default=())
    redirect_steps: int = 16
    alpha: bool = False
    schedule: str = "constant"
    early_stop: float | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "seed", "redirect_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise BadValue(f"RenderSettings.{name} must be a whole number >= 0, got {v!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, numbers.Real) or not self.lr > 0:
            raise BadValue(f"RenderSettings.lr must be a positive number, got {self.lr!r}")
        check_schedule(self.schedule)
        check_early_stop(self.early_stop)
        if not callable(self.param):
            raise BadType(f"RenderSettings.param must be a callable (fft_image, pixel_image, ...), got "
                          f"{type(self.param).__name__}")
        if isinstance(self.transforms, list):  # a list would make the frozen value unhashable
            object.__setattr__(self, "transforms", tuple(self.transforms))
        object.__setattr__(self, "thresholds", tuple(self.thresholds))

    def replace(self, **changes: Any) -> RenderSettings:
        """A copy with ``changes`` applied; an unknown name is a ``TypeError`` listing the fields.

        Example:
            >>> RenderSettings().replace(size=64).size
            64
        """
        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise BadType(f"RenderSettings has no {', '.join(unknown)}; its fields: {', '.join(_FIELDS)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as ``fv.render`` keywords (values as they are: ``param`` stays a function).

        Example:
            >>> sorted(RenderSettings().to_dict())[:4]
            ['alpha', 'device', 'early_stop', 'lr']
        """
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def resolve(cls, settings: RenderSettings | None, base: RenderSettings | None = None,
                **given: Any) -> RenderSettings:
        """``settings`` (or ``base``, or the defaults) with the keywords a caller gave explicitly applied;
        ``None`` means "not given". How ``render``, ``render_layer`` and ``atlas`` read ``settings=``.

        Example:
            >>> RenderSettings.resolve(RenderSettings(size=32), size=None, steps=4)
            RenderSettings(size=32, steps=4)
        """
        if settings is not None and not isinstance(settings, RenderSettings):
            raise BadType(f"settings must be a fv.optvis.RenderSettings, got {type(settings).__name__}; "
                          f"e.g. settings=fv.optvis.RenderSettings(size=64, steps=128)")
        start = settings if settings is not None else (base if base is not None else cls())
        return start.replace(**{k: v for k, v in given.items() if v is not None})

    def __repr__(self) -> str:  # only what differs from the defaults: short enough to read
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                   if getattr(self, f.name) != _DEFAULTS[f.name]]
        return f"RenderSettings({', '.join(changed)})"


_FIELDS = tuple(f.name for f in dataclasses.fields(RenderSettings))
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RenderSettings)}
