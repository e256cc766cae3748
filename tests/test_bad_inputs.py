"""Bad and unusual inputs, table-driven: each case is a correct result, or an error of a stated type whose
message names the problem and the fix; CLI cases exit 2 with one line (no traceback) or succeed.

Tiny models only (a 2-conv nn.Sequential, a 3-class planted classifier, the toy edges_and_curves), so the
whole table runs in seconds.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import featviz as fv
from featviz import errors
from featviz._modelfile import load_model
from featviz.cli import main
from featviz.data.preprocess import as_float_images


class MeanColour(nn.Module):
    """Planted classifier: logits = 10 * mean of each RGB channel; classes red, green, blue."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(10.0))
        self.labels = ["red", "green", "blue"]

    def forward(self, x):
        return self.scale * x.mean(dim=(2, 3))


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 3), nn.ReLU())


NET = _net()
X = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
X8 = (X * 255).round().to(torch.uint8)


@dataclass
class Case:
    id: str
    call: Callable[[SimpleNamespace], object]
    error: type[BaseException] | None = None  # None: a correct result is expected
    says: tuple[str, ...] = ()  # substrings of the message (problem and fix)
    check: Callable[[object], bool] | None = None  # for a result
    not_says: tuple[str, ...] = ()
    xfail: str | None = None


def ok(id, call, check=lambda r: True, xfail=None):
    return Case(id, call, None, (), check, xfail=xfail)


def err(id, call, error, *says, not_says=(), xfail=None):
    return Case(id, call, error, says, None, tuple(not_says), xfail)


def close(a, b, tol=1e-3) -> bool:
    return bool(
        torch.allclose(
            torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32), atol=tol
        )
    )


# ----------------------------------------------------------------------------------------------- files
def _save(path: Path, im: Image.Image, **kw) -> Path:
    im.save(path, **kw)
    return path


def _files(root: Path) -> SimpleNamespace:
    f = SimpleNamespace(root=root)
    img = root / "img"
    img.mkdir()
    f.grey8 = _save(img / "grey8.png", Image.new("L", (4, 4), 128))
    f.i16_png = _save(img / "i16.png", Image.fromarray(np.full((4, 4), 32768, np.uint16)))
    f.i16_tif = _save(img / "i16.tif", Image.fromarray(np.full((4, 4), 32768, np.uint16)))
    f.i16b_tif = _save(img / "i16b.tif", Image.new("I;16B", (4, 4), 32768))
    f.i16_white = _save(img / "i16w.png", Image.fromarray(np.full((4, 4), 65535, np.uint16)))
    f.i32_16 = _save(img / "i32a.tif", Image.fromarray(np.full((4, 4), 65535, np.int32)))
    f.i32_big = _save(img / "i32b.tif", Image.fromarray(np.full((4, 4), 2**20, np.int32)))
    f.i32_neg = _save(img / "i32c.tif", Image.fromarray(np.full((4, 4), -5, np.int32)))
    f.f_half = _save(img / "fhalf.tif", Image.fromarray(np.full((4, 4), 0.5, np.float32)))
    f.f_ramp = _save(
        img / "framp.tif", Image.fromarray(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4))
    )
    f.f_big = _save(img / "fbig.tif", Image.fromarray(np.full((4, 4), 200.0, np.float32)))
    f.f_neg = _save(img / "fneg.tif", Image.fromarray(np.full((4, 4), -0.5, np.float32)))
    f.f_nan = _save(img / "fnan.tif", Image.fromarray(np.full((4, 4), np.nan, np.float32)))
    f.rgba_half = _save(img / "rgba.png", Image.new("RGBA", (4, 4), (0, 0, 0, 128)))
    f.rgba_opaque = _save(img / "rgbao.png", Image.new("RGBA", (4, 4), (255, 0, 51, 255)))
    f.la = _save(img / "la.png", Image.new("LA", (4, 4), (0, 0)))
    p = Image.new("P", (4, 4), 1)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    f.palette = _save(img / "p.png", p)
    f.palette_clear = _save(img / "pt.png", p, transparency=1)
    f.cmyk = _save(img / "cmyk.tif", Image.new("CMYK", (4, 4), (0, 255, 0, 0)))
    f.ycbcr = _save(img / "ycc.tif", Image.new("YCbCr", (4, 4), (128, 128, 128)))
    f.bilevel = _save(img / "one.png", Image.new("1", (4, 4), 1))
    f.rgb = _save(img / "rgb.png", Image.new("RGB", (6, 4), (255, 128, 0)))
    f.gif = root / "anim.gif"
    Image.new("P", (4, 4), 0).save(f.gif, save_all=True, append_images=[Image.new("P", (4, 4), 1)])
    half = np.zeros((8, 16), np.uint8)
    half[:, 8:] = 255  # left black, right white; EXIF 6 = shown rotated 90 degrees clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    f.exif = _save(root / "exif.png", Image.fromarray(half), exif=exif)
    (root / "upper").mkdir()
    f.upper = _save(root / "upper" / "UPPER.PNG", Image.new("RGB", (4, 4), (0, 0, 255)))
    (root / "empty_folder").mkdir()
    f.empty_folder = root / "empty_folder"
    (root / "notes").mkdir()
    (root / "notes" / "a.txt").write_text("not an image")
    f.no_images = root / "notes"
    f.corrupt_jpg = root / "broken.jpg"
    f.corrupt_jpg.write_bytes(b"this is not a jpeg")
    f.zero_png = root / "zero.png"
    f.zero_png.write_bytes(b"")
    # model files
    mf = root / "mf"
    mf.mkdir()
    # a module name nothing else imports (featviz/_modelfile.py's doctest writes a mylib.py): sys.modules
    # keeps the first module of a name for the whole process
    (mf / "bi_lib.py").write_text("import torch.nn as nn\n\ndef block():\n    return nn.Conv2d(3, 4, 3)\n")
    f.net_py = mf / "net.py"
    f.net_py.write_text(
        "from __future__ import annotations\nfrom dataclasses import dataclass\n\nimport torch.nn as nn\n"
        "from bi_lib import block\n\n\n@dataclass\nclass Cfg:\n    width: int = 4\n    name: str = 'x'\n\n\n"
        "def model():\n    return nn.Sequential(block(), nn.ReLU(), nn.Conv2d(4, 3, 3))\n"
    )
    f.blocks_py = root / "blocks_net.py"
    f.blocks_py.write_text(
        "import torch.nn as nn\n\nclass Net(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.blocks = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()),\n"
        "                                    nn.Sequential(nn.Conv2d(4, 5, 3), nn.ReLU()))\n"
        "        self.input_size = 16\n\n    def forward(self, x):\n        return self.blocks(x)\n"
        "\n\nmodel = Net\n"
    )
    f.fixed_py = root / "fixed_net.py"
    f.fixed_py.write_text(
        "import torch.nn as nn\nmodel = nn.Sequential(nn.Conv2d(3, 2, 5), nn.Flatten(), "
        "nn.Linear(2 * 12 * 12, 3))\n"
    )
    f.no_model_py = root / "no_model.py"
    f.no_model_py.write_text("import torch.nn as nn\nnet = nn.Conv2d(3, 4, 3)\n")
    f.int_model_py = root / "int_model.py"
    f.int_model_py.write_text("model = 3\n")
    f.raising_py = root / "raising.py"
    f.raising_py.write_text("x = 1 / 0\n")
    f.raising_fn_py = root / "raising_fn.py"
    f.raising_fn_py.write_text("def model():\n    raise RuntimeError('no weights here')\n")
    f.missing_import_py = root / "missing_import.py"
    f.missing_import_py.write_text("import no_such_module_featviz\nmodel = None\n")
    f.seq_py = root / "seq.py"
    f.seq_py.write_text("import torch.nn as nn\nmodel = lambda: nn.Sequential(nn.Conv2d(3, 4, 3))\n")
    trained = nn.Sequential(nn.Conv2d(3, 4, 3))
    f.weights = root / "w.pt"
    torch.save(trained.state_dict(), f.weights)
    f.trained = trained
    f.ckpt = root / "ckpt.pth"
    torch.save({"state_dict": trained.state_dict(), "epoch": 3}, f.ckpt)
    f.wrong = root / "wrong.pt"
    torch.save(nn.Sequential(nn.Conv2d(3, 8, 3)).state_dict(), f.wrong)
    f.empty_pt = root / "empty.pt"
    f.empty_pt.write_bytes(b"")
    f.garbage_pt = root / "garbage.pt"
    f.garbage_pt.write_bytes(b"garbage\n")
    f.list_pt = root / "list.pt"
    torch.save([1, 2, 3], f.list_pt)
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf)
    f.truncated_pt = root / "trunc.pt"
    f.truncated_pt.write_bytes(buf.getvalue()[:40])
    f.evil_pt = root / "evil.pt"
    with open(f.evil_pt, "wb") as fh:  # a pickle that would call os.system when loaded without weights_only
        fh.write(pickle.dumps(_Evil(), protocol=2))
    f.text_model = root / "model.txt"
    f.text_model.write_text("hello")
    f.a_file = root / "a_file"
    f.a_file.write_text("x")
    f.out = root / "out"
    # issue 24: names that clash, pixel bombs, pipes, models that are the user's to fix
    (root / "clash").mkdir()
    _save(root / "clash" / "a.png", Image.new("RGB", (4, 4), (255, 0, 0)))
    _save(root / "clash" / "a.jpg", Image.new("RGB", (4, 4), (0, 255, 0)))
    (root / "x").mkdir()
    (root / "y").mkdir()
    f.xa = _save(root / "x" / "a.png", Image.new("RGB", (4, 4), 0))
    f.ya = _save(root / "y" / "a.png", Image.new("RGB", (4, 4), 0))
    f.clash = root / "clash"
    f.bomb = root / "bomb.png"
    f.bomb.write_bytes(_png_header(12000, 12000))  # 92 bytes declaring 144 megapixels
    f.huge = root / "huge.png"
    f.huge.write_bytes(_png_header(60000, 60000))
    (root / "pipes").mkdir()
    f.fifo = root / "pipes" / "photo.jpg"
    os.mkfifo(f.fifo)
    f.pipes = root / "pipes"
    f.raising_model = root / "raising_model.py"
    f.raising_model.write_text(
        "import torch.nn as nn\n\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 3)\n\n    def forward(self, x):\n"
        "        raise RuntimeError('my model is broken')\n\nmodel = M()\n"
    )
    f.nan_model = root / "nan_model.py"
    f.nan_model.write_text(
        "import torch\nimport torch.nn as nn\nmodel = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())\n"
        "torch.nn.init.constant_(model[0].weight, float('nan'))\n"
    )
    f.grey_model = root / "grey_model.py"
    f.grey_model.write_text("import torch.nn as nn\nmodel = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())\n")
    f.neg_size_model = root / "neg_size_model.py"
    f.neg_size_model.write_text(
        "import torch.nn as nn\nmodel = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())\nmodel.input_size = -5\n"
    )
    f.shared_relu = root / "shared_relu.py"
    f.shared_relu.write_text(
        "import torch.nn as nn\n\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.a, self.b, self.relu = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 6, 1), nn.ReLU()\n\n"
        "    def forward(self, x):\n        return self.relu(self.b(self.relu(self.a(x))))\n\nmodel = M()\n"
    )
    f.dangling = root / "dangling"
    f.dangling.symlink_to(root / "nowhere")
    f.lock_dir_site = root / "lock_dir_site"
    (f.lock_dir_site / ".featviz-lock").mkdir(parents=True)
    return f


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height RGB pixels but holds no image data (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    return head + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return _files(tmp_path_factory.mktemp("bad_inputs"))


def img(path, **kw):
    return lambda f: fv.data.load_images([getattr(f, path)], size=4, **kw).images


# ----------------------------------------------------------------------------------------------- images
IMAGE_CASES = [
    ok("L 8-bit 128 -> 128/255", img("grey8"), lambda r: close(r, 128 / 255)),
    ok("I;16 PNG mid-grey 32768 -> 0.5", img("i16_png"), lambda r: close(r, 0.5)),
    ok("I;16 TIFF mid-grey -> 0.5", img("i16_tif"), lambda r: close(r, 0.5)),
    ok("I;16B big-endian TIFF -> 0.5", img("i16b_tif"), lambda r: close(r, 0.5)),
    ok("I;16 white 65535 -> 1.0", img("i16_white"), lambda r: close(r, 1.0)),
    ok("I (int32) within 16 bits -> /65535", img("i32_16"), lambda r: close(r, 1.0)),
    err(
        "I (int32) beyond 16 bits refused by name",
        img("i32_big"),
        errors.UnsupportedImage,
        "'I'",
        "16-bit PNG",
    ),
    err("I (int32) negative refused", img("i32_neg"), errors.BadValue, "'I'", "-5"),
    ok("F float TIFF 0.5 -> 0.5", img("f_half"), lambda r: close(r, 0.5)),
    ok(
        "F float ramp kept (0 and 1 at the ends)",
        lambda f: fv.data.load_images(
            [f.f_ramp],
            size=4,
        ).images[0, 0],
        lambda r: close(r[0, 0], 0.0) and close(r[-1, -1], 1.0),
    ),
    err("F float outside [0, 1] refused", img("f_big"), errors.UnsupportedImage, "outside [0, 1]", "'F'"),
    err("F float negative refused", img("f_neg"), errors.BadValue, "outside [0, 1]"),
    err("F float NaN refused", img("f_nan"), errors.UnsupportedImage, "NaN"),
    ok("RGBA half-transparent black over white -> 0.5", img("rgba_half"), lambda r: close(r, 0.5, 0.01)),
    ok("RGBA background=0 -> black", img("rgba_half", background=0.0), lambda r: close(r, 0.0, 0.01)),
    ok("RGBA background=None drops alpha", img("rgba_half", background=None), lambda r: close(r, 0.0)),
    ok("RGBA opaque keeps its colour", img("rgba_opaque"), lambda r: close(r[0, :, 0, 0], [1.0, 0.0, 0.2])),
    ok("LA fully transparent -> background white", img("la"), lambda r: close(r, 1.0)),
    ok("P palette -> palette colour", img("palette"), lambda r: close(r[0, :, 0, 0], [1.0, 0.0, 0.0])),
    ok("P with a transparent index -> background", img("palette_clear"), lambda r: close(r, 1.0)),
    ok("CMYK magenta -> RGB (1, 0, 1)", img("cmyk"), lambda r: close(r[0, :, 0, 0], [1.0, 0.0, 1.0])),
    ok("YCbCr grey -> about 0.5", img("ycbcr"), lambda r: close(r, 0.5, 0.01)),
    ok("1-bit white -> 1.0", img("bilevel"), lambda r: close(r, 1.0)),
    ok(
        "RGB non-square centre-cropped",
        img("rgb"),
        lambda r: r.shape == (1, 3, 4, 4) and close(r[0, :, 0, 0], [1.0, 128 / 255, 0.0]),
    ),
    ok(
        "animated GIF: first frame",
        lambda f: fv.data.load_images([f.gif], size=4).images,
        lambda r: r.shape == (1, 3, 4, 4),
    ),
    ok(
        "EXIF orientation applied (left edge becomes the top)",
        lambda f: fv.data.load_images([f.exif], size=8).images[0, 0],
        lambda r: float(r[0].mean()) < 0.1 and float(r[-1].mean()) > 0.9,
    ),
    ok(
        "upper-case suffix .PNG found in a folder",
        lambda f: fv.data.load_images(f.upper.parent, size=4).names,
        lambda r: r == ["UPPER"],
    ),
    err("empty folder", lambda f: fv.data.load_images(f.empty_folder), errors.BadValue, "no image files"),
    err(
        "folder without images",
        lambda f: fv.data.load_images(f.no_images),
        errors.BadValue,
        "no image files",
        ".png",
    ),
    err("missing path", lambda f: fv.data.load_images(f.root / "nope"), errors.MissingFile, "nope"),
    err(
        "missing file in a list",
        lambda f: fv.data.load_images([f.grey8, f.root / "gone.png"]),
        errors.MissingFile,
        "gone.png",
    ),
    err("empty list", lambda f: fv.data.load_images([]), errors.BadValue, "empty list", "at least one"),
    err(
        "corrupt JPEG named",
        lambda f: fv.data.load_images([f.corrupt_jpg]),
        errors.BadFile,
        "broken.jpg",
        "PNG, JPEG",
    ),
    err("zero-byte PNG named", lambda f: fv.data.load_images([f.zero_png]), errors.BadValue, "zero.png"),
    err("size 0", lambda f: fv.data.load_images([f.grey8], size=0), errors.BadValue, "positive", "size=224"),
    err("size -3", lambda f: fv.data.load_images([f.grey8], size=-3), errors.BadValue, "positive"),
    err("size 2.5", lambda f: fv.data.load_images([f.grey8], size=2.5), errors.BadValue, "2.5"),
    err("size True", lambda f: fv.data.load_images([f.grey8], size=True), errors.BadValue, "positive"),
    err("background 2", lambda f: fv.data.load_images([f.grey8], background=2),
        errors.BadValue, "[0, 1]", "None"),
    ok(
        "mixed modes stack to (N, 3, s, s) float32",
        lambda f: fv.data.load_images([f.grey8, f.i16_png, f.f_half, f.rgba_half, f.cmyk, f.rgb], size=5),
        lambda r: r.images.shape == (6, 3, 5, 5) and r.images.dtype == torch.float32,
    ),
    ok(
        "resize_and_crop keeps a square image",
        lambda f: fv.data.resize_and_crop(X, 12),
        lambda r: close(r, X),
    ),
    err(
        "resize_and_crop on (3, H, W)", lambda f: fv.data.resize_and_crop(X[0], 8),
        errors.BadValue, "(B, C, H, W)"
    ),
    err("resize_and_crop size 0", lambda f: fv.data.resize_and_crop(X, 0), errors.BadValue, "positive"),
]

# ----------------------------------------------------------------------------------------------- dtypes
DTYPE_CASES = [
    ok(
        "uint8 255 -> 1.0, 51 -> 0.2",
        lambda f: as_float_images(torch.tensor([0, 51, 255], dtype=torch.uint8)),
        lambda r: close(r, [0.0, 0.2, 1.0]) and r.dtype == torch.float32,
    ),
    ok(
        "float16 kept as float16",
        lambda f: as_float_images(torch.zeros(2, dtype=torch.float16)),
        lambda r: r.dtype == torch.float16,
    ),
    ok(
        "float64 kept",
        lambda f: as_float_images(torch.zeros(2, dtype=torch.float64)),
        lambda r: r.dtype == torch.float64,
    ),
    ok(
        "bool -> 0.0 / 1.0",
        lambda f: as_float_images(torch.tensor([True, False])),
        lambda r: close(r, [1, 0]),
    ),
    err(
        "int64 refused with the fix",
        lambda f: as_float_images(torch.zeros(2, dtype=torch.int64)),
        errors.BadType,
        "int64",
        "uint8 in 0..255",
        "float() / 255",
    ),
    err(
        "int32 refused", lambda f: as_float_images(torch.zeros(2, dtype=torch.int32)), errors.BadType, "int32"
    ),
    err("int16 refused", lambda f: as_float_images(torch.zeros(2, dtype=torch.int16)),
        errors.BadType, "int16"),
    err("a list refused", lambda f: as_float_images([0.5]),
        errors.BadType, "torch.Tensor", "torch.as_tensor"),
    err("a numpy array refused", lambda f: as_float_images(np.zeros(2)), errors.BadType, "ndarray"),
    err(
        "complex refused",
        lambda f: as_float_images(torch.zeros(2, dtype=torch.complex64)),
        errors.BadType,
        "complex64",
    ),
]

# ----------------------------------------------------------------------------------------------- predict
RED = torch.zeros(1, 3, 4, 4)
RED[:, 0] = 1


def pred(images, **kw):
    return lambda f: fv.models.predict(MeanColour(), images, **kw)


PREDICT_CASES = [
    ok("planted red image -> 'red'", pred(RED, k=1), lambda r: r[0][0][0] == "red"),
    ok(
        "uint8 reads as 0..255",
        lambda f: fv.models.predict(MeanColour(), X8, k=3),
        lambda r: r == fv.models.predict(MeanColour(), X8.float() / 255, k=3),
    ),
    ok("float64 images into a float32 model", pred(RED.double(), k=1), lambda r: r[0][0][0] == "red"),
    ok(
        "probabilities sum to 1 over all classes",
        pred(X, k=3),
        lambda r: all(abs(sum(p for _, p in row) - 1) < 1e-5 for row in r),
    ),
    err("(3, H, W): add a batch dimension", pred(RED[0]), errors.BadValue, "images[None]"),
    err("one channel: repeat grey", pred(RED[:, :1]), errors.BadValue, "3 channels", "expand"),
    err("empty batch", pred(RED[:0]), errors.BadValue, "empty", "at least one"),
    err("k=0", pred(RED, k=0), errors.BadValue, "between 1", "3"),
    err("k larger than the classes", pred(RED, k=4),
        errors.BadValue, "between 1 and the number of classes (3)"),
    err("k=1.5", pred(RED, k=1.5), errors.BadType, "k must be an int"),
    err("k=True", pred(RED, k=True), errors.BadType, "k must be an int"),
    err(
        "labels of the wrong length",
        pred(RED, k=1, labels=["a", "b"]),
        errors.BadValue,
        "2 labels",
        "3 outputs",
        "one label per output",
    ),
    err("int64 images", pred(RED.long()), errors.BadType, "int64", "uint8"),
    err("a list of images", pred([RED]), errors.BadType, "list"),
    err("not a classifier", lambda f: fv.models.predict(NET, X), errors.BadValue, "(B, classes)"),
]


# ----------------------------------------------------------------------------------------------- circuits
def attr(inputs, **kw):
    return lambda f: fv.circuits.attribute(NET, kw.pop("src", "1"), kw.pop("dst", "3"), inputs, **kw)


def examples(images, node="3:0", **kw):
    return lambda f: fv.circuits.dataset_examples(NET, node, images, progress=False, **kw)


CIRCUIT_CASES = [
    # the evidence statistics (issue 20's modules) raise featviz classes too
    err("ablation_test: src without channels", lambda f: fv.circuits.ablation_test(NET, "1", "3:0", X),
        errors.BadValue, "'1:3'"),
    err("ablation_test: dst without a channel", lambda f: fv.circuits.ablation_test(NET, "1:0", "3", X),
        errors.BadValue, "one channel", "'3:3'"),
    err("ablation_test: one random set",
        lambda f: fv.circuits.ablation_test(NET, "1:0", "3:0", X, n_random=1),
        errors.BadValue, "n_random must be >= 2"),
    err("ablation_test: unknown null", lambda f: fv.circuits.ablation_test(NET, "1:0", "3:0", X, null="all"),
        errors.BadValue, "null must be 'layer'"),
    err("evidence: a layer, not a unit", lambda f: fv.circuits.evidence(NET, "3", X, render=False),
        errors.BadValue, "one channel"),
    err("curve_scan: a unit, not a layer", lambda f: fv.circuits.curve_scan(NET, "3:0", size=24),
        errors.BadValue, "needs a whole layer", "'3'"),
    err("curve_scan: radii <= 0", lambda f: fv.circuits.curve_scan(NET, "3", size=24, radii=[0]),
        errors.BadValue, "positive"),
    err("randomized: not a module", lambda f: fv.models.randomized("net"), errors.BadType, "nn.Module"),
    err("randomized: unknown bn_stats", lambda f: fv.models.randomized(NET, bn_stats="estimate"),
        errors.BadValue, "bn_stats must be one of"),
    ok(
        "attribute: uint8 == float / 255",
        attr(X8),
        lambda r: close(r, fv.circuits.attribute(NET, "1", "3", X8.float() / 255), 1e-5),
    ),
    ok("attribute: dst 'layer:1,2' picks two rows", attr(X, dst="3:1,2"), lambda r: r.shape == (2, 4)),
    err("attribute: int64 inputs", attr(X8.long()), errors.BadType, "int64", "uint8"),
    ok("attribute: one (C, H, W) image is a batch of one (core.as_images)", attr(X[0]),
       lambda r: close(r, fv.circuits.attribute(NET, "1", "3", X[:1]))),
    err("attribute: (H, W) inputs", attr(X[0, 0]), errors.BadValue, "(B, C, H, W)"),
    err("attribute: a list", attr([X]), errors.BadType, "list"),
    err("attribute: unknown src", attr(X, src="7"), errors.UnknownName, "unknown layer '7'", "'1'"),
    err(
        "attribute: unknown method",
        attr(X, method="nope"),
        errors.BadValue,
        "unknown attribution method",
        "grad_x_act",
    ),
    err("attribute: dst channel out of range", attr(X, dst_channels=[5]),
        errors.OutOfRange, "3 channels", "0..2"),
    err("attribute: empty dst_channels", attr(X, dst_channels=[]), errors.BadValue, "empty", "None"),
    ok(
        "dataset_examples: uint8 == float / 255",
        examples(X8, k=2),
        lambda r: close(
            r.scores,
            fv.circuits.dataset_examples(NET, "3:0", X8.float() / 255, k=2, progress=False).scores,
            1e-5,
        ),
    ),
    ok(
        "dataset_examples: a loader of (images, labels)",
        examples([(X, 0), (X, 1)], k=3),
        lambda r: (
            r.scores.shape == (3,)
            and list(r.indices) == sorted(r.indices, key=lambda i: -float(r.scores[list(r.indices).index(i)]))
        ),
    ),
    err("dataset_examples: no channel", examples(X, node="3"), errors.BadValue, "needs one channel", "'3:3'"),
    err("dataset_examples: k=0", examples(X, k=0), errors.BadValue, "k must be >= 1"),
    err("dataset_examples: empty", examples(X[:0]), errors.BadValue, "empty", "at least one"),
    err("dataset_examples: int64", examples(X8.long()), errors.BadType, "int64"),
    err("dataset_examples: unknown layer", examples(X, node="8:0"), errors.UnknownName, "unknown layer"),
    err("dataset_examples: channel out of range", examples(X, node="3:7"), errors.OutOfRange, "3 channels"),
    ok(
        "tuning_curve: uint8 stimuli",
        lambda f: fv.circuits.tuning_curve(NET, "3:0", X8),
        lambda r: close(r.responses, fv.circuits.tuning_curve(NET, "3:0", X8.float() / 255).responses),
    ),
    ok(
        "weights: (C_dst, C_src, kh, kw)",
        lambda f: fv.circuits.weights(NET, "0", "2"),
        lambda r: torch.equal(r, NET[2].weight.detach()),
    ),
    err(
        "weights: unknown layer", lambda f: fv.circuits.weights(NET, "0", "7"),
        errors.UnknownName, "unknown layer '7'"
    ),
    err(
        "trace: channel out of range",
        lambda f: fv.circuits.trace(NET, "3:9", depth=1, progress=False),
        errors.OutOfRange,
        "3 channels",
    ),
    err(
        "trace: depth 0",
        lambda f: fv.circuits.trace(NET, "3:0", depth=0, progress=False),
        errors.BadValue,
        "depth",
        ">= 1",
    ),
]

# ------------------------------------------------------------------------------------------- hooks, render
HM = fv.hooked(NET)


def render(ref, **kw):
    return lambda f: fv.render(NET, ref, **{"size": 16, "steps": 1, "progress": False, **kw})


def entered(cm):
    with cm:
        NET(X)


HOOK_RENDER_CASES = [
    err("parse: unknown layer lists names", lambda f: HM.parse("5:0"),
        errors.UnknownName, "unknown layer '5'", "'3'"),
    err("parse: channel not a number", lambda f: HM.parse("1:x"), errors.BadValue, "'layer:3'"),
    err("parse: not a string", lambda f: HM.parse(5), errors.BadType, "'name:channel'"),
    err(
        "run_with_cache: unknown name", lambda f: HM.run_with_cache(X, names=["9"]),
        errors.UnknownName, "unknown layer"
    ),
    err(
        "hooks: unknown name",
        lambda f: entered(HM.hooks([("9", lambda m, i, o: None)])),
        errors.UnknownName,
        "unknown layer '9'",
    ),
    err(
        "ablate: channel out of range",
        lambda f: entered(HM.ablate("1", channels=[9])),
        errors.OutOfRange,
        "4 channels",
    ),
    err("hooked(3)", lambda f: fv.hooked(3), errors.BadType, "nn.Module"),
    ok(
        "render: an image in [0, 1]",
        render("3:0"),
        lambda r: (
            r.images.shape == (1, 3, 16, 16) and 0 <= float(r.images.min()) and float(r.images.max()) <= 1
        ),
    ),
    ok("render 'conv:-1': the last channel", render("3:-1"), lambda r: r.labels == ["channel(3:-1)"]),
    err(
        "render 'conv:1,2': one channel per objective string",
        render("3:1,2"),
        errors.BadValue,
        "names 2 channels",
        "render_layer",
        not_says=("deepdream",),
    ),
    err("render 'layer' without channel: deepdream hint", render("3"), errors.BadValue, "deepdream('3')"),
    err("render: unknown layer", render("9:0"), errors.UnknownName, "unknown layer '9'"),
    err("render: channel out of range", render("3:5"), errors.OutOfRange, "3 channels", "0..2"),
    err("render: size 0", render("3:0", size=0), errors.BadValue, "size", "positive"),
    err("render: steps 0", render("3:0", steps=0), errors.BadValue, "steps", "positive"),
    err(
        "render: a size the model cannot run at",
        render("3:0", size=4),
        errors.BadValue,
        "size=4 is too small",
        "smallest size that does is 5x5",
        "pass size=5 or larger",
    ),
    err("render: (H, W) too small on one side", render("3:0", size=(16, 3)), errors.BadValue, "size=(16, 5)"),
    err("render: size 1, an earlier layer", render("1:0", size=1), errors.BadValue, "pass size=3 or larger"),
    ok("render: the smallest size that runs", render("3:0", size=5), lambda r: r.images.shape[-1] == 5),
    err("objective: channel 1.5", lambda f: fv.objectives.channel("a", 1.5),
        errors.BadValue, "non-negative int"),
    err("objective: divide by 0", lambda f: fv.objectives.channel("a", 1) / 0, errors.BadType, "non-zero"),
    err("objective: from an int", lambda f: fv.objectives.as_objective(3), errors.BadType, "'layer:channel'"),
    err("objective: 'a:b'", lambda f: fv.objectives.as_objective("a:b"), errors.BadValue, "'layer:channel'"),
]

# ----------------------------------------------------------------------------------------------- data
DATA_CASES = [
    err("Normalize: std 0", lambda f: fv.data.Normalize(0.5, 0), errors.BadValue, "std must be positive"),
    err("Normalize: two means", lambda f: fv.data.Normalize([0.5, 0.5], 1), errors.BadValue, "3 numbers"),
    err(
        "Normalize: one-channel images",
        lambda f: fv.data.Normalize(0.5, 0.5)(torch.rand(1, 1, 2, 2)),
        errors.BadValue,
        "(B, 3, H, W)",
    ),
    ok(
        "Normalize: inverse undoes it",
        lambda f: fv.data.Normalize(0.5, 0.25).inverse(fv.data.Normalize(0.5, 0.25)(X)),
        lambda r: close(r, X, 1e-6),
    ),
    err("gratings: freq 0", lambda f: fv.data.gratings([0], freq=0), errors.BadValue, "(0, 0.5]"),
    err("gratings: no angles", lambda f: fv.data.gratings([]), errors.BadValue, "empty", "at least one"),
    err("gratings: size 1", lambda f: fv.data.gratings([0], size=1), errors.BadValue, ">= 2"),
    err(
        "curves: negative curvature",
        lambda f: fv.data.curves([0], curvatures=[-1]),
        errors.BadValue,
        "turn the angle by 180",
    ),
    ok(
        "edges: bright side where the angle points",
        lambda f: fv.data.edges([0], size=8)[0, 0],
        lambda r: float(r[0, 0]) == 0.0 and float(r[0, -1]) == 1.0,
    ),
    ok("imagenet labels: 1000", lambda f: fv.data.imagenet_labels(), lambda r: len(r) == 1000),
    err("models.get: typo lists the closest", lambda f: fv.models.get("resnet19"),
        errors.UnknownName, "resnet18"),
    err(
        "models.register: a taken name",
        lambda f: fv.models.register("resnet18", nn.Identity),
        errors.BadValue,
        "already registered",
    ),
]


# ----------------------------------------------------------------------------------------------- model files
def lm(ref, arch=None):
    return lambda f: load_model(
        str(getattr(f, ref)) if hasattr(f, ref) else ref,
        arch if arch is None or not hasattr(f, arch) else str(getattr(f, arch)),
    )


MODEL_FILE_CASES = [
    ok("zoo name", lm("edges_and_curves"), lambda r: not r.training),
    err(
        "zoo typo lists the closest",
        lm("edges_and_curve"),
        errors.UnknownName,
        "edges_and_curves",
        ".py file",
    ),
    ok(
        "net.py beside its own module, @dataclass + future annotations",
        lm("net_py"),
        lambda r: isinstance(r[0], nn.Conv2d),
    ),
    ok("model = a class", lm("blocks_py"), lambda r: type(r).__name__ == "Net"),
    err("missing .py", lm(str(Path("/nonexistent/net.py"))), errors.MissingFile, "no such Python file"),
    err(".py without `model`", lm("no_model_py"), errors.BadValue, "defines no `model`", "model = MyNet()"),
    err(".py with model = 3", lm("int_model_py"), errors.BadValue, "int", "nn.Module"),
    err(".py raising at import", lm("raising_py"), errors.ModelFileError, "ZeroDivisionError", "python"),
    err(".py whose model() raises", lm("raising_fn_py"), errors.ModelFileError, "no weights here"),
    err(
        ".py importing a missing module",
        lm("missing_import_py"),
        errors.ModelFileError,
        "no_such_module_featviz",
    ),
    ok(
        "state dict + .py arch: same weights",
        lm("weights", "seq_py"),
        lambda r: torch.equal(r[0].weight, r[0].weight) and not r.training,
    ),
    ok("checkpoint with 'state_dict' key", lm("ckpt", "seq_py"), lambda r: isinstance(r[0], nn.Conv2d)),
    err("state dict without --arch", lm("weights"), errors.BadValue, "--arch"),
    err(
        "missing state dict",
        lm(str(Path("/nonexistent/w.pt")), "seq_py"),
        errors.MissingFile,
        "no such state-dict file",
    ),
    err("empty .pt with a .py arch", lm("empty_pt", "seq_py"), errors.BadFile, "empty", "torch.save"),
    err(
        "garbage .pt with a .py arch", lm("garbage_pt", "seq_py"), errors.BadFile, "cannot read", "torch.save"
    ),
    err("truncated .pt", lm("truncated_pt", "seq_py"), errors.BadFile, "cannot read"),
    err("refused pickle", lm("evil_pt", "seq_py"), errors.RefusedFile, "refuses", "state_dict()"),
    err(".pt holding a list", lm("list_pt", "seq_py"), errors.BadFile, "list", "not a state dict"),
    err("weights that do not fit", lm("wrong", "seq_py"), errors.BadValue, "does not fit --arch", "weight"),
    err("--arch for a .py model", lm("seq_py", "seq_py"), errors.BadValue, "--arch is only", "drop --arch"),
    err("a .txt file as model", lm("text_model"), errors.BadValue, "neither", ".py"),
]

# ------------------------------------------------------------------------ issue 24: nothing silently wrong
NAN_X = X.clone()
NAN_X[0, 1, 2, 3] = float("nan")
with torch.device("meta"):
    META_NET = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())


def _shared_relu_net() -> nn.Module:
    relu = nn.ReLU(inplace=True)  # one module, called twice at two widths (as Res2Net's relu, 9 times);
    # in place, so run_with_cache runs the model twice (a copy for the cached conv output)
    return nn.Sequential(nn.Conv2d(3, 4, 3), relu, nn.Conv2d(4, 6, 1), relu)


SILENT_CASES = [
    err("render_layer channels=[True] is not channel 1",
        lambda f: fv.render_layer(NET, "3", channels=[True], size=8, steps=1, progress=False),
        errors.BadType, "a channel is an int", "True"),
    err("render_layer channels=[1.7] is not channel 1",
        lambda f: fv.render_layer(NET, "3", channels=[1.7], size=8, steps=1, progress=False),
        errors.BadType, "1.7"),
    ok("render_layer channels=range(2) still works",
       lambda f: fv.render_layer(NET, "3", channels=range(2), size=8, steps=1, progress=False).labels,
       lambda r: r == ["3:0", "3:1"]),
    err("predict: float images in 0..255", pred(X * 255, k=1), errors.BadValue, "[0, 1]", "divide by 255"),
    err("predict: normalised images below 0", pred(X - 0.5, k=1), errors.BadValue, "down to", "[0, 1]"),
    ok("predict: float in [0, 1] up to rounding", pred(RED * 1.0000001, k=1), lambda r: r[0][0][0] == "red"),
    err("invert: float image in 0..255",
        lambda f: fv.invert(NET, "3", X[:1] * 255, steps=1, progress=False),
        errors.BadValue, "[0, 1]", "divide by 255"),
    err("predict: NaN images", pred(NAN_X, k=1), errors.BadValue, "1 NaN value", "nan_to_num"),
    err("predict: a model whose outputs are NaN", lambda f: fv.models.predict(
        nn.Sequential(_nan_net(), nn.AdaptiveAvgPool2d(1), nn.Flatten()), X), errors.NonFinite,
        "NaN or infinite", "2 of 2"),
    err("attribute: NaN images", attr(NAN_X), errors.BadValue, "NaN"),
    err("dataset_examples: NaN images", examples(NAN_X), errors.BadValue, "NaN"),
    err("dataset_examples: a model whose activations are NaN", lambda f: fv.circuits.dataset_examples(
        _nan_net(), "1:0", X, k=1, progress=False), errors.NonFinite, "1:0", "image 0", "weights"),
    err("tuning_curve: NaN stimuli", lambda f: fv.circuits.tuning_curve(NET, "3:0", NAN_X),
        errors.BadValue, "NaN"),
    err("tuning_curve: infinite stimuli",
        lambda f: fv.circuits.tuning_curve(NET, "3:0", X.masked_fill(X > 0.9, float("inf"))),
        errors.BadValue, "infinite"),
    err("gratings([inf])", lambda f: fv.data.gratings([float("inf")]), errors.BadValue, "finite", "inf"),
    err("gratings([nan])", lambda f: fv.data.gratings([float("nan")]), errors.BadValue, "finite"),
    err("edges(center=(nan, 3))", lambda f: fv.data.edges([0], center=(float("nan"), 3)),
        errors.BadValue, "finite"),
    err("gratings(['a'])", lambda f: fv.data.gratings(["a"]), errors.BadType, "numbers"),
    err("curves: size inf", lambda f: fv.data.curves([0], size=float("inf")), errors.BadValue, ">= 2"),
    ok("load_images: a.png and a.jpg get their own names",
       lambda f: fv.data.load_images(f.clash, size=4),
       lambda r: r.names == ["a.jpg", "a.png"] and close(r.images[0, :, 0, 0], [0, 1, 0], 0.02)
       and close(r.images[1, :, 0, 0], [1, 0, 0])),
    ok("load_images: x/a.png and y/a.png get their paths",
       lambda f: fv.data.load_images([f.xa, f.ya], size=4).names,
       lambda r: len(set(r)) == 2 and r[0].endswith(os.path.join("x", "a.png"))),
    err("load_images: 12000x12000 px in 92 bytes", lambda f: fv.data.load_images([f.bomb]),
        errors.BadFile, "12000x12000", "100 megapixels"),
    err("load_images: 60000x60000 px", lambda f: fv.data.load_images([f.huge]), errors.BadFile, "huge.png"),
    err("load_images: a pipe named .jpg in a folder", lambda f: fv.data.load_images(f.pipes),
        errors.BadFile, "photo.jpg", "pipe"),
    err("load_images: a pipe named .jpg in a list", lambda f: fv.data.load_images([f.fifo]),
        errors.BadFile, "not a regular file"),
    err("load_images: a pipe given as the path", lambda f: fv.data.load_images(f.fifo),
        errors.BadFile, "not a regular file"),
    err("run_with_cache: (3, H, W) without a batch axis", lambda f: HM.run_with_cache(X[0]),
        errors.BadValue, "x[None]", "(1, 3, 12, 12)"),
    ok("run_with_cache: (1, 3, H, W) caches (1, C, h, w)", lambda f: HM.run_with_cache(X[:1], names=["0"])[1],
       lambda r: tuple(r["0"].shape) == (1, 4, 10, 10)),
    err("meta-device model: render", lambda f: fv.render(META_NET, "1:0", size=8, steps=1, progress=False),
        errors.BadValue, "'meta' device", "to_empty"),
    err("meta-device model: tuning_curve", lambda f: fv.circuits.tuning_curve(META_NET, "1:0", X),
        errors.BadValue, "'meta' device"),
    err("meta-device model: predict", lambda f: fv.models.predict(META_NET, X), errors.BadValue, "'meta'"),
    ok("repeated calls: call_shapes lists '1#2' at its own width",
       lambda f: fv.hooked(_shared_relu_net()).call_shapes(size=8),
       lambda r: list(r) == ["0", "1", "2", "1#2"] and r["1"] == (1, 4, 6, 6) and r["1#2"] == (1, 6, 6, 6)),
    err("a ModuleList that never runs itself",
        lambda f: fv.hooked(_ListNet()).run_with_cache(X, names=["blocks"], stop_at_last=True),
        errors.LayerNotRun, "'blocks'", "ModuleList"),
    err("receptive_field exact on a size-dependent head", lambda f: fv.circuits.receptive_field(
        _FixedHead(), "head:0", size=64, method="exact"), errors.BadValue, "changes with the input size",
        "method='measured'"),
    # truth: the 2x2 map's units read pixel rows/cols -1..1 and 31..33, so pixels 0..33 reach the head
    ok("receptive_field auto on a size-dependent head: measured, inside the image",
       lambda f: fv.circuits.receptive_field(_FixedHead(), "head:0", size=64),
       lambda r: r.method == "measured" and r.size == (34, 34) and all(0 <= c <= 33 for c in r.center)),
    err("models.wrap: mean without std", lambda f: fv.models.wrap(nn.Conv2d(3, 3, 1), mean=0.5),
        errors.BadValue, "mean and std together"),
    err("models.wrap: input_size -5", lambda f: fv.models.wrap(nn.Conv2d(3, 3, 1), input_size=-5),
        errors.BadValue, "positive int"),
    err("models.wrap: weights that are not a torchvision enum",
        lambda f: fv.models.wrap(nn.Conv2d(3, 3, 1), weights="imagenet"), errors.BadType, "weights enum"),
    err("render: seed 2**70", render("3:0", seed=2**70), errors.BadValue, "seed", "2**63"),
]


def _nan_net() -> nn.Module:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    nn.init.constant_(net[0].weight, float("nan"))
    return net


class _ListNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Conv2d(3, 4, 3), nn.ReLU()])

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


class _FixedHead(nn.Module):
    """timm's vgg ConvMlp in small: a map smaller than the head's 7x7 kernel is resized up to 7x7 first, so
    the head's geometry at 64 px (2x2 map) is not its geometry at the large probes that read it exactly."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3, stride=32, padding=1)
        self.head = nn.Conv2d(4, 4, 7)

    def forward(self, x):
        x = self.features(x)
        if x.shape[-1] < 7:
            x = nn.functional.adaptive_avg_pool2d(x, 7)
        return self.head(x)


ALL = (
    IMAGE_CASES
    + DTYPE_CASES
    + PREDICT_CASES
    + CIRCUIT_CASES
    + HOOK_RENDER_CASES
    + DATA_CASES
    + MODEL_FILE_CASES
    + SILENT_CASES
)


def _param(case: Case):
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in ALL])
def test_api(case: Case, files, monkeypatch):
    monkeypatch.setattr("sys.path", list(__import__("sys").path))  # model files add their folder
    if case.error is None:
        result = case.call(files)
        assert case.check(result), f"unexpected result: {result!r}"[:500]
        return
    with pytest.raises(case.error) as info:
        case.call(files)
    message = (
        str(info.value.args[0]) if isinstance(info.value, KeyError) and info.value.args else str(info.value)
    )
    for part in case.says:
        assert part in message, f"{part!r} not in {message!r}"
    for part in case.not_says:
        assert part not in message, f"{part!r} in {message!r}"


# ----------------------------------------------------------------------------------------------- CLI
@dataclass
class CliCase:
    id: str
    argv: Callable[[SimpleNamespace], list[str]]
    rc: int
    says: tuple[str, ...] = ()
    not_says: tuple[str, ...] = ()
    writes: tuple[str, ...] = field(default=())  # files that must exist under --out afterwards


def cli(id, argv, rc=2, *says, not_says=(), writes=()):
    return CliCase(id, argv, rc, says, tuple(not_says), tuple(writes))


Q = ["--quiet"]
TOY = "edges_and_curves"


def out(f, name):
    return str(f.out / name)


CLI_CASES = [
    cli(
        "--out is an existing file (render)",
        lambda f: Q + ["render", TOY, "relu2:0", "--size", "16", "--steps", "1", "--out", str(f.a_file)],
        2,
        "is a file",
        "folder",
    ),
    cli(
        "--out is an existing file (trace)",
        lambda f: Q + ["trace", TOY, "relu2:0", "--out", str(f.a_file)],
        2,
        "is a file",
    ),
    cli("--out is an existing file (demo)", lambda f: Q + ["demo", "--out", str(f.a_file)], 2, "is a file"),
    cli(
        "--out under a file: cannot be created",
        lambda f: Q + ["render", TOY, "relu2:0", "--out", str(f.a_file / "sub")],
        2,
        "cannot write",
        "choose a folder",
    ),
    cli(
        "corrupt .pt with a non-zoo --arch",
        lambda f: ["layers", str(f.garbage_pt), "--arch", str(f.seq_py)],
        2,
        "cannot read",
        "torch.save",
    ),
    cli(
        "empty .pt with a non-zoo --arch",
        lambda f: ["layers", str(f.empty_pt), "--arch", str(f.seq_py)],
        2,
        "empty",
    ),
    cli(
        "truncated .pt", lambda f: ["layers", str(f.truncated_pt), "--arch", str(f.seq_py)], 2, "cannot read"
    ),
    cli("refused pickle", lambda f: ["layers", str(f.evil_pt), "--arch", str(f.seq_py)], 2, "refuses"),
    cli(
        "refused pickle with a zoo --arch",
        lambda f: ["layers", str(f.evil_pt), "--arch", "resnet18"],
        2,
        "refuses",
    ),
    cli(
        ".pt holding a list",
        lambda f: ["layers", str(f.list_pt), "--arch", str(f.seq_py)],
        2,
        "not a state dict",
    ),
    cli(
        "weights that do not fit a zoo arch",
        lambda f: ["layers", str(f.weights), "--arch", "resnet18"],
        2,
        "does not fit --arch resnet18",
    ),
    cli("state dict without --arch", lambda f: ["layers", str(f.weights)], 2, "--arch"),
    cli(
        "missing state dict",
        lambda f: ["layers", str(f.root / "gone.pt"), "--arch", str(f.seq_py)],
        2,
        "no such state-dict file",
    ),
    cli("layers --size -1", lambda f: ["layers", TOY, "--size", "-1"], 2, "--size", "positive"),
    cli("layers --size 0", lambda f: ["layers", TOY, "--size", "0"], 2, "--size"),
    cli("layers --size abc", lambda f: ["layers", TOY, "--size", "abc"], 2, "whole number"),
    cli(
        "layers: a model that cannot run at the default size",
        lambda f: ["layers", str(f.fixed_py)],
        2,
        "cannot run on 224x224",
        "--size",
    ),
    cli("layers --size 16 on that model", lambda f: ["layers", str(f.fixed_py), "--size", "16"], 0),
    cli("layers net.py beside its own module", lambda f: ["layers", str(f.net_py), "--size", "16"], 0),
    cli("layers: .py raising at import", lambda f: ["layers", str(f.raising_py)], 2, "ZeroDivisionError"),
    cli("layers: .py without model", lambda f: ["layers", str(f.no_model_py)], 2, "defines no `model`"),
    cli("layers: unknown zoo name", lambda f: ["layers", "edges_and_curve"], 2, "edges_and_curves"),
    cli(
        "layers: --arch on a .py",
        lambda f: ["layers", str(f.seq_py), "--arch", str(f.seq_py)],
        2,
        "--arch is only",
    ),
    cli("render --size 0", lambda f: Q + ["render", TOY, "relu2:0", "--size", "0"], 2, "--size"),
    cli("render --steps 0", lambda f: Q + ["render", TOY, "relu2:0", "--steps", "0"], 2, "--steps"),
    cli(
        "render at a size the model cannot run at",
        lambda f: (
            Q + ["render", str(f.fixed_py), "1:0", "--size", "4", "--steps", "1", "--out", out(f, "r1")]
        ),
        2,
        "cannot run on 4x4",
    ),
    cli(
        "render a negative channel counts from the end",
        lambda f: Q + ["render", TOY, "relu2:-1", "--size", "16", "--steps", "1", "--out", out(f, "r2")],
        0,
        writes=("r2/relu2_6.png",),
    ),
    cli(
        "render channel out of range",
        lambda f: Q + ["render", TOY, "relu2:7", "--out", out(f, "r3")],
        2,
        "7 channels",
        "0..6",
        not_says=("deepdream",),
    ),
    cli(
        "render channel -8 out of range",
        lambda f: Q + ["render", TOY, "relu2:-8", "--out", out(f, "r3")],
        2,
        "7 channels",
        not_says=("deepdream",),
    ),
    cli("render unknown layer", lambda f: Q + ["render", TOY, "relu3:0", "--out", out(f, "r3")], 2, "relu2"),
    cli(
        "render a layer without channel",
        lambda f: Q + ["render", TOY, "relu2", "--out", out(f, "r3")],
        2,
        "LAYER:CH",
        "relu2:0",
    ),
    cli(
        "render a non-numeric channel",
        lambda f: Q + ["render", TOY, "relu2:x", "--out", out(f, "r3")],
        2,
        "channel index",
    ),
    cli(
        "trace --thumb-size 0",
        lambda f: Q + ["trace", TOY, "relu2:0", "--thumb-size", "0"],
        2,
        "--thumb-size",
        "positive",
    ),
    cli(
        "trace --thumb-steps 0",
        lambda f: Q + ["trace", TOY, "relu2:0", "--thumb-steps", "0"],
        2,
        "--thumb-steps",
    ),
    cli("trace --depth 0", lambda f: Q + ["trace", TOY, "relu2:0", "--depth", "0"], 2, "--depth"),
    cli("trace --top-k 0", lambda f: Q + ["trace", TOY, "relu2:0", "--top-k", "0"], 2, "--top-k"),
    cli(
        "trace blocks.1:3 keeps block and channel in the file names",
        lambda f: (
            Q
            + [
                "trace",
                str(f.blocks_py),
                "blocks.1:3",
                "--depth",
                "1",
                "--top-k",
                "2",
                "--thumb-size",
                "8",
                "--thumb-steps",
                "1",
                "--out",
                out(f, "t1"),
            ]
        ),
        0,
        writes=("t1/circuit_blocks.1_3.png", "t1/circuit_blocks.1_3.json"),
    ),
    cli("microscope --channels 0", lambda f: Q + ["microscope", TOY, "--channels", "0"], 2, "--channels"),
    cli("microscope --workers 0", lambda f: Q + ["microscope", TOY, "--workers", "0"], 2, "--workers"),
    cli("--threads 0", lambda f: ["--threads", "0", "models"], 2, "--threads"),
    cli("unknown subcommand", lambda f: ["draw"], 2, "invalid choice"),
    # issue 24: the user's own model's errors are the user's (exit 2, one line naming the model's error)
    cli("layers: the model's forward raises", lambda f: ["layers", str(f.raising_model)], 2,
        "my model is broken", not_says=("bug in featviz",)),
    cli("render: the model's forward raises",
        lambda f: Q + ["render", str(f.raising_model), "conv:0", "--size", "16", "--steps", "1",
                       "--out", out(f, "m1")], 2, "my model is broken", not_says=("bug in featviz",)),
    cli("render: a model with NaN weights",
        lambda f: Q + ["render", str(f.nan_model), "1:0", "--size", "16", "--steps", "1",
                       "--out", out(f, "m2")],
        2, "became nan", "NaN", not_says=("bug in featviz",)),
    cli("render: a 1-channel model",
        lambda f: Q + ["render", str(f.grey_model), "1:0", "--size", "16", "--steps", "1",
                       "--out", out(f, "m3")],
        2, "the model raised", "1 channels", not_says=("bug in featviz",)),
    cli("layers: a model with input_size = -5", lambda f: ["layers", str(f.neg_size_model)], 2,
        "input_size is -5", "positive"),
    cli("layers --size 16 on that model", lambda f: ["layers", str(f.neg_size_model), "--size", "16"], 0),
    cli("render --seed 2**70", lambda f: Q + ["render", TOY, "relu2:0", "--seed", str(2**70)], 2, "2**63"),
    cli("render --seed -1", lambda f: Q + ["render", TOY, "relu2:0", "--seed", "-1"], 2, "--seed"),
    cli("demo --size 1", lambda f: Q + ["demo", "--size", "1", "--steps", "1", "--out", out(f, "d1")], 2,
        "too small", "size=", not_says=("bug in featviz",)),
    cli("microscope --workers 100000",
        lambda f: Q + ["microscope", TOY, "--workers", "100000", "--out", out(f, "w1")],
        2, "--workers 100000",
        "CPU cores"),
    cli("microscope --out a dangling symlink", lambda f: Q + ["microscope", TOY, "--out", str(f.dangling)], 2,
        "broken symbolic link"),
    cli("microscope --out under a file", lambda f: Q + ["microscope", TOY, "--out", str(f.a_file / "sub")], 2,
        "is a file", not_says=("internal error",)),
    cli("microscope --out is a file", lambda f: Q + ["microscope", TOY, "--out", str(f.a_file)],
        2, "is a file"),
    cli("microscope: the lock is a directory",
        lambda f: Q + ["microscope", TOY, "--layers", "relu1", "--channels", "1",
                       "--out", str(f.lock_dir_site)],
        2, "build lock", "not a regular file", not_says=("internal error",)),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CLI_CASES])
def test_cli(case: CliCase, files, capsys, monkeypatch):
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    try:
        rc = main(case.argv(files))
    except SystemExit as e:  # argparse errors
        rc = e.code
    err_text = capsys.readouterr().err
    assert rc == case.rc, err_text
    assert "Traceback" not in err_text
    if case.rc == 2:
        assert len([ln for ln in err_text.splitlines() if ln.strip()]) == 1, err_text
    for part in case.says:
        assert part in err_text, f"{part!r} not in {err_text!r}"
    for part in case.not_says:
        assert part not in err_text, f"{part!r} in {err_text!r}"
    for rel in case.writes:
        assert (files.out / rel).is_file(), sorted(p.name for p in (files.out / rel).parent.glob("*"))


def test_the_table_has_at_least_150_cases():
    assert len(ALL) + len(CLI_CASES) >= 150


# ----------------------------------------------------------------------------------------------- issue 24
def test_layers_lists_every_call_of_a_shared_module(files, capsys, monkeypatch):
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    assert main(["layers", str(files.shared_relu), "--size", "8"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    # the relu runs after a (4 channels) and after b (6 channels): both calls listed at their own widths
    assert rows["relu"][2:] == ["1x4x6x6", "4"] and rows["relu#2"][2:] == ["1x6x6x6", "6"]


def _bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


TRAIN_MODE_CALLS = {
    "tuning_curve": lambda m: fv.circuits.tuning_curve(m, "4:0", X).responses,
    "dataset_examples": lambda m: fv.circuits.dataset_examples(m, "4:0", X, k=2, progress=False).scores,
    "find_edge_detectors": lambda m: fv.circuits.find_edge_detectors(m, "4", size=16, min_osi=0.0,
                                                                     min_peak_trough=0.0),
    "ablation_effect": lambda m: torch.tensor(fv.circuits.ablation_effect(m, "2:0", "4:0", X)),
    "predict": lambda m: torch.tensor([p for row in fv.models.predict(m, X, k=3) for _, p in row]),
}


@pytest.mark.parametrize("name", list(TRAIN_MODE_CALLS))
def test_a_train_mode_model_keeps_its_batchnorm_statistics(name):
    model = _bn_net().train()
    with torch.no_grad():  # move the running statistics off their defaults, as training would
        model(torch.rand(8, 3, 12, 12) * 3)
    before = [b.clone() for b in model.buffers()]
    result = TRAIN_MODE_CALLS[name](model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers()))
    assert model.training and all(m.training for m in model.modules())
    if isinstance(result, torch.Tensor):  # the answer is the eval-mode model's (running statistics)
        twin = _bn_net()
        twin.load_state_dict(model.state_dict())
        assert torch.allclose(result, TRAIN_MODE_CALLS[name](twin.eval()), atol=1e-6)


def test_predict_on_a_train_mode_model_is_the_eval_answer():
    model = _bn_net().train()
    with torch.no_grad():
        model(torch.rand(8, 3, 12, 12) * 3)
    got = fv.models.predict(model, X, k=1)
    with torch.no_grad():
        want = torch.softmax(copy_eval(model)(X), 1).max(1)  # plain torch, eval mode
    assert [row[0][0] for row in got] == [str(int(i)) for i in want.indices]
    assert close([row[0][1] for row in got], want.values, 1e-6)


def copy_eval(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).eval()


MICRO = ["--quiet", "microscope", TOY, "--layers", "relu1", "--channels", "1", "--size", "16", "--steps", "1",
         "--examples", "0", "--no-evidence"]


def test_a_truncated_fv_png_is_rebuilt_on_resume(tmp_path):
    site = tmp_path / "site"
    assert main(MICRO + ["--out", str(site)]) == 0
    fv_png = site / "data" / "relu1" / "0" / "fv.png"
    whole = fv_png.read_bytes()
    fv_png.write_bytes(whole[:60])  # a crash or a full disk left half a file behind meta.json's back
    assert main(MICRO + ["--out", str(site)]) == 0
    assert fv_png.read_bytes() == whole  # rebuilt (the same seed gives the same image)
    Image.open(fv_png).load()


def test_a_rebuild_never_deletes_through_a_symlink(tmp_path):
    import json

    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    assert main(MICRO + ["--out", str(site)]) == 0
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("the user's")
    (site / "data" / "linked").symlink_to(elsewhere)  # a link inside the site, to a folder outside it
    (site / "link.png").symlink_to(elsewhere / "precious.txt")
    marker = json.loads((site / ".featviz-site.json").read_text())  # an edited marker claims both
    marker["written"] += ["data/linked/precious.txt", "link.png", "data/linked"]
    (site / ".featviz-site.json").write_text(json.dumps(marker))
    assert main(MICRO + ["--out", str(site)]) == 0
    assert (elsewhere / "precious.txt").read_text() == "the user's"
    assert (site / "link.png").is_symlink() and (site / "data" / "linked").is_symlink()


def test_an_unwritable_page_is_a_user_error(tmp_path, monkeypatch, capsys):
    site = tmp_path / "site"
    assert main(MICRO + ["--out", str(site)]) == 0
    import featviz._io as fio

    real = fio.atomic_write_bytes

    def refuse(path, data):  # what a read-only index.html gives a non-root user
        if Path(path).name == "index.html":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, data)

    monkeypatch.setattr(fio, "atomic_write_bytes", refuse)
    capsys.readouterr()
    assert main(MICRO + ["--out", str(site)]) == 2
    err_text = capsys.readouterr().err
    assert "index.html" in err_text and "Permission denied" in err_text and "internal error" not in err_text


def test_layer_slugs_never_collide():
    from featviz.microscope import slug

    names = ["a/b", "a_b", "a b", "a:b", "relu#2", "relu_2", "..", "blocks.2"]
    assert len({slug(n) for n in names}) == len(names)
    assert slug("blocks.2") == "blocks.2" and all("/" not in slug(n) for n in names)


def test_a_torchvision_model_without_preprocess_warns_once_and_wrap_fixes_it():
    import torchvision

    from featviz.core import NoPreprocessWarning, preprocess_fn

    model = torchvision.models.resnet18()
    with pytest.warns(NoPreprocessWarning, match=r"fv.models.wrap\(model, mean="):
        preprocess_fn(model)(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoPreprocessWarning)
        preprocess_fn(model)(X)  # once per model
        weights = torchvision.models.ResNet18_Weights.DEFAULT
        wrapped = fv.models.wrap(torchvision.models.resnet18(), weights=weights)
        got = preprocess_fn(wrapped)(X)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(got, (X - mean) / std)
    assert wrapped.input_size == 224 and wrapped.labels[0] == "tench"


def test_a_timm_model_is_normalised_with_its_pretrained_cfg():
    timm = pytest.importorskip("timm")
    from featviz.core import preprocess_fn, probe_input

    model = timm.create_model("resnet10t", pretrained=False)
    cfg = model.pretrained_cfg
    mean, std = torch.tensor(cfg["mean"]).view(1, 3, 1, 1), torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.allclose(preprocess_fn(model)(X), (X - mean) / std)
    assert probe_input(model).shape[-1] == cfg["input_size"][-1]  # 176: the size it was trained at
    wrapped = fv.models.wrap(model, input_size=64)
    assert wrapped.preprocess.mean == tuple(cfg["mean"]) and wrapped.input_size == 64
