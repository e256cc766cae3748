"""Model zoo: constructors name -> ``nn.Module`` (eval mode, featviz layers) that carry what tools need.

Every zoo model has ``model.preprocess`` (a callable: (B, 3, H, W) in [0, 1] -> the normalised
tensor its forward takes), ``model.input_size`` (int), ``model.labels`` (class names or None)
and ``model.interesting_layers`` (hook names, early to late).

=====================  =========================================================  ==========
name                   what                                                       weights
=====================  =========================================================  ==========
``efficientnet_lite0``  the default; ImageNet classifier, 16 MBConv blocks          shipped
=====================  =========================================================  ==========

Layer tables: ``docs/models.md``.

Example:
    >>> import featviz as fv
    >>> model = fv.models.efficientnet_lite0()              # pretrained, offline
    >>> images, names = fv.data.sample_images()
    >>> fv.models.predict(model, images, k=1)[names.index("chelsea")]    # doctest: +SKIP
    [('Egyptian cat', 0.39...)]
"""
from featviz.models.efficientnet import efficientnet_lite0
from featviz.models.predict import predict
from featviz.models.registry import get, list_models, register

register("efficientnet_lite0", efficientnet_lite0)

__all__ = ["efficientnet_lite0", "get", "list_models", "predict", "register"]
