"""The "your own model" matrix: 12 torchvision and 3 timm architectures at random init x every tool.

Each cell gives the right answer, checked against a truth computed another way (the dst conv's own
weights with its BatchNorm folded, the linearised Jacobian's full gradient, our own grad x act from
``run_with_cache``, execution order for trace edges, the torch model's output for ``from_torch``), or
a clear error naming the construct it cannot handle. ``make test`` runs every model (docs/models.md,
"Your own model", lists the outcomes). The timm models (timm is in the ``[dev]`` extra; skipped
without it) bring timm's own modules: ``nn.Identity`` placeholders inside blocks (``aa``,
``drop_block``), ``BatchNormAct2d`` (a BatchNorm that applies its activation itself), avg-pool
downsample shortcuts and ``LayerNorm2d``.
"""
import contextlib
import io
import warnings

import pytest
import torch
import torchvision

import featviz as fv
import featviz.cli
from featviz.circuits import attribute, expanded_weights, trace, weights
from featviz.circuits._graph import ModuleGraph, NotConnectedError
from featviz.circuits._linear import centre, maps, run_cut
from featviz.circuits.weights import bn_scale, full_weight
from featviz.core import probe_input
from featviz.errors import BadValue

tv = torchvision.models
# name -> (constructor, input size, adjacent (src, dst conv), gap dst conv,
#          expanded (src, dst) across a block, render layer)
MODELS = {
    "resnet50": (lambda: tv.resnet50(), 32, ("layer1.0.relu", "layer1.0.conv2"), "layer1.0.conv3",
                 ("layer1.0", "layer1.1.relu#2"), "layer1.0.relu#2"),
    "vgg11_bn": (lambda: tv.vgg11_bn(), 32, ("features.10", "features.11"), "features.15",
                 ("features.6", "features.13"), "features.10"),
    "mobilenet_v3_small": (lambda: tv.mobilenet_v3_small(), 32,
                           ("features.2.block.0.2", "features.2.block.1.0"),
                           "features.3.block.0.0", ("features.1", "features.2.block.1.2"), "features.2"),
    "efficientnet_b0": (lambda: tv.efficientnet_b0(), 32,
                        ("features.2.0.block.0.2", "features.2.0.block.1.0"),
                        "features.2.0.block.3.0", ("features.1", "features.2.0.block.3.1"), "features.2.0"),
    "convnext_tiny": (lambda: tv.convnext_tiny(), 32, ("features.0.0", "features.1.0.block.0"),
                      "features.1.1.block.0", ("features.1.0", "features.1.1.block.3"), "features.1.0"),
    "densenet121": (lambda: tv.densenet121(), 32, ("features.denseblock1.denselayer1.conv2",
                                                     "features.denseblock1.denselayer2.conv1"),
                    "features.denseblock1.denselayer2.conv2",
                    ("features.denseblock1.denselayer1.conv2", "features.denseblock1.denselayer2.conv2"),
                    "features.denseblock1.denselayer2.conv2"),
    "regnet_y_400mf": (lambda: tv.regnet_y_400mf(), 32, ("trunk_output.block1.block1-0.f.a.2",
                                                         "trunk_output.block1.block1-0.f.b.0"),
                       "trunk_output.block1.block1-0.f.c.0", ("stem", "trunk_output.block1.block1-0.f.c.1"),
                       "trunk_output.block1"),
    "squeezenet1_1": (lambda: tv.squeezenet1_1(), 48,
                      ("features.3.squeeze_activation", "features.3.expand3x3"),
                      "features.4.squeeze", ("features.3", "features.4.expand3x3_activation"), "features.3"),
    "shufflenet_v2_x0_5": (lambda: tv.shufflenet_v2_x0_5(), 32, ("stage2.0.branch2.2", "stage2.0.branch2.3"),
                           "stage2.1.branch2.0", ("conv1", "stage2.0.branch2.7"), "stage2.0"),
    "googlenet": (lambda: tv.googlenet(init_weights=False, aux_logits=False), 32, ("conv2.bn", "conv3.conv"),
                  "inception3a.branch1.conv", ("conv2", "inception3a.branch2.1.bn"), "inception3a"),
    "inception_v3": (lambda: tv.inception_v3(init_weights=False, aux_logits=False), 80,
                     ("Conv2d_2a_3x3.bn", "Conv2d_2b_3x3.conv"), "Conv2d_3b_1x1.conv",
                     ("Conv2d_2a_3x3", "Conv2d_3b_1x1.bn"), "Conv2d_2b_3x3"),
    "vit_b_16": (lambda: tv.vit_b_16(image_size=32), 32, ("conv_proj", "encoder.layers.encoder_layer_0"),
                 "encoder.layers.encoder_layer_1", ("conv_proj", "encoder.layers.encoder_layer_0"),
                 "encoder.layers.encoder_layer_0"),
}


def _timm(arch: str, **kw):
    return lambda: pytest.importorskip("timm").create_model(arch, **kw)


# timm: resnet10t (tiered stem, avg-pool downsample, Identity `aa`/`drop_block`; zero_init_last=False so
# the residual branch is not all zero at random init), tinynet_e (EfficientNet blocks with BatchNormAct2d
# and squeeze-excite), convnext_atto (LayerNorm2d, 1x1 convs as the MLP, Dropout/Identity between)
TIMM = {
    "timm_resnet10t": (_timm("resnet10t", zero_init_last=False), 32, ("layer2.0.act1", "layer2.0.conv2"),
                       "layer3.0.conv1", ("layer1.0", "layer2.0.act2"), "layer2.0"),
    "timm_tinynet_e": (_timm("tinynet_e"), 32, ("blocks.1.0.bn1", "blocks.1.0.conv_dw"),
                       "blocks.1.0.conv_pwl", ("blocks.0", "blocks.1.0.bn3"), "blocks.1.0"),
    "timm_convnext_atto": (_timm("convnext_atto"), 32,
                           ("stages.0.blocks.0.mlp.act", "stages.0.blocks.0.mlp.fc2"),
                           "stages.0.blocks.1.conv_dw", ("stages.0.blocks.0", "stages.0.blocks.1.mlp.fc1"),
                           "stages.0.blocks.0"),
}
TIMM_SOURCE = {"timm_resnet10t": "resnet10t', zero_init_last=False", "timm_tinynet_e": "tinynet_e'",
               "timm_convnext_atto": "convnext_atto'"}
MODELS.update(TIMM)
FAST = list(MODELS)  # all fifteen run in `make test` (~50 s for torchvision, ~15 s for timm, one thread)
CELLS = ["cache", "render", "render_layer", "weights", "weights_gap", "expanded_weights", "attribute",
         "trace", "from_torch", "layers_cli"]
_built: dict[str, torch.nn.Module] = {}


def model_for(name: str) -> torch.nn.Module:
    if name not in _built:
        torch.manual_seed(0)
        _built[name] = MODELS[name][0]().train()  # train mode: every tool must cope, and restore it
    return _built[name]


def params(slow_models):
    return [pytest.param(m, c, marks=() if m in FAST else pytest.mark.slow)
            for m in slow_models for c in CELLS]


def _bn_stats(model):
    return [b.clone() for b in model.buffers()]


def _check_restored(model, before):
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers()))


def _is_tokens(name: str) -> bool:
    return name == "vit_b_16"


def cell_cache(name, model, size):
    hm = fv.hooked(model.eval())
    try:
        x = torch.rand(2, 3, size, size)
        kept = {}
        conv = MODELS[name][2][1]
        handle = hm.module(conv).register_forward_hook(
            lambda m, i, o: kept.setdefault("o", o.detach().clone()))
        try:
            _, cache = hm.run_with_cache(x)
        finally:
            handle.remove()
        assert torch.equal(cache[conv], kept["o"])
        if name == "resnet50":  # one relu, three calls, three widths
            assert [cache[f"layer1.0.relu{k}"].shape[1] for k in ("", "#2", "#3")] == [64, 64, 256]
    finally:
        model.train()


def cell_render(name, model, size):
    layer = MODELS[name][5]
    kw = {}
    if _is_tokens(name):  # a fixed patch grid: transformed sizes are resized back, with a warning
        with pytest.warns(UserWarning, match="resized back to"):
            r = fv.render(model, f"{layer}:0", size=size, steps=2, progress=False)
        assert r.images.shape == (1, 3, size, size) and torch.isfinite(r.activations).all()
        kw = {"transforms": []}
    r = fv.render(model, f"{layer}:0", size=size, steps=2, progress=False, **kw)
    assert r.images.shape == (1, 3, size, size) and torch.isfinite(r.activations).all()


def cell_render_layer(name, model, size):
    kw = {"transforms": []} if _is_tokens(name) else {}
    r = fv.render_layer(model, MODELS[name][5], channels=[0, 1], size=size, steps=2, progress=False, **kw)
    assert r.images.shape[0] == 2


def cell_weights(name, model, size):
    src, dst = MODELS[name][2]
    if _is_tokens(name):
        with pytest.raises(ValueError, match="transformer|not a conv layer"):
            weights(model, src, dst, size=size)
        return
    if name == "convnext_tiny":  # the stem's LayerNorm lies between: named, not a false answer
        with pytest.raises(NotConnectedError, match="LayerNorm"):
            weights(model, src, dst, size=size)
        return
    got = weights(model, f"{src}:0-3", dst, size=size)
    model.eval()
    g = ModuleGraph(model, probe_input(model, size))
    model.train()
    unit = g.unit(dst)
    truth = full_weight(g.calls[unit.conv].module)
    bns = [n for n in unit.members if g.calls[n].kind == "bn"]
    if bns:
        truth = truth * bn_scale(g.calls[bns[0]].module).detach()[:, None, None, None]
    if name == "densenet121":  # dst reads the concatenation [stem 64, layer1's 32]: src sits at 64..95
        norm1 = model.features.denseblock1.denselayer2.norm1
        truth = (truth * bn_scale(norm1).detach()[None, :, None, None])[:, 64:96]
    assert torch.allclose(got, truth[:, :4], atol=1e-5)


def cell_weights_gap(name, model, size):
    src = MODELS[name][2][0]
    with pytest.raises(ValueError, match="not directly connected|transformer|not a conv layer|LayerNorm"):
        weights(model, src, MODELS[name][3], size=size)


def cell_expanded_weights(name, model, size):
    src, dst = MODELS[name][4]
    if _is_tokens(name):
        with pytest.raises(ValueError, match="tokens .* transformer"):
            expanded_weights(model, src, dst, size=size, progress=False)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny inputs: the receptive field may reach the map's edge
        got = expanded_weights(model, src, f"{dst}:0,-1", size=size, progress=False)  # (2, C_src, kh, kw)
    # truth: the full linearised Jacobian of dst's centre w.r.t. src, from one plain backward pass
    model.eval()
    try:
        hm = fv.hooked(model)
        g = ModuleGraph(hm, probe_input(model, size))
        s, d = g.unit(src).end, g.unit(dst).end
        a, out = run_cut(hm, probe_input(model, size), s, d,
                         lambda o: o.detach().requires_grad_(True), linear=True)
        out = maps(out, g.calls[d].layout)
        i, j = centre(out.shape)
        n = out.shape[1]
        rows = [maps(torch.autograd.grad(out[0, c, i, j], a, retain_graph=True)[0], g.calls[s].layout)[0]
                for c in (0, n - 1)]
    finally:
        model.train()
    full = torch.stack(rows)  # (2, C_src, H, W)
    kh, kw = got.shape[-2:]
    inside = torch.zeros_like(full, dtype=torch.bool)
    hit = full.abs().sum((0, 1)) > 0
    r0, c0 = [int(t[0]) for t in hit.nonzero().min(0, keepdim=True).values.T]
    inside[..., r0:r0 + kh, c0:c0 + kw] = True
    assert torch.allclose(got, full[..., r0:r0 + kh, c0:c0 + kw], atol=1e-5, rtol=1e-4)
    assert not full[~inside].any()  # nothing reaches dst from outside the crop


def cell_attribute(name, model, size):
    src, dst = MODELS[name][2]
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    if _is_tokens(name):  # tokens: features are the last dimension, values are means over tokens
        got = attribute(model, src, dst, x, dst_channels=[0, 1], preprocess=False)
    else:
        got = attribute(model, src, dst, x, dst_channels=[0, 1], preprocess=False)
    model.eval()
    try:
        hm = fv.hooked(model)
        g = ModuleGraph(hm, x[:1])
        s, d = g.key(src), g.key(dst)
        _, cache = hm.run_with_cache(x, names=[s, d], detach=False)
        a, out = cache[s], cache[d]
        vals = out.mean(1) if out.dim() == 3 else out.mean((-2, -1))
        want = []
        for c in (0, 1):
            (gr,) = torch.autograd.grad(vals[:, c].sum(), a, retain_graph=True)
            ga = gr * a
            want.append(ga.sum((0, 1)) if ga.dim() == 3 else ga.sum((0, 2, 3)))
    finally:
        model.train()
    assert torch.allclose(got, torch.stack(want).detach(), atol=1e-5, rtol=1e-4)


def cell_trace(name, model, size):
    node = f"{MODELS[name][2][1]}:-1"
    if _is_tokens(name):
        with pytest.raises(ValueError, match="transformer|no layer upstream|not .* feature maps"):
            trace(model, node, depth=2, top_k=2, size=size, progress=False)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = trace(model, node, depth=2, top_k=2, size=size, progress=False)
    assert c.edges and not c.root.endswith(":-1")
    model.eval()
    g = ModuleGraph(model, probe_input(model, size))
    model.train()
    for e in c.edges:  # every edge runs from an earlier layer that the later one reads
        s, d = e.src.rpartition(":")[0], e.dst.rpartition(":")[0]
        assert g.calls[g.unit(s).end].done < g.calls[g.unit(d).end].done
        assert g.between(g.unit(s).end, g.calls[g.unit(d).end].output) is not None


def cell_from_torch(name, model, size):
    model.eval()
    try:
        x = torch.rand(1, 3, size, size)
        with torch.no_grad():
            want = model(x)
            for backend in ("torch", "strided"):
                got = fv.nn.from_torch(model, backend=backend)(x)
                assert torch.allclose(got, want, atol=1e-3, rtol=1e-3), backend
    finally:
        model.train()


def cell_layers_cli(name, model, size, tmp_path):
    ctor = {"googlenet": "googlenet(init_weights=False, aux_logits=False)",
            "inception_v3": "inception_v3(init_weights=False, aux_logits=False)",
            "vit_b_16": "vit_b_16(image_size=32)"}.get(name, f"{name}()")
    path = tmp_path / f"{name}_net.py"
    if name in TIMM_SOURCE:
        path.write_text(f"import timm\nmodel = timm.create_model('{TIMM_SOURCE[name]})\n")
    else:
        path.write_text(f"import torchvision\nmodel = torchvision.models.{ctor}\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = featviz.cli.main(["layers", str(path), "--size", str(size)])
    assert status == 0 and MODELS[name][2][1].split("#")[0] in out.getvalue()


@pytest.mark.parametrize("name, cell", params(list(MODELS)))
def test_model_matrix(name, cell, tmp_path):
    model, size = model_for(name), MODELS[name][1]
    before = _bn_stats(model)
    fn = globals()[f"cell_{cell}"]
    fn(name, model, size, tmp_path) if cell == "layers_cli" else fn(name, model, size)
    _check_restored(model, before)


# ----------------------------------------------------------------------------- issue 24: more timm designs
TIMM_BLOCKS = {"timm_resnet10t": "layer2.0", "timm_tinynet_e": "blocks.1.0", "timm_convnext_atto": "stages.0"}


@pytest.mark.parametrize("name", list(TIMM_BLOCKS))
def test_trace_from_a_blocks_output(name):
    """A block's output exists only after every layer inside it ran: its place in the order is when it
    returns (tracing 'layer3.1:1' on timm models said it ran before its own 'layer3.1.bn2')."""
    model, block = model_for(name), TIMM_BLOCKS[name]
    before = _bn_stats(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = trace(model, f"{block}:1", depth=2, top_k=2, size=32, progress=False)
    _check_restored(model, before)
    model.eval()
    g = ModuleGraph(model, probe_input(model, 32))
    model.train()
    assert c.edges and c.root == f"{block}:1"
    for e in c.edges:  # every edge: an earlier layer on a path into the later one
        s, d = e.src.rpartition(":")[0], e.dst.rpartition(":")[0]
        end = g.unit(s).end
        assert g.runs_before(end, d) and g.between(end, g.calls[g.key(d)].output) is not None


def _tm(arch: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return pytest.importorskip("timm").create_model(arch, pretrained=False, **kw).eval()


def test_res2net_repeated_relu_is_named_by_call():
    """Res2Net's bottleneck calls one ReLU 9 times at three widths; 'relu' is its first call everywhere,
    'relu#k' its k-th, and every call is listed."""
    model = _tm("res2net50_14w_8s")
    shapes = fv.hooked(model).call_shapes(size=32)
    widths = [shapes["layer1.0.relu" + ("" if k == 1 else f"#{k}")][1] for k in range(1, 10)]
    assert widths == [112] + [14] * 7 + [256] and "layer1.0.relu#10" not in shapes
    # truth: split k's output (relu#(k+1)) is channels 14k..14k+13 of the concatenation conv3 reads
    blk = model.layer1[0]
    w3 = full_weight(blk.conv3) * bn_scale(blk.bn3).detach()[:, None, None, None]
    for k in (0, 3):
        got = weights(model, f"layer1.0.relu#{k + 2}", "layer1.0.conv3", size=32)
        assert torch.allclose(got, w3[:, 14 * k:14 * k + 14], atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = expanded_weights(model, "layer1.0.relu", "layer1.0.conv3:0", size=32, progress=False)
        first = expanded_weights(model, "layer1.0.relu#1", "layer1.0.conv3:0", size=32, progress=False)
        c = trace(model, "layer1.0.conv3:0", depth=1, top_k=2, size=32, progress=False)
    assert plain.shape[1] == 112 and torch.equal(plain, first)
    assert c.edges and all(e.src.split(":")[0].startswith("layer1.0.") for e in c.edges)


def test_dla_renders_at_sizes_its_tree_merges_allow():
    """DLA's tree merges need sizes divisible by 32; the transforms change the size: transformed images are
    resized back (one warning) instead of a raw RuntimeError mid-run, and a size that cannot run names one
    that does."""
    model = _tm("dla34")
    with pytest.warns(UserWarning, match="resized back to"):
        r = fv.render(model, "level3:0", size=128, steps=3, progress=False)
    assert r.images.shape == (1, 3, 128, 128) and torch.isfinite(r.activations).all()
    with pytest.raises(BadValue, match=r"cannot run on 100x100 .* pass size=(\d+)") as info:
        fv.render(model, "level3:0", size=100, steps=1, progress=False, transforms=[])
    named = int(str(info.value).rpartition("size=")[2])
    assert fv.render(model, "level3:0", size=named, steps=1, progress=False, transforms=[]).images.shape[-1] \
        == named  # the size it names does run


def test_hrnet_list_outputs_are_refused_by_name():
    model = _tm("hrnet_w18_small")
    with pytest.raises(BadValue, match=r"'stage2' outputs a list of 2 tensors.*pick a layer inside it"):
        fv.render(model, "stage2:0", size=64, steps=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fuse layers refuse odd sizes: resized back
        r = fv.render(model, "stage2.0.branches.1:0", size=64, steps=2, progress=False)
    assert torch.isfinite(r.activations).all()


def test_poolformer_expanded_weights_at_64px(monkeypatch):
    """PoolFormer at 64 px: 'no position of ... reaches ...' although autograd says all 16 do (a dozen
    GroupNorms held at the statistics of an all-zero probe overflowed); now checked against the plain
    Jacobian like every matrix model."""
    name = "timm_poolformer_s12"
    monkeypatch.setitem(MODELS, name, (lambda: _tm("poolformer_s12"), 64, None, None,
                                       ("stages.2.downsample.conv", "stages.3.downsample.conv"), None))
    monkeypatch.setitem(_built, name, _tm("poolformer_s12").train())
    model = model_for(name)
    before = _bn_stats(model)
    cell_expanded_weights(name, model, 64)
    _check_restored(model, before)
    got = expanded_weights(model, "stages.2.downsample.conv", "stages.3.downsample.conv:0", size=64,
                           progress=False)
    assert got.shape == (1, 320, 4, 4)  # all 16 positions of the 4x4 map reach the 2x2 map's centre unit


@pytest.mark.slow
def test_vgg_pre_logits_receptive_field_lies_in_the_image():
    """timm vgg11_bn's pre_logits resizes small maps up to 7x7: at 64 px the exact method extrapolated a
    centre of (111.5, 111.5); the field must lie in the image (truth: about the image centre)."""
    model = _tm("vgg11_bn")
    rf = fv.circuits.receptive_field(model, "pre_logits.fc1:0", size=64)
    assert rf.method == "measured" and all(24 <= c <= 40 for c in rf.center) and rf.size == (64, 64)
    with pytest.raises(BadValue, match="geometry changes with the input size|outside"):
        fv.circuits.receptive_field(model, "pre_logits.fc1:0", size=64, method="exact")
