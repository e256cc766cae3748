"""The microscope: a static HTML site of a model's units, (model, layers, photos) -> a folder of pages, built
resumably; several models -> one site per model joined by their matched units.

A build is three steps: ``plan`` (check everything, decide the layers, channels, partners and what is cached;
nothing rendered) -> ``compute`` (render and evaluate what is missing into atomic units under ``data/``,
resumable, in-process or on Ray workers) -> ``publish`` (the pages). ``build_microscope`` runs the three;
``build_microscopes`` does it for several models and writes the pages that join them. Pages:
``index.html``, ``layers/<layer>.html``, ``channels/<layer>/<c>.html`` (feature visualization, diversity,
dataset examples, tuning curve, connections, lines of evidence). Links are relative: the site works from
``file://``. The folder must be new, empty or a featviz site; only what the builder wrote is ever removed.

Modules (all private; this package's names are the interface): ``_plan`` (``Plan``, ``plan``), ``_estimate``
(``estimate``: calibrated CPU seconds of a plan), ``_build``
(``compute``, ``publish``, ``build_microscope``), ``_store`` (content keys, atomic units, marker, lock),
``_channel`` (settings, one channel's parts), ``_examples`` (photos, dataset examples), ``_evidence``
(evidence part), ``_links`` (connections), ``_extras`` (groups, atlas, explain pages), ``_distributed``
(Ray), ``_pages`` (HTML), ``_universality`` (several models).

Example:
    >>> from featviz.microscope import MicroscopeSettings, build_microscope
    >>> settings = MicroscopeSettings(size=32, steps=4, diversity=0, examples=2, evidence=False)
    >>> build_microscope(fv.models.toy.edges_and_curves(), ["relu1", "relu2"], "site", settings=settings,
    ...                  channels=2, progress=False)
    PosixPath('site/index.html')
"""
from featviz.microscope._build import Execution, Results, build_microscope, compute, publish, save_png
from featviz.microscope._channel import EXTRAS, MicroscopeSettings
from featviz.microscope._estimate import Calibration, Estimate, estimate
from featviz.microscope._plan import CACHE, EARLY_STRIDE, Plan, check_layers, default_layers, plan
from featviz.microscope._store import SiteError, read_marker, slug
from featviz.microscope._universality import build_microscopes, pair_layers

__all__ = ["build_microscope", "build_microscopes", "plan", "compute", "publish", "Plan", "Results",
           "Execution", "Estimate", "Calibration", "estimate", "MicroscopeSettings",
           "EXTRAS", "check_layers", "default_layers", "pair_layers",
           "save_png", "slug", "SiteError", "read_marker", "CACHE", "EARLY_STRIDE"]
