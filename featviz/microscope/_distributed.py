"""Ray distribution of microscope channels: jobs (layer, channel, early, parts) -> results the driver commits.

Each of ``workers`` Ray actors holds one copy of the model (shipped once through the object store) and
computes channels as they come; results travel back as bytes and the driver writes them, so a cluster
needs no shared disk and the files are the same as an in-process build's.

Example:
    Skipped in the doctests: it starts Ray and its worker processes, tens of seconds on a small CPU
    (``tests/microscope/test_microscope_ray.py`` runs it).

    >>> run_ray(model, settings, todo, commit, bar, workers=2)   # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from featviz.microscope._channel import ChannelWorker, MicroscopeSettings

__all__ = ["run_ray"]


def _ray():
    try:
        import ray
    except ImportError:
        raise ImportError("--workers N > 1 needs Ray: pip install 'featviz[distributed]' "
                          "(or build with one worker)") from None
    return ray


def run_ray(model: nn.Module, settings: MicroscopeSettings, todo: Sequence[tuple],
            commit: Callable[[str, int, dict, dict], None], bar, *, workers: int,
            address: str | None = None, evidence=None) -> None:
    """Compute ``todo`` on ``workers`` Ray actors and ``commit`` each result as it arrives.

    ``address=None`` starts a local Ray with ``workers`` CPUs (shut down afterwards); otherwise joins
    the cluster at ``address`` (e.g. ``"auto"`` or ``"ray://head:10001"``). A Ray already initialised
    by the caller is used as it is. ``evidence`` (``_evidence.EvidenceInputs``) goes to every worker once.

    Example:
        Skipped in the doctests: Ray worker processes (``tests/microscope/test_microscope_ray.py`` runs it).

        >>> jobs = [("conv1", 0, True, ("fv",)), ("conv1", 1, True, ("fv",))]
        >>> run_ray(model, MicroscopeSettings(), jobs, commit, bar, workers=2)  # doctest: +SKIP
    """
    ray = _ray()
    from ray.util import ActorPool

    started = not ray.is_initialized()
    if started:
        kwargs = {"num_cpus": workers} if address is None else {"address": address}
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kwargs)
    try:
        actor = ray.remote(num_cpus=1)(ChannelWorker)
        model_ref = ray.put(model)
        threads = torch.get_num_threads()  # same thread count as here: same floating-point results
        evidence_ref = ray.put(evidence)
        pool = ActorPool([actor.remote(model_ref, settings, threads, evidence_ref) for _ in range(workers)])
        for layer, c, files, facts in pool.map_unordered(lambda a, job: a.run.remote(job), list(todo)):
            commit(layer, c, files, facts)
            bar.update(1)
    finally:
        if started:
            ray.shutdown()
