"""What every zoo model carries for the tools: (model, facts) -> the same model with attributes set."""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from featviz.errors import BadValue, MissingFile, UnknownName


def attach(model: nn.Module, preprocess: Callable[[Tensor], Tensor], input_size: int,
           labels: list[str] | None, interesting_layers: list[str]) -> nn.Module:
    """Set ``preprocess``, ``input_size``, ``labels`` and ``interesting_layers`` on ``model``; eval mode.

    ``interesting_layers`` are checked against the model's module names, so a renamed layer
    fails here rather than in a notebook.
    """
    names = dict(model.named_modules())
    missing = [n for n in interesting_layers if n not in names]
    if missing:
        raise UnknownName(f"interesting layers {missing} are not modules of {type(model).__name__}")
    model.preprocess = preprocess
    model.input_size = input_size
    model.labels = labels
    model.interesting_layers = list(interesting_layers)
    return model.eval()


def load_file(path: str | os.PathLike) -> Mapping[str, Tensor]:
    """A state dict from ``path`` with ``torch.load(weights_only=True)`` on the CPU; clear errors."""
    if not os.path.isfile(path):
        raise MissingFile(f"no weights file at {path}; give the path of a saved state dict (.pth)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise BadValue(f"{path} holds a {type(state).__name__}, not a state dict (name -> tensor)")
    return state
