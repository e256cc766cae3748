"""Regenerate docs/universality.md and its figures: what is and is not shared by EfficientNet-Lite0, -Lite1, -Lite2.

Every number in that page is computed here, each beside its randomized-weights control; run by ``make docs``
(about 15-25 CPU-minutes on one thread). Deterministic: seeded augmentations, seeded randomized copies.

    python docs/generate/universality.py [--quick]

``--quick`` uses few images, one seed and one curve layer (for trying the script out); the published page is
made without it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import featviz as fv
from featviz.circuits import augment_images, families, match_units
from featviz.circuits.universality import _label_order

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "universality.md"
FIGS = ROOT / "docs" / "figures"
MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
EDGE_LAYERS = ["stem.relu", "blocks.0", "blocks.1.expand_relu", "blocks.1.depthwise_relu", "blocks.1"]
EDGE_BANK = "blocks.1.depthwise_relu"
# the same place in each network: the last depthwise layer of stage 3 (k5, 28x28 at 224)
CURVE_LAYERS = {"efficientnet_lite0": ["blocks.4.depthwise_relu"], "efficientnet_lite1": ["blocks.6.depthwise_relu"],
                "efficientnet_lite2": ["blocks.6.depthwise_relu"]}
CURVE_SEEDS = (0,)  # the curve scan is the slow part (about 1-2 CPU-minutes per network and copy)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def short(name: str) -> str:
    return name.replace("efficientnet_", "").capitalize()


def counts_cell(trained: int, control: list[int]) -> str:
    return f"{trained} ({', '.join(map(str, control))})"


def edge_tables(fams: dict) -> list[str]:
    out = ["| layer | " + " | ".join(f"{short(m)}: edge detectors (randomized)" for m in MODELS) + " |",
           "|---|" + "---|" * len(MODELS)]
    clear, above, controls = [], [], {}
    for layer in EDGE_LAYERS:
        cells = []
        for m in MODELS:
            f = fams[m][layer]
            n = sum(len(x.channels) for x in f.by_kind("edge"))
            ctl = [sum(v[i] for k, v in f.control.items() if k.startswith("edge")) for i in range(len(f.seeds))]
            cells.append(f"{counts_cell(n, ctl)} of {f.n_channels}")
        out.append(f"| `{layer}` | " + " | ".join(cells) + " |")
        trained = {m: sum(len(x.channels) for x in fams[m][layer].by_kind("edge")) for m in MODELS}
        worst = {m: max(sum(v[i] for k, v in fams[m][layer].control.items() if k.startswith("edge"))
                        for i in range(len(fams[m][layer].seeds))) for m in MODELS}
        if all(trained[m] > 2 * worst[m] for m in MODELS):
            clear.append(f"`{layer}`")
        elif all(trained[m] > worst[m] for m in MODELS):
            above.append(f"`{layer}` ({', '.join(f'{trained[m]} vs {worst[m]}' for m in MODELS)})")
        controls[layer] = [tuple(sum(v[i] for k, v in fams[m][layer].control.items() if k.startswith("edge"))
                                 for i in range(len(fams[m][layer].seeds))) for m in MODELS]
    same = all(len(set(c)) == 1 for c in controls.values())
    out += ["", "Layers where all three trained networks have more than twice the edge detectors of every "
            "randomized copy: " + (", ".join(clear) if clear else "none") + ". More than every randomized copy, "
            "but not twice (trained vs the most of any copy, Lite0, Lite1, Lite2): "
            + (", ".join(above) if above else "none") + ". Elsewhere random filters, which are oriented too, "
            "pass as often or more: counting edge detectors there says nothing about training.", "",
            ("The randomized counts are the same for the three networks: `randomized` draws weights module by "
             "module from its seed, and the three share these first layers' shapes, so one seed gives all three "
             "the same random early layers." if same else
             "The randomized copies of the three networks share their early weights (`randomized` draws weights "
             "module by module from its seed, and the three share these first layers' shapes) but re-estimate "
             "their BatchNorm statistics on the photos at each network's own input size, so that the control "
             "responds at the trained network's scale; their counts therefore differ a little."),
            "", f"By orientation in `{EDGE_BANK}` (grating angle = the edge's gradient orientation, 45° bins; "
            "randomized counts in brackets):", "",
            "| orientation | " + " | ".join(short(m) for m in MODELS) + " |", "|---|" + "---|" * len(MODELS)]
    labels = [k for k in fams[MODELS[0]][EDGE_BANK].counts() if k.startswith("edge")]
    for label in labels:
        cells = [counts_cell(fams[m][EDGE_BANK].counts().get(label, 0),
                             fams[m][EDGE_BANK].control.get(label, [0] * len(fams[m][EDGE_BANK].seeds)))
                 for m in MODELS]
        out.append(f"| {label.split()[1]} | " + " | ".join(cells) + " |")
    return out


def other_families(fams: dict) -> list[str]:
    out = [f"Every rule on `{EDGE_BANK}` (a unit joins the first family whose rule it passes; randomized "
           "counts in brackets):", "", "| family | " + " | ".join(short(m) for m in MODELS) + " |",
           "|---|" + "---|" * len(MODELS)]
    labels = sorted({k for m in MODELS for k in fams[m]["all"].counts()}, key=_label_order)
    for label in labels:
        cells = []
        for m in MODELS:
            f = fams[m]["all"]
            cells.append(counts_cell(f.counts().get(label, 0), f.control.get(label, [0] * len(f.seeds))))
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out


def curve_table(curves: dict) -> list[str]:
    out = ["| model | layer | channels | curve detectors (randomized) | directions (bulge, 45° bins) |",
           "|---|---|---|---|---|"]
    for m in MODELS:
        for layer, f in curves[m].items():
            fam = sorted(f.by_kind("curve"), key=lambda x: _label_order(x.label))
            n = sum(len(x.channels) for x in fam)
            ctl = [sum(v[i] for v in f.control.values()) for i in range(len(f.seeds))]
            dirs = ", ".join(f"{x.label.split()[1]} ({len(x.channels)})" for x in fam) or "–"
            out.append(f"| {short(m)} | `{layer}` | {f.n_channels} | {counts_cell(n, ctl)} | {dirs} |")
    return out


def match_summary(match) -> str:
    live = ~match.dead_a
    above = int(((match.margin > 0.1) & live).sum())
    return (f"`{match.layer_a}` -> {match.name_b} `{match.layer_b}`: mean best r = "
            f"{float(match.best_correlation[live].mean()):.2f}, randomized {float(match.control_best_correlation[live].mean()):.2f}; "
            f"{above} of {int(live.sum())} live units beat their control by > 0.1")


def unit_rows(units: list[tuple[str, str, int]], matches: dict, fams_b: dict) -> list[str]:
    out = ["| Lite0 unit | profile | " + " | ".join(f"best in {short(m)} (r; randomized)" for m in MODELS[1:])
           + " |", "|---|---|" + "---|" * (len(MODELS) - 1)]
    for layer, profile, c in units:
        cells = []
        for m in MODELS[1:]:
            match = matches[(m, layer)]
            j = int(match.best[c])
            fam = fams_b.get((m, match.layer_b))
            tag = ""
            if fam is not None and fam.family_of(j) is not None:
                tag = f", {fam.family_of(j).label}"
            cells.append(f"`{match.layer_b}:{j}` ({float(match.best_correlation[c]):.2f}; "
                         f"{float(match.control_best_correlation[c]):.2f}{tag})")
        out.append(f"| `{layer}:{c}` | {profile} | " + " | ".join(cells) + " |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few images, one seed (not for publishing)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    global DOC, FIGS
    if args.quick:  # never over the published page
        DOC, FIGS = Path("/tmp/universality_quick.md"), Path("/tmp")
    FIGS.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    seeds = (0,) if args.quick else (0, 1, 2)
    models = {m: fv.models.get(m) for m in MODELS}
    photos = fv.data.sample_images(size=288).images
    images = augment_images(photos[:2] if args.quick else photos, n=1 if args.quick else 4)
    curve_layers = {m: v[:1] for m, v in CURVE_LAYERS.items()} if args.quick else CURVE_LAYERS

    fams: dict = {m: {} for m in MODELS}
    for m in MODELS:
        for layer in EDGE_LAYERS:
            log(f"edge families {m} {layer}")
            fams[m][layer] = families(models[m], layer, kinds=["edge"], seeds=seeds)
        log(f"all families {m} {EDGE_BANK}")
        fams[m]["all"] = families(models[m], EDGE_BANK, kinds=["edge", "high-low", "contrast", "colour"],
                                  seeds=seeds)
    curves: dict = {m: {} for m in MODELS}
    for m in MODELS:
        for layer in curve_layers[m]:
            log(f"curve families {m} {layer}")
            curves[m][layer] = families(models[m], layer, kinds=["curve"], seeds=CURVE_SEEDS)

    # matching: Lite0's edge bank and curve layers against the same places in Lite1 and Lite2
    matches, fams_b = {}, {}
    pairs = [(EDGE_BANK, EDGE_BANK)] + list(zip(curve_layers[MODELS[0]], curve_layers[MODELS[1]]))
    for layer_a, layer_b in pairs:
        for m in MODELS[1:]:
            log(f"match lite0 {layer_a} -> {m} {layer_b}")
            matches[(m, layer_a)] = match_units(models[MODELS[0]], layer_a, models[m], layer_b, images,
                                                seeds=seeds, names=(short(MODELS[0]), short(m)), progress=False)
            fams_b[(m, layer_b)] = fams[m]["all"] if layer_b == EDGE_BANK else curves[m].get(layer_b)
    lite0 = fams[MODELS[0]]
    edge_units = []
    for f in lite0["all"].by_kind("edge"):
        edge_units += [(EDGE_BANK, f.label, c) for c in f.channels]
    curve_units = []
    for layer, f in curves[MODELS[0]].items():
        for fam in f.by_kind("curve"):
            curve_units += [(layer, fam.label, c) for c in fam.channels]
    bank_match = matches[(MODELS[1], EDGE_BANK)]
    edge_units.sort(key=lambda u: -float(bank_match.margin[u[2]]))
    top = [u[2] for u in edge_units[:6]]
    if top:
        bank_match.plot(units=top, k=3, path=FIGS / "universality_edges_lite0_lite1.png")

    # is the best match of an edge detector an edge detector of the same orientation?
    agree = {}
    for m in MODELS[1:]:
        fb = fams[m]["all"]
        same = other = none = 0
        for _, label, c in edge_units:
            j = int(matches[(m, EDGE_BANK)].best[c])
            fam = fb.family_of(j)
            if fam is not None and fam.label == label:
                same += 1
            elif fam is not None and fam.kind == "edge":
                other += 1
            else:
                none += 1
        agree[m] = (same, other, none)

    n_pos = {k: v.n_positions for k, v in matches.items()}
    lines = [
        "# Universality: EfficientNet-Lite0, -Lite1 and -Lite2 side by side",
        "",
        "*Generated by `docs/generate/universality.py` (`make docs`); every number below is computed there. "
        "Do not edit by hand.*",
        "",
        "Zoom In's third claim is that analogous features form across networks. Three networks of one family "
        "trained on ImageNet (`fv.models.efficientnet_lite0/1/2`: 224, 240, 260 px, 16/21/21 blocks) are "
        f"compared here. Control: `fv.models.randomized(model, seed)` for seeds {', '.join(map(str, seeds))} — "
        "the same architecture with fresh weights. Counts are given as `trained (randomized per seed)`.",
        "",
        "## 1. Edge-detector families in early layers",
        "",
        "`fv.circuits.families(model, layer, kinds=[\"edge\"])`: `find_edge_detectors` (gratings and step "
        "edges at the receptive-field centre), binned by orientation.",
        "",
        *edge_tables(fams),
        "",
        *other_families(fams),
        "",
        "## 2. Curve-detector families",
        "",
        "`families(model, layer, kinds=[\"curve\"])`: `find_curve_detectors` (arcs beat lines, rings and discs "
        "at every position, one direction peak, drift ≤ 45°) binned by bulge direction. The layers are the same "
        "place in each network (the last depthwise layer of stage 3). Control: randomized seed 0 only (the "
        "scan is the slow part of this page).",
        "",
        *curve_table(curves),
        "",
        "## 3. Does each Lite0 unit have a counterpart?",
        "",
        f"`fv.circuits.match_units(lite0, layer, liteN, layer_N, images)`: the {photos.shape[0] if not args.quick else 2} "
        f"bundled sample photos plus `augment_images` (4 random crops each, then all mirrored): {len(images)} "
        "images, each shown to every network at its own input size; both maps are resampled to a common grid "
        "and every (image, cell) is one observation. Correlations are Pearson over "
        + ", ".join(f"{n:,} positions (`{k[1]}` vs {short(k[0])})" for k, n in n_pos.items())
        + ". Control: the best correlation the same Lite0 unit reaches with any unit of a randomized copy of "
        "the other network (largest over seeds).",
        "",
        *[f"- {match_summary(v)}" for v in matches.values()],
        "",
        f"### Edge detectors of Lite0 `{EDGE_BANK}` (strongest margin first)",
        "",
        *unit_rows(edge_units, matches, fams_b),
        "",
        *[f"- {short(m)}: the best match of a Lite0 edge detector is an edge detector of the same orientation "
          f"bin for {s}, of another orientation for {o}, and no edge detector for {n} of {len(edge_units)}."
          for m, (s, o, n) in agree.items()],
        "",
        "![Matched pairs: Lite0 and Lite1 edge detectors](figures/universality_edges_lite0_lite1.png)"
        if top else "",
        "",
        "### Curve detectors of Lite0",
        "",
        *(unit_rows(curve_units, matches, fams_b) if curve_units else ["No Lite0 unit passes the curve tests "
                                                                        "in these layers."]),
        "",
        "## Microscope",
        "",
        "`fv.circuits.unit_links(matches)` turns these matches into the links each unit page needs "
        "(`{(model, \"layer:channel\"): [UnitLink(model, node, correlation, control)]}`, only matches that "
        "beat their control); `featviz microscope efficientnet_lite0 efficientnet_lite1 efficientnet_lite2 --out "
        "site` builds one site per model, `site/universality.html` with the matched units side by side, and a "
        "\"Matches in other models\" list on every unit page.",
        "",
        "## How to reproduce",
        "",
        "```bash",
        "make docs   # or: python docs/generate/universality.py",
        "```",
        "",
    ]
    DOC.write_text("\n".join(lines))
    log(f"wrote {DOC} in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
