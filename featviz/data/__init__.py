"""Data for looking at features: sample photos, a user's images, ImageNet labels, normalisation, stimuli.

Everything returns float images (N, 3, H, W) in [0, 1]; models normalise with their own
``model.preprocess`` (a :class:`Normalize`). Nothing here downloads: the photos are the
samples inside the scikit-image wheel and the labels ship in ``featviz/assets``.

Example:
    >>> import featviz as fv
    >>> images, names = fv.data.sample_images(size=224)
    >>> images.shape
    torch.Size([10, 3, 224, 224])
    >>> fv.data.gratings(range(0, 180, 15)).shape      # angles in degrees, see stimuli.py
    torch.Size([12, 3, 64, 64])
"""
from featviz.data.labels import imagenet_labels
from featviz.data.photos import SAMPLE_PHOTOS, Images, load_images, resize_and_crop, sample_images
from featviz.data.preprocess import Normalize
from featviz.data.stimuli import circles, corners, curves, dots, edges, gratings, lines

__all__ = ["Images", "Normalize", "SAMPLE_PHOTOS", "circles", "corners", "curves", "dots", "edges",
           "gratings", "imagenet_labels", "lines", "load_images", "resize_and_crop", "sample_images"]
