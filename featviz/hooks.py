"""Hooks on any ``nn.Module``: capture, edit and ablate named activations; hooks removed in ``finally``.

Names are PyTorch's dotted ``named_modules()`` names (``"layer1.0.conv1"``); a reference
``"name:channel"`` adds a channel index. All hooks go through one context manager,
:meth:`HookedModel.hooks`, which removes exactly the handles it registered — after a normal
exit, an exception inside the forward pass, or ``KeyboardInterrupt`` — and leaves a user's
own hooks alone.

Example:
    >>> import torch, torchvision
    >>> hm = hooked(torchvision.models.resnet18())
    >>> out, cache = hm.run_with_cache(torch.rand(1, 3, 64, 64), names=["layer1.0.conv1"])
    >>> cache["layer1.0.conv1"].shape
    torch.Size([1, 64, 16, 16])
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

HookFn = Callable[[nn.Module, tuple, object], object]

__all__ = ["ActivationCache", "HookedModel", "hooked", "closest_names"]


def closest_names(name: str, names: Sequence[str], n: int = 5) -> list[str]:
    """The up-to-``n`` entries of ``names`` most similar to ``name`` (difflib), best first.

    Example:
        >>> closest_names("blocks.20", ["blocks.2", "blocks.12", "head"])
        ['blocks.2', 'blocks.12']
    """
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.5)
    if not close:  # fall back to names sharing the first dotted component
        head = name.split(".")[0]
        close = [m for m in names if m.split(".")[0] == head][:n]
    return close


def _unknown(kind: str, name: str, names: Sequence[str]) -> KeyError:
    close = closest_names(name, names)
    hint = f"closest: {close}" if close else f"{len(names)} names, e.g. {list(names[:8])}"
    return KeyError(f"unknown {kind} {name!r}; {hint}")


class ActivationCache(Mapping):
    """A read-only mapping ``name -> activation tensor`` filled by :meth:`HookedModel.run_with_cache`.

    Supports ``in``, iteration, ``len`` and ``.keys()/.items()``; an unknown name raises a
    ``KeyError`` that lists the closest cached names.

    Example:
        >>> cache = ActivationCache({"conv1": torch.zeros(1, 4, 8, 8)})
        >>> "conv1" in cache, cache["conv1"].shape[1]
        (True, 4)
    """

    def __init__(self, store: dict[str, object]):
        self._store = store

    def __getitem__(self, name: str):
        try:
            return self._store[name]
        except KeyError:
            raise _unknown("cached activation", name, list(self._store)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        shapes = {k: tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__ for k, v in self.items()}
        return f"ActivationCache({shapes})"


class _StopForward(Exception):
    """Raised inside a hook to end the forward pass once every requested activation is cached."""


class HookedModel:
    """Wrap any ``nn.Module`` so its named activations can be cached, edited and ablated.

    The model itself is not modified: hooks exist only inside :meth:`hooks`,
    :meth:`ablate` and :meth:`run_with_cache`.

    Example:
        >>> hm = HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
        >>> hm.hook_names
        ['0', '1']
        >>> with hm.ablate("0", channels=[1]):
        ...     y = hm(torch.rand(1, 3, 8, 8))
        >>> float(y[:, 1].abs().sum().detach())
        0.0
    """

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise TypeError(f"hooked() needs an nn.Module, got {type(model).__name__}")
        self.model = model
        self._modules = {name: m for name, m in model.named_modules() if name}

    # -- names ---------------------------------------------------------------------------------
    @property
    def hook_names(self) -> list[str]:
        """Every hookable (qualified) module name, in registration order."""
        return list(self._modules)

    def module(self, name: str) -> nn.Module:
        """The submodule called ``name``; ``KeyError`` listing the closest names if there is none."""
        try:
            return self._modules[name]
        except KeyError:
            raise _unknown("layer", name, self.hook_names) from None

    def parse(self, ref: str) -> tuple[str, int | None]:
        """Split ``"name:channel"`` into ``(name, channel)`` (channel ``None`` without a colon).

        Example:
            >>> HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3))).parse("0:2")
            ('0', 2)
        """
        if not isinstance(ref, str):
            raise TypeError(f"a layer reference is a string 'name' or 'name:channel', got {ref!r}")
        name, sep, ch = ref.rpartition(":")
        if not sep:
            name, channel = ref, None
        else:
            try:
                channel = int(ch)
            except ValueError:
                raise ValueError(f"bad layer reference {ref!r}: the part after ':' must be a channel "
                                 f"index, as in 'layer:3'") from None
        self.module(name)
        return name, channel

    def check_channel(self, name: str, channel: int, n_channels: int) -> None:
        """Raise ``IndexError`` stating the layer's channel count if ``channel`` is out of range."""
        if not -n_channels <= channel < n_channels:
            raise IndexError(f"layer {name!r} has {n_channels} channels (0..{n_channels - 1}); "
                             f"got channel {channel}")

    # -- running -------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def __repr__(self) -> str:
        return f"HookedModel({type(self.model).__name__}, {len(self._modules)} hook names)"

    @contextmanager
    def hooks(self, fwd_hooks: Iterable[tuple[str, HookFn]]):
        """Register forward hooks ``fn(module, inputs, output) -> new output | None`` for the block.

        Every handle registered here is removed on exit, whatever ends the block; other hooks
        on the model are untouched.

        Example:
            >>> hm = HookedModel(nn.Sequential(nn.Identity()))
            >>> with hm.hooks([("0", lambda m, i, o: o * 2)]):
            ...     hm(torch.ones(1))
            tensor([2.])
        """
        pairs = list(fwd_hooks)
        mods = [self.module(name) for name, _ in pairs]  # validate every name before registering
        handles = []
        try:
            for mod, (_, fn) in zip(mods, pairs):
                handles.append(mod.register_forward_hook(fn))
            yield self
        finally:
            for h in handles:
                h.remove()

    def run_with_cache(self, x: Tensor | tuple, names: Sequence[str] | None = None, *,
                       stop_at_last: bool = False, detach: bool = True):
        """Run the model on ``x`` and return ``(output, ActivationCache)``.

        Args:
            x: the model input (a tensor, or a tuple of positional arguments).
            names: module names to cache; ``None`` caches every module.
            stop_at_last: end the forward pass as soon as every requested module has run (saves the
                rest of the network); the returned output is then ``None``.
            detach: cache detached tensors (default). With ``detach=False`` the cached tensors are
                the modules' real outputs, inside the autograd graph, so gradients can be taken
                with respect to them.

        Each cached tensor is the module's own output; the rest of the network receives a copy,
        so in-place operations downstream (``ReLU(inplace=True)``, ``out += identity``) cannot
        overwrite what was cached. A module called several times keeps its last call's output
        (with ``stop_at_last`` the pass ends after the first time every requested module ran).

        Example:
            >>> hm = HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True)))
            >>> out, cache = hm.run_with_cache(torch.randn(2, 3, 8, 8), names=["0"])
            >>> bool((cache["0"] < 0).any())   # the in-place ReLU did not touch the cached conv output
            True
        """
        wanted = self.hook_names if names is None else list(dict.fromkeys(names))
        for name in wanted:
            self.module(name)
        store: dict[str, object] = {}
        pending = set(wanted)

        def make_hook(name: str) -> HookFn:
            def hook(module, inputs, output):
                store[name] = output.detach() if detach and isinstance(output, Tensor) else output
                pending.discard(name)
                if stop_at_last and not pending:
                    raise _StopForward
                return output.clone() if isinstance(output, Tensor) else None
            return hook

        args = x if isinstance(x, tuple) else (x,)
        out = None
        with self.hooks([(name, make_hook(name)) for name in wanted]):
            try:
                out = self.model(*args)
            except _StopForward:
                pass
        if stop_at_last and pending:
            raise RuntimeError(f"the forward pass ended without running {sorted(pending)}")
        return out, ActivationCache({name: store[name] for name in wanted if name in store})

    @contextmanager
    def ablate(self, name: str, channels: int | Sequence[int], value: float | str | Tensor = 0.0):
        """Replace channels of ``name``'s output for the block.

        Args:
            name: module name.
            channels: a channel index or a list of them.
            value: a number; ``"mean"`` (each channel's mean over batch and space of the current
                input); or a tensor of per-channel values (one per ablated channel), e.g. dataset means.

        Example:
            >>> hm = HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3)))
            >>> with hm.ablate("0", [0, 2], value="mean"):
            ...     y = hm(torch.rand(2, 3, 8, 8))
            >>> float(y[:, 0].std().detach()) < 1e-6
            True
        """
        chans = [channels] if isinstance(channels, int) else list(channels)
        if isinstance(value, str) and value != "mean":
            raise ValueError(f"ablate value must be a number, 'mean' or a tensor, got {value!r}")

        def hook(module, inputs, output):
            if not isinstance(output, Tensor) or output.dim() < 2:
                raise TypeError(f"cannot ablate channels of {name!r}: its output is not a (B, C, ...) tensor")
            for c in chans:
                self.check_channel(name, c, output.shape[1])
            out = output.clone()
            sel = out[:, chans]  # (B, k, ...)
            if isinstance(value, str):
                dims = [0] + list(range(2, sel.dim()))
                fill = sel.mean(dim=dims, keepdim=True).detach().expand_as(sel)
            elif isinstance(value, Tensor):
                fill = value.to(sel).reshape(1, -1, *[1] * (sel.dim() - 2)).expand_as(sel)
            else:
                fill = torch.full_like(sel, float(value))
            out[:, chans] = fill
            return out

        with self.hooks([(name, hook)]):
            yield self


def hooked(model: nn.Module | HookedModel) -> HookedModel:
    """Wrap ``model`` (any ``nn.Module``) as a :class:`HookedModel`; a ``HookedModel`` is returned as is.

    Example:
        >>> hm = hooked(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()))
        >>> _, cache = hm.run_with_cache(torch.rand(1, 3, 16, 16))
        >>> list(cache.keys())
        ['0', '1']
    """
    return model if isinstance(model, HookedModel) else HookedModel(model)
