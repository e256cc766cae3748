"""Bad and unusual inputs, table-driven: each case is a correct result, or an error of a stated type whose
message names the problem and the fix; CLI cases exit 2 with one line (no traceback) or succeed.

Tiny models only (a 2-conv nn.Sequential, a 3-class planted classifier, the toy edges_and_curves), so the
whole table runs in seconds.
"""

from __future__ import annotations

import io
import pickle
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
    return f


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
    err("I (int32) negative refused", img("i32_neg"), ValueError, "'I'", "-5"),
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
    err("F float negative refused", img("f_neg"), ValueError, "outside [0, 1]"),
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
    err("empty folder", lambda f: fv.data.load_images(f.empty_folder), ValueError, "no image files"),
    err(
        "folder without images",
        lambda f: fv.data.load_images(f.no_images),
        errors.BadValue,
        "no image files",
        ".png",
    ),
    err("missing path", lambda f: fv.data.load_images(f.root / "nope"), FileNotFoundError, "nope"),
    err(
        "missing file in a list",
        lambda f: fv.data.load_images([f.grey8, f.root / "gone.png"]),
        errors.MissingFile,
        "gone.png",
    ),
    err("empty list", lambda f: fv.data.load_images([]), ValueError, "empty list", "at least one"),
    err(
        "corrupt JPEG named",
        lambda f: fv.data.load_images([f.corrupt_jpg]),
        errors.BadFile,
        "broken.jpg",
        "PNG, JPEG",
    ),
    err("zero-byte PNG named", lambda f: fv.data.load_images([f.zero_png]), ValueError, "zero.png"),
    err("size 0", lambda f: fv.data.load_images([f.grey8], size=0), ValueError, "positive", "size=224"),
    err("size -3", lambda f: fv.data.load_images([f.grey8], size=-3), ValueError, "positive"),
    err("size 2.5", lambda f: fv.data.load_images([f.grey8], size=2.5), ValueError, "2.5"),
    err("size True", lambda f: fv.data.load_images([f.grey8], size=True), ValueError, "positive"),
    err("background 2", lambda f: fv.data.load_images([f.grey8], background=2), ValueError, "[0, 1]", "None"),
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
        "resize_and_crop on (3, H, W)", lambda f: fv.data.resize_and_crop(X[0], 8), ValueError, "(B, C, H, W)"
    ),
    err("resize_and_crop size 0", lambda f: fv.data.resize_and_crop(X, 0), ValueError, "positive"),
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
        TypeError,
        "int64",
        "uint8 in 0..255",
        "float() / 255",
    ),
    err(
        "int32 refused", lambda f: as_float_images(torch.zeros(2, dtype=torch.int32)), errors.BadType, "int32"
    ),
    err("int16 refused", lambda f: as_float_images(torch.zeros(2, dtype=torch.int16)), TypeError, "int16"),
    err("a list refused", lambda f: as_float_images([0.5]), TypeError, "torch.Tensor", "torch.as_tensor"),
    err("a numpy array refused", lambda f: as_float_images(np.zeros(2)), TypeError, "ndarray"),
    err(
        "complex refused",
        lambda f: as_float_images(torch.zeros(2, dtype=torch.complex64)),
        TypeError,
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
    err("(3, H, W): add a batch dimension", pred(RED[0]), ValueError, "images[None]"),
    err("one channel: repeat grey", pred(RED[:, :1]), errors.BadValue, "3 channels", "expand"),
    err("empty batch", pred(RED[:0]), ValueError, "empty", "at least one"),
    err("k=0", pred(RED, k=0), ValueError, "between 1", "3"),
    err("k larger than the classes", pred(RED, k=4), ValueError, "between 1 and the number of classes (3)"),
    err("k=1.5", pred(RED, k=1.5), TypeError, "k must be an int"),
    err("k=True", pred(RED, k=True), TypeError, "k must be an int"),
    err(
        "labels of the wrong length",
        pred(RED, k=1, labels=["a", "b"]),
        ValueError,
        "2 labels",
        "3 outputs",
        "one label per output",
    ),
    err("int64 images", pred(RED.long()), TypeError, "int64", "uint8"),
    err("a list of images", pred([RED]), TypeError, "list"),
    err("not a classifier", lambda f: fv.models.predict(NET, X), ValueError, "(B, classes)"),
]


# ----------------------------------------------------------------------------------------------- circuits
def attr(inputs, **kw):
    return lambda f: fv.circuits.attribute(NET, kw.pop("src", "1"), kw.pop("dst", "3"), inputs, **kw)


def examples(images, node="3:0", **kw):
    return lambda f: fv.circuits.dataset_examples(NET, node, images, progress=False, **kw)


CIRCUIT_CASES = [
    ok(
        "attribute: uint8 == float / 255",
        attr(X8),
        lambda r: close(r, fv.circuits.attribute(NET, "1", "3", X8.float() / 255), 1e-5),
    ),
    ok("attribute: dst 'layer:1,2' picks two rows", attr(X, dst="3:1,2"), lambda r: r.shape == (2, 4)),
    err("attribute: int64 inputs", attr(X8.long()), TypeError, "int64", "uint8"),
    err("attribute: (C, H, W) inputs", attr(X[0]), ValueError, "(B, C, H, W)"),
    err("attribute: a list", attr([X]), TypeError, "list"),
    err("attribute: unknown src", attr(X, src="7"), KeyError, "unknown layer '7'", "'1'"),
    err(
        "attribute: unknown method",
        attr(X, method="nope"),
        ValueError,
        "unknown attribution method",
        "grad_x_act",
    ),
    err("attribute: dst channel out of range", attr(X, dst_channels=[5]), IndexError, "3 channels", "0..2"),
    err("attribute: empty dst_channels", attr(X, dst_channels=[]), ValueError, "empty", "None"),
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
    err("dataset_examples: no channel", examples(X, node="3"), ValueError, "'layer:channel'"),
    err("dataset_examples: k=0", examples(X, k=0), ValueError, "k must be >= 1"),
    err("dataset_examples: empty", examples(X[:0]), ValueError, "empty", "at least one"),
    err("dataset_examples: int64", examples(X8.long()), TypeError, "int64"),
    err("dataset_examples: unknown layer", examples(X, node="8:0"), KeyError, "unknown layer"),
    err("dataset_examples: channel out of range", examples(X, node="3:7"), IndexError, "3 channels"),
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
        "weights: unknown layer", lambda f: fv.circuits.weights(NET, "0", "7"), KeyError, "unknown layer '7'"
    ),
    err(
        "trace: channel out of range",
        lambda f: fv.circuits.trace(NET, "3:9", depth=1, progress=False),
        IndexError,
        "3 channels",
    ),
    err(
        "trace: depth 0",
        lambda f: fv.circuits.trace(NET, "3:0", depth=0, progress=False),
        ValueError,
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
    err("parse: unknown layer lists names", lambda f: HM.parse("5:0"), KeyError, "unknown layer '5'", "'3'"),
    err("parse: channel not a number", lambda f: HM.parse("1:x"), ValueError, "'layer:3'"),
    err("parse: not a string", lambda f: HM.parse(5), TypeError, "'name:channel'"),
    err(
        "run_with_cache: unknown name", lambda f: HM.run_with_cache(X, names=["9"]), KeyError, "unknown layer"
    ),
    err(
        "hooks: unknown name",
        lambda f: entered(HM.hooks([("9", lambda m, i, o: None)])),
        KeyError,
        "unknown layer '9'",
    ),
    err(
        "ablate: channel out of range",
        lambda f: entered(HM.ablate("1", channels=[9])),
        IndexError,
        "4 channels",
    ),
    err("hooked(3)", lambda f: fv.hooked(3), TypeError, "nn.Module"),
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
        ValueError,
        "names 2 channels",
        "render_layer",
        not_says=("deepdream",),
    ),
    err("render 'layer' without channel: deepdream hint", render("3"), ValueError, "deepdream('3')"),
    err("render: unknown layer", render("9:0"), KeyError, "unknown layer '9'"),
    err("render: channel out of range", render("3:5"), IndexError, "3 channels", "0..2"),
    err("render: size 0", render("3:0", size=0), ValueError, "size", "positive"),
    err("render: steps 0", render("3:0", steps=0), ValueError, "steps", "positive"),
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
    err("objective: channel 1.5", lambda f: fv.objectives.channel("a", 1.5), ValueError, "non-negative int"),
    err("objective: divide by 0", lambda f: fv.objectives.channel("a", 1) / 0, TypeError, "non-zero"),
    err("objective: from an int", lambda f: fv.objectives.as_objective(3), TypeError, "'layer:channel'"),
    err("objective: 'a:b'", lambda f: fv.objectives.as_objective("a:b"), ValueError, "'layer:channel'"),
]

# ----------------------------------------------------------------------------------------------- data
DATA_CASES = [
    err("Normalize: std 0", lambda f: fv.data.Normalize(0.5, 0), ValueError, "std must be positive"),
    err("Normalize: two means", lambda f: fv.data.Normalize([0.5, 0.5], 1), ValueError, "3 numbers"),
    err(
        "Normalize: one-channel images",
        lambda f: fv.data.Normalize(0.5, 0.5)(torch.rand(1, 1, 2, 2)),
        ValueError,
        "(B, 3, H, W)",
    ),
    ok(
        "Normalize: inverse undoes it",
        lambda f: fv.data.Normalize(0.5, 0.25).inverse(fv.data.Normalize(0.5, 0.25)(X)),
        lambda r: close(r, X, 1e-6),
    ),
    err("gratings: freq 0", lambda f: fv.data.gratings([0], freq=0), ValueError, "(0, 0.5]"),
    err("gratings: no angles", lambda f: fv.data.gratings([]), ValueError, "empty", "at least one"),
    err("gratings: size 1", lambda f: fv.data.gratings([0], size=1), ValueError, ">= 2"),
    err(
        "curves: negative curvature",
        lambda f: fv.data.curves([0], curvatures=[-1]),
        ValueError,
        "turn the angle by 180",
    ),
    ok(
        "edges: bright side where the angle points",
        lambda f: fv.data.edges([0], size=8)[0, 0],
        lambda r: float(r[0, 0]) == 0.0 and float(r[0, -1]) == 1.0,
    ),
    ok("imagenet labels: 1000", lambda f: fv.data.imagenet_labels(), lambda r: len(r) == 1000),
    err("models.get: typo lists the closest", lambda f: fv.models.get("resnet19"), KeyError, "resnet18"),
    err(
        "models.register: a taken name",
        lambda f: fv.models.register("resnet18", nn.Identity),
        ValueError,
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
    err("missing .py", lm(str(Path("/nonexistent/net.py"))), FileNotFoundError, "no such Python file"),
    err(".py without `model`", lm("no_model_py"), ValueError, "defines no `model`", "model = MyNet()"),
    err(".py with model = 3", lm("int_model_py"), ValueError, "int", "nn.Module"),
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
    err("state dict without --arch", lm("weights"), ValueError, "--arch"),
    err(
        "missing state dict",
        lm(str(Path("/nonexistent/w.pt")), "seq_py"),
        FileNotFoundError,
        "no such state-dict file",
    ),
    err("empty .pt with a .py arch", lm("empty_pt", "seq_py"), errors.BadFile, "empty", "torch.save"),
    err(
        "garbage .pt with a .py arch", lm("garbage_pt", "seq_py"), errors.BadFile, "cannot read", "torch.save"
    ),
    err("truncated .pt", lm("truncated_pt", "seq_py"), errors.BadFile, "cannot read"),
    err("refused pickle", lm("evil_pt", "seq_py"), errors.RefusedFile, "refuses", "state_dict()"),
    err(".pt holding a list", lm("list_pt", "seq_py"), errors.BadFile, "list", "not a state dict"),
    err("weights that do not fit", lm("wrong", "seq_py"), ValueError, "does not fit --arch", "weight"),
    err("--arch for a .py model", lm("seq_py", "seq_py"), ValueError, "--arch is only", "drop --arch"),
    err("a .txt file as model", lm("text_model"), ValueError, "neither", ".py"),
]

ALL = (
    IMAGE_CASES
    + DTYPE_CASES
    + PREDICT_CASES
    + CIRCUIT_CASES
    + HOOK_RENDER_CASES
    + DATA_CASES
    + MODEL_FILE_CASES
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
