"""The ``featviz`` subcommands: parsed argparse namespace -> files written and lines printed.

Example:
    >>> from featviz.cli import main
    >>> main(["layers", "edges_and_curves"])
    layer  type    output shape          channels
    conv1  Conv2d  1x8x64x64             8
    relu1  ReLU    1x8x64x64             8
    conv2  Conv2d  1x7x64x64             7
    relu2  ReLU    1x7x64x64             7
    0
"""
from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
from argparse import Namespace
from pathlib import Path

from PIL import Image
from torch import nn
from tqdm.auto import tqdm

import featviz as fv
import featviz.models as zoo
from featviz._io import atomic_write_bytes, atomic_write_text
from featviz._modelfile import load_model
from featviz.core import input_size_of
from featviz.data import load_images
from featviz.demo import run_demo
from featviz.errors import BadValue, MissingFile, OutOfRange, OutputError, UnknownName
from featviz.explain import default_layers as explain_layers
from featviz.hooks import hooked, layer_shapes
from featviz.microscope import (
    CACHE,
    EXTRAS,
    MicroscopeSettings,
    SiteError,
    build_microscope,
    build_microscopes,
    check_layers,
    default_layers,
    plan,
    read_marker,
    save_png,
    slug,
)

__all__ = ["layer_table", "cmd_demo", "cmd_render", "cmd_trace", "cmd_microscope", "cmd_models", "cmd_layers",
           "cmd_explain"]


def _check_out(folder: str) -> Path:
    """``--out`` checked without creating anything: an OutputError when it is a broken link, a file, lies
    under a file, or is (or would be made in) a folder that cannot be written."""
    out = Path(folder)
    if out.is_symlink() and not out.exists():
        raise OutputError(f"--out {out} is a broken symbolic link (to {os.readlink(out)}): remove it, or "
                          "give another folder")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder: give a folder path (created if missing)")
    existing = next(p for p in (out, *out.absolute().parents) if os.path.lexists(p))
    if not existing.is_dir():
        raise OutputError(f"cannot write into --out {out} ({existing} is a file, not a folder): choose a "
                          "folder you can write to")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into --out {out} ({existing} is not writable): choose a folder you "
                          "can write to")
    return out


def _out_dir(folder: str) -> Path:
    """``--out`` as a folder that exists and can be written, or an OutputError saying why not."""
    out = _check_out(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise OutputError(f"cannot write into --out {out} ({e.strerror or e}): choose a folder you can "
                          "write to") from None
    return out


def _probe(model: nn.Module, names: list[str] | None, size: int | None) -> dict[str, tuple[int, ...]]:
    """Output shapes of ``names`` for one image of ``size`` pixels; a model that cannot run on that size
    is a user error naming the size and the model's own."""
    try:
        return layer_shapes(model, names, size=size)
    except RuntimeError as e:  # conv kernel larger than its input, shape mismatch of a user's model, ...
        own = input_size_of(model)
        shown = size or own or 224
        first = " ".join(str(e).split())[:200]
        fix = f"use --size {own} (the model's input size)" if own and own != shown else \
            "check --size and the model's forward"
        raise BadValue(f"the model cannot run on {shown}x{shown} images ({first}); {fix}") from None


def _channel_refs(model: nn.Module, refs: list[str], size: int | None) -> list[tuple[str, int]]:
    """``["layer:ch", ...]`` -> ``[(layer, ch), ...]`` checked against the model (names, channel counts,
    the model running at ``size``); a negative channel counts from the end, as in Python."""
    hm = hooked(model)
    parsed = []
    for ref in refs:
        try:
            name, channel = hm.parse(ref)
        except KeyError as e:
            raise UnknownName(e.args[0] if e.args else str(e)) from None
        except (ValueError, TypeError) as e:
            raise BadValue(str(e)) from None
        if channel is None:
            raise BadValue(f"{ref!r} names a layer, not a channel: write LAYER:CH, e.g. {name}:0")
        parsed.append((name, channel))
    shapes = _probe(model, list(dict.fromkeys(n for n, _ in parsed)), size)
    out = []
    for name, channel in parsed:
        shape = shapes.get(name, ())
        if len(shape) < 2:
            raise BadValue(f"layer {name!r} gave no (B, C, ...) tensor on a {size or 'default'}-pixel input "
                           "(it did not run, or its output is not a tensor); pick another layer from "
                           "`featviz layers MODEL`")
        n = shape[1]
        if not -n <= channel < n:
            raise OutOfRange(f"layer {name!r} has {n} channels (0..{n - 1}); got channel {channel}")
        out.append((name, channel % n))
    return out


LayerRow = tuple[str, str, tuple[int, ...], "int | None"]


def layer_table(model: nn.Module, size: int | None = None) -> list[LayerRow]:
    """(name, module type, output shape, channels) for every activation (every call of every hookable
    layer: ``"name#2"`` for a module's second call), from one forward pass.

    The input is a mid-grey image of ``size`` pixels (default ``model.input_size``, else 224). Layers that
    did not run, or whose output is not a tensor, get shape ``()`` and channels ``None``.

    Example:
        >>> rows = layer_table(nn.Sequential(nn.Conv2d(3, 8, 3)), size=32)
        >>> rows[0]
        ('0', 'Conv2d', (1, 8, 30, 30), 8)
    """
    hm = hooked(model)
    try:  # every call: a module that runs several times has rows "name", "name#2", ...
        shapes = hm.call_shapes(size=size)
    except RuntimeError:
        shapes = _probe(model, None, size)  # raises the user error naming the size
    return [(name, type(hm.module(name)).__name__, shape, shape[1] if len(shape) >= 2 else None)
            for name, shape in shapes.items()]


def cmd_layers(args: Namespace) -> None:
    rows = layer_table(load_model(args.model, args.arch), args.size)
    if not rows:
        raise BadValue(f"{args.model} has no hookable layers (no submodules); wrap its layers in nn.Module "
                       "attributes or an nn.Sequential")
    width = max(len("layer"), *(len(r[0]) for r in rows))
    type_width = max(len("type"), *(len(r[1]) for r in rows))
    print(f"{'layer':<{width}}  {'type':<{type_width}}  {'output shape':<20}  channels")
    for name, kind, shape, channels in rows:
        shown = "x".join(map(str, shape)) if shape else "-"
        print(f"{name:<{width}}  {kind:<{type_width}}  {shown:<20}  {channels if channels else '-'}")


def cmd_models(args: Namespace) -> None:
    for name in zoo.list_models():
        print(name)


def cmd_render(args: Namespace) -> None:
    model = load_model(args.model, args.arch)
    refs = _channel_refs(model, args.refs, args.size)
    out = _out_dir(args.out)
    for name, channel in refs:
        result = fv.render(model, f"{name}:{channel}", size=args.size, steps=args.steps, seed=args.seed,
                           progress=not args.quiet)
        path = out / f"{slug(name)}_{channel}.png"  # one file per (layer, channel): slugs never collide
        save_png(result.images[0], path)
        print(path)


def cmd_trace(args: Namespace) -> None:
    model = load_model(args.model, args.arch)
    ((name, channel),) = _channel_refs(model, [args.ref], None)
    out = _out_dir(args.out)
    circuit = fv.circuits.trace(model, f"{name}:{channel}", depth=args.depth, top_k=args.top_k,
                                progress=not args.quiet)
    stem = f"circuit_{slug(name)}_{channel}"  # e.g. circuit_blocks.7_13: layer and channel kept
    json_path, png_path = out / f"{stem}.json", out / f"{stem}.png"  # not with_suffix: '.7_13' is no suffix
    circuit.to_json(json_path)
    thumbs = fv.viz.thumbnails_for(model, circuit, size=args.thumb_size, steps=args.thumb_steps)
    circuit.plot(thumbnails=thumbs, path=str(png_path))
    print(png_path)
    print(json_path)


def cmd_microscope(args: Namespace) -> None:
    if args.examples < 0:
        raise BadValue(f"--examples must be 0 or more, got {args.examples}")
    if args.images is not None and not Path(args.images).is_dir():
        raise MissingFile(f"--images: no such folder: {args.images}; give a folder of your photos")
    _check_workers(args)
    _check_out(args.out)  # a file, a broken link, under a file, not writable: one line, exit 2
    if getattr(args, "plan", False):
        return _microscope_plan(args)
    if isinstance(args.model, list) and len(args.model) > 1:
        return _microscopes(args)
    if isinstance(args.model, list):
        args.model = args.model[0]
    model = load_model(args.model, args.arch).to(getattr(args, "device", "cpu"))
    layers = _site_layers(model, _layers_arg(args), "this model", "--layers")
    settings = _site_settings(args)
    if _layers_arg(args) is None and not args.quiet:  # the whole model: say what it costs before it starts
        _print_plan(model, layers, args, settings, _model_name(args.model), sys.stderr)
    out, start, report = Path(args.out), time.perf_counter(), {}
    try:
        index = build_microscope(model, layers, out, settings=settings, channels=args.channels,
                                 images=args.images, workers=args.workers, address=args.address,
                                 force=args.force, progress=not args.quiet, name=_model_name(args.model),
                                 report=report)
    except SiteError as e:  # a file, a folder that is not a site, another build's lock
        raise OutputError(str(e)) from None
    except OSError as e:  # a page or folder of the site that cannot be written
        _raise_write_failure(e, out)
        raise
    except KeyboardInterrupt:
        if (out / "index.html").is_file():
            print(f"featviz microscope: interrupted; {out / 'index.html'} shows the finished channels; "
                  "run the same command again to finish (nothing finished is lost)", file=sys.stderr)
        raise
    written = (read_marker(out) or {}).get("written", [])
    pages = sum(p.endswith(".html") for p in written)
    units = sum(p.startswith("channels/") for p in written)
    print(f"featviz microscope: {pages} pages ({units} channel page{'s' * (units != 1)} over {len(layers)} "
          f"layer{'s' * (len(layers) != 1)}) in {time.perf_counter() - start:.0f} s; open {index}",
          file=sys.stderr)
    if settings.extras:
        spent = report.get("seconds", {})
        print("featviz microscope: extras " + ", ".join(
            f"{e} {spent[e]:.0f} s" if e in spent else f"{e} 0 s (already built)" for e in settings.extras)
            + " (caricature: one render per channel; groups: a factorization and a render per group per "
            "layer; atlas: a render per filled cell per layer; explain: fv.explain of each example photo)",
            file=sys.stderr)
    if (out / CACHE).is_dir():
        print(f"featviz microscope: caches for rebuilds are in {out / CACHE} (no page links them; leave that "
              "folder out when you publish the site)", file=sys.stderr)
    print(index)


def _microscope_plan(args: Namespace) -> None:
    """``featviz microscope MODEL... --plan``: each model's layers, channel counts, what is cached and the
    estimated CPU time of the build, on stdout; nothing is written."""
    refs = args.model if isinstance(args.model, list) else [args.model]
    for ref in refs:
        model = load_model(ref, args.arch)
        layers = _site_layers(model, _layers_arg(args), "this model", "--layers")
        name = _model_name(ref)
        out = Path(args.out) / name if len(refs) > 1 else Path(args.out)
        _print_plan(model, layers, args, _site_settings(args), name, sys.stdout, out)
    print("featviz microscope --plan: nothing was built or written; run the same command without --plan to "
          "build", file=sys.stderr)


def _print_plan(model: nn.Module, layers: list[str], args: Namespace, settings, name: str, stream,
                out: Path | None = None) -> None:
    """The plan of a build (layers, channels built of each, partners, cached) and its estimated CPU time."""
    out = out or Path(args.out)
    try:
        p = plan(model, layers, out, settings=settings, channels=args.channels, images=args.images, name=name,
                 force=args.force)
    except SiteError as e:
        raise OutputError(str(e)) from None
    e = p.estimate(model)
    print(f"featviz microscope plan: {name}, {len(p.layers)} layers, into {out}", file=stream)
    print(f"{'layer':>22} {'shape':>14} {'built':>11} {'cached':>6} {'partners':>8}", file=stream)
    for n in p.layers:
        built = len(p.channels[n])
        cached = built - e.channels[n]
        shape = "x".join(str(v) for v in p.shapes[n][1:])
        print(f"{n:>22} {shape:>14} {f'{built} of {p.shapes[n][1]}':>11} {cached:>6} "
              f"{f'<= {e.partners[n]}':>8}", file=stream)
    what = ("a feature visualization each (--partner-renders)" if settings.partner_renders else
            "no render: what they are, links back, connecting weights")
    print(f"partners: channels outside the built ones that a connection points at get a short page ({what}); "
          "the connections decide which, so this counts at most that many", file=stream)
    print(str(e), file=stream)


def _layers_arg(args: Namespace) -> list[str] | None:
    """``--layers L1,L2`` as a list without repeats; None when not given."""
    if not args.layers:
        return None
    return list(dict.fromkeys(s.strip() for s in args.layers.split(",") if s.strip()))


def _site_layers(model, layers: list[str] | None, who: str, flag: str) -> list[str]:
    """The layers a site of ``model`` shows (``layers``, else its interesting layers), checked first."""

    chosen = layers if layers is not None else default_layers(model)
    if not chosen:
        raise BadValue(f"{who} declares no interesting_layers: name them with --layers L1,L2 "
                       "(see `featviz layers MODEL`)")
    try:
        check_layers(model, chosen, flag)
    except KeyError as e:
        raise UnknownName(e.args[0] if e.args else str(e)) from None
    except (ValueError, IndexError) as e:
        raise BadValue(str(e)) from None
    return chosen


def _site_settings(args: Namespace):
    """MicroscopeSettings from the microscope subcommand's flags."""

    given = (getattr(args, "extras", "") or "").split(",")
    extras = tuple(dict.fromkeys([*(e.strip() for e in given if e.strip()),
                                  *(["explain"] if getattr(args, "explain", False) else [])]))
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise BadValue(f"--extras: unknown {', '.join(unknown)}; choose from {','.join(EXTRAS)}")
    return MicroscopeSettings(size=args.size, steps=args.steps, seed=args.seed, examples=args.examples,
                              early_stop=getattr(args, "early_stop", MicroscopeSettings.early_stop),
                              evidence=not args.no_evidence, evidence_random=args.evidence_random,
                              extras=extras, partner_renders=getattr(args, "partner_renders", False))


def _model_name(ref: str) -> str:
    """What a multi-model site calls a MODEL argument: a zoo name as given, a file by its stem."""
    path = Path(ref)
    return path.stem if path.suffix else ref


def _raise_write_failure(e: OSError, out: Path) -> None:
    """An ``OutputError`` for an OS error on a path inside the site folder ``out`` (a read-only page or
    folder, a disk that is full); other errors are left to the caller."""
    name = getattr(e, "filename", None)
    if name is None:
        return
    try:
        inside = os.path.realpath(name).startswith(os.path.realpath(out) + os.sep) or \
            os.path.realpath(name) == os.path.realpath(out)
    except (OSError, ValueError):
        inside = False
    if inside:
        raise OutputError(f"cannot write {name} ({e.strerror or e}): check the permissions of --out {out} "
                          "and the space left on its disk; finished channels are kept") from None


def _check_workers(args: Namespace) -> None:
    """``--workers`` within what can run: the CPU cores for a local Ray, 1024 with ``--address``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = 1024 if args.address else max(cores, 1)
    if args.workers > limit:
        where = "a Ray cluster (--address)" if args.address else f"this machine ({cores} CPU cores)"
        fix = "" if args.address else f"; use --workers {limit} or fewer, or join a cluster with --address"
        raise BadValue(f"--workers {args.workers} is more than {where} can run ({limit} at most){fix}")


def _microscopes(args: Namespace) -> None:
    """``featviz microscope MODEL MODEL ...``: a site per model in DIR/<name>/ and the pages joining them."""


    names = [_model_name(ref) for ref in args.model]
    if len(set(names)) < len(names):
        raise BadValue(f"two MODEL arguments have the same name ({', '.join(names)}); each model's site is "
                       "a folder named after it: give distinct names")
    device = getattr(args, "device", "cpu")
    models = {n: load_model(ref, args.arch).to(device) for n, ref in zip(names, args.model)}
    layers = _layers_arg(args)
    for name, model in models.items():
        _site_layers(model, layers, name, f"--layers ({name})")
    settings = _site_settings(args)
    out, start = Path(args.out), time.perf_counter()
    try:
        index = build_microscopes(models, out, layers, settings=settings, channels=args.channels,
                                  images=args.images, workers=args.workers, address=args.address,
                                  force=args.force, progress=not args.quiet)
    except SiteError as e:
        raise OutputError(str(e)) from None
    except OSError as e:
        _raise_write_failure(e, out)
        raise
    except KeyboardInterrupt:
        print("featviz microscope: interrupted; run the same command again to finish (finished channels of "
              "every model are kept)", file=sys.stderr)
        raise
    print(f"featviz microscope: {len(models)} models ({', '.join(names)}) in "
          f"{time.perf_counter() - start:.0f} s; open {index} (universality: {out / 'universality.html'})",
          file=sys.stderr)
    print(index)


def cmd_demo(args: Namespace) -> None:
    _out_dir(args.out)

    kwargs = {k: getattr(args, k) for k in ("size", "steps") if getattr(args, k) is not None}
    if not args.quiet:
        print(f"featviz demo: feature visualizations of two EfficientNet-Lite0 layers and one circuit, into "
              f"{args.out}/ (a few minutes on a laptop CPU)", file=sys.stderr)
    print(run_demo(args.out, seed=args.seed, progress=not args.quiet, **kwargs))


def cmd_atlas(args: Namespace) -> None:
    if not Path(args.images).is_dir():
        raise MissingFile(f"--images: no such folder: {args.images}; give a folder of your photos")
    model = load_model(args.model, args.arch)
    try:
        name, channel = hooked(model).parse(args.layer)
    except KeyError as e:
        raise UnknownName(e.args[0] if e.args else str(e)) from None
    except ValueError as e:
        raise BadValue(str(e)) from None
    if channel is not None:
        raise BadValue(f"the atlas maps a whole layer: give {name!r}, not {args.layer!r}")
    out = _out_dir(args.out)
    photos = load_images(args.images, size=args.image_size or input_size_of(model, 224))
    atlas = fv.atlas(model, name, photos.images, grid=args.grid, n_samples=args.samples,
                     min_count=args.min_count, reducer=args.reducer, size=args.size, steps=args.steps,
                     seed=args.seed, progress=not args.quiet)

    def png(fig) -> bytes:
        return fv.viz.figure_png(fig, dpi=fig.dpi)  # at the figure's own dpi, as matplotlib saves by default

    written = [atomic_write_bytes(out / "atlas.png", png(atlas.plot("features")))]
    buf = io.BytesIO()
    Image.fromarray((atlas.mosaic() * 255).round().byte().permute(1, 2, 0).numpy()).save(buf, format="PNG")
    written.append(atomic_write_bytes(out / "atlas_cells.png", buf.getvalue()))
    if atlas.classes is not None:
        written.append(atomic_write_bytes(out / "atlas_classes.png", png(atlas.plot("classes"))))
    cells = []
    for i, (row, col) in enumerate(atlas.cells.tolist()):
        cell = {"row": row, "col": col, "count": int(atlas.counts[row, col])}
        if atlas.classes is not None:
            k = int(atlas.classes[i])
            names = atlas.class_names or []
            cell.update({"class": k, "class_name": names[k] if k < len(names) else None})
        cells.append(cell)
    summary = {"model": args.model, "layer": name, "photos": len(photos.names), "grid": atlas.grid,
               "samples": int(atlas.counts.sum()), "reducer": args.reducer, "size": args.size,
               "steps": args.steps, "seed": args.seed, "cells": cells}
    written.append(atomic_write_text(out / "atlas.json", json.dumps(summary, indent=1)))
    for path in written:
        print(path)


def cmd_explain(args: Namespace) -> None:
    for path in args.images:
        if not Path(path).is_file():
            raise MissingFile(f"no such image file: {path}; give photo files (PNG, JPEG, ...)")
    model = load_model(args.model, args.arch)
    layers = _layers_arg(args) or explain_layers(model, n=3)
    target = args.target
    if target is not None and target.lstrip("-").isdigit():
        target = int(target)
    out = _out_dir(args.out)
    photos = load_images(args.images, size=args.image_size or input_size_of(model, 224))
    start, pages = time.perf_counter(), []
    for image, name in tqdm(list(zip(photos.images, photos.names)), desc="explain", disable=args.quiet):
        try:
            ex = fv.explain(model, image, layers=layers, target=target, seed=args.seed)
        except KeyError as e:  # an unknown layer name from hooks: one line, exit 2
            raise UnknownName(e.args[0] if e.args else str(e)) from None
        pages.append(ex.save_html(out / f"{slug(name)}.html", n_groups=args.groups, size=args.size,
                                  steps=args.steps, progress=False, title=name))
        print(pages[-1])
    print(f"featviz explain: {len(pages)} page(s) ({len(layers)} layers: {', '.join(layers)}; explained: "
          f"{ex.target.label}) in {time.perf_counter() - start:.0f} s; open {pages[0]}", file=sys.stderr)
