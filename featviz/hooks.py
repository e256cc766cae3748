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

from featviz.core import (
    Ref,
    StopForward,
    channel_list,
    check_materialized,
    input_channels,
    parse_ref,
    split_call,
)
from featviz.errors import BadType, BadValue, LayerNotRun, UnknownName

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


def _unknown(kind: str, name: str, names: Sequence[str]) -> UnknownName:
    close = closest_names(name, names)
    hint = f"closest: {close}" if close else f"{len(names)} names, e.g. {list(names[:8])}"
    return UnknownName(f"unknown {kind} {name!r}; {hint}")


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
            return self._store[name[:-2] if isinstance(name, str) and name.endswith("#1") else name]
        except KeyError:
            raise _unknown("cached activation", name, list(self._store)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        shapes = {k: tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__ for k, v in self.items()}
        return f"ActivationCache({shapes})"


class HookedModel:
    """Wrap any ``nn.Module`` so its named activations can be cached, edited and ablated.

    The model itself is not modified: hooks exist only inside :meth:`hooks`,
    :meth:`ablate` and :meth:`run_with_cache`. Names are looked up when used, so a submodule
    replaced after wrapping is the one hooked. A module that runs several times per forward pass
    (torchvision's Bottleneck calls one ``relu`` three times) has one activation per call:
    ``"name"`` (= ``"name#1"``) is the first call, ``"name#2"`` the second, and so on; hooks and
    ablations on a plain name act on every call, on ``"name#k"`` on the k-th only.

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
            raise BadType(f"hooked() needs an nn.Module, got {type(model).__name__}")
        self.model = model
        self._written: set[str] = set()  # modules whose cached output something later wrote in place

    # -- names ---------------------------------------------------------------------------------
    @property
    def hook_names(self) -> list[str]:
        """Every hookable (qualified) module name, in registration order (a module's repeated calls,
        ``"name#2"``, ..., are listed by :meth:`call_shapes`)."""
        return [name for name, _ in self.model.named_modules() if name]

    def call_shapes(self, x: Tensor | None = None, *, size: int | None = None) -> dict[str, tuple[int, ...]]:
        """Every activation of one forward pass -> its output shape, in the order the calls start.

        ``hook_names`` lists modules; a module that runs several times per forward pass (Res2Net's
        ``relu`` runs 9 times at three widths) has one activation per call: ``"name"``, ``"name#2"``, ...
        This runs ``x`` (default: ``featviz.core.probe_input`` of ``size``) once, in eval mode without
        gradients (modes and buffers restored), to find them. Modules that did not run, or gave a
        non-tensor, come last with shape ``()``.

        Example:
            >>> relu = nn.ReLU()
            >>> hm = HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3), relu, nn.Conv2d(4, 2, 1), relu))
            >>> hm.hook_names, hm.call_shapes(size=8)
            (['0', '1', '2'], {'0': (1, 4, 6, 6), '1': (1, 4, 6, 6), '2': (1, 2, 6, 6), '1#2': (1, 2, 6, 6)})
        """
        from featviz.core import evaluating, probe_input

        x = probe_input(self.model, size) if x is None else x
        order: list[str] = []
        counts: dict[str, int] = {}

        def pre(name: str):
            def hook(module, inputs):
                k = counts[name] = counts.get(name, 0) + 1
                order.append(name if k == 1 else f"{name}#{k}")
            return hook

        def restart(module, inputs):  # run_with_cache may run twice (in-place writes): count one pass
            order.clear()
            counts.clear()

        handles = [self.model.register_forward_pre_hook(restart)]
        try:
            for name in self.hook_names:
                handles.append(self.module(name).register_forward_pre_hook(pre(name)))
            with torch.no_grad(), evaluating(self.model):
                _, cache = self.run_with_cache(x)
        finally:
            for h in handles:
                h.remove()
        out = {k: tuple(cache[k].shape) if isinstance(cache.get(k), Tensor) else () for k in order}
        out.update({n: () for n in self.hook_names if n not in out})
        return out

    def module(self, name: str) -> nn.Module:
        """The submodule called ``name`` (``"name#k"`` names its k-th call); ``KeyError`` listing the
        closest names if there is none."""
        base, _ = split_call(name)
        try:
            mod = self.model.get_submodule(base) if base else None
        except AttributeError:
            mod = None
        if mod is None or mod is self.model:
            raise _unknown("layer", name, self.hook_names) from None
        return mod

    def ref(self, ref: str | Ref) -> Ref:
        """Parse a reference (``featviz.core.parse_ref``) and check that its module exists.

        Example:
            >>> HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3))).ref("0:-1")
            Ref(name='0', call=1, channels=(-1,))
        """
        r = parse_ref(ref)
        self.module(r.name)
        return r

    def parse(self, ref: str) -> tuple[str, int | None]:
        """Split ``"name:channel"`` into ``(name, channel)`` (channel ``None`` without a colon).

        ``name`` keeps a call suffix (``"relu#2"``); a reference with several channels is refused.
        (:meth:`unit` and :meth:`layer` are the strict forms: exactly one channel, no channel.)

        Example:
            >>> HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3))).parse("0:2")
            ('0', 2)
        """
        r = self.ref(ref)
        if r.channels is not None and len(r.channels) != 1:
            raise BadValue(f"bad layer reference {ref!r}: give one channel, as in 'layer:3'")
        return r.key, (r.channels[0] if r.channels else None)

    def unit(self, ref: str | Ref, n_channels: int | None = None) -> tuple[str, int]:
        """``"layer:c"`` -> ``(name, c)``: a reference to exactly one channel, checked against the layer.

        ``c`` comes back non-negative (``"layer:-1"`` is the last channel). The layer's width is
        ``n_channels`` when given, else found by one probe forward pass up to the layer
        (``featviz.core.probe_input``; eval mode, no gradients). No channel or several is a ``ValueError``
        ("needs one channel, e.g. 'layer:3'"); a channel out of range an ``IndexError`` stating the width.

        Example:
            >>> hm = HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3)))
            >>> hm.unit("0:-1"), hm.unit("0:2", n_channels=4)
            (('0', 3), ('0', 2))
        """
        r = self.ref(ref)
        if r.channels is None or len(r.channels) != 1:
            what = "no channel" if r.channels is None else f"{len(r.channels)} channels"
            raise BadValue(f"{str(ref)!r} names {what}, but this needs one channel, e.g. '{r.key}:3'")
        n = self.n_channels(r.key) if n_channels is None else n_channels
        (c,) = channel_list(r.channels, n, r.key)
        return r.key, c

    def layer(self, ref: str | Ref) -> str:
        """``"layer"`` -> ``"layer"`` (a call suffix ``"#k"`` kept): a reference to a whole layer; one that
        names channels is a ``ValueError`` saying to drop ``':c'``.

        Example:
            >>> HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3))).layer("0")
            '0'
        """
        r = self.ref(ref)
        if r.channels is not None:
            raise BadValue(f"{str(ref)!r} names a channel, but this needs a whole layer: drop the ':c' and "
                           f"write {r.key!r}")
        return r.key

    def n_channels(self, name: str, x: Tensor | None = None) -> int:
        """The number of channels of activation ``name`` (``"layer"`` or ``"layer#k"``), from one forward
        pass of ``x`` (default: ``featviz.core.probe_input``) that stops at the layer; the channel axis is
        where ``featviz.core.module_layout`` says it is (dim 1 of maps, the last dim channels-last).

        Example:
            >>> HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())).n_channels("0")
            4
        """
        from featviz.core import channel_dim, evaluating, module_layout, probe_input

        key = self.layer(name)
        x = probe_input(self.model) if x is None else x
        with torch.no_grad(), evaluating(self.model):
            _, cache = self.run_with_cache(x, names=[key], stop_at_last=True)
        t = cache[key]
        return int(t.shape[channel_dim(module_layout(self.model, key, t), key)])

    def check_channel(self, name: str, channel: int, n_channels: int) -> None:
        """Raise ``IndexError`` stating the layer's channel count if ``channel`` is out of range."""
        channel_list([channel], n_channels, name)

    # -- running -------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def __repr__(self) -> str:
        return f"HookedModel({type(self.model).__name__}, {len(self.hook_names)} hook names)"

    @contextmanager
    def hooks(self, fwd_hooks: Iterable[tuple[str, HookFn]]):
        """Register forward hooks ``fn(module, inputs, output) -> new output | None`` for the block.

        A name ``"name#k"`` hooks only the k-th call of that module in each forward pass. Every
        handle registered here is removed on exit, whatever ends the block; other hooks on the
        model are untouched.

        Example:
            >>> hm = HookedModel(nn.Sequential(nn.Identity()))
            >>> with hm.hooks([("0", lambda m, i, o: o * 2)]):
            ...     hm(torch.ones(1))
            tensor([2.])
        """
        pairs = list(fwd_hooks)
        mods = [self.module(name) for name, _ in pairs]  # validate every name before registering
        check_materialized(self.model)
        handles = []
        try:
            counts: dict[int, int] = {}
            if any("#" in name for name, _ in pairs):  # count calls per module, reset by each forward
                handles.append(self.model.register_forward_pre_hook(lambda m, i: counts.clear()))
                for mod in {id(m): m for m in mods}.values():
                    handles.append(mod.register_forward_pre_hook(
                        lambda m, i: counts.__setitem__(id(m), counts.get(id(m), 0) + 1)))
            for mod, (name, fn) in zip(mods, pairs):
                call = split_call(name)[1] if "#" in name else None
                handles.append(mod.register_forward_hook(fn if call is None else _on_call(fn, call, counts)))
            yield self
        finally:
            for h in handles:
                h.remove()

    def run_with_cache(self, x: Tensor | tuple, names: Sequence[str] | None = None, *,
                       stop_at_last: bool = False, detach: bool = True):
        """Run the model on ``x`` and return ``(output, ActivationCache)``.

        Args:
            x: the model input (a tensor, or a tuple of positional arguments).
            names: activations to cache: module names (``"name"`` is a module's first call,
                ``"name#k"`` its k-th); ``None`` caches every call of every module (extra calls
                under ``"name#2"``, ...).
            stop_at_last: end the forward pass as soon as every requested activation exists (saves
                the rest of the network); the returned output is then ``None``.
            detach: cache detached tensors (default). With ``detach=False`` the cached tensors are
                the modules' real outputs, inside the autograd graph, so gradients can be taken
                with respect to them.

        In-place operations downstream (``ReLU(inplace=True)``, ``out += identity``) cannot
        overwrite what was cached: a cached output that something later wrote to (its version
        counter moved) is recomputed once with a copy handed to the rest of the network, and that
        module gets the copy from then on. Outputs nobody writes to are never copied.

        Example:
            >>> hm = HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True)))
            >>> out, cache = hm.run_with_cache(torch.randn(2, 3, 8, 8), names=["0"])
            >>> bool((cache["0"] < 0).any())   # the in-place ReLU did not touch the cached conv output
            True
        """
        every = names is None
        wanted = [] if every else [parse_ref(n).key if isinstance(n, str) and "#1" in n else n
                                   for n in dict.fromkeys(names)]
        calls: dict[str, dict[int, str]] = {}
        for key in (self.hook_names if every else wanted):
            self.module(key)
            base, call = split_call(key)
            calls.setdefault(base, {})[call] = key
        if isinstance(x, Tensor) and x.dim() == 3 and x.shape[0] == input_channels(self.model) \
                and any(isinstance(getattr(m, "weight", None), Tensor) and m.weight.dim() == 4
                        for m in self.model.modules()):
            raise BadValue(f"x has shape {tuple(x.shape)}: one image without a batch dimension (convs "
                           f"accept it and every activation would lack its batch axis); pass x[None], shape "
                           f"(1, {', '.join(map(str, x.shape))})")
        args = x if isinstance(x, tuple) else (x,)
        out, store = self._cached_pass(args, calls, every, set(wanted), stop_at_last, detach)
        written = {split_call(k)[0] for k, (t, v) in store.items()
                   if isinstance(t, Tensor) and t._version != v}
        if written:  # once per module: run again, handing the network a copy of what it writes to
            self._written |= written
            out, store = self._cached_pass(args, calls, every, set(wanted), stop_at_last, detach)
        keys = list(store) if every else [k for k in wanted if k in store]
        return out, ActivationCache({k: store[k][0] for k in keys})

    def stream(self, images: Tensor | Iterable[Tensor], names: Sequence[str] | None, *, batch_size: int = 32,
               preprocess: Callable | bool | None = None, progress: bool = True, stop_at_last: bool = True,
               desc: str | None = None) -> Iterator[tuple[Tensor, ActivationCache]]:
        """Yield ``(batch, cache)`` for consecutive batches of ``images``: the one loop of featviz that runs
        many images through the model.

        Args:
            images: a (N, C, H, W) tensor (float in [0, 1] or uint8; one (C, H, W) image is a batch of one;
                an ``fv.data.Images`` gives its tensor), cut into batches of ``batch_size``; or an iterable
                of such batches (e.g. a generator reading files), taken as they come.
            names: the activations to cache (as :meth:`run_with_cache`; ``None``: every call of every module).
            batch_size: images per forward pass (for a tensor).
            preprocess: the model's preprocessing by default (``featviz.core.preprocess_fn``).
            progress: a progress bar over the images.
            stop_at_last: end each forward pass once every wanted activation exists.
            desc: the progress bar's label.

        Each batch is checked and converted by ``featviz.core.as_images`` (uint8 -> [0, 1]; NaN refused),
        moved to the model's device and dtype, and run without gradients in eval mode
        (``featviz.core.evaluating``: modes and BatchNorm buffers restored after every batch, so nothing
        leaks into the caller's loop body, even if it stops early). ``batch`` is the converted images
        (before preprocessing); ``cache`` the batch's detached activations, on the model's device.

        Example:
            >>> hm = HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
            >>> [c["0"].shape[0] for _, c in hm.stream(torch.rand(5, 3, 8, 8), ["0"], batch_size=2,
            ...                                         progress=False)]
            [2, 2, 1]
        """
        from tqdm.auto import tqdm

        from featviz.core import as_images, device_of, dtype_of, evaluating, preprocess_fn

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise BadValue(f"batch_size must be a positive int, got {batch_size!r}")
        if isinstance(names, str):
            raise BadType(f"names is a list of activation names, got the string {names!r}: write "
                          f"names=[{names!r}]")
        if isinstance(images, tuple) and images and isinstance(images[0], Tensor):  # fv.data.Images
            images = images[0]
        if isinstance(images, Tensor):
            whole = images[None] if images.dim() == 3 else images
            as_images(whole[:1], channels=None, empty=True, unit=False)  # shape and dtype, before any work
            if len(whole) == 0:
                raise BadValue(f"images is empty (shape {tuple(whole.shape)}): give at least one image")
            batches: Iterable[Tensor] = (whole[k:k + batch_size] for k in range(0, len(whole), batch_size))
            total: int | None = len(whole)
        elif isinstance(images, Iterable):
            batches, total = images, None
        else:
            raise BadType(f"images must be a (N, C, H, W) tensor or an iterable of batches, got "
                          f"{type(images).__name__}")
        prep = preprocess_fn(self.model, preprocess)
        device, dtype = device_of(self.model), dtype_of(self.model)
        label = desc or ("activations " + ", ".join(names or ["(all)"]))[:60]
        with tqdm(total=total, desc=label, unit="image", disable=not progress) as bar:
            for k, raw in enumerate(batches):
                x = as_images(raw, "images" if total else f"batch {k} of images", channels=None, unit=False)
                x = x.to(device, dtype)
                with torch.no_grad(), evaluating(self.model):
                    _, cache = self.run_with_cache(prep(x), names=names,
                                                   stop_at_last=stop_at_last and names is not None)
                bar.update(len(x))
                yield x, cache

    def _cached_pass(self, args: tuple, calls: dict[str, dict[int, str]], every: bool, pending: set[str],
                     stop_at_last: bool, detach: bool) -> tuple[object, dict[str, tuple[object, int]]]:
        store: dict[str, tuple[object, int]] = {}
        counts: dict[str, int] = {}

        def make_hook(name: str, wanted_calls: dict[int, str]) -> HookFn:
            copy = name in self._written

            def hook(module, inputs, output):
                k = counts[name] = counts.get(name, 0) + 1
                key = wanted_calls.get(k) or (f"{name}#{k}" if every else None)
                if key is None:
                    return None
                is_t = isinstance(output, Tensor)
                kept = output.detach() if detach and is_t else output
                store[key] = (kept, kept._version if is_t else 0)
                pending.discard(key)
                if stop_at_last and not pending:
                    raise StopForward
                return output.clone() if copy and is_t else None
            return hook

        out = None
        with self.hooks([(name, make_hook(name, c)) for name, c in calls.items()]):
            try:
                out = self.model(*args)
            except StopForward:
                pass
        if stop_at_last and pending:
            raise LayerNotRun(f"the forward pass ended without running {sorted(pending)}: a module that is "
                              f"never called itself (a ModuleList / ModuleDict whose children are called one "
                              f"by one, or a layer the forward skips); pick a layer that runs (see "
                              f"hm.call_shapes())")
        return out, store

    @contextmanager
    def ablate(self, name: str, channels: int | Sequence[int], value: float | str | Tensor = 0.0):
        """Replace channels of ``name``'s output for the block (every call; ``"name#k"``: the k-th).

        Args:
            name: module name.
            channels: a channel index or a list of them (negative ones count from the end).
            value: a number; ``"mean"`` (each channel's mean over batch and space of the current
                input); or a tensor of per-channel values (one per ablated channel), e.g. dataset means.

        If the model runs inside the block but ``name`` never does (it was replaced or is not part of
        the forward pass), leaving the block raises a ``RuntimeError`` instead of silently doing nothing.

        Example:
            >>> hm = HookedModel(nn.Sequential(nn.Conv2d(3, 4, 3)))
            >>> with hm.ablate("0", [0, 2], value="mean"):
            ...     y = hm(torch.rand(2, 3, 8, 8))
            >>> float(y[:, 0].std().detach()) < 1e-6
            True
        """
        chans = [channels] if isinstance(channels, int) else list(channels)
        if isinstance(value, str) and value != "mean":
            raise BadValue(f"ablate value must be a number, 'mean' or a tensor, got {value!r}")
        ran = {"model": 0, "layer": 0}

        def hook(module, inputs, output):
            ran["layer"] += 1
            if not isinstance(output, Tensor) or output.dim() < 2:
                raise BadType(f"cannot ablate channels of {name!r}: its output is not a (B, C, ...) tensor")
            idx = channel_list(chans, output.shape[1], name)
            out = output.clone()
            sel = out[:, idx]  # (B, k, ...)
            if isinstance(value, str):
                dims = [0] + list(range(2, sel.dim()))
                fill = sel.mean(dim=dims, keepdim=True).detach().expand_as(sel)
            elif isinstance(value, Tensor):
                fill = value.to(sel).reshape(1, -1, *[1] * (sel.dim() - 2)).expand_as(sel)
            else:
                fill = torch.full_like(sel, float(value))
            out[:, idx] = fill
            return out

        handle = self.model.register_forward_hook(lambda m, i, o: ran.__setitem__("model", ran["model"] + 1))
        try:
            with self.hooks([(name, hook)]):
                yield self
        finally:
            handle.remove()
        if ran["model"] and not ran["layer"]:
            raise LayerNotRun(f"ablate({name!r}): the model ran {ran['model']} time(s) in the block but "
                               f"{name!r} never did, so nothing was ablated (was it replaced, or is it not "
                               f"part of the forward pass?)")


def _on_call(fn: HookFn, call: int, counts: dict[int, int]) -> HookFn:
    """``fn`` run only on the ``call``-th call of its module within one forward pass."""
    def hook(module, inputs, output):
        return fn(module, inputs, output) if counts.get(id(module), 0) == call else None
    return hook


def hooked(model: nn.Module | HookedModel) -> HookedModel:
    """Wrap ``model`` (any ``nn.Module``) as a :class:`HookedModel`; a ``HookedModel`` is returned as is.

    Args:
        model: the network to look inside. It is not copied and not changed: hooks are put on only
            inside ``run_with_cache`` / ``hooks`` / ``ablate`` and removed when they return.

    Returns:
        The wrapper: ``hook_names()``, ``run_with_cache(x, names=...)``, ``hooks(...)``, ``ablate(...)``.

    Example:
        >>> hm = hooked(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()))
        >>> _, cache = hm.run_with_cache(torch.rand(1, 3, 16, 16))
        >>> list(cache.keys())
        ['0', '1']
    """
    return model if isinstance(model, HookedModel) else HookedModel(model)


def layer_shapes(model: nn.Module, names: Sequence[str] | None = None,
                 size: int | None = None) -> dict[str, tuple[int, ...]]:
    """Output shape of each layer in ``names`` (default: every hook name) for one probe image, in the
    order the layers first run.

    The image (``featviz.core.probe_input``) has ``size`` pixels (default ``model.input_size``, else 224)
    and goes through ``model.preprocess`` when the model has one. The model runs in eval mode (restored,
    ``featviz.core.evaluating``) without gradients. A layer that did not run or gave a non-tensor gets ``()``
    (and comes last). ``featviz layers MODEL`` prints them.

    Example:
        >>> layer_shapes(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3)), size=32)
        {'0': (1, 8, 30, 30)}
    """
    from featviz.core import evaluating, probe_input

    hm = hooked(model)
    x = probe_input(model, size)  # (1, C, S, S): S = size or model.input_size or 224, preprocessed
    names = hm.hook_names if names is None else list(names)
    order: list[str] = []

    def seen(name: str):
        return lambda module, inputs, output: None if name in order else order.append(name)

    with torch.no_grad(), evaluating(model), hm.hooks([(n, seen(n)) for n in dict.fromkeys(names)]):
        _, cache = hm.run_with_cache(x, names=names, stop_at_last=len(names) < len(hm.hook_names))
    ran = order + [n for n in names if n not in order]
    return {n: tuple(cache[n].shape) if isinstance(cache.get(n), torch.Tensor) else () for n in ran}


__all__ += ["layer_shapes"]
