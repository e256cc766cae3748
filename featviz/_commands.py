"""The ``featviz`` subcommands: parsed argparse namespace -> files written and lines printed.

Example:
    >>> from featviz.cli import main
    >>> main(["layers", "efficientnet_lite0"])   # doctest: +SKIP
"""
from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

from torch import nn

from featviz._modelfile import load_model
from featviz.viz.microscope import layer_shapes, slug

__all__ = ["layer_table", "cmd_demo", "cmd_render", "cmd_trace", "cmd_microscope", "cmd_models", "cmd_layers"]


def _parse_channel(hm, ref: str) -> tuple[str, int]:
    name, channel = hm.parse(ref)
    if channel is None:
        raise ValueError(f"{ref!r} names a layer, not a channel: write LAYER:CH, e.g. {name}:0")
    return name, channel


LayerRow = tuple[str, str, tuple[int, ...], "int | None"]


def layer_table(model: nn.Module, size: int | None = None) -> list[LayerRow]:
    """(name, module type, output shape, channels) for every hookable layer, from one forward pass.

    The input is a mid-grey image of ``size`` pixels (default ``model.input_size``, else 224). Layers that
    did not run, or whose output is not a tensor, get shape ``()`` and channels ``None``.

    Example:
        >>> rows = layer_table(nn.Sequential(nn.Conv2d(3, 8, 3)), size=32)
        >>> rows[0]
        ('0', 'Conv2d', (1, 8, 30, 30), 8)
    """
    from featviz.hooks import hooked

    hm = hooked(model)
    return [(name, type(hm.module(name)).__name__, shape, shape[1] if len(shape) >= 2 else None)
            for name, shape in layer_shapes(model, size=size).items()]


def cmd_layers(args: Namespace) -> None:
    rows = layer_table(load_model(args.model, args.arch), args.size)
    width = max(len("layer"), *(len(r[0]) for r in rows))
    type_width = max(len("type"), *(len(r[1]) for r in rows))
    print(f"{'layer':<{width}}  {'type':<{type_width}}  {'output shape':<20}  channels")
    for name, kind, shape, channels in rows:
        shown = "x".join(map(str, shape)) if shape else "-"
        print(f"{name:<{width}}  {kind:<{type_width}}  {shown:<20}  {channels if channels else '-'}")


def cmd_models(args: Namespace) -> None:
    import featviz.models as zoo

    for name in zoo.list_models():
        print(name)


def cmd_render(args: Namespace) -> None:
    import featviz as fv
    from featviz.viz.microscope import save_png

    model = load_model(args.model, args.arch)
    hm = fv.hooked(model)
    refs = [f"{name}:{channel}" for name, channel in (_parse_channel(hm, r) for r in args.refs)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for ref in refs:
        result = fv.render(model, ref, size=args.size, steps=args.steps, seed=args.seed,
                           progress=not args.quiet)
        path = out / f"{slug(ref)}.png"
        save_png(result.images[0], path)
        print(path)


def cmd_trace(args: Namespace) -> None:
    import featviz as fv

    model = load_model(args.model, args.arch)
    name, channel = _parse_channel(fv.hooked(model), args.ref)
    circuit = fv.circuits.trace(model, f"{name}:{channel}", depth=args.depth, top_k=args.top_k,
                                progress=not args.quiet)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"circuit_{slug(f'{name}:{channel}')}"
    circuit.to_json(stem.with_suffix(".json"))
    circuit.plot(path=str(stem.with_suffix(".png")), size=args.thumb_size, steps=args.thumb_steps)
    print(stem.with_suffix(".png"))
    print(stem.with_suffix(".json"))


def cmd_microscope(args: Namespace) -> None:
    from featviz.viz.microscope import MicroscopeSettings, build_microscope

    model = load_model(args.model, args.arch)
    if args.layers:
        layers = [s.strip() for s in args.layers.split(",") if s.strip()]
    else:
        layers = list(getattr(model, "interesting_layers", []))[:2]
        if not layers:
            raise ValueError("this model declares no interesting_layers: name them with --layers L1,L2 "
                             "(see `featviz layers MODEL`)")
    settings = MicroscopeSettings(size=args.size, steps=args.steps, seed=args.seed)
    index = build_microscope(model, layers, args.out, settings=settings, channels=args.channels,
                             workers=args.workers, address=args.address, progress=not args.quiet)
    print(index)


def cmd_demo(args: Namespace) -> None:
    from featviz.demo import run_demo

    kwargs = {k: getattr(args, k) for k in ("size", "steps") if getattr(args, k) is not None}
    print(f"featviz demo: feature visualizations of two EfficientNet-Lite0 layers and one circuit, into "
          f"{args.out}/ (a few minutes on a laptop CPU)", file=sys.stderr)
    print(run_demo(args.out, seed=args.seed, progress=not args.quiet, **kwargs))
