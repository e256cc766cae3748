"""Feature visualization: optimise images (B, 3, H, W) in [0, 1] so that an objective is maximised.

Pieces: ``param`` (image parameterisations), ``transform`` (random robustness transforms),
``objectives`` (what to maximise, with an algebra), ``render`` / ``render_layer`` (the loop),
``Rendering`` (the result), ``RenderSettings`` (the settings of a rendering, as one frozen value).

Example:
    >>> import featviz as fv
    >>> model = fv.models.efficientnet_lite0()
    >>> r = fv.render(model, "blocks.2:7", size=64, steps=8, progress=False)   # steps=256 for a real picture
    >>> obj = fv.objectives.channel("blocks.2", 7) + 0.5 * fv.objectives.diversity("blocks.2")
    >>> r = fv.render(model, obj, batch=4, size=64, steps=8, param=fv.optvis.pixel_image, progress=False)
    >>> r.images.shape                                                          # (B, 3, H, W) in [0, 1]
    torch.Size([4, 3, 64, 64])
"""
from featviz.optvis import objectives, param, transform
from featviz.optvis.atlas import Atlas, atlas
from featviz.optvis.factorize import Factorization, factorize
from featviz.optvis.invert import caricature, invert
from featviz.optvis.maco import maco_image
from featviz.optvis.param import fft_image, pixel_image
from featviz.optvis.render import render, render_layer
from featviz.optvis.rendering import Rendering
from featviz.optvis.settings import RenderSettings
from featviz.optvis.transform import (
    compose,
    jitter,
    pad,
    random_rotate,
    random_scale,
    standard_transforms,
)

__all__ = [
    "Rendering", "compose", "fft_image", "jitter", "objectives", "pad", "param", "pixel_image",
    "random_rotate", "random_scale", "render", "render_layer", "standard_transforms", "transform",
]
__all__ += ["Atlas", "Factorization", "atlas", "caricature", "factorize", "invert", "maco_image"]
__all__ += ["RenderSettings"]
