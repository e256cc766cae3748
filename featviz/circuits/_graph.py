"""Data flow between named modules, recorded from one forward pass: which module's output feeds which.

``ModuleGraph(model, x)`` hooks every named module, runs ``x`` once and remembers, per module, the
tensors it consumed and produced (by identity and in-place version counter). From that it answers:
which conv a BatchNorm/ReLU belongs to ("units"), and what lies between two layers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from featviz.circuits._common import as_hooked, is_depthwise, kind

Key = tuple[int, int]  # (id(tensor), tensor._version)


@dataclass
class Call:
    """One module's first call: what it is, what it read and wrote."""

    name: str
    module: nn.Module
    kind: str
    order: int
    inputs: list[Key]
    output: Key | None
    out_shape: tuple[int, ...] | None
    leaf: bool


@dataclass
class Unit:
    """A conv with the BatchNorm / activation that directly follow it (or a lone non-conv layer)."""

    conv: str | None
    members: list[str] = field(default_factory=list)

    @property
    def end(self) -> str:
        return self.members[-1]


class NotConnectedError(ValueError):
    """Two layers are not directly connected (something other than BN/activation/depthwise lies between)."""


class ModuleGraph:
    """Which module produced each tensor of one forward pass, in execution order.

    Example:
        >>> g = ModuleGraph(fv.models.resnet18(), torch.rand(1, 3, 64, 64))
        >>> g.unit("layer1.0.bn2").conv
        'layer1.0.conv2'
    """

    def __init__(self, model: nn.Module, x: torch.Tensor):
        self.hm = as_hooked(model)
        self.calls: dict[str, Call] = {}
        keep: list[torch.Tensor] = []  # keeps every tensor alive so ids stay unique during the pass
        last: dict[int, Key] = {}  # id -> the latest (id, version) some module produced
        modules = dict(self.hm.model.named_modules())

        def make_hook(name: str):
            def hook(module, inputs, output):
                if name in self.calls:
                    return None
                ins = [t for t in inputs if isinstance(t, torch.Tensor)]
                keep.extend(ins)
                out = output if isinstance(output, torch.Tensor) else None
                # an in-place module's input is its output: it read the version produced before it
                in_keys = [last.get(id(t), (id(t), -1)) if t is out else (id(t), t._version) for t in ins]
                if out is not None:
                    keep.append(out)
                    last[id(out)] = (id(out), out._version)
                self.calls[name] = Call(
                    name, module, kind(module), len(self.calls), in_keys,
                    (id(out), out._version) if out is not None else None,
                    tuple(out.shape) if out is not None else None, len(list(module.children())) == 0)
                return None
            return hook

        with torch.no_grad(), self.hm.hooks([(n, make_hook(n)) for n in self.hm.hook_names]):
            self.hm(x)
        self.order = sorted(self.calls, key=lambda n: self.calls[n].order)
        self.producers: dict[Key, list[str]] = {}
        for n in self.order:
            if self.calls[n].output is not None:
                self.producers.setdefault(self.calls[n].output, []).append(n)
        self.modules = modules
        keep.clear()

    # -- queries ---------------------------------------------------------------------------------
    def call(self, name: str) -> Call:
        self.hm.module(name)  # KeyError with close names for a typo
        if name not in self.calls:
            raise ValueError(f"layer {name!r} did not run in the forward pass, so it has no activation")
        return self.calls[name]

    def leaf_producer(self, key: Key) -> str | None:
        """The leaf module that wrote tensor ``key`` (``None`` when no submodule did: a functional op)."""
        leaves = [n for n in self.producers.get(key, []) if self.calls[n].leaf]
        return leaves[-1] if leaves else None

    def consumers(self, key: Key) -> list[str]:
        return [n for n in self.order if self.calls[n].leaf and key in self.calls[n].inputs]

    def unit(self, name: str) -> Unit:
        """The conv unit ``name`` belongs to: conv -> [BatchNorm] -> [activation], each the only reader of
        the previous one's output. A layer outside any such unit forms a unit of its own."""
        call = self.call(name)
        start = name
        if call.kind in ("bn", "act") and call.inputs:
            prev = self.leaf_producer(call.inputs[0])
            if prev is not None and self.calls[prev].kind == "conv":
                start = prev
            elif prev is not None and self.calls[prev].kind == "bn" and call.kind == "act":
                prev2 = self.leaf_producer(self.calls[prev].inputs[0]) if self.calls[prev].inputs else None
                start = prev2 if prev2 is not None and self.calls[prev2].kind == "conv" else prev
        first = self.calls[start]
        if first.kind != "conv":
            return Unit(None, [name])
        members = [start]
        for want in ("bn", "act"):
            readers = self.consumers(self.calls[members[-1]].output)
            if len(readers) == 1 and self.calls[readers[0]].kind == want:
                members.append(readers[0])
        if name not in members and not self._same_tensor(name, members[-1]):
            return Unit(None, [name])
        return Unit(start, members)

    def _same_tensor(self, a: str, b: str) -> bool:
        return self.calls[a].output is not None and self.calls[a].output == self.calls[b].output

    def conv_units(self) -> list[Unit]:
        """Every conv unit, in execution order."""
        return [self.unit(n) for n in self.order if self.calls[n].kind == "conv" and self.calls[n].leaf]

    def path_to(self, src: Unit, conv: str) -> list[str]:
        """The modules between the output of ``src`` and the input of ``conv`` (nearest ``conv`` first),
        when only BatchNorm, activations, padding, identity-like layers and depthwise convs lie between;
        otherwise NotConnectedError naming what is in the way."""
        targets = {self.calls[m].output for m in src.members}
        key = self.calls[conv].inputs[0]
        path: list[str] = []
        while key not in targets:
            prev = self.leaf_producer(key)
            if prev is None:
                owners = self.producers.get(key, [])
                what = (f"the output of {owners[-1]!r}, computed outside any submodule (e.g. a residual add)"
                        if owners else "an operation outside any module (e.g. an add, a reshape or an "
                        "in-place change)")
                raise NotConnectedError(self._not_connected(src, conv, path, what))
            c = self.calls[prev]
            ok = c.kind in ("bn", "act", "pass", "pad") or (c.kind == "conv" and is_depthwise(c.module))
            if not ok or not c.inputs:
                what = f"{prev!r} ({type(c.module).__name__})"
                raise NotConnectedError(self._not_connected(src, conv, path, what))
            if prev in path:
                raise NotConnectedError(self._not_connected(src, conv, path, f"a loop at {prev!r}"))
            path.append(prev)
            key = c.inputs[0]
        return path

    def _not_connected(self, src: Unit, conv: str, path: list[str], what: str) -> str:
        seen = f" (after {', '.join(reversed(path))})" if path else ""
        return (f"{src.end!r} and {conv!r} are not directly connected: walking back from {conv!r}, the input "
                f"comes from {what}{seen}. weights() needs adjacent conv layers (only BatchNorm, ReLU/ReLU6 "
                f"and depthwise convs between); use expanded_weights() for layers further apart.")

    def channels(self, name: str) -> int:
        shape = self.call(name).out_shape
        if shape is None or len(shape) != 4:
            raise ValueError(f"layer {name!r} does not output a (B, C, H, W) tensor (got shape {shape})")
        return shape[1]

    def between(self, src_end: str, dst_end: str) -> list[str]:
        """Names of modules that finished after ``src_end`` and up to ``dst_end`` (inclusive)."""
        a, b = self.calls[src_end].order, self.calls[dst_end].order
        if b <= a:
            raise ValueError(f"{dst_end!r} runs before {src_end!r}; src must be the earlier layer")
        return [n for n in self.order if a < self.calls[n].order <= b]
