"""The ``featviz`` command: argv -> a subcommand (demo, render, trace, microscope, models, layers) -> exit.

Every subcommand takes its model as ``MODEL``: a zoo name (``featviz models``), a Python file that defines
``model`` (an ``nn.Module`` or a zero-argument function returning one), or a state-dict file together
with ``--arch`` (a zoo name or such a Python file). Mistakes (unknown model, layer or channel, missing
file) print one line naming what was wrong and the closest valid names, and exit with status 2.

Example:
    $ featviz layers efficientnet_lite0
    $ featviz render efficientnet_lite0 blocks.2:7 --size 128 --steps 128 --out renders
    $ featviz microscope efficientnet_lite0 --layers blocks.1,blocks.4 --channels 8 --out site
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]


class CLIError(Exception):
    """A user mistake: printed as one line, exit status 2, no traceback."""


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
    parser = argparse.ArgumentParser(
        prog="featviz", description="See inside convolutional networks: feature visualizations, circuits "
                                    "and a static microscope site.")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: $OMP_NUM_THREADS, else CPU cores - 1, at most 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help="pretrained default model: layer grids, one circuit, DIR/index.html",
                       description="Render feature-visualization grids for an early and a middle layer of "
                                   "the pretrained default model, trace one circuit, write DIR/index.html.")
    p.add_argument("--out", default="featviz-demo", metavar="DIR", help="output folder")
    p.add_argument("--size", type=int, default=None, help="render size in pixels (default: the demo's own)")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the demo's own)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    p = sub.add_parser("render", help="feature visualizations of channels, as PNGs",
                       description="Optimise an image that maximally excites each LAYER:CH; one PNG each.")
    _add_model(p)
    p.add_argument("refs", nargs="+", metavar="LAYER:CH", help="channels to render, e.g. blocks.2:7")
    p.add_argument("--size", type=int, default=128, help="image size in pixels (default: 128)")
    p.add_argument("--steps", type=int, default=256, help="optimisation steps (default: 256)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", default=".", metavar="DIR", help="output folder (default: current folder)")

    p = sub.add_parser("trace", help="circuit feeding a channel: diagram PNG + JSON",
                       description="Trace the strongest upstream connections of LAYER:CH and write a circuit "
                                   "diagram (PNG) and its nodes and edges (JSON).")
    _add_model(p)
    p.add_argument("ref", metavar="LAYER:CH", help="channel at the top of the circuit, e.g. blocks.4:3")
    p.add_argument("--depth", type=int, default=2, help="layers to go back (default: 2)")
    p.add_argument("--top-k", type=int, default=3, help="strongest inputs kept per node (default: 3)")
    p.add_argument("--thumb-size", type=int, default=64, help="node thumbnail size in pixels (default: 64)")
    p.add_argument("--thumb-steps", type=int, default=64, help="node thumbnail render steps (default: 64)")
    p.add_argument("--out", default=".", metavar="DIR", help="output folder (default: current folder)")

    p = sub.add_parser("microscope", help="build a static microscope site (resumable; Ray workers)",
                       description="Build a static HTML site: an index of layers, a grid page per layer, "
                                   "a page per channel. Finished channels are kept: rerunning resumes.")
    _add_model(p)
    p.add_argument("--layers", default=None, metavar="L1,L2",
                   help="comma-separated layer names (default: the model's interesting_layers)")
    p.add_argument("--out", default="featviz-microscope", metavar="DIR", help="site folder")
    p.add_argument("--channels", type=int, default=None, metavar="N", help="first N channels per layer (all)")
    p.add_argument("--size", type=int, default=128, help="render size in pixels (default: 128)")
    p.add_argument("--steps", type=int, default=128, help="optimisation steps (default: 128)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="N > 1: distribute channels over N Ray workers (pip install 'featviz[distributed]')")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join, e.g. ray://head:10001 or auto (default: start a local Ray)")

    sub.add_parser("models", help="list the model zoo", description="List the models `MODEL` can name.")

    p = sub.add_parser("layers", help="hookable layers of a model, with output shapes and channel counts",
                       description="Run one forward pass at the model's input size and list every hookable "
                                   "layer with its output shape and channel count.")
    _add_model(p)
    p.add_argument("--size", type=int, default=None, help="input size (default: model.input_size, else 224)")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``featviz`` command; returns the exit status (0 ok, 2 user error).

    Example:
        >>> main(["models"])   # doctest: +SKIP
        efficientnet_lite0 ...
        0
    """
    args = build_parser().parse_args(argv)
    from featviz import _commands

    try:
        _set_threads(args.threads)
        getattr(_commands, f"cmd_{args.command}")(args)
    except (CLIError, KeyError, IndexError, ValueError, FileNotFoundError, ImportError) as e:
        if os.environ.get("FEATVIZ_DEBUG"):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"featviz {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"featviz {args.command}: interrupted (finished work is kept)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
