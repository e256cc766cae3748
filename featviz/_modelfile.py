"""Command-line model references -> nn.Module: a zoo name, a Python file defining ``model``, or a state dict.

Example:
    >>> model = load_model("efficientnet_lite0")                 # doctest: +SKIP
    >>> model = load_model("my_net.py")                          # doctest: +SKIP
    >>> model = load_model("weights.pt", arch="my_net.py")       # doctest: +SKIP
"""
from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import torch
from torch import nn

__all__ = ["load_model", "STATE_DICT_SUFFIXES"]

STATE_DICT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def _from_zoo(name: str) -> nn.Module:
    import featviz.models as zoo

    if name not in zoo.list_models():
        try:
            zoo.get(name)  # raises KeyError naming the closest zoo models
        except KeyError as e:
            raise KeyError(f"{e.args[0]}; or give a .py file defining `model`, or a state-dict file "
                           "with --arch") from None
    return zoo.get(name)


def _zoo_params(name: str) -> set[str]:
    """Parameter names of the zoo constructor called ``name`` (empty if ``name`` is not a zoo function)."""
    import featviz.models as zoo

    fn = getattr(zoo, name, None) if name in zoo.list_models() else None
    return set(inspect.signature(fn).parameters) if callable(fn) else set()


def _from_zoo_weights(name: str, path: Path) -> nn.Module:
    import featviz.models as zoo

    kwargs: dict[str, object] = {"weights": path}
    if "pretrained" in _zoo_params(name):
        kwargs["pretrained"] = False  # don't load the packaged weights first
    return zoo.get(name, **kwargs)


def _load_error_summary(e: Exception, limit: int = 300) -> str:
    """The informative part of a ``load_state_dict`` error (missing / unexpected keys), shortened."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    detail = " ".join(lines[1:] or lines)
    return detail if len(detail) <= limit else detail[:limit] + " ..."


def _from_python_file(path: Path) -> nn.Module:
    spec = importlib.util.spec_from_file_location(f"_featviz_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path} as a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = getattr(module, "model", None)
    if found is None:
        raise ValueError(f"{path} defines no `model`: add `model = MyNet()` (an nn.Module) or "
                         "`def model(): return MyNet()`")
    model = found if isinstance(found, nn.Module) else found()
    if not isinstance(model, nn.Module):
        raise ValueError(f"`model` in {path} gave a {type(model).__name__}, expected an nn.Module")
    return model


def _build(ref: str) -> nn.Module:
    path = Path(ref)
    if path.suffix == ".py":
        if not path.is_file():
            raise FileNotFoundError(f"no such Python file: {path}")
        return _from_python_file(path)
    return _from_zoo(ref)


def load_model(ref: str, arch: str | None = None) -> nn.Module:
    """Build the model a command line names, in eval mode.

    ``ref`` is a zoo name, a ``.py`` file whose ``model`` is an ``nn.Module`` (or a zero-argument
    function returning one), or a state-dict file (``.pt``, ``.pth``, ``.bin``, ``.ckpt``) loaded with
    ``weights_only=True`` into ``arch`` (a zoo name or a ``.py`` file as above).

    Example:
        >>> load_model("weights.pt", arch="resnet18").training   # doctest: +SKIP
        False
    """
    path = Path(ref)
    if path.suffix in STATE_DICT_SUFFIXES:
        if not path.is_file():
            raise FileNotFoundError(f"no such state-dict file: {path}")
        if arch is None:
            raise ValueError(f"{path} is a state dict: say which architecture it belongs to with --arch "
                             "(a zoo name or a .py file defining `model`)")
        if "weights" in _zoo_params(arch):  # the zoo's own loader knows its key mapping (lukemelas, aux keys)
            try:
                return _from_zoo_weights(arch, path)
            except RuntimeError as e:
                raise ValueError(f"{path} does not fit --arch {arch}: {_load_error_summary(e)}") from None
        model = _build(arch)
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"{path} does not fit --arch {arch}: {_load_error_summary(e)}") from None
    elif arch is not None:
        raise ValueError(f"--arch is only for state-dict files ({', '.join(STATE_DICT_SUFFIXES)}); "
                         f"{ref!r} is not one")
    else:
        model = _build(ref)
    return model.eval()
