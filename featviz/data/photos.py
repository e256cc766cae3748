"""Natural photos as (N, 3, size, size) float tensors in [0, 1]: bundled samples and a user's own files."""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from featviz.errors import BadFile, BadValue, MissingFile, UnsupportedImage

__all__ = ["Images", "SAMPLE_PHOTOS", "decode_image", "sample_images", "load_images", "resize_and_crop"]

# name -> scikit-image loader; all ship inside the scikit-image wheel (no download, no pooch).
# Sources and licences are listed in featviz/assets/README.md.
SAMPLE_PHOTOS: tuple[str, ...] = (
    "astronaut", "camera", "chelsea", "coffee", "coins", "hubble_deep_field",
    "immunohistochemistry", "motorcycle", "retina", "rocket",
)
"""Names of the bundled photos (:func:`sample_images`), loaded from scikit-image's wheel, no download."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# The largest image load_images decodes, in pixels (100 megapixels: bigger than any camera photo). A file
# declaring more is refused before decoding: a 92-byte PNG can declare 12000 x 12000 pixels (4 GB).
MAX_PIXELS = 100_000_000


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
        raise BadValue(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    if int(size) < 1:
        raise BadValue(f"size must be a positive number of pixels, got {size}")
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
        raise BadValue(f"expected an (H, W), (H, W, 3) or (H, W, 4) image array, got {tuple(array.shape)}")
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
            raise MissingFile(f"no such file or folder: {path}; give a folder of images or an image file")
        if path.is_file():
            return [path]
        if not path.is_dir():
            raise BadFile(f"{path} is not a regular file or a folder (a pipe, socket or device would block "
                          f"or never end); give an image file or a folder of them")
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for p in files:
            if not p.is_file():
                kind = "folder" if p.is_dir() else "pipe, socket or device" if p.exists() else "broken link"
                raise BadFile(f"{p} is a {kind}, not an image file; move it out of {path} or give a list of "
                              f"files")
        if not files:
            raise BadValue(f"folder {path} holds no image files (looked for {', '.join(IMAGE_SUFFIXES)})")
        return files
    files = [Path(p) for p in folder_or_files]
    if not files:
        raise BadValue("got an empty list of image files; give a folder or at least one file")
    for p in files:
        if not p.exists():
            raise MissingFile(f"no such image file: {p}; check the path")
        if not p.is_file():
            raise BadFile(f"{p} is not a regular file (a folder, pipe, socket or device); give image files")
    return files


def _names(files: Sequence[Path]) -> list[str]:
    """File names without suffix; where two files share one (``a.png``, ``a.jpg``), with their suffix, and
    where that is shared too (``x/a.png``, ``y/a.png``), the whole path: every image gets its own name."""
    stems = [p.stem for p in files]
    names = [p.name if stems.count(p.stem) > 1 else p.stem for p in files]
    return [str(p) if names.count(n) > 1 else n for p, n in zip(files, names)]


# PIL modes and how they become RGB in [0, 1]. Alpha modes (and palette / grey / RGB images with a
# transparent colour) are composited over ``background``. Anything else is refused by name.
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA = ("RGBA", "RGBa", "LA", "PA")
_EIGHT_BIT = ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "HSV", "LAB")


def _refuse(path: Path, mode: str, why: str) -> UnsupportedImage:
    return UnsupportedImage(f"{path}: {why} (PIL mode {mode!r}); featviz will not guess its brightness: save "
                            "it as an 8- or 16-bit PNG, or a float TIFF with values in [0, 1]")


def decode_image(im, path: str | os.PathLike = "<image>", background: float | None = 1.0) -> np.ndarray:
    """A PIL image of any supported mode -> (H, W, 3) float32 array in [0, 1], white = 1.0.

    8-bit modes (1, L, P, RGB, RGBX, CMYK, YCbCr, HSV, LAB) go through PIL's own RGB conversion (CMYK
    without a colour profile: naive). 16-bit grey (I;16*) is divided by 65535; 32-bit integer grey
    (I) likewise when its values fit 0..65535 (how 16-bit PNGs open in older Pillow), else it is
    refused; 32-bit float grey (F) is used as is when its values lie in [0, 1], else refused.
    Transparency (RGBA, LA, PA, or a palette / grey / RGB transparent colour) is composited over a
    grey level ``background`` (1.0: white, as a web page shows it); ``background=None`` drops alpha
    and keeps the stored colours. Other modes raise :class:`~featviz.errors.UnsupportedImage` naming
    the mode.

    Example:
        >>> from PIL import Image
        >>> grey16 = Image.fromarray(np.full((2, 2), 32768, dtype=np.uint16))    # mid-grey, 16 bit
        >>> grey16.mode, round(float(decode_image(grey16)[0, 0, 0]), 3)
        ('I;16', 0.5)
        >>> half_clear = Image.new("RGBA", (2, 2), (0, 0, 0, 128))               # black, 50 % alpha
        >>> over_white, dropped = decode_image(half_clear), decode_image(half_clear, background=None)
        >>> round(float(over_white[0, 0, 0]), 2), float(dropped.max())
        (0.5, 0.0)
    """
    path, mode = Path(path), im.mode
    if mode in _SIXTEEN_BIT:
        array = np.asarray(im).astype(np.float32) / 65535
    elif mode == "I":
        raw = np.asarray(im)
        lo, hi = (int(raw.min()), int(raw.max())) if raw.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise _refuse(path, mode, f"32-bit integer image with values {lo}..{hi}, beyond 16 bits")
        array = raw.astype(np.float32) / 65535
    elif mode == "F":
        array = np.asarray(im, dtype=np.float32)
        if not np.isfinite(array).all():
            raise _refuse(path, mode, "float image with NaN or infinite values")
        lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise _refuse(path, mode, f"float image with values in [{lo:g}, {hi:g}], outside [0, 1]")
        array = array.clip(0, 1)
    elif mode in _ALPHA or (mode in ("L", "P", "RGB") and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255
        rgb, alpha = rgba[..., :3], rgba[..., 3:]
        array = rgb if background is None else rgb * alpha + float(background) * (1 - alpha)
    elif mode in _EIGHT_BIT:
        array = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
    else:
        raise _refuse(path, mode, "unsupported pixel format")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)  # grey -> RGB
    return np.ascontiguousarray(array, dtype=np.float32)


def load_images(folder_or_files: str | os.PathLike | Sequence[str | os.PathLike], size: int = 224, *,
                background: float | None = 1.0) -> Images:
    """Load a folder of images (sorted by name; files with an image suffix) or a list of files with PIL,
    as RGB, shorter side resized to ``size`` and centre-cropped.

    Returns ``Images(images, names)`` with images (N, 3, size, size) float32 in [0, 1] and the file
    names without suffix (with it where two files share a name: ``a.jpg``, ``a.png``). Every bit depth
    is read at its own scale (16-bit mid-grey 32768 -> 0.5, a
    float TIFF holding 0.5 -> 0.5); transparent pixels are composited over ``background`` (1.0,
    white; ``None`` drops alpha); the EXIF orientation of a photo is applied; of an animated or
    multi-page file the first frame is used. See :func:`decode_image` for every PIL mode. A file PIL
    cannot read raises :class:`~featviz.errors.BadFile` naming the file; a pixel format featviz does
    not read (e.g. an int32 image beyond 16 bits, a float image outside [0, 1]) raises
    :class:`~featviz.errors.UnsupportedImage` naming the mode. A file declaring more than
    ``MAX_PIXELS`` (100 megapixels) or one that is not a regular file (a pipe would block) is a
    :class:`~featviz.errors.BadFile`.

    Example:
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> Path("my_photos").mkdir()
        >>> for name in ["b", "a"]:
        ...     Image.new("RGB", (320, 240), "teal").save(f"my_photos/{name}.jpg")
        >>> images, names = load_images("my_photos/", size=224)
        >>> images.shape, names
        (torch.Size([2, 3, 224, 224]), ['a', 'b'])
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise BadValue(f"size must be a positive number of pixels, got {size!r}; e.g. size=224")
    if background is not None and not 0 <= float(background) <= 1:
        raise BadValue(f"background is a grey level in [0, 1] (or None to drop alpha), got {background!r}")
    images = []
    files = _image_files(folder_or_files)
    for path in files:
        try:
            with warnings.catch_warnings():  # PIL warns above 89 MP; featviz checks MAX_PIXELS itself
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(path)
            with im:
                if im.size[0] * im.size[1] > MAX_PIXELS:
                    raise BadFile(f"{path} declares {im.size[0]}x{im.size[1]} pixels, more than featviz's "
                                  f"limit of {MAX_PIXELS // 1_000_000} megapixels "
                                  f"(featviz.data.photos.MAX_PIXELS); "
                                  f"shrink it first (e.g. PIL's Image.thumbnail)")
                im.load()
                array = decode_image(ImageOps.exif_transpose(im) or im, path, background)
        except Image.DecompressionBombError as err:
            raise BadFile(f"{path} declares more pixels than PIL will open ({err}); shrink it "
                          "first") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as err:  # SyntaxError: PIL's broken-file error
            raise BadFile(f"cannot read {path} as an image ({err}); give PNG, JPEG or another format "
                          "PIL opens") from err
        if min(array.shape[:2]) < 1:
            raise BadFile(f"{path} has no pixels ({array.shape[1]}x{array.shape[0]}); give a non-empty image")
        x = torch.from_numpy(array).permute(2, 0, 1)[None]  # (1, 3, H, W)
        images.append(resize_and_crop(x, size))
    return Images(torch.cat(images), _names(files))
