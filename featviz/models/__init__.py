"""Model zoo: constructors name -> ``nn.Module`` (eval mode, featviz layers) that carry what tools need.

Every zoo model has ``model.preprocess`` (a callable: (B, 3, H, W) in [0, 1] -> the normalised
tensor its forward takes), ``model.input_size`` (int), ``model.labels`` (class names or None)
and ``model.interesting_layers`` (hook names, early to late).

======================  ========================================================  ================
name                    what                                                      weights
======================  ========================================================  ================
``efficientnet_lite0``  the default: ImageNet classifier, 16 MBConv blocks        shipped (pip)
``inception_v1``        GoogLeNet (Zoom In's network; torchvision's BN variant)   ``weights=PATH``
``resnet18``            ResNet-18 with torchvision's names                        ``weights=PATH``
``edges_and_curves``    ``toy.edges_and_curves()``: hand-wired edges -> curves    built in
======================  ========================================================  ================

Layer tables: ``docs/models.md``. A model from elsewhere (torchvision, timm, your own) gets the same
attributes from :func:`wrap`: ``fv.models.wrap(model, mean=..., std=..., input_size=..., labels=...)``.

Example:
    >>> import featviz as fv
    >>> model = fv.models.efficientnet_lite0()              # pretrained, offline
    >>> images, names = fv.data.sample_images()
    >>> fv.models.predict(model, images, k=1)[names.index("chelsea")]
    [('Egyptian cat', 0.39...)]
"""
from featviz.models import toy
from featviz.models.efficientnet import efficientnet_lite0, efficientnet_lite1, efficientnet_lite2
from featviz.models.inception import inception_v1
from featviz.models.predict import predict
from featviz.models.randomize import activation_scale, randomized
from featviz.models.registry import get, list_models, register
from featviz.models.resnet import resnet18
from featviz.models.wrap import wrap

register("efficientnet_lite0", efficientnet_lite0)
register("efficientnet_lite1", efficientnet_lite1)
register("efficientnet_lite2", efficientnet_lite2)
register("inception_v1", inception_v1)
register("resnet18", resnet18)
register("edges_and_curves", toy.edges_and_curves)

__all__ = ["activation_scale", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "get",
           "inception_v1", "list_models", "predict", "randomized", "register", "resnet18", "toy", "wrap"]
