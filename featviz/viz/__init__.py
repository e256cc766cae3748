"""Figures for looking at features: tensors and circuits results -> matplotlib Figures (PNG with ``path=``).

``weight_heatmap`` / ``plot_weights`` (Zoom In red/blue kernels), ``plot_circuit`` (circuit diagrams with
feature-visualization thumbnails), ``plot_tuning_curve``, ``plot_dataset_examples`` and ``image_grid``.
The static HTML site lives in ``featviz.viz.microscope``.

Example:
    >>> import featviz as fv
    >>> model = fv.models.efficientnet_lite0()
    >>> w = fv.circuits.weights(model, "stem.conv", "blocks.0.depthwise_conv")   # (C_dst, C_src, 3, 3)
    >>> fig = fv.viz.plot_weights(w[:8, :8], path="weights.png")
"""
from featviz.viz.circuit_plot import plot_circuit, thumbnails_for
from featviz.viz.explore import CircuitExplorer, ConvExplorer, explore, explore_conv
from featviz.viz.figures import (
    WEIGHT_CMAP,
    image_grid,
    plot_dataset_examples,
    plot_tuning_curve,
    plot_weights,
    save,
    weight_heatmap,
)

__all__ = ["WEIGHT_CMAP", "CircuitExplorer", "ConvExplorer", "explore", "explore_conv", "image_grid",
           "plot_circuit", "plot_dataset_examples", "plot_tuning_curve",
           "plot_weights", "save", "thumbnails_for", "weight_heatmap"]
