"""Regenerate docs/efficientnet_lite0_features.md, its figures, assets/circuit.png and the README's circuit block.

Every number in that page is computed here, with its control; run by ``make docs`` (about 15-25 CPU-minutes
on one thread). Deterministic: seeded renders, seeded randomized copies, one thread.

    python docs/generate/efficientnet_lite0_features.py [--quick]

``--quick`` scans fewer layers (for trying the script out); the published page is made without it.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
import time
from pathlib import Path

import torch

import featviz as fv
from featviz.circuits import (
    CurveCriteria,
    ablation_test,
    attribute,
    benjamini_hochberg,
    control_counts,
    evidence,
    find_edge_detectors,
    receptive_field,
)

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(ROOT / "tests" / "circuits")]
import _scans  # noqa: E402  (cached curve scans, shared with finder_calibration.py)
from curve_verifier import verify  # noqa: E402  (the independent verifier: its own stimuli and code)

RENDER = fv.optvis.RenderSettings(size=128, steps=128)  # evidence's feature visualizations (seed 0)

DOC = ROOT / "docs" / "efficientnet_lite0_features.md"
FIGS = ROOT / "docs" / "figures"
SEEDS = (0, 1, 2)
EDGE_LAYERS = ["stem.relu", "blocks.0", "blocks.1.expand_relu", "blocks.1.depthwise_relu", "blocks.1"]
EDGE_BANK = "blocks.1.depthwise_relu"
CURVE_LAYERS = ["blocks.2.depthwise_relu", "blocks.2", "blocks.3.expand_relu", "blocks.3.depthwise_relu", "blocks.3",
                "blocks.4.expand_relu", "blocks.4.depthwise_relu", "blocks.4", "blocks.5.expand_relu",
                "blocks.5.depthwise_relu", "blocks.5", "blocks.6.expand_relu", "blocks.6.depthwise_relu", "blocks.6"]
OLD_CLAIM = "blocks.4:36"
N_RANDOM = 999  # random channel sets per ablation test: p can reach 0.001, under BH across the candidates
N_VERIFY = 8  # the strongest curve candidates checked by the independent verifier


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fmt(x: float, nd: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{nd}f}"


def rf_table(model) -> list[str]:
    out = ["| layer | stride (px) | field (px) | map at 224 px | centre unit | its centre (row, col) | "
           "offset from image centre |", "|---|---|---|---|---|---|---|"]
    for layer in ["stem.relu", "blocks.0", "blocks.1.depthwise_relu", "blocks.2", "blocks.4", "blocks.5",
                  "blocks.7", "blocks.10", "blocks.14"]:
        rf = receptive_field(model, layer, size=224)
        out.append(f"| `{layer}` | {rf.stride[0]:g} | {rf.size[0]} | {rf.map_size[0]}x{rf.map_size[1]} | "
                   f"{rf.position} | ({rf.center[0]:g}, {rf.center[1]:g}) | {rf.offset[0]:+g} px |")
    return out


def edge_section(model) -> tuple[list[str], list]:
    out = ["| layer | channels | gratings rule alone: trained | randomized (seeds 0, 1, 2) | both tests: trained | "
           "randomized (seeds 0, 1, 2) | ratio |", "|---|---|---|---|---|---|---|"]
    bank, clear, not_more = [], [], []
    for layer in EDGE_LAYERS:
        log(f"edges {layer}")
        g = control_counts(model, layer, find_edge_detectors, SEEDS, step_edges=False)
        b = control_counts(model, layer, find_edge_detectors, SEEDS)
        n_ch = fv.hooked(model).run_with_cache(torch.rand(1, 3, 64, 64), names=[layer],
                                               stop_at_last=True)[1][layer].shape[1]
        out.append(f"| `{layer}` | {n_ch} | {g.trained} | {', '.join(map(str, g.randomized))} | {b.trained} | "
                   f"{', '.join(map(str, b.randomized))} | {fmt(b.ratio, 1)}x |")
        if layer == EDGE_BANK:
            bank = b.found
        if b.trained >= 2 * max(b.randomized) and b.trained > 0:
            clear.append(f"`{layer}` ({b.trained} vs at most {max(b.randomized)})")
        elif b.trained <= max(b.randomized):
            not_more.append(f"`{layer}` ({b.trained} vs up to {max(b.randomized)})")
    out += ["", "Where the trained network has at least twice as many as every randomized copy: "
            + (", ".join(clear) if clear else "nowhere") + ". Where a randomized copy has as many or more: "
            + (", ".join(not_more) if not_more else "nowhere")
            + ". Counting \"edge detectors\" only means something where the count beats the control; in the "
            "stem and the expansion layers random filters, which are oriented too, pass more often than trained "
            "ones (the trained stem responds mostly to colour and mean luminance)."]
    return out, bank


def curve_section(model, quick: bool) -> tuple[list[str], dict, dict, list]:
    layers = CURVE_LAYERS[4:9] if quick else CURVE_LAYERS
    out = ["| layer | channels | stimulus size (px) | shift (px) | radii (px) | curve detectors: trained | "
           "randomized (seeds 0, 1, 2) | saturated (trained) | response scale: trained / randomized |",
           "|---|---|---|---|---|---|---|---|---|"]
    scans, rscans, found = {}, {}, []
    for layer in layers:
        log(f"curves {layer}")
        scan = _scans.scan(layer, None)
        det = scan.detectors()
        shift = scan.shifts[1][0] if scan.shifts else 0
        rnd_scans = [_scans.scan(layer, s) for s in SEEDS]
        rnd = [len(r.detectors()) for r in rnd_scans]
        scans[layer], rscans[layer] = scan, rnd_scans[0]
        found += det
        out.append(f"| `{layer}` | {scan.n_channels} | {scan.size} | {shift:g} | "
                   f"{', '.join(f'{r:g}' for r in scan.radii)} | {len(det)} | {', '.join(map(str, rnd))} | "
                   f"{sum(d.saturated for d in det)} | {scan.scale:.2f} / "
                   f"{', '.join(f'{r.scale:.2f}' for r in rnd_scans)} |")
    return out, scans, rscans, found


def verify_unit(model, d, scan) -> dict:
    """The independent verifier (tests/circuits/curve_verifier.py) on one candidate, at the model's input size,
    with the scan's shift, radii and stroke width but its own stimuli, field centre and pre-clamp read-out."""
    shift = scan.shifts[1][0] if scan.shifts else 2.0
    return verify(model, d.node.rsplit(":", 1)[0], d.channel, 224, shift=shift, radii=scan.radii[1:],
                  width=scan.width)


def detector_table(found, verdicts: dict) -> list[str]:
    out = ["| unit | margin | bulge direction (°) | radius (px) | arc / line (worst position) | "
           "arc / ring-or-disc | direction selectivity | drift (°) | saturated (pre-clamp arc / line) | "
           "independent verifier (worst ratio) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for d in found:
        sat = f"yes ({fmt(d.pre_curve_vs_line)})" if d.saturated else "no"
        v = verdicts.get(d.node)
        ver = "–" if v is None else f"{'confirmed' if v['confirmed'] else 'not confirmed'} ({fmt(v['worst_ratio'])})"
        out.append(f"| `{d.node}` | {fmt(d.margin)} | {d.direction:.0f} | {d.radius:g} | {fmt(d.curve_vs_line)} | "
                   f"{fmt(d.curve_vs_blob)} | {fmt(d.selectivity)} | {d.drift:.0f} | {sat} | {ver} |")
    return out


def built_from_edges(model, node: str, bank: list, images: torch.Tensor):
    """Does the unit depend on the edge-detector bank (found on gratings and step edges, never on the photos)
    more than on random channel sets of the whole layer? Returns (lines without the test sentence, the test,
    the descriptive top-3 line)."""
    chans = sorted(int(e.node.split(":")[1]) for e in bank)
    layer, c = node.rsplit(":", 1)
    pick, held = images[0::2], images[1::2]
    contrib = attribute(model, EDGE_BANK, layer, pick, dst_channels=[int(c)])[0].cpu()
    top = [int(j) for j in contrib.argsort(descending=True)[:3]]
    t_top = ablation_test(model, f"{EDGE_BANK}:" + ",".join(map(str, top)), node, held, n_random=N_RANDOM,
                          descriptive=True, selected_on=len(pick),
                          hypothesis=f"its top 3 inputs in {EDGE_BANK} by attribution")
    t_all = ablation_test(model, f"{EDGE_BANK}:" + ",".join(map(str, chans)), node, images, n_random=N_RANDOM,
                          hypothesis=f"the {len(chans)} edge detectors of {EDGE_BANK}, found on gratings and "
                          "step edges")
    edge_set = set(chans)
    lines = [f"- Its three strongest excitatory inputs in `{EDGE_BANK}` by grad x act on {len(pick)} photos: "
             + ", ".join(f"{j} ({contrib[j]:+.2f}{', an edge detector' if j in edge_set else ''})" for j in top)
             + ".", f"- {t_top.summary()}"]
    return lines, t_all


def update_readme(node: str, caption: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- generated:circuit -->", "<!-- /generated:circuit -->"
    block = (f"{start}\n![A traced circuit of EfficientNet-Lite0](assets/circuit.png)\n\n*{caption}*\n{end}")
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
        readme.write_text(text)
    else:
        log("README has no generated:circuit block; not updated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scan fewer layers (not for publishing)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    FIGS.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    model = _scans.model(None)
    images, names = fv.data.sample_images(size=224)

    rf_lines = rf_table(model)
    edge_lines, bank = edge_section(model)
    curve_lines, scans, rscans, found = curve_section(model, args.quick)
    found = sorted(found, key=lambda d: -d.margin)
    verdicts = {}
    for d in found[:N_VERIFY]:
        log(f"verify {d.node}")
        verdicts[d.node] = verify_unit(model, d, scans[d.node.split(":")[0]])
    confirmed = [d for d in found if verdicts.get(d.node, {}).get("confirmed")]

    log(f"evidence {OLD_CLAIM}")
    old_layer = OLD_CLAIM.split(":")[0]
    old = evidence(model, OLD_CLAIM, scan=scans.get(old_layer), random_scan=rscans.get(old_layer),
                   render=RENDER)
    old.plot(path=FIGS / "evidence_blocks.4-36.png")

    stories = []
    for d in (confirmed or found)[:3]:
        log(f"evidence {d.node}")
        layer = d.node.split(":")[0]
        ev = evidence(model, d.node, scan=scans[layer], random_scan=rscans[layer], render=RENDER,
                      n_random=N_RANDOM)
        slug = d.node.replace(":", "-")
        ev.plot(path=FIGS / f"evidence_{slug}.png")
        stories.append((d, ev, *built_from_edges(model, d.node, bank, images), slug))
    q, _ = benjamini_hochberg([t.p if t.p is not None else float("nan") for *_, t, _ in stories])
    for (*_, t, _), v in zip(stories, q.tolist()):
        t.q = None if v != v else v

    if stories:
        top, top_ev, _, top_test, _ = stories[0]
        log(f"trace {top.node}")
        chain = [EDGE_BANK, "blocks.2", "blocks.4", top.node.split(":")[0]]
        chain = list(dict.fromkeys(chain))
        circuit = fv.circuits.trace(model, top.node, depth=len(chain) - 1, top_k=2, layers=chain, progress=False)
        thumbs = fv.viz.thumbnails_for(model, circuit, size=64, steps=64, seed=0)
        circuit.plot(thumbnails=thumbs, path=str(ROOT / "assets" / "circuit.png"))
        shift = scans[top.node.split(":")[0]].shifts[1][0]
        marked = sorted({e.node for e in bank} & set(circuit.nodes))
        v = verdicts[top.node]
        if top_test.significant and top_test.effect < float(top_test.random_effects.mean()):
            edge_claim = (f"Zeroing the {len(bank)} edge detectors of `{EDGE_BANK}` (found on gratings and step "
                          f"edges) lowers it more than zeroing random {len(bank)}-channel sets of that layer "
                          f"(p = {top_test.p:.2g}, BH q = {top_test.q:.2g}, {N_RANDOM} sets): the edge → curve "
                          "link is supported for this unit.")
        else:
            edge_claim = (f"Zeroing the {len(bank)} edge detectors of `{EDGE_BANK}` changes it by "
                          f"{100 * top_test.effect:.0f} %, against {100 * float(top_test.random_effects.mean()):.0f} "
                          f"% for random {len(bank)}-channel sets of that layer (p = {top_test.p:.2g}): the data do "
                          "not support \"built from edge detectors\" beyond what any channels of that layer "
                          "contribute. What is supported: it is a curve detector by the scan and by an independent "
                          "verifier, and the expanded weights above show which earlier units feed it.")
        sat = (f" It reaches ReLU6's ceiling on its best arcs; before the clamp arcs beat lines "
               f"{top.pre_curve_vs_line:.2f}x." if top.saturated else "")
        caption = (f"`fv.circuits.trace(model, \"{top.node}\", depth={len(chain) - 1}, top_k=2, layers={chain})`: "
                   f"the curve candidate with the widest margin that an independent verifier (its own stimuli and "
                   f"code, `tests/circuits/curve_verifier.py`) also confirms (arcs beat lines "
                   f"{top.curve_vs_line:.2f}x at every position, bulge {top.direction:.0f}°, drift "
                   f"{top.drift:.0f}° over {shift:g} px shifts; verifier: worst arc/other ratio "
                   f"{v['worst_ratio']:.2f}).{sat} Traced back through expanded weights"
                   + (f" to edge detectors {', '.join(marked)}" if marked else "")
                   + f". Red edges excite, blue inhibit. {edge_claim} Every line of evidence: "
                   "[docs/efficientnet_lite0_features.md](docs/efficientnet_lite0_features.md).")
        update_readme(top.node, caption)

    n_scanned = sum(s.n_channels for s in scans.values())
    lines = [
        "# EfficientNet-Lite0: edge detectors, curve candidates, and the controls they survive",
        "",
        "*Generated by `docs/generate/efficientnet_lite0_features.py` (`make docs`); every number below is "
        "computed there. Do not edit by hand.*",
        "",
        "Model: `fv.models.efficientnet_lite0()` (pretrained, from the registry package). Control: "
        "`fv.models.randomized(model, seed)` for seeds 0, 1, 2 — the same architecture with every layer "
        "re-initialised and its BatchNorm statistics re-estimated on the sample photos, so it responds at the "
        "trained network's scale (the curve table reports both scales). Angles follow `featviz.data.stimuli`: degrees "
        "counter-clockwise from +x (right), image y up; an arc's angle is the direction it bulges toward, a "
        "step edge's the direction from dark to bright.",
        "",
        "## 1. Where a unit looks",
        "",
        "Stimuli are placed at the unit's receptive-field centre (`fv.circuits.receptive_field`), not at the "
        "image centre: with TensorFlow \"SAME\" padding the map-centre unit of an even-sized map sits down and "
        "right of the image centre, by half a stride and more.",
        "",
        *rf_lines,
        "",
        "## 2. Edge detectors, against a randomly initialised network",
        "",
        "`fv.circuits.find_edge_detectors(model, layer)`: gratings (single-peaked orientation tuning, "
        "selectivity ≥ 0.2, peak/trough ≥ 3) **and** step edges at the receptive-field centre (one peak over "
        "360°, direction selectivity ≥ 0.5, peak ≥ 20 % of the layer's strongest). The gratings rule alone "
        "also passes many channels of a random network (random filters are oriented too).",
        "",
        *edge_lines,
        "",
        f"Strongest edge detectors of `{EDGE_BANK}` (both tests):",
        "",
        "| unit | grating angle (°) | orientation selectivity | step-edge direction (°) | direction selectivity |",
        "|---|---|---|---|---|",
        *[f"| `{e.node}` | {e.angle:.0f} | {fmt(e.osi)} | {e.edge_direction:.0f} | {fmt(e.edge_selectivity)} |"
          for e in bank[:12]],
        "",
        "## 3. Curve detectors: a scan with controls",
        "",
        "`fv.circuits.curve_scan` / `find_curve_detectors`: arcs (24 bulge directions x 4 radii), straight "
        "lines (12 orientations x 5 offsets), rings and discs, at the receptive-field centre and moved by half "
        "the layer's stride up, down, left and right. A unit qualifies only if at **every** position its best "
        f"arc beats its best line by {CurveCriteria().min_curve_vs_line:g}x and its best ring or disc by "
        f"{CurveCriteria().min_curve_vs_blob:g}x, its arc-direction curve has one peak with selectivity ≥ "
        f"{CurveCriteria().min_selectivity:g}, and its preferred direction moves ≤ 45° across the positions "
        "(thresholds calibrated on planted curve units, decoys and randomized networks: "
        "[finder_calibration.md](finder_calibration.md)). Responses are evoked (minus the response to the "
        "blank background). *Saturated*: its best stimulus reaches ReLU6's ceiling, which caps the ratios; the "
        "ratio before the clamp is given beside. *Response scale*: the mean over channels of each one's largest "
        "evoked response to the battery.",
        "",
        *curve_lines,
        "",
        f"{len(found)} of the {n_scanned} channels scanned pass; the randomized copies give the counts in the "
        "seventh column. Sorted by *margin*: at the worst position, how much more the best arc drives the unit "
        "than the best line, ring or disc, in units of the layer's strongest arc response (ratios alone "
        f"flatter weak units whose line response is near zero). The {min(N_VERIFY, len(found))} strongest are "
        "re-checked by an independent verifier (`tests/circuits/curve_verifier.py`: its own arcs, lines, rings "
        "and discs drawn from distances, its own receptive-field centre from the input gradient's support, "
        "responses read before the clamp; arcs must beat everything else by 1.1x at the centre and 4 shifts, "
        f"direction within 45°): {len([d for d in found[:N_VERIFY] if verdicts[d.node]['confirmed']])} of them "
        "confirmed.",
        "",
        *(detector_table(found, verdicts) if found else ["No channel passes."]),
        "",
        f"## 4. `{OLD_CLAIM}`: the old claim, retracted",
        "",
        f"Earlier versions of these docs, notebook 04 and the README called `{OLD_CLAIM}` a curve detector "
        "built from edge detectors. Measured with the controls, it is not:",
        "",
        *[f"- {s}" for s in old.verdict],
        "",
        f"![Evidence for {OLD_CLAIM}](figures/evidence_blocks.4-36.png)",
        "",
    ]
    if stories:
        lines += ["## 5. The strongest confirmed curve candidates, every line of evidence", "",
                  f"Each ablation compares with {N_RANDOM} random channel sets of the same size drawn from the whole "
                  "layer (p = (k + 1) / (n + 1)); the 95 % intervals are bootstrap intervals over the photos. "
                  "Inputs chosen by attribution are chosen on half the photos and measured on the other half, and "
                  "reported as a description, never against chance. The edge-detector test is corrected for the "
                  f"{len(stories)} units tested (Benjamini–Hochberg q).", ""]
        for d, ev, built, test, slug in stories:
            lines += [f"### `{d.node}`", "", *[f"- {s}" for s in ev.verdict], "",
                      f"Built from the edge detectors of `{EDGE_BANK}`? The bank was found on gratings and step "
                      "edges, so it is fixed before the photos are seen:", "",
                      *built, f"- {test.summary()}", "", f"![Evidence for {d.node}](figures/evidence_{slug}.png)", ""]
    lines += ["## How to reproduce", "", "```bash", "make docs   # or: python docs/generate/efficientnet_lite0_features.py",
              "```", ""]
    DOC.write_text("\n".join(lines))
    log(f"wrote {DOC} in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
