"""Circuits, Zoom In style: how a channel is built from earlier ones (weights, attribution, tracing).

``weights`` / ``expanded_weights`` give (C_dst, C_src, kh, kw) kernels; ``attribute`` gives (n_dst, C_src)
contributions on data; ``trace`` follows the strongest ones into a ``Circuit``; ``tuning_curve``,
``find_edge_detectors``, ``dataset_examples`` and ``ablation_effect`` are the evidence for what a
channel is and that an edge is causal.

Example:
    >>> import featviz as fv
    >>> model = fv.models.efficientnet_lite0()
    >>> c = fv.circuits.trace(model, "blocks.4:7", depth=2, top_k=3, progress=False)
    >>> thumbs = fv.viz.thumbnails_for(model, c, size=32, steps=8)   # tiny renders, to stay quick
    >>> fig = c.plot(thumbnails=thumbs, path="circuit.png")
"""
from featviz.circuits._stats import benjamini_hochberg
from featviz.circuits.ablation import (
    AblationScan,
    AblationTest,
    ablation_effect,
    ablation_scan,
    ablation_test,
)
from featviz.circuits.attribution import (
    DstMeans,
    attribute,
    attribute_captum,
    attribute_grad_x_act,
    attribute_integrated_gradients,
    captum_methods,
)
from featviz.circuits.curves import CurveCriteria, CurveDetector, CurveScan, curve_scan, find_curve_detectors
from featviz.circuits.evidence import Evidence, evidence
from featviz.circuits.examples import DatasetExamples, dataset_examples, input_boxes
from featviz.circuits.receptive_field import ReceptiveField, receptive_field
from featviz.circuits.trace import Circuit, Edge, trace, upstream_layers
from featviz.circuits.tuning import (
    ControlCount,
    EdgeCriteria,
    EdgeDetector,
    EdgeScan,
    TuningCurve,
    control_counts,
    edge_scan,
    find_edge_detectors,
    tuning_curve,
)
from featviz.circuits.universality import (
    Family,
    LayerFamilies,
    UnitLink,
    UnitMatch,
    augment_images,
    families,
    match_units,
    unit_links,
)
from featviz.circuits.weights import expanded_weights, full_weight, weights

__all__ = ["AblationScan", "AblationTest", "Circuit", "ControlCount", "CurveCriteria", "CurveDetector",
           "CurveScan", "DatasetExamples", "DstMeans", "Edge", "EdgeCriteria", "EdgeDetector", "EdgeScan",
           "Evidence", "ReceptiveField", "TuningCurve", "ablation_effect", "ablation_scan", "ablation_test",
           "attribute", "attribute_captum", "attribute_grad_x_act", "attribute_integrated_gradients",
           "benjamini_hochberg", "captum_methods", "control_counts", "curve_scan",
           "dataset_examples", "edge_scan", "evidence", "expanded_weights", "find_curve_detectors",
           "find_edge_detectors", "full_weight", "input_boxes", "receptive_field", "trace", "tuning_curve",
           "upstream_layers", "weights", "Family", "LayerFamilies", "UnitLink", "UnitMatch",
           "augment_images", "families", "match_units", "unit_links"]
