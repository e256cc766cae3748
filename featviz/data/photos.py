"""Natural photos as (N, 3, size, size) float tensors in [0, 1]: bundled samples and a user's own files."""
from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Images", "SAMPLE_PHOTOS", "sample_images", "load_images", "resize_and_crop"]

# name -> scikit-image loader; all ship inside the scikit-image wheel (no download, no pooch).
# Sources and licences are listed in featviz/assets/README.md.
SAMPLE_PHOTOS: tuple[str, ...] = (
    "astronaut", "camera", "chelsea", "coffee", "coins", "hubble_deep_field",
    "immunohistochemistry", "motorcycle", "retina", "rocket",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class Images(NamedTuple):
    """A batch of images with one name each; unpacks as ``images, names = ...``."""

    images: Tensor  # (N, 3, size, size) float32 in [0, 1]
    names: list[str]


def resize_and_crop(images: Tensor, size: int) -> Tensor:
    """Resize so the shorter side is ``size`` (bilinear, antialiased), then crop the centre square.

    Example:
        >>> resize_and_crop(torch.rand(2, 3, 300, 451), 224).shape
        torch.Size([2, 3, 224, 224])
    """
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    if int(size) < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    h, w = images.shape[-2:]
    if (h, w) != (size, size):
        scale = size / min(h, w)
        new = (max(size, round(h * scale)), max(size, round(w * scale)))
        images = F.interpolate(images.float(), size=new, mode="bilinear", align_corners=False,
                               antialias=True).clamp(0, 1)
        top, left = (new[0] - size) // 2, (new[1] - size) // 2
        images = images[..., top:top + size, left:left + size]
    return images.contiguous()


def _to_tensor(array: np.ndarray) -> Tensor:
    """(H, W), (H, W, 3) or (H, W, 4) uint8/bool/float array -> (1, 3, H, W) float32 in [0, 1]."""
    if array.dtype == np.uint8:
        x = torch.from_numpy(array.copy()).float() / 255
    else:
        x = torch.from_numpy(np.asarray(array, dtype=np.float32)).clamp(0, 1)
    if x.dim() == 2:
        x = x[..., None].expand(-1, -1, 3)  # grey -> RGB
    if x.dim() != 3 or x.shape[-1] not in (3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image array, got {tuple(array.shape)}")
    return x[..., :3].permute(2, 0, 1)[None].contiguous()


@lru_cache(maxsize=1)
def _sample_arrays() -> tuple[np.ndarray, ...]:
    import skimage.data as skd

    loaders = {"motorcycle": lambda: skd.stereo_motorcycle()[0]}
    return tuple((loaders[name] if name in loaders else getattr(skd, name))() for name in SAMPLE_PHOTOS)


def sample_images(size: int = 224) -> Images:
    """The bundled natural photos (scikit-image's offline sample images), resized and centre-cropped.

    Returns ``Images(images, names)``: ``images`` is (N, 3, size, size) float32 in [0, 1]
    (greyscale photos repeated over RGB), ``names`` the N names in :data:`SAMPLE_PHOTOS` order.
    Photos with an ImageNet class: chelsea (cat), coffee (espresso), camera (tripod),
    motorcycle (moped), rocket (missile); the others (astronaut, coins, hubble_deep_field,
    immunohistochemistry, retina) give varied textures for dataset examples.

    Example:
        >>> images, names = sample_images(size=64)
        >>> images.shape, names[2]
        (torch.Size([10, 3, 64, 64]), 'chelsea')
    """
    images = [resize_and_crop(_to_tensor(a), size) for a in _sample_arrays()]
    return Images(torch.cat(images), list(SAMPLE_PHOTOS))


def _image_files(folder_or_files: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(folder_or_files, (str, os.PathLike)):
        path = Path(folder_or_files)
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        if path.is_file():
            return [path]
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"folder {path} holds no image files (looked for {', '.join(IMAGE_SUFFIXES)})")
        return files
    files = [Path(p) for p in folder_or_files]
    if not files:
        raise ValueError("got an empty list of image files; give a folder or at least one file")
    for p in files:
        if not p.is_file():
            raise FileNotFoundError(f"no such image file: {p}")
    return files


def load_images(folder_or_files: str | os.PathLike | Sequence[str | os.PathLike], size: int = 224) -> Images:
    """Load a folder of images (sorted by name; files with an image suffix) or a list of files with PIL,
    as RGB, shorter side resized to ``size`` and centre-cropped.

    Returns ``Images(images, names)`` with images (N, 3, size, size) in [0, 1] and the file names
    without suffix. A file PIL cannot read raises ``ValueError`` naming the file.

    Example:
        >>> images, names = load_images("my_photos/", size=224)   # doctest: +SKIP
        >>> images.shape                                            # doctest: +SKIP
        torch.Size([5, 3, 224, 224])
    """
    from PIL import Image, UnidentifiedImageError

    images, names = [], []
    for path in _image_files(folder_or_files):
        try:
            with Image.open(path) as im:
                array = np.asarray(im.convert("RGB"))
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"cannot read {path} as an image ({err}); give PNG, JPEG or another format "
                             "PIL opens") from err
        images.append(resize_and_crop(_to_tensor(array), size))
        names.append(path.stem)
    return Images(torch.cat(images), names)
