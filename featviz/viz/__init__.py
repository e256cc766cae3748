"""Figures for looking at features: tensors and circuits results -> matplotlib Figures (PNG with ``path=``).

``weight_heatmap`` / ``plot_weights`` (Zoom In red/blue kernels), ``plot_circuit`` (circuit diagrams with
feature-visualization thumbnails, passed in: ``thumbnails_for``), ``plot_tuning_curve``,
``plot_dataset_examples``, ``image_grid``, and the circuits results' figures (``plot_evidence``,
``plot_ablation_test``, ``plot_unit_match``, ``plot_families``) and the optvis results'
(``plot_factorization``, ``plot_atlas``, ``show_rendering``): each result's ``.plot()`` delegates here.
Every figure file is written by ``save`` (atomically), every in-memory PNG made by ``figure_png``
(deterministic SVG: ``figure_svg``).
The static HTML site (the microscope) lives in its own package, ``featviz.microscope``.

Example:
    >>> import featviz as fv
    >>> model = fv.models.efficientnet_lite0()
    >>> w = fv.circuits.weights(model, "stem.conv", "blocks.0.depthwise_conv")   # (C_dst, C_src, 3, 3)
    >>> fig = fv.viz.plot_weights(w[:8, :8], path="weights.png")
"""
from featviz.viz.circuit_plot import plot_circuit, thumbnails_for
from featviz.viz.evidence_plot import plot_ablation_test, plot_evidence
from featviz.viz.explore import CircuitExplorer, ConvExplorer, explore, explore_conv
from featviz.viz.figures import (
    WEIGHT_CMAP,
    figure_png,
    figure_svg,
    image_grid,
    plot_dataset_examples,
    plot_tuning_curve,
    plot_weights,
    save,
    weight_heatmap,
)
from featviz.viz.optvis_plot import plot_atlas, plot_factorization, show_rendering
from featviz.viz.universality_plot import plot_families, plot_unit_match

__all__ = ["WEIGHT_CMAP", "CircuitExplorer", "ConvExplorer", "explore", "explore_conv", "figure_png",
           "figure_svg", "image_grid", "plot_ablation_test", "plot_atlas", "plot_circuit",
           "plot_dataset_examples", "plot_evidence", "plot_factorization", "plot_families",
           "plot_tuning_curve", "plot_unit_match", "plot_weights", "save", "show_rendering",
           "thumbnails_for", "weight_heatmap"]
