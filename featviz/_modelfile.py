"""Command-line model references -> nn.Module: a zoo name, a Python file defining ``model``, or a state dict.

Example:
    >>> model = load_model("efficientnet_lite0")
    >>> from pathlib import Path
    >>> _ = Path("my_net.py").write_text("from torch import nn\\nmodel = nn.Sequential(nn.Conv2d(3, 4, 3))")
    >>> model = load_model("my_net.py")
    >>> torch.save(model.state_dict(), "weights.pt")
    >>> load_model("weights.pt", arch="my_net.py")
    Sequential(
      (0): Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1))
    )
"""
from __future__ import annotations

import importlib.util
import inspect
import keyword
import pickle
import sys
from pathlib import Path

import torch
from torch import nn

from featviz._compat import is_refused_pickle, load_weights
from featviz.errors import BadFile, BadValue, MissingFile, ModelFileError, RefusedFile, UnknownName

__all__ = ["load_model", "load_python_file", "STATE_DICT_SUFFIXES"]

STATE_DICT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def _from_zoo(name: str) -> nn.Module:
    import featviz.models as zoo

    if name not in zoo.list_models():
        try:
            zoo.get(name)  # raises KeyError naming the closest zoo models
        except KeyError as e:
            raise UnknownName(f"{e.args[0]}; or give a .py file defining `model`, or a state-dict file "
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


_SAVE_HINT = "save it with torch.save(model.state_dict(), PATH)"


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict (name -> tensor) from ``path`` with ``weights_only=True``, or a typed user error."""
    if path.stat().st_size == 0:
        raise BadFile(f"{path} is empty (0 bytes): the save did not finish or the copy failed; {_SAVE_HINT}")
    try:
        state = load_weights(path)
    except pickle.UnpicklingError as e:
        if is_refused_pickle(e):
            raise RefusedFile(f"{path} holds pickled Python objects that would run code when loaded, so "
                              f"featviz refuses it (torch.load weights_only=True); {_SAVE_HINT}") from None
        raise BadFile(f"cannot read {path} as a PyTorch file (corrupt, or not made by torch.save); "
                      f"{_SAVE_HINT}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise BadFile(f"cannot read {path} as a PyTorch file ({type(e).__name__}: "
                      f"{_load_error_summary(e, 120)}); {_SAVE_HINT}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        what = type(state).__name__ if not isinstance(state, dict) else "dict with non-tensor values"
        raise BadFile(f"{path} holds a {what}, not a state dict (parameter name -> tensor); {_SAVE_HINT}")
    return state


def _module_name(path: Path) -> str:
    """The name ``path`` is registered under in ``sys.modules``: its stem, as ``import net`` would give it,
    unless that name is taken by another module; then a private name unique to the path."""
    stem = path.stem
    taken = sys.modules.get(stem)
    if stem.isidentifier() and not keyword.iskeyword(stem):
        if taken is None or Path(getattr(taken, "__file__", "") or "").resolve() == path:
            return stem
    return f"_featviz_user_{abs(hash(str(path))):x}_{''.join(c if c.isalnum() else '_' for c in stem)}"


def load_python_file(path: str | Path) -> object:
    """Import the Python file ``path`` the way ``python path`` sees its surroundings, and return the module.

    The file's folder goes first on ``sys.path`` (and stays there, as for a script), so ``import mylib``
    finds a ``mylib.py`` beside it; the module is registered in ``sys.modules`` (under its stem unless
    that name is taken), so ``@dataclass`` with ``from __future__ import annotations``, pickling and
    ``typing.get_type_hints`` work. Unlike a script, ``__name__`` is not ``"__main__"``: an
    ``if __name__ == "__main__":`` block does not run. An error inside the file raises
    :class:`~featviz.errors.ModelFileError` naming the file and the error.

    Example:
        >>> from pathlib import Path
        >>> _ = Path("mylib.py").write_text("from torch import nn\\nclass MyNet(nn.Sequential): pass\\n")
        >>> _ = Path("my_net.py").write_text("import mylib\\nmodel = mylib.MyNet()\\n")
        >>> module = load_python_file("my_net.py")    # finds mylib.py beside it
        >>> module.model
        MyNet()
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise MissingFile(f"no such Python file: {path}; check the path")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BadValue(f"cannot import {path} as a Python file; give a .py file")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
        raise ModelFileError(f"{path} raised {type(e).__name__} while being imported: {e}; fix the file "
                             f"(`python {path.name}` in its folder shows the traceback)") from e
    return module


def _from_python_file(path: Path) -> nn.Module:
    module = load_python_file(path)
    found = getattr(module, "model", None)
    if found is None:
        raise BadValue(f"{path} defines no `model`: add `model = MyNet()` (an nn.Module) or "
                       "`def model(): return MyNet()`")
    if isinstance(found, nn.Module):
        return found
    if not callable(found):
        raise BadValue(f"`model` in {path} is a {type(found).__name__}, expected an nn.Module or a "
                       "zero-argument function returning one")
    try:
        model = found()
    except Exception as e:
        raise ModelFileError(f"`model()` in {path} raised {type(e).__name__}: {e}; it must build the "
                             "network with no arguments") from e
    if not isinstance(model, nn.Module):
        raise BadValue(f"`model` in {path} gave a {type(model).__name__}, expected an nn.Module")
    return model


def _build(ref: str) -> nn.Module:
    path = Path(ref)
    if path.suffix == ".py":
        if not path.is_file():
            raise MissingFile(f"no such Python file: {path}; check the path")
        return _from_python_file(path)
    import featviz.models as zoo

    if path.exists() and ref not in zoo.list_models():
        raise BadValue(f"{path} is neither a .py model file nor a state dict "
                       f"({', '.join(STATE_DICT_SUFFIXES)}); give a zoo name (`featviz models`), a .py file "
                       "defining `model`, or a state dict with --arch")
    return _from_zoo(ref)


def load_model(ref: str, arch: str | None = None) -> nn.Module:
    """Build the model a command line names, in eval mode.

    ``ref`` is a zoo name, a ``.py`` file whose ``model`` is an ``nn.Module`` (or a zero-argument
    function returning one), or a state-dict file (``.pt``, ``.pth``, ``.bin``, ``.ckpt``) loaded with
    ``weights_only=True`` into ``arch`` (a zoo name or a ``.py`` file as above). A ``.py`` file is
    imported as :func:`load_python_file` describes (its folder on ``sys.path``). Every mistake
    (unknown name, missing, empty, corrupt or code-running file, weights that do not fit) raises a
    :class:`~featviz.errors.UserError` subclass that also is the built-in error older callers caught.

    Example:
        >>> torch.save(fv.models.resnet18().state_dict(), "weights.pt")   # random weights
        >>> load_model("weights.pt", arch="resnet18").training
        False
    """
    path = Path(ref)
    if path.suffix in STATE_DICT_SUFFIXES:
        if not path.is_file():
            raise MissingFile(f"no such state-dict file: {path}; check the path")
        if arch is None:
            raise BadValue(f"{path} is a state dict: say which architecture it belongs to with --arch "
                           "(a zoo name or a .py file defining `model`)")
        state = _read_state_dict(path)
        if "weights" in _zoo_params(arch):  # the zoo's own loader knows its key mapping (lukemelas, aux keys)
            try:
                return _from_zoo_weights(arch, path)
            except RuntimeError as e:
                raise BadFile(f"{path} does not fit --arch {arch}: {_load_error_summary(e)}") from None
        model = _build(arch)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise BadFile(f"{path} does not fit --arch {arch}: {_load_error_summary(e)}") from None
    elif arch is not None:
        raise BadValue(f"--arch is only for state-dict files ({', '.join(STATE_DICT_SUFFIXES)}); "
                       f"{ref!r} is not one: drop --arch")
    else:
        model = _build(ref)
    return model.eval()
