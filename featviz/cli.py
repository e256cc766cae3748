"""The ``featviz`` command: argv -> a subcommand (demo, render, trace, microscope, explain, ...) -> exit.

Every subcommand takes its model as ``MODEL``: a zoo name (``featviz models``), a Python file that defines
``model`` (an ``nn.Module`` or a zero-argument function returning one), or a state-dict file together
with ``--arch`` (a zoo name or such a Python file). Mistakes (unknown model, layer or channel, missing
or unreadable file, impossible size, unwritable ``--out``) are raised as :class:`featviz.errors.UserError`
at this boundary and print one line naming what was wrong and how to fix it, exit status 2; so does an
error raised inside the user's own model while featviz runs it (one line naming the model's error).
Anything else is a bug in featviz: one line saying so, exit status 1, the traceback with ``--debug``.

Example:
    $ featviz layers efficientnet_lite0
    $ featviz render efficientnet_lite0 blocks.2:7 --size 128 --steps 128 --out renders
    $ featviz microscope efficientnet_lite0 --layers blocks.1,blocks.4 --channels 8 --out site
    $ featviz explain efficientnet_lite0 cat.jpg dog.jpg --out pages
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from featviz.errors import BadValue, UserError

__all__ = ["main", "build_parser"]

REPORT = "this is a bug in featviz, please report it; rerun with --debug for the traceback"


class CLIError(BadValue):
    """A user mistake found by the command itself: printed as one line, exit status 2, no traceback."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (not the usage block), exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number (1 or more), got {value}")
    return value


SEED_LIMIT = 2**63  # torch.Generator.manual_seed takes 64-bit seeds; featviz's are 0 .. 2**63 - 1


def _device(text: str) -> str:
    """argparse type: a torch device this machine has (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    import torch  # only when the flag is given: `featviz --help` stays fast

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a torch device such as cpu, cuda or cuda:1, got {text!r}"
                                         ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: this machine's torch has no CUDA device "
                                             f"(torch {torch.__version__}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text}: this machine has {torch.cuda.device_count()} CUDA "
                                             f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise argparse.ArgumentTypeError(f"{text}: this machine's torch has no MPS device; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text}: a site is built on cpu, cuda or mps, not {dev.type}")
    return str(dev)


def _seed(text: str) -> int:
    """argparse type: a seed, a whole number from 0 to 2**63 - 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 2**63 - 1, got {value}")
    return value


def _early_stop(text: str) -> float | None:
    """argparse type: a relative gain in [0, 1) at which a render stops (0: never stop early -> None)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.005 (0: every step), got {text!r}") \
            from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be from 0 (every step) to below 1, e.g. 0.005; got {value}")
    return value or None


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="zoo name (see `featviz models`), a .py file defining `model`, or a state-dict file "
                        "(with --arch)")
    p.add_argument("--arch", default=None,
                   help="architecture for a state-dict MODEL: a zoo name or a .py file defining `model`")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``featviz`` command (one subparser per subcommand).

    Example:
        >>> build_parser().parse_args(["layers", "efficientnet_lite0"]).command
        'layers'
    """
    parser = _Parser(
        prog="featviz", description="See inside convolutional networks: feature visualizations, circuits "
                                    "and a static microscope site.")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="torch CPU threads (default: $OMP_NUM_THREADS, else CPU cores - 1, at most 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also: FEATVIZ_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help="pretrained default model: layer grids, one circuit, DIR/index.html",
                       description="Render feature-visualization grids for an early and a middle layer of "
                                   "the pretrained default model, trace one circuit, write DIR/index.html.")
    p.add_argument("--out", default="featviz-demo", metavar="DIR", help="output folder")
    p.add_argument("--size", type=_positive_int, default=None,
                   help="render size in pixels (default: the demo's own)")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help="optimisation steps (default: the demo's own)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")

    p = sub.add_parser("render", help="feature visualizations of channels, as PNGs",
                       description="Optimise an image that maximally excites each LAYER:CH; one PNG each.")
    _add_model(p)
    p.add_argument("refs", nargs="+", metavar="LAYER:CH", help="channels to render, e.g. blocks.2:7")
    p.add_argument("--size", type=_positive_int, default=128, help="image size in pixels (default: 128)")
    p.add_argument("--steps", type=_positive_int, default=256, help="optimisation steps (default: 256)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    p.add_argument("--out", default=".", metavar="DIR", help="output folder (default: current folder)")

    p = sub.add_parser("trace", help="circuit feeding a channel: diagram PNG + JSON",
                       description="Trace the strongest upstream connections of LAYER:CH and write a circuit "
                                   "diagram (PNG) and its nodes and edges (JSON).")
    _add_model(p)
    p.add_argument("ref", metavar="LAYER:CH", help="channel at the top of the circuit, e.g. blocks.4:3")
    p.add_argument("--depth", type=_positive_int, default=2, help="layers to go back (default: 2)")
    p.add_argument("--top-k", type=_positive_int, default=3,
                   help="strongest inputs kept per node (default: 3)")
    p.add_argument("--thumb-size", type=_positive_int, default=64,
                   help="node thumbnail size in pixels (default: 64)")
    p.add_argument("--thumb-steps", type=_positive_int, default=64,
                   help="node thumbnail render steps (default: 64)")
    p.add_argument("--out", default=".", metavar="DIR", help="output folder (default: current folder)")

    p = sub.add_parser("microscope", help="build a static microscope site (resumable; Ray workers)",
                       description="Build a static HTML site: an index of layers, a grid page per layer, "
                                   "a page per channel. Finished channels are kept: rerunning resumes. "
                                   "With several models: one site per model in DIR/<model>/, "
                                   "DIR/universality.html pairing units that fire together across models, "
                                   "and on each unit page its matches in the other models.")
    p.add_argument("model", nargs="+", metavar="MODEL",
                   help="zoo name (see `featviz models`), a .py file defining `model`, or a state-dict file "
                        "(with --arch); several: a site per model and a universality page linking them")
    p.add_argument("--arch", default=None,
                   help="architecture for a state-dict MODEL: a zoo name or a .py file defining `model`")
    p.add_argument("--layers", default=None, metavar="L1,L2",
                   help="comma-separated layer names, early to late (default: the whole model: every layer "
                        "of its interesting_layers, then its output units when it has class names); with "
                        "several models, for each of them")
    p.add_argument("--out", default="featviz-microscope", metavar="DIR", help="site folder")
    p.add_argument("--channels", type=_positive_int, default=None, metavar="N",
                   help="first N channels per layer (all)")
    p.add_argument("--size", type=_positive_int, default=128, help="render size in pixels (default: 128)")
    p.add_argument("--steps", type=_positive_int, default=128, help="optimisation steps (default: 128)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")
    p.add_argument("--early-stop", type=_early_stop, default=0.005, metavar="TOL",
                   help="stop a render once its objective gains less than TOL (relative) over 16 steps "
                        "(default: 0.005, keeps a median 98-100 %% of the full activation; 0: every step)")
    p.add_argument("--device", type=_device, default="cpu", metavar="DEV",
                   help="where the model runs: cpu (default), cuda, cuda:1, mps (renders, scans and evidence "
                        "run there; pages and files are the same)")
    p.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                   help="N > 1: distribute channels over N Ray workers (pip install 'featviz[distributed]')")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join, e.g. ray://head:10001 or auto (default: start a local Ray)")
    p.add_argument("--images", default=None, metavar="DIR",
                   help="folder of your own photos (searched recursively) for dataset examples "
                        "(default: the bundled photos)")
    p.add_argument("--examples", type=int, default=6, metavar="N",
                   help="dataset examples shown per channel, top and bottom each (default: 6; 0: none)")
    p.add_argument("--evidence-random", type=_positive_int, default=20, metavar="N",
                   help="random channel sets each evidence ablation test compares against (default: 20, "
                        "the fewest that can reach p < 0.05)")
    p.add_argument("--no-evidence", action="store_true",
                   help="skip the evidence section (curve scans, attribution, ablation) of channel pages")
    p.add_argument("--extras", default="", metavar="E1,E2",
                   help="techniques built only when asked: caricature (channel pages: the layer's caricature "
                        "of the channel's top photo; one more render per channel), groups (layer pages: "
                        "channels that fire together, a render per group), atlas (layer pages: an "
                        "activation atlas, a render per filled cell of 6x6), explain (the same as "
                        "--explain); the build summary says what each cost")
    p.add_argument("--explain", action="store_true",
                   help="an explanation page (featviz explain: semantic dictionary, attribution, groups) for "
                        "every photo shown as a dataset example, linked from its examples; its channels link "
                        "to their pages (a few CPU-seconds to a minute per photo)")
    p.add_argument("--partner-renders", action="store_true",
                   help="also render a feature visualization for each connection partner (a unit outside the "
                        "built channels that a built page names), as builds before this flag did; by default "
                        "a partner's short page renders nothing: it says what it is, links back and shows "
                        "its connecting weights (and dataset examples when its layer's photo statistics "
                        "exist)")
    p.add_argument("--force", action="store_true",
                   help="build into a non-empty folder that is not a featviz site (nothing there is deleted)")
    p.add_argument("--plan", action="store_true",
                   help="dry run: print the layers, the channels built of each (and partners), what is "
                        "cached and the estimated CPU time (calibrated on this machine), then exit without "
                        "writing anything (a whole-model build without --layers prints this first anyway)")
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")

    p = sub.add_parser("atlas", help="activation atlas of a layer from a folder of photos (PNGs + JSON)",
                       description="Sample LAYER's activation vectors from your photos, lay them out with "
                                   "UMAP, render the mean vector of each grid cell; write atlas.png, "
                                   "atlas_cells.png, atlas_classes.png (classifiers) and atlas.json.")
    _add_model(p)
    p.add_argument("layer", metavar="LAYER", help="layer name (see `featviz layers MODEL`), e.g. blocks.9")
    p.add_argument("--images", required=True, metavar="DIR", help="folder of photos (searched recursively)")
    p.add_argument("--out", default="featviz-atlas", metavar="DIR",
                   help="output folder (default: featviz-atlas)")
    p.add_argument("--grid", type=_positive_int, default=20, help="cells per side (default: 20)")
    p.add_argument("--samples", type=_positive_int, default=2000, metavar="N",
                   help="activation vectors sampled from the photos (default: 2000)")
    p.add_argument("--min-count", type=_positive_int, default=3, metavar="N",
                   help="samples a cell needs to be rendered (default: 3)")
    p.add_argument("--reducer", choices=("umap", "pca"), default="umap",
                   help="2-D layout: umap (default; pip install 'featviz[atlas]') or pca (fast, linear)")
    p.add_argument("--size", type=_positive_int, default=64,
                   help="render size of a cell in pixels (default: 64)")
    p.add_argument("--steps", type=_positive_int, default=128,
                   help="optimisation steps per cell (default: 128)")
    p.add_argument("--image-size", type=_positive_int, default=None, metavar="PX",
                   help="photos are resized and centre-cropped to PX (default: model.input_size, else 224)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default: 0)")

    p = sub.add_parser("explain", help="explain photos: one self-contained Building Blocks page each",
                       description="For each IMAGE: what the model saw (semantic dictionary on hover), the "
                                   "attribution of each layer to the predicted class (or --target) over "
                                   "the photo, and the photo's neuron groups; one self-contained HTML page "
                                   "(works from file://) and a static PNG per photo in DIR.")
    _add_model(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photo files (PNG, JPEG, ...)")
    p.add_argument("--out", default="featviz-explain", metavar="DIR",
                   help="output folder (default: featviz-explain)")
    p.add_argument("--layers", default=None, metavar="L1,L2",
                   help="comma-separated layer names (default: three of the model's interesting layers, "
                        "evenly spaced over the later half)")
    p.add_argument("--target", default=None, metavar="CLASS",
                   help="what to explain: a class index, a class name or a unit LAYER:CH (default: the top "
                        "class)")
    p.add_argument("--size", type=_positive_int, default=64,
                   help="feature-visualization size in pixels (default: 64)")
    p.add_argument("--steps", type=_positive_int, default=64,
                   help="feature-visualization optimisation steps (default: 64)")
    p.add_argument("--groups", type=_positive_int, default=6, metavar="N",
                   help="neuron groups per layer (default: 6)")
    p.add_argument("--image-size", type=_positive_int, default=None, metavar="PX",
                   help="photos are resized and centre-cropped to PX (default: model.input_size, else 224)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    sub.add_parser("models", help="list the model zoo", description="List the models `MODEL` can name.")

    p = sub.add_parser("layers", help="hookable layers of a model, with output shapes and channel counts",
                       description="Run one forward pass at the model's input size and list every hookable "
                                   "layer with its output shape and channel count.")
    _add_model(p)
    p.add_argument("--size", type=_positive_int, default=None,
                   help="input size (default: model.input_size, else 224)")
    for command in sub.choices.values():  # --debug also after the subcommand
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help=argparse.SUPPRESS)
    return parser


def _set_threads(threads: int | None) -> None:
    import torch

    if threads is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        # One core left free, at most 8: OpenMP threads that wait for a busy core cost far more than
        # they give (on a loaded 2-core machine 2 threads rendered 6x slower than 1).
        threads = min(8, cores - 1)
    torch.set_num_threads(max(1, int(threads)))


def _raised_by_model(e: BaseException) -> bool:
    """True when ``e`` was raised inside the user's model: below the innermost featviz frame of its
    traceback, the model was being called (a ``torch.nn.Module`` call frame) and no featviz code ran
    again (a featviz hook raising inside the model's forward is featviz's error).

    Example:
        >>> import torch
        >>> class Broken(torch.nn.Module):
        ...     def forward(self, x):
        ...         raise BadValue("no")
        >>> from featviz.hooks import hooked
        >>> try:
        ...     hooked(Broken()).run_with_cache(torch.zeros(1, 3, 4, 4))
        ... except ValueError as err:
        ...     _raised_by_model(err), _raised_by_model(RuntimeError("featviz's own"))
        (True, False)
    """
    import traceback

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frames = traceback.extract_tb(e.__traceback__)
    own = [i for i, f in enumerate(frames) if os.path.abspath(f.filename).startswith(package)]
    if not own:
        return False
    below = frames[own[-1] + 1:]
    return any(f.name in ("_call_impl", "_wrapped_call_impl") and f.filename.endswith(
        os.path.join("nn", "modules", "module.py")) for f in below)


def _one_line(e: BaseException, limit: int = 400) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``featviz`` command; returns the exit status (0 ok, 1 a bug in featviz, 2 a user error,
    130 interrupted). Bad arguments exit with status 2 from the parser, also as one line.

    Example:
        >>> main(["models"])
        edges_and_curves
        efficientnet_lite0
        efficientnet_lite1
        efficientnet_lite2
        inception_v1
        resnet18
        0
    """
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False) or os.environ.get("FEATVIZ_DEBUG"))
    try:
        from featviz import _commands

        _set_threads(args.threads)
        getattr(_commands, f"cmd_{args.command}")(args)
    except UserError as e:
        if debug:
            raise
        print(f"featviz {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"featviz {args.command}: interrupted (finished work is kept)", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        if _raised_by_model(e):  # the user's model raised while featviz ran it: the user's to fix
            print(f"featviz {args.command}: error: the model raised {type(e).__name__}: {_one_line(e, 300)} "
                  "(its own error, not featviz's: check the model's forward, its input size and channels; "
                  "--debug for the traceback)", file=sys.stderr)
            return 2
        print(f"featviz {args.command}: internal error ({type(e).__name__}: {_one_line(e, 200)}); {REPORT}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
