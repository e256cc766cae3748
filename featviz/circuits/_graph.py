"""The execution graph of one forward pass: (model, x) -> every module call and the autograd ops between.

``ModuleGraph(model, x)`` runs ``x`` once in eval mode with autograd on and records each module call
under its activation name (``"name"`` for a module's first call, ``"name#k"`` for its k-th, see
``featviz.core``): the autograd node of its output and of its inputs. Functional ops between modules
(``F.relu``, ``out += identity``, ``torch.cat``, a gate ``x * sigmoid(s)``) are autograd nodes too, so
the graph knows which call feeds which through anything written in ``forward``. From that it answers
which conv a BatchNorm/activation belongs to ("units"), what lies between two layers, and which conv
units a layer reads (for tracing).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from featviz.core import StopForward, evaluating, layout, split_call
from featviz.errors import BadValue
from featviz.hooks import hooked

# module class names -> their kind (``kind``)
ACTIVATIONS = {"ReLU", "ReLU6", "Hardtanh", "LeakyReLU", "ELU", "GELU", "SiLU", "Hardswish", "Mish", "Tanh"}
PASS_THROUGH = {"Identity", "Dropout", "Dropout2d", "Dropout1d", "AlphaDropout"}
PADS = {"ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d"}


def kind(module: nn.Module) -> str:
    """One of "conv", "bn", "act", "pass", "pad", "maxpool", "avgpool", "other" (duck-typed, so featviz
    layers and torch layers both work)."""
    name = type(module).__name__
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.dim() == 4 and hasattr(module, "stride"):
        return "conv"
    if hasattr(module, "running_var") and hasattr(module, "running_mean"):
        return "bn"
    if name in ACTIVATIONS:
        return "act"
    if name in PASS_THROUGH:
        return "pass"
    if name in PADS:
        return "pad"
    if "MaxPool" in name:
        return "maxpool"
    if "AvgPool" in name:
        return "avgpool"
    return "other"


def is_depthwise(conv: nn.Module) -> bool:
    """True for a conv whose every output channel reads exactly one input channel of its own."""
    w = conv.weight
    groups = int(getattr(conv, "groups", 1))
    return w.shape[1] == 1 and groups > 1 and groups == w.shape[0]


# autograd node names (without the "Backward<n>" suffix) -> what the op is, for messages and checks
_ACT_OPS = {"Relu", "Hardtanh", "LeakyRelu", "Elu", "Gelu", "Silu", "Hardswish", "Mish", "Tanh", "Threshold",
            "Softplus", "Celu", "Selu"}
_PASS_OPS = {"Clone", "View", "Reshape", "Alias", "Unsqueeze", "Squeeze", "ToCopy", "Contiguous", "Expand",
             "ConstantPadNd", "ReflectionPad2D", "ReplicationPad2D", "Detach"}
_GATE_OPS = {"Sigmoid", "Hardsigmoid", "Softmax"}


@dataclass
class Call:
    """One module call: what ran, what it read and wrote (autograd nodes), and the output's layout."""

    name: str
    module: nn.Module
    kind: str
    order: int
    inputs: list
    output: object | None
    out_shape: tuple[int, ...] | None
    leaf: bool
    layout: str = "other"
    done: int = 0  # when the call returned: a container's output exists only after all its children ran


@dataclass
class Unit:
    """A conv with the BatchNorm / activation that directly follow it (or a lone non-conv layer)."""

    conv: str | None
    members: list[str] = field(default_factory=list)

    @property
    def end(self) -> str:
        return self.members[-1]


class NotConnectedError(BadValue):
    """Two layers are not directly connected (something other than BN/activation/depthwise lies between)."""


def op_name(node: object) -> str:
    """``"AddBackward0"`` -> ``"Add"``."""
    name = type(node).__name__
    for tail in ("Backward0", "Backward1", "Backward"):
        if name.endswith(tail):
            return name[: -len(tail)]
    return name


class ModuleGraph:
    """Which module call produced each tensor of one forward pass, and the ops between calls.

    Example:
        >>> g = ModuleGraph(fv.models.resnet18(), torch.rand(1, 3, 64, 64))
        >>> g.unit("layer1.0.bn2").conv
        'layer1.0.conv2'
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, *, hooks: Sequence[tuple[str, Callable]] = (),
                 stop_after: str | None = None):
        """``hooks``: extra forward hooks ``(name, fn)`` that run in the same pass, before the graph
        records each call (so an output they replace is the one recorded): a caller that needs this
        forward anyway (attribution's first chunk) need not run another. ``stop_after``: end the pass
        once that call (an activation name as in :attr:`calls`) has returned; later calls are then not
        recorded and :attr:`output` is ``None``."""
        self.hm = hooked(model)
        self.calls: dict[str, Call] = {}
        counts: dict[str, int] = {}
        started: dict[str, list] = {}  # name -> stack of (input nodes, start order) of running calls
        n_started = [0]
        n_done = [0]
        channels_last: set[int] = set()  # ids of nodes that hold channels-last maps

        def pre(name: str):
            def hook(module, inputs):
                nodes = [_node(t) for t in inputs if isinstance(t, torch.Tensor)]
                started.setdefault(name, []).append((nodes, n_started[0]))
                n_started[0] += 1
            return hook

        def post(name: str):
            def hook(module, inputs, output):
                nodes, start = started[name].pop()
                k = counts[name] = counts.get(name, 0) + 1
                key = name if k == 1 else f"{name}#{k}"
                out = output if isinstance(output, torch.Tensor) else None
                leaf = len(list(module.children())) == 0 or kind(module) in ("conv", "bn")
                was_last = bool(nodes) and id(nodes[0]) in channels_last and out is not None \
                    and out.dim() == 4 and inputs[0].shape[-1] == out.shape[-1]
                lay = layout(module, output, channels_last=was_last)
                if lay == "channels_last":
                    channels_last.add(id(_node(out)))
                self.calls[key] = Call(key, module, kind(module), start, nodes,
                                       _node(out) if out is not None else None,
                                       tuple(out.shape) if out is not None else None, leaf, lay, n_done[0])
                n_done[0] += 1
                if key == stop_after:
                    raise StopForward
            return hook

        self.modules = dict(self.hm.model.named_modules())
        named = [(n, m) for n, m in self.modules.items() if n]  # = hm.hook_names, looked up once
        handles = []
        result = None
        try:
            for n, m in named:
                handles.append(m.register_forward_pre_hook(pre(n)))
            # the caller's hooks first (their own block, so that their "name#k" call counters hook only
            # their modules): the graph records the outputs they return. The graph's own hooks are
            # registered directly (every module, no name to resolve, nothing to count): through hm.hooks
            # they cost a quarter of the graph's overhead over a plain forward on googlenet
            with evaluating(self.hm.model), torch.enable_grad(), self.hm.hooks(hooks):
                for n, m in named:
                    handles.append(m.register_forward_hook(post(n)))
                result = self.hm(x.detach().requires_grad_(True))
        except StopForward:
            pass
        finally:
            for h in handles:
                h.remove()
        self.output = result
        self.order = sorted(self.calls, key=lambda n: self.calls[n].order)
        self._index()

    def _index(self) -> None:
        self.producers: dict[int, list[str]] = {}
        for n in self.order:  # in start order: the first is the call that computed the node
            c = self.calls[n]
            if c.output is not None and c.leaf and not self._passes(c):
                self.producers.setdefault(id(c.output), []).append(n)
        self.consumers: dict[int, int] = {}
        seen: set[int] = set()
        stack = [c.output for c in self.calls.values() if c.output is not None]
        stack += [_node(t) for t in _tensors(self.output)]
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            for nxt, _ in getattr(node, "next_functions", ()):
                if nxt is not None:
                    self.consumers[id(nxt)] = self.consumers.get(id(nxt), 0) + 1
                    stack.append(nxt)

    def _passes(self, c: Call) -> bool:
        """A call whose output is its input unchanged (Identity, eval Dropout)."""
        return any(c.output is i for i in c.inputs)

    # -- queries ---------------------------------------------------------------------------------
    def call(self, name: str) -> Call:
        base, k = split_call(name)
        self.hm.module(base)  # KeyError with close names for a typo
        key = base if k == 1 else name
        if key not in self.calls:
            if k > 1 and base in self.calls:
                n = max(split_call(c)[1] for c in self.calls if split_call(c)[0] == base)
                raise BadValue(f"{base!r} runs {n} time(s) per forward pass; there is no call {name!r}")
            raise BadValue(f"layer {name!r} did not run in the forward pass, so it has no activation")
        return self.calls[key]

    def runs_before(self, a: str, b: str) -> bool:
        """True when ``a``'s output exists before ``b``'s: calls are ordered by when they return, so a
        block (``"layer3.1"``) comes after every layer inside it (``"layer3.1.bn2"``)."""
        return self.call(a).done < self.call(b).done

    def key(self, name: str) -> str:
        """The canonical activation name (``"x#1"`` -> ``"x"``), checked."""
        return self.call(name).name

    def repeated(self, name: str) -> int:
        """How many times the module behind ``name`` runs per forward pass."""
        base = split_call(name)[0]
        return sum(1 for c in self.calls if split_call(c)[0] == base)

    def producer(self, node: object) -> str | None:
        """The leaf call that computed ``node`` (``None``: a functional op or the input)."""
        names = self.producers.get(id(node)) if node is not None else None
        return names[0] if names else None

    def readers(self, node: object) -> list[str]:
        return [n for n in self.order if self.calls[n].leaf and not self._passes(self.calls[n])
                and any(i is node for i in self.calls[n].inputs)]

    def _sole_reader(self, name: str, want: str) -> str | None:
        node = self.calls[name].output
        readers = self.readers(node)
        if len(readers) == 1 and self.consumers.get(id(node), 0) == 1 and self.calls[readers[0]].kind == want:
            return readers[0]
        return None

    def unit(self, name: str) -> Unit:
        """The conv unit ``name`` belongs to: conv -> [BatchNorm] -> [activation], each the only reader of
        the previous one's output. A layer outside any such unit forms a unit of its own."""
        call = self.call(name)
        name, start = call.name, call.name
        if call.kind in ("bn", "act", "pass") and call.inputs:
            prev = self.producer(call.inputs[0])
            if prev is not None and self.calls[prev].kind == "bn" and call.kind == "act":
                prev2 = self.producer(self.calls[prev].inputs[0]) if self.calls[prev].inputs else None
                prev = prev2 if prev2 is not None and self.calls[prev2].kind == "conv" else prev
            if prev is not None and self.calls[prev].kind == "conv":
                start = prev
        if self.calls[start].kind != "conv" or not self.calls[start].leaf:
            same = self.producer(call.output)  # a container whose output is a unit's output
            if same is not None and same != name and self.calls[same].leaf:
                u = self.unit(same)
                return Unit(u.conv, u.members) if u.conv is not None else Unit(None, [name])
            return Unit(None, [name])
        members = [start]
        for want in ("bn", "act"):
            nxt = self._sole_reader(members[-1], want)
            if nxt is not None:
                members.append(nxt)
        if name not in members and not self._same_tensor(name, members[-1]):
            return Unit(None, [name])
        return Unit(start, members)

    def _same_tensor(self, a: str, b: str) -> bool:
        return self.calls[a].output is not None and self.calls[a].output is self.calls[b].output

    def conv_units(self) -> list[Unit]:
        """Every conv unit, in execution order."""
        return [self.unit(n) for n in self.order if self.calls[n].kind == "conv" and self.calls[n].leaf]

    def describe(self, node: object) -> tuple[str, str]:
        """(kind, readable name) of an autograd node: the module call that produced it, or the op."""
        prod = self.producer(node)
        if prod is not None:
            c = self.calls[prod]
            k = "dwconv" if c.kind == "conv" and is_depthwise(c.module) else c.kind
            return k, f"{prod!r} ({type(c.module).__name__})"
        op = op_name(node)
        if op in _ACT_OPS:
            return "act", f"a functional {op.lower()}"
        if op in _PASS_OPS:
            return "pass", f"a {op.lower()}"
        if op in _GATE_OPS:
            return "gate", f"a {op.lower()} gate"
        if op in ("Add", "Sub"):
            return "add", "a residual add (outside any module)"
        if op == "Cat":
            return "cat", "a concatenation (torch.cat)"
        if op == "Mul":
            return "mul", "a multiplication (e.g. a squeeze-excite gate or a layer scale)"
        return "other", f"an operation outside any module ({op})"

    def between(self, src: str, start: object) -> list[object] | None:
        """The autograd nodes on some path back from ``start`` to ``src``'s output (``src`` excluded),
        nearest ``start`` first. Empty when ``start`` is ``src``'s output; ``None`` when no path."""
        target = self.calls[self.key(src)].output
        if start is target:
            return []
        reach: dict[int, object] = {}
        nexts: dict[int, list] = {}
        queue, i = [start], 0
        while i < len(queue):  # breadth first: nearest start first
            node = queue[i]
            i += 1
            if id(node) in reach:
                continue
            reach[id(node)] = node
            nexts[id(node)] = [n for n, _ in getattr(node, "next_functions", ()) if n is not None]
            if node is not target:
                queue.extend(nexts[id(node)])
        if id(target) not in reach:
            return None
        parents: dict[int, list] = {}
        for k, ns in nexts.items():
            for n in ns:
                parents.setdefault(id(n), []).append(reach[k])
        on: set[int] = set()
        stack = [target]
        while stack:
            for p in parents.get(id(stack.pop()), []):
                if id(p) not in on:
                    on.add(id(p))
                    stack.append(p)
        return [reach[n] for n in dict.fromkeys(id(q) for q in queue) if n in on]

    def upstream_units(self, name: str) -> list[Unit]:
        """The conv units ``name`` reads directly: walking back from its input (from its output for a layer
        that is no conv unit, e.g. a block), the first conv-unit outputs met on every path. Gates
        (a (B, C, 1, 1) scale multiplied into a map, as in squeeze-excite) are not followed."""
        own = self.unit(name)
        ends = {id(self.calls[u.end].output): u for u in self.conv_units()}
        if own.conv is not None:
            starts, skip = list(self.calls[own.conv].inputs[:1]), set()
        else:
            starts, skip = [self.calls[self.key(name)].output], set()
        found: list[Unit] = []
        seen: set[int] = set()
        stack = list(starts)
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen or id(node) in skip:
                continue
            seen.add(id(node))
            u = ends.get(id(node))
            if u is not None and u.end not in own.members and u.end != self.key(name):
                if u not in found:
                    found.append(u)
                continue
            prod = self.producer(node)
            if prod is not None and self._is_gate(prod):
                continue
            stack.extend(nxt for nxt, _ in getattr(node, "next_functions", ()) if nxt is not None)
        return sorted(found, key=lambda u: self.calls[u.end].done)

    def _is_gate(self, name: str) -> bool:
        c = self.calls[name]
        return c.out_shape is not None and len(c.out_shape) == 4 and c.out_shape[-2:] == (1, 1) \
            and c.kind in ("act", "other")

    def channels(self, name: str) -> int:
        c = self.call(name)
        if c.layout == "maps":
            return c.out_shape[1]
        if c.layout == "channels_last":
            return c.out_shape[-1]
        raise BadValue(self.not_maps(name))

    def not_maps(self, name: str) -> str:
        c = self.call(name)
        other = f"{c.out_shape}" if c.out_shape else "a tuple, dict or other non-tensor output"
        what = {"tokens": f"tokens {c.out_shape} (a transformer / attention layer)",
                "vector": f"vectors {c.out_shape} (a fully connected layer)"}.get(c.layout, other)
        return (f"layer {c.name!r} ({type(c.module).__name__}) outputs {what}, not (B, C, H, W) feature "
                f"maps; circuit tools work on convolutional layers")


def _node(t: torch.Tensor | None) -> object | None:
    """The autograd node that made ``t``; for a leaf (the input), its gradient accumulator."""
    if t is None:
        return None
    if t.grad_fn is not None:
        return t.grad_fn
    if t.requires_grad:
        return t.view_as(t).grad_fn.next_functions[0][0]
    return None


def _tensors(obj: object) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []
