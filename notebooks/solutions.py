"""Hidden solutions to the notebook exercises: one function per exercise, named as in the notebook.

Each exercise cell in a notebook calls the matching function here so that the notebook runs top to
bottom; a student replaces that call with their own code. ``show("name")`` prints a solution when
you want to compare (try first!).

Example:
    >>> import solutions
    >>> solutions.output_size(28, kernel_size=3, stride=2, padding=1)
    14
"""
from __future__ import annotations

import inspect
import math
import sys

import torch
from torch import Tensor, nn

# ----------------------------------------------------------------------------- 01 convolutions


def output_size(L_in: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Length of a convolution's output along one axis: floor((L_in + 2p - k) / s) + 1."""
    return (L_in + 2 * padding - kernel_size) // stride + 1


def sliding_windows_1d(x: Tensor, kernel_size: int, stride: int = 1) -> Tensor:
    """(L,) -> (L_out, kernel_size): window i is x[i*stride : i*stride + kernel_size], no copy."""
    (s,) = x.stride()
    L_out = (x.shape[0] - kernel_size) // stride + 1
    return x.as_strided(size=(L_out, kernel_size), stride=(s * stride, s))


def conv2d_minimal(x: Tensor, weight: Tensor, stride: int = 1) -> Tensor:
    """(B, C, H, W), (O, C, kh, kw) -> (B, O, H', W'); no padding, no bias, square stride."""
    B, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    sB, sC, sH, sW = x.stride()
    H_out, W_out = (H - kh) // stride + 1, (W - kw) // stride + 1
    windows = x.as_strided(size=(B, C, H_out, W_out, kh, kw),
                           stride=(sB, sC, sH * stride, sW * stride, sH, sW))
    return torch.einsum("bchwij,ocij->bohw", windows, weight)


def maxpool2d_minimal(x: Tensor, kernel_size: int) -> Tensor:
    """(B, C, H, W) -> (B, C, H // k, W // k): max over non-overlapping k x k windows (stride k)."""
    B, C, H, W = x.shape
    k = kernel_size
    sB, sC, sH, sW = x.stride()
    windows = x.as_strided(size=(B, C, H // k, W // k, k, k), stride=(sB, sC, sH * k, sW * k, sH, sW))
    return windows.amax(dim=(-2, -1))


def conv2d_weight(in_channels: int, out_channels: int, kernel_size: int) -> nn.Parameter:
    """Kaiming-uniform weight (out, in, k, k) drawn from U(-b, b), b = 1 / sqrt(in * k * k)."""
    bound = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
    return nn.Parameter(bound * (2 * torch.rand(out_channels, in_channels, kernel_size, kernel_size) - 1))


def n_params_conv(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    """Number of parameters of a Conv2d: one (in, k, k) kernel per output channel (+ one bias each)."""
    return out_channels * in_channels * kernel_size * kernel_size + (out_channels if bias else 0)


def n_params_linear(in_features: int, out_features: int, bias: bool = True) -> int:
    """Number of parameters of a Linear layer: one weight per (input, output) pair (+ one bias each)."""
    return in_features * out_features + (out_features if bias else 0)


# ----------------------------------------------------------------------------- 02 hooks


def mean_hook(store: dict, output: Tensor) -> None:
    """Body of a forward hook: store the per-channel mean (B, C) of a (B, C, H, W) output."""
    store["means"] = output.mean(dim=(2, 3))


def direct_contributions(model: nn.Module, pooled: Tensor, class_index: int) -> Tensor:
    """(C,) pooled activations -> (C,) terms of the class logit: pooled[c] * fc.weight[class, c]."""
    return pooled * model.fc.weight[class_index]


def zero_channels(output: Tensor, channels: list[int]) -> Tensor:
    """A copy of a (B, C, H, W) output with ``channels`` set to 0 (the input is left untouched)."""
    out = output.clone()
    out[:, channels] = 0
    return out


# ----------------------------------------------------------------------------- 03 feature visualization


def channel_objective(acts: dict, layer: str, c: int) -> Tensor:
    """(B,) mean of channel ``c`` of ``acts[layer]`` (B, C, H, W) over all positions."""
    return acts[layer][:, c].mean(dim=(1, 2))


def contrast_objective(layer: str, c_up: int, c_down: int):
    """An objective that raises channel ``c_up`` and lowers ``c_down`` of ``layer``."""
    import featviz as fv

    return fv.objectives.channel(layer, c_up) - fv.objectives.channel(layer, c_down)


# ----------------------------------------------------------------------------- 04 circuits


def fold_batchnorm(weight: Tensor, bn: nn.Module) -> tuple[Tensor, Tensor]:
    """Conv weight (O, C, kh, kw) (no bias) followed by eval-mode BatchNorm -> one conv's (weight, bias)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)              # (O,) gamma / sqrt(var + eps)
    return (weight * scale[:, None, None, None]).detach(), (bn.bias - bn.running_mean * scale).detach()


def receptive_field_1d(layers: list[tuple[int, int, int]], position: int = 0) -> tuple[int, float]:
    """[(kernel, stride, pad_before), ...] from the input up -> (size, centre) of unit ``position`` in px."""
    size, jump, start = 1, 1, 0.0          # a pixel sees itself; units 1 px apart; unit 0 centred on pixel 0
    for kernel, stride, pad in layers:
        size += (kernel - 1) * jump        # the kernel's taps are `jump` input pixels apart
        start += ((kernel - 1) / 2 - pad) * jump   # unit 0's window starts `pad` taps before unit 0 below
        jump *= stride
    return size, start + position * jump


def orientation_selectivity(responses: Tensor, angles) -> Tensor:
    """(A,) or (A, C) responses at orientations in [0, 180) degrees -> OSI () or (C,).

    OSI = |Σ r⁺ e^{2iθ}| / Σ r⁺, with r⁺ = max(r, 0)."""
    r = responses.float().clamp_min(0)                                  # (A, ...) no response is 0, not less
    theta = 2 * torch.deg2rad(torch.as_tensor(angles, dtype=torch.float32))   # (A,) doubled: 0° ≡ 180°
    theta = theta.reshape(-1, *([1] * (r.dim() - 1)))
    c, s = (r * theta.cos()).sum(0), (r * theta.sin()).sum(0)
    return torch.sqrt(c**2 + s**2) / r.sum(0).clamp_min(1e-12)


def grating_responses(model: nn.Module, layer: str, angles, size: int = 64, freq: float = 0.25,
                      n_phases: int = 8) -> Tensor:
    """(A, C): every channel's map-centre unit of ``layer``, gratings centred on its receptive field,
    averaged over ``n_phases`` phases."""
    import featviz as fv

    rf = fv.circuits.receptive_field(model, layer, size=size)
    phases = [360 * k / n_phases for k in range(n_phases)]
    images = fv.data.gratings(list(angles), size=size, freq=freq, phases=phases, center=rf.center)
    with torch.no_grad():
        _, cache = fv.hooked(model).run_with_cache(model.preprocess(images), names=[layer], stop_at_last=True)
    i, j = rf.position
    # the images are angle-major: (A * P, C) -> (A, P, C) -> mean over phases -> (A, C)
    return cache[layer][:, :, i, j].reshape(len(angles), n_phases, -1).mean(1)


def read_wiring(weights: Tensor, k: int) -> list[tuple[int, int, int, float]]:
    """(C_dst, C_src, kh, kw) -> sorted (src, drow, dcol, weight) of unit k's non-zero kernel entries."""
    ch, cw = weights.shape[-2] // 2, weights.shape[-1] // 2
    return sorted((int(c), int(i) - ch, int(j) - cw, float(weights[k, c, i, j]))
                  for c, i, j in torch.nonzero(weights[k]).tolist())


# ----------------------------------------------------------------------------- 04 checks
# Each check raises AssertionError with a message saying what is wrong (and, where it can tell, why).


def _fail(message: str) -> None:
    raise AssertionError(message)


def _call(fn, *args, what: str):
    """fn(*args), turning an exception into a failure that names the call."""
    try:
        return fn(*args)
    except AssertionError:
        raise
    except Exception as err:  # noqa: BLE001 - the student's code may raise anything
        _fail(f"{what} raised {type(err).__name__}: {err}")


def _finite(t: Tensor, what: str) -> None:
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        _fail(f"{what} has {int(bad.sum())} NaN/inf entries of {t.numel()} (first at index "
              f"{tuple(int(v) for v in torch.nonzero(bad)[0])}): a division by zero or a sqrt of a negative "
              "number?")


def check_fold_batchnorm(fn, conv: nn.Module, bn: nn.Module, x: Tensor) -> None:
    """fn(conv.weight, bn) must give the folded (weight, bias): conv(x; weight, bias) == bn(conv(x))."""
    out = _call(fn, conv.weight, bn, what="fold_batchnorm(conv.weight, bn)")
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, Tensor) for t in out)):
        _fail(f"fold_batchnorm should return a (weight, bias) pair of tensors, got {type(out).__name__}")
    w, b = (t.detach() for t in out)
    if tuple(w.shape) != tuple(conv.weight.shape):
        _fail(f"folded weight has shape {tuple(w.shape)}, expected {tuple(conv.weight.shape)} (one scale per "
              "OUTPUT channel: scale[:, None, None, None])")
    if tuple(b.shape) != (conv.weight.shape[0],):
        _fail(f"folded bias has shape {tuple(b.shape)}, expected ({conv.weight.shape[0]},): one per output "
              "channel")
    zero_var = int((bn.running_var == 0).sum())
    if zero_var and not bool(torch.isfinite(w).all()):
        _fail(f"folded weight has NaN/inf entries: running_var is 0 for {zero_var} channels, so the scale "
              "must be gamma / sqrt(running_var + eps): you left out eps")
    _finite(w, "folded weight")
    _finite(b, "folded bias")
    with torch.no_grad():
        gamma, beta, mean, var, eps = bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps
        scale = gamma / torch.sqrt(var + eps)
        ref_w, ref_b = conv.weight * scale[:, None, None, None], beta - mean * scale
        w_ok = torch.allclose(w, ref_w, rtol=1e-5, atol=1e-8)
        b_ok = torch.allclose(b, ref_b, rtol=1e-5, atol=1e-6)
        if not w_ok:
            for s, hint in ((gamma / torch.sqrt(var), "divide by sqrt(running_var + eps): you left out eps"),
                            (gamma * torch.sqrt(var + eps), "divide by sqrt(running_var + eps), do not multiply: "
                                                            "BatchNorm normalises by the standard deviation"),
                            (gamma / (var + eps), "divide by the standard deviation sqrt(var + eps), not by "
                                                  "the variance"),
                            (1 / torch.sqrt(var + eps), "multiply by gamma (bn.weight) too")):
                if torch.allclose(w, conv.weight * s[:, None, None, None], rtol=1e-5, atol=1e-8):
                    _fail(f"folded weight is wrong: {hint}")
            _fail("folded weight is wrong: expected conv.weight * (gamma / sqrt(var + eps)), one factor per "
                  f"output channel (max difference {float((w - ref_w).abs().max()):.2e})")
        if not b_ok:
            for bias, hint in (
                    (beta, "the running mean must be subtracted: beta - mean * scale"),
                    (beta - mean, "the running mean is scaled too: beta - mean * gamma / sqrt(var + eps)"),
                    (-mean * scale, "add beta (bn.bias)"),
                    (beta + mean * scale, "subtract the mean, do not add it: beta - mean * scale"),
                    ((beta - mean) * scale, "only the mean is scaled: BatchNorm computes (y - mean) * scale + beta, "
                                            "so the bias is beta - mean * scale (beta is added after the scaling)")):
                if torch.allclose(b, bias, rtol=1e-5, atol=1e-6):
                    _fail(f"the weight is right, the bias is not: {hint}")
            _fail("the weight is right, the bias is not: expected beta - mean * gamma / sqrt(var + eps) (max "
                  f"difference {float((b - ref_b).abs().max()):.2e})")
        pad = conv.padding if len(conv.padding) == 4 else (conv.padding[1], conv.padding[1], conv.padding[0],
                                                          conv.padding[0])
        expected = bn(conv(x))
        got = torch.nn.functional.conv2d(torch.nn.functional.pad(x, pad), w, b, stride=conv.stride)
    err = float((got - expected).abs().max())
    if err > 1e-3:
        _fail(f"the folded conv differs from bn(conv(x)) by up to {err:.2e} although weight and bias match "
              "the reference: is the BatchNorm in eval mode?")


def _grad_extent_1d(layers: list[tuple[int, int, int]], position: int, length: int) -> tuple[int, float]:
    """(size, centre) of unit ``position``'s window measured with autograd through all-ones conv1d layers."""
    x = torch.ones(1, 1, length, requires_grad=True)
    h = x
    for kernel, stride, pad in layers:
        h = torch.nn.functional.pad(h, (pad, kernel))
        h = torch.nn.functional.conv1d(h, torch.ones(1, 1, kernel), stride=stride)
    (g,) = torch.autograd.grad(h[0, 0, position], x)
    idx = torch.nonzero(g[0, 0]).flatten()
    first, last = int(idx[0]), int(idx[-1])
    return last - first + 1, (first + last) / 2


def _rf_variant(layers, position, *, jump_first=False, pad_sign=-1) -> tuple[int, float]:
    """The recurrence with one usual slip: the jump updated before the layer, or the padding added."""
    size, jump, start = 1, 1, 0.0
    for kernel, stride, pad in layers:
        if jump_first:
            jump *= stride
        size += (kernel - 1) * jump
        start += ((kernel - 1) / 2 + pad_sign * pad) * jump
        if not jump_first:
            jump *= stride
    return size, start + position * jump


def _rf_hint(layers, position, got, expected) -> str:
    size, center = expected
    if tuple(got) == _rf_variant(layers, position, jump_first=True) and got[0] != size:
        return ("you multiply the jump by the layer's stride BEFORE using it; update it AFTER the layer's size "
                "and centre: a layer's own taps are spaced by the strides BELOW it, its stride only spaces the "
                "layers above")
    if got[0] == size and abs(got[1] - _rf_variant(layers, position, pad_sign=1)[1]) < 1e-6 and \
            any(p for *_, p in layers):
        return ("the padding moves the window the other way: pad_before zeros sit BEFORE pixel 0, so unit 0's "
                "window starts earlier; subtract pad_before * jump from the centre, do not add it")
    if got[0] != size:
        naive = 1 + sum(k - 1 for k, _, _ in layers)
        if got[0] == naive and naive != size:
            return ("the size adds up kernel sizes as if every layer had stride 1; a layer's kernel taps are "
                    "as far apart as the product of the strides BELOW it, so it adds (kernel - 1) * jump")
        return "size: each layer adds (kernel - 1) * jump, jump = product of the strides of the layers below"
    no_pad = receptive_field_1d([(k, s, 0) for k, s, _ in layers], position)[1]
    if abs(got[1] - no_pad) < 1e-6 and no_pad != center:
        return ("the centre ignores padding: pad_before extra pixels in front move every window back by "
                "pad_before * jump input pixels")
    jump_all = 1
    for _, s, _ in layers:
        jump_all *= s
    c0 = receptive_field_1d(layers, 0)[1]
    if position and abs(got[1] - c0) < 1e-6:
        return "the centre does not move with position: unit i sits i * (product of ALL strides) px further"
    if position and abs((got[1] - c0) - position * jump_all / layers[-1][1]) < 1e-6:
        return ("units of the top layer are (the product of ALL strides) px apart, the top layer's own "
                "stride included")
    if got[1] == int(got[1]) and center != int(center) and abs(got[1] - center) <= 0.5:
        return "the centre can be a half pixel (an even window): do not round it"
    return "centre: unit 0's window centre moves by ((kernel - 1) / 2 - pad_before) * jump at every layer"


def check_receptive_field_1d(fn, model: nn.Module | None = None, chains: dict | None = None) -> None:
    """fn(layers, position) -> (size, centre) against hand-worked cases, gradients of random conv stacks,
    and (given ``model`` and ``chains`` {layer: layers}) ``fv.circuits.receptive_field`` at 224 px."""
    cases = [  # (layers, position, (size, centre), what it tests)
        ([(3, 1, 0)], 0, (3, 1.0), "one 3-wide kernel, no padding"),
        ([(3, 1, 1)], 0, (3, 0.0), "padding: unit 0's window starts one pixel before the image"),
        ([(3, 1, 1)], 5, (3, 5.0), "stride 1: unit i is centred on pixel i"),
        ([(2, 2, 0)], 0, (2, 0.5), "an even kernel: the centre is between two pixels"),
        ([(3, 2, 0), (3, 1, 0)], 0, (7, 3.0), "a kernel on top of a stride-2 layer"),
        ([(3, 2, 0), (3, 2, 0)], 3, (7, 15.0), "two stride-2 layers, unit 3"),
        ([(3, 2, 1), (5, 1, 2), (3, 2, 1)], 2, (15, 8.0), "padded stride-2 stack"),
    ]
    gen = torch.Generator().manual_seed(0)
    for _ in range(12):  # random stacks, checked against autograd
        n = int(torch.randint(1, 5, (1,), generator=gen))
        layers = []
        for _ in range(n):
            k = int(torch.tensor([1, 2, 3, 5, 7])[torch.randint(0, 5, (1,), generator=gen)])
            s = int(torch.randint(1, 4, (1,), generator=gen))
            layers.append((k, s, int(torch.randint(0, k, (1,), generator=gen))))
        size, c0 = receptive_field_1d(layers, 0)
        jump = 1
        for _, s, _ in layers:
            jump *= s
        position = max(0, math.ceil((size / 2 - c0) / jump)) + 1  # whole window inside the image
        length = int(c0 + position * jump + size + 2)
        expected = _grad_extent_1d(layers, position, length)
        cases.append((layers, position, expected, "autograd on a random stack"))
    for layers, position, expected, what in cases:
        got = _call(fn, layers, position, what=f"receptive_field_1d({layers}, {position})")
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            _fail(f"receptive_field_1d should return (size, centre), got {got!r}")
        try:
            got = (float(got[0]), float(got[1]))
        except (TypeError, ValueError):
            _fail(f"receptive_field_1d should return two numbers (size, centre), got {got!r}")
        if not all(math.isfinite(v) for v in got):
            _fail(f"receptive_field_1d({layers}, {position}) returned {got}: not finite numbers")
        if got[0] != expected[0] or abs(got[1] - expected[1]) > 1e-6:
            _fail(f"receptive_field_1d({layers}, position={position}) [{what}] returned size {got[0]:g}, "
                  f"centre {got[1]:g}; expected size {expected[0]:g}, centre {expected[1]:g}. Hint: "
                  f"{_rf_hint(layers, position, got, expected)}.")
    if model is not None and chains:
        import featviz as fv

        for layer, layers in chains.items():
            rf = fv.circuits.receptive_field(model, layer, size=224)
            got = _call(fn, layers, rf.position[0],
                        what=f"receptive_field_1d(<{layer} chain>, {rf.position[0]})")
            if float(got[0]) != rf.size[0] or abs(float(got[1]) - rf.center[0]) > 1e-6:
                _fail(f"on {layer} (224 px, unit {rf.position[0]}) you give size {float(got[0]):g}, centre "
                      f"{float(got[1]):g}; fv.circuits.receptive_field gives {rf.size[0]}, {rf.center[0]:g}")


def check_orientation_selectivity(fn) -> None:
    """fn(responses (A,) or (A, C), angles) -> OSI; checked on curves whose answer is known."""
    from featviz.circuits.tuning import orientation_stats

    angles = torch.arange(0.0, 180.0, 10.0)  # (18,)

    def osi(r: Tensor, what: str) -> Tensor:
        out = _call(fn, r, angles, what=f"orientation_selectivity({what})")
        out = torch.as_tensor(out, dtype=torch.float32)
        _finite(out, f"orientation_selectivity({what})")
        return out

    flat = float(osi(torch.ones(18), "a flat curve"))
    if abs(flat) > 1e-5:
        undoubled = float(torch.exp(1j * torch.deg2rad(angles)).mean().abs())
        hint = ("orientation is periodic over 180°, so the angles must be doubled: e^(2iθ), not e^(iθ) "
                "(over [0, 180) a single turn of e^(iθ) covers only half the circle)"
                if abs(flat - undoubled) < 1e-4
                else "are the angles converted from degrees to radians (torch.deg2rad) and doubled?")
        _fail(f"a flat curve (the same response at every angle) gave {flat:.3f}, expected 0. Hint: {hint}")
    one = torch.zeros(18)
    one[4] = 3.0
    v = float(osi(one, "a response at 40° only"))
    if abs(v - 1) > 1e-5:
        hint = "divide |Σ r e^(2iθ)| by Σ r"
        if abs(v - abs(math.cos(math.radians(80)))) < 1e-4:
            hint = ("that is |Σ r cos 2θ| / Σ r, the cosine part alone: |Σ r e^(2iθ)| = sqrt((Σ r cos 2θ)² + "
                    "(Σ r sin 2θ)²) needs the sine part too")
        _fail(f"a curve that responds at 40° only gave {v:.3f}, expected 1: {hint}")
    wrap = torch.zeros(18)
    wrap[0] = wrap[17] = 1.0
    v = float(osi(wrap, "equal responses at 0° and 170°"))
    if v < 0.9:
        _fail(f"equal responses at 0° and 170° gave {v:.3f}, expected {math.cos(math.radians(10)):.3f}: "
              "orientation is periodic over 180° (a grating at 170° is 10° from one at 0°), so use e^(2iθ), "
              "not e^(iθ)")
    for where, value in ((9, -10.0), (4, -1.0)):
        neg = torch.zeros(18)
        neg[0], neg[where] = 1.0, value
        v = float(osi(neg, f"+1 at 0°, {value:g} at {10 * where}°"))
        if abs(v - 1) > 1e-5:
            _fail(f"responses +1 at 0° and {value:g} at {10 * where}° (0 elsewhere) gave {v:.3f}, expected 1: rectify "
                  "first (clamp at 0) — a negative response is no response, and without it OSI can leave [0, 1]")
    gen = torch.Generator().manual_seed(1)
    batch = torch.rand(18, 5, generator=gen) ** 3
    out = osi(batch, "an (18, 5) batch")
    if tuple(out.shape) != (5,):
        _fail(f"an (A, C) = (18, 5) input should give one OSI per channel, shape (5,); got "
              f"{tuple(out.shape)}: reduce over the angle dimension (dim 0) only")
    want = torch.tensor([orientation_stats(batch[:, c], angles)[0] for c in range(5)])
    if not torch.allclose(out, want, atol=1e-4):
        r = batch.clamp_min(0)
        hint = ""
        if torch.allclose(out, (r.amax(0) - r.amin(0)) / (r.amax(0) + r.amin(0)), atol=1e-4):
            hint = (": that is (max - min) / (max + min), a peak-to-trough contrast of two angles; the OSI is the "
                    "length of the vector sum of all responses, |Σ r e^(2iθ)| / Σ r")
        _fail(f"per-channel OSI {out.tolist()} differs from the reference {want.tolist()}{hint}")


def check_grating_responses(fn, model: nn.Module, layer: str, size: int = 64) -> None:
    """fn(model, layer, angles, size) -> (A, C) against the reference, with a diagnosis of common slips."""
    angles = list(range(0, 180, 15))
    got = _call(fn, model, layer, angles, size, what=f"grating_responses(model, {layer!r}, angles, {size})")
    if not isinstance(got, Tensor):
        _fail(f"grating_responses should return a tensor (A, C), got {type(got).__name__}")
    want = grating_responses(model, layer, angles, size)
    if tuple(got.shape) != tuple(want.shape):
        _fail(f"grating_responses gave shape {tuple(got.shape)}, expected {tuple(want.shape)} = (angles, "
              "channels): one row per angle, phases averaged away")
    _finite(got, "grating_responses")
    tol = 1e-3 * max(1.0, float(want.abs().max()))
    if torch.allclose(got.float(), want, atol=tol):
        return
    import featviz as fv

    rf = fv.circuits.receptive_field(model, layer, size=size)
    phases = [45 * k for k in range(8)]
    images = fv.data.gratings(angles, size=size, freq=0.25, phases=phases, center=rf.center)
    with torch.no_grad():
        _, cache = fv.hooked(model).run_with_cache(model.preprocess(images), names=[layer], stop_at_last=True)
    a = cache[layer]  # (A * 8, C, H, W)
    i, j = rf.position
    variants = {
        "you averaged over the whole map; read the unit whose receptive field the gratings are centred on, "
        "cache[layer][:, :, i, j] at rf.position": a.mean((2, 3)).reshape(len(angles), 8, -1).mean(1),
        "you kept phase 0 only; average the 8 phases (the unit's response depends on where the stripes fall)":
            a[:, :, i, j].reshape(len(angles), 8, -1)[:, 0],
        "gratings are angle-major (image k has angle k // n_phases): reshape to (A, P, C) and average dim 1":
            a[:, :, i, j].reshape(8, len(angles), -1).mean(0),
        "you took the maximum over the phases; average them (the mean response over where the stripes fall)":
            a[:, :, i, j].reshape(len(angles), 8, -1).amax(1),
    }
    centred = fv.data.gratings(angles, size=size, freq=0.25, phases=phases)      # at the image centre
    with torch.no_grad():
        _, cache = fv.hooked(model).run_with_cache(model.preprocess(centred), names=[layer], stop_at_last=True)
    variants[f"the gratings are centred on the IMAGE centre; centre them on the unit's receptive field, "
             f"center=rf.center = {rf.center} (fv.data.gratings(..., center=rf.center))"] = \
        cache[layer][:, :, i, j].reshape(len(angles), 8, -1).mean(1)
    for hint, v in variants.items():
        if torch.allclose(got.float(), v, atol=tol):
            _fail(f"grating_responses differs from the reference by up to "
                  f"{float((got - want).abs().max()):.3g}: {hint}")
    _fail(f"grating_responses differs from the reference by up to {float((got - want).abs().max()):.3g} "
          f"(largest response {float(want.abs().max()):.3g}); did you preprocess the images "
          "(model.preprocess) and use freq=0.25 with 8 phases at rf.center?")


def check_read_wiring(fn, weights: Tensor, truth: list[dict]) -> None:
    """fn(weights, k) == sorted planted inputs of every unit k; says which entries are missing or extra."""
    for k, unit in enumerate(truth):
        got = _call(fn, weights, k, what=f"read_wiring(TW, {k})")
        want = sorted(unit["inputs"])
        try:
            got_list = sorted((int(c), int(r), int(q), float(w)) for c, r, q, w in got)
        except (TypeError, ValueError):
            _fail(f"read_wiring(TW, {k}) should return a list of (src, drow, dcol, weight), got {got!r}")
        if got_list == want:
            if list(got) != got_list:
                _fail(f"read_wiring(TW, {k}) has the right entries but not sorted: return sorted(...)")
            continue
        missing = sorted(set(want) - set(got_list))
        extra = sorted(set(got_list) - set(want))
        hint = ""
        if extra and {(c, r - 4, q - 4, w) for c, r, q, w in extra} == set(missing):
            hint = " Offsets are relative to the kernel centre (index 4): subtract 4."
        elif {(c, q, r, w) for c, r, q, w in extra} == set(missing) and extra:
            hint = " Rows and columns are swapped: the kernel is indexed [row, col]."
        elif extra and {(c, -r, -q, w) for c, r, q, w in extra} == set(missing):
            hint = (" Your offsets are negated: kernel index i is offset i - 4 from the centre (row 5 is one row "
                    "BELOW the unit: +1), not 4 - i.")
        elif len(got_list) == 1 and len(want) > 1 and not extra:
            hint = (" You returned only the strongest entry: the wiring is every non-zero entry of the kernel "
                    "(torch.nonzero(weights[k])).")
        elif missing and not extra and all(w < 0 for *_, w in missing):
            hint = " The inhibitory (negative) weights are part of the wiring too: keep every non-zero entry."
        _fail(f"unit {k} ({unit['name']}): missing {missing}, unexpected {extra}.{hint}")


# ----------------------------------------------------------------------------- 05 attribution


def grad_times_input(f, x: Tensor, target: int) -> Tensor:
    """(1, 3, H, W) -> x * d f(x)[0, target] / dx."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x)[0, target], x)
    return x.detach() * grad


def integrated_gradients(f, x: Tensor, target: int, baseline: Tensor, n_steps: int = 32,
                         batch_size: int = 8) -> Tensor:
    """(1, 3, H, W) -> (x - baseline) * mean over alpha of the gradient at baseline + alpha (x - baseline)."""
    alphas = torch.linspace(0.5 / n_steps, 1 - 0.5 / n_steps, n_steps)  # midpoints of n equal intervals
    total = torch.zeros_like(x)
    for chunk in alphas.split(batch_size):
        path = (baseline + chunk[:, None, None, None] * (x - baseline)).requires_grad_(True)  # (b, 3, H, W)
        (grad,) = torch.autograd.grad(f(path)[:, target].sum(), path)
        total += grad.sum(0, keepdim=True)
    return (x - baseline) * total / n_steps


# ----------------------------------------------------------------------------- issue 13: 01, 02, 03, 05 additions


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps a stride-1 convolution's output as large as its input (odd kernels)."""
    return dilation * (kernel_size - 1) // 2


def permute_pixels(images: Tensor, perm: Tensor) -> Tensor:
    """(B, C, H, W), (H*W,) -> output pixel i = input pixel perm[i], the same for every image and channel."""
    return images.flatten(2)[:, :, perm].reshape(images.shape)


def train(model: nn.Module, x: Tensor, y: Tensor, steps: int, lr: float) -> list[float]:
    """Full-batch Adam on cross-entropy for ``steps`` steps; returns the loss of every step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def expand_weights(w1: Tensor, w2: Tensor) -> Tensor:
    """(M, C, k1, k1), (O, M, k2, k2) -> (O, C, k1 + k2 - 1, k1 + k2 - 1): the kernel of conv2(conv1(x)).

    Tap (a, b) of w2 reads conv1's unit at offset (a, b), which reads input pixels at (a + i, b + j)."""
    (O, _, k2, _), (_, C, k1, _) = w2.shape, w1.shape
    out = torch.zeros(O, C, k1 + k2 - 1, k1 + k2 - 1, dtype=w1.dtype)
    for a in range(k2):
        for b in range(k2):
            # (O, M) x (M, C, k1, k1) -> (O, C, k1, k1), placed at offset (a, b)
            out[:, :, a:a + k1, b:b + k1] += torch.einsum("om,mcij->ocij", w2[:, :, a, b], w1)
    return out


def fft_image_fn(spectrum: Tensor, h: int, w: int) -> Tensor:
    """(B, 3, h, w//2+1, 2) real/imaginary spectrum -> (B, 3, h, w) RGB in [0, 1], as fv.optvis.fft_image."""
    import featviz as fv

    freqs = fv.optvis.param.rfft2d_freqs(h, w)                                 # (h, w//2+1) cycles per pixel
    scale = 1.0 / freqs.clamp(min=1.0 / max(h, w))                       # 1/f, the DC term capped
    coeffs = torch.view_as_complex(spectrum) * scale                     # (B, 3, h, w//2+1) complex
    pixels = torch.fft.irfft2(coeffs, s=(h, w), norm="ortho") / 4.0      # (B, 3, h, w)
    mixed = torch.einsum("ij,bjhw->bihw", fv.optvis.param.COLOR_CORRELATION, pixels)   # decorrelated -> RGB
    return torch.sigmoid(mixed)


def my_jitter(d: int):
    """A transform (x, generator) -> a random crop of x, d px smaller in each dimension."""
    def transform(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        h, w = x.shape[-2:]
        dy, dx = torch.randint(d + 1, (2,), generator=generator).tolist()
        return x[..., dy:dy + h - d, dx:dx + w - d]
    return transform


def smoothgrad(f, x: Tensor, target: int, n_samples: int = 16, sigma: float = 0.1, seed: int = 0,
               batch_size: int = 16) -> Tensor:
    """(1, 3, H, W) -> mean over n_samples of d f(x + sigma * noise)[target] / dx (Smilkov et al. 2017)."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((n_samples, *x.shape[1:]), generator=gen)       # (n, 3, H, W)
    total = torch.zeros_like(x)
    for chunk in noise.split(batch_size):
        noisy = (x + sigma * chunk).requires_grad_(True)
        (grad,) = torch.autograd.grad(f(noisy)[:, target].sum(), noisy)
        total += grad.sum(0, keepdim=True)
    return total / n_samples


def rank_correlation(a: Tensor, b: Tensor) -> float:
    """Spearman's rank correlation of two tensors (flattened): Pearson's r of their ranks."""
    ra = a.flatten().argsort().argsort().double()
    rb = b.flatten().argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


# ----------------------------------------------------------------------------- 06 beyond channels


def map_cosine(a: Tensor, b: Tensor) -> Tensor:
    """(N, C, h, w) x2 -> (N,): cosine similarity of each pair of whole maps (what fv.invert maximises)."""
    a, b = a.flatten(1), b.flatten(1)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def reconstruct(spatial: Tensor, directions: Tensor) -> Tensor:
    """(N, K, h, w), (K, C) -> (N, C, h, w): the factorization's approximation of the activations."""
    return torch.einsum("nkhw,kc->nchw", spatial, directions)


# ----------------------------------------------------------------------------- helpers


def show(name: str) -> None:
    """Print the source of the solution called ``name``.

    Example:
        >>> show("output_size")   # doctest: +ELLIPSIS
        def output_size(...
    """
    fn = getattr(sys.modules[__name__], name, None)
    if fn is None or name.startswith("_") or name == "show":
        names = [n for n, f in inspect.getmembers(sys.modules[__name__], inspect.isfunction)
                 if f.__module__ == __name__ and n != "show"]
        raise KeyError(f"no solution called {name!r}; solutions are: {', '.join(names)}")
    print(inspect.getsource(fn))


# ----------------------------------------------------------------------------- 07 explaining a photo


def top_channels(acts: Tensor, k: int) -> Tensor:
    """(C, H, W) -> (H, W, k): the k channels with the highest activation at each position, strongest first."""
    return acts.topk(k, dim=0).indices.permute(1, 2, 0)


def box_share(amap: Tensor, box: tuple[int, int, int, int]) -> float:
    """Fraction of the positive part of ``amap`` (h, w) inside ``box`` (top, left, bottom, right; exclusive)."""
    t, l, b, r = box
    pos = amap.clamp(min=0)
    return float(pos[t:b, l:r].sum() / pos.sum().clamp(min=1e-12))


def group_shares(spatial: Tensor, directions: Tensor, attr: Tensor) -> Tensor:
    """(K, h, w), (K, C), (C, h, w) -> (K,): the attribution shared among groups by their |part| of the
    reconstruction at each (channel, position)."""
    parts = (spatial[:, None] * directions[:, :, None, None]).abs()  # (K, C, h, w)
    return (parts / parts.sum(0).clamp(min=1e-12) * attr).sum((1, 2, 3))
