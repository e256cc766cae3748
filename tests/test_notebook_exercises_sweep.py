"""A teacher's sweep over every exercise of notebooks 01-07 (issue 25, item 7): for each exercise, 2-3
plausible wrong student answers that the older tests (test_notebook_exercises.py, _07.py,
test_notebook_checks_04.py) do not feed, each of which its check must reject with a hint that names the
mistake (``match``).

Every case is one row of ``CASES``: (id, check name, module, the wrong answer, the check's other arguments,
the diagnosis). ``C`` is notebooks/checks.py, ``S`` notebooks/solutions.py (notebook 04's checks live there).
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from exercise_helpers import load, rejects
from torch import nn

S = load("solutions")


# ----------------------------------------------------------------------------- 01 convolutions


def _windows_strides_swapped(x, k, s=1):
    (sx,) = x.stride()
    return x.as_strided(((x.shape[0] - k) // s + 1, k), (sx, s * sx))


def _conv_mirrored_kernel(x, w, stride=1):   # flips the columns only
    return S.conv2d_minimal(x, w.flip(-1), stride)


def _conv_ignores_stride(x, w, stride=1):
    return S.conv2d_minimal(x, w, 1)


def _conv_one_channel(x, w, stride=1):   # forgets to sum over the input channels: only channel 0
    return S.conv2d_minimal(x[:, :1], w[:, :1], stride)


def _maxpool_stride_1(x, k):
    return F.max_pool2d(x.contiguous(), k, stride=1)


def _avgpool(x, k):
    return F.avg_pool2d(x, k)


def _xavier(i, o, k):
    return nn.Parameter(nn.init.xavier_uniform_(torch.empty(o, i, k, k)))


def _bound_without_sqrt(i, o, k):
    return nn.Parameter((2 * torch.rand(o, i, k, k) - 1) / (i * k * k))


def _fixed_seed(i, o, k):
    torch.manual_seed(0)
    return nn.Parameter((2 * torch.rand(o, i, k, k) - 1) / math.sqrt(i * k * k))


def _train_lr_ignored(model, x, y, steps, lr):
    return S.train(model, x, y, steps, 1e-4)


def _train_no_step(model, x, y, steps, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        losses.append(loss.item())
    return losses


def _train_loss_after_step(model, x, y, steps, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        with torch.no_grad():
            losses.append(F.cross_entropy(model(x), y).item())
    return losses


def _permute_column_major(x, perm):
    return x.transpose(2, 3).flatten(2)[:, :, perm].reshape(x.shape[0], x.shape[1], x.shape[3],
                                                             x.shape[2]).transpose(2, 3)


def _permute_each_image(x, perm):
    return torch.stack([img.flatten(1)[:, torch.randperm(perm.numel())].reshape(img.shape) for img in x])


# ----------------------------------------------------------------------------- 02 hooks


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(6, 4)


_TINY = _Tiny()
_POOLED = torch.rand(6, generator=torch.Generator().manual_seed(2))
_LOGIT = float(_TINY.fc(_POOLED)[2].detach())
_ACTS = torch.randn(3, 5, 4, 6, generator=torch.Generator().manual_seed(3))


def _zero_hook_batch(channels):
    def hook(module, inputs, output):
        out = output.clone()
        out[channels] = 0                     # indexes the batch axis
        return out
    return hook


def _zero_hook_spatial(channels):
    def hook(module, inputs, output):
        out = output.clone()
        out[:, :, channels] = 0               # indexes rows
        return out
    return hook


def _expand_first_middle_channel_only(w1, w2):
    return S.expand_weights(w1[:1], w2[:, :1])


def _expand_conv2d(w1, w2):    # correlates w2 with w1 (F.conv2d) instead of placing shifted copies of w1
    k1 = w1.shape[-1]
    return F.conv2d(F.pad(w2, (k1 - 1,) * 4), w1.transpose(0, 1))


# ----------------------------------------------------------------------------- 03 feature visualization


def _jitter_same_offset(d):
    def transform(x, generator=None):
        h, w = x.shape[-2:]
        o = int(torch.randint(d + 1, (1,), generator=generator))
        return x[..., o:o + h - d, o:o + w - d]
    return transform


def _jitter_global_rng(d):
    def transform(x, generator=None):
        h, w = x.shape[-2:]
        dy, dx = torch.randint(d + 1, (2,)).tolist()
        return x[..., dy:dy + h - d, dx:dx + w - d]
    return transform


def _jitter_per_image(d):
    def transform(x, generator=None):
        h, w = x.shape[-2:]
        outs = []
        for img in x:
            dy, dx = torch.randint(d + 1, (2,), generator=generator).tolist()
            outs.append(img[..., dy:dy + h - d, dx:dx + w - d])
        return torch.stack(outs)
    return transform


def _fft_unclamped(spectrum, h, w):
    import featviz as fv

    scale = 1 / fv.optvis.param.rfft2d_freqs(h, w)
    pix = torch.fft.irfft2(torch.view_as_complex(spectrum) * scale, s=(h, w), norm="ortho") / 4
    return fv.optvis.param.to_rgb(pix)


def _fft_no_size(spectrum, h, w):
    import featviz as fv

    scale = 1 / fv.optvis.param.rfft2d_freqs(h, w).clamp(min=1 / max(h, w))
    pix = torch.fft.irfft2(torch.view_as_complex(spectrum) * scale, norm="ortho") / 4
    return fv.optvis.param.to_rgb(pix)


def _fft_no_sigmoid(spectrum, h, w):
    import featviz as fv

    scale = 1 / fv.optvis.param.rfft2d_freqs(h, w).clamp(min=1 / max(h, w))
    pix = torch.fft.irfft2(torch.view_as_complex(spectrum) * scale, s=(h, w), norm="ortho") / 4
    return torch.einsum("ij,bjhw->bihw", fv.optvis.param.COLOR_CORRELATION, pix)


def _contrast(kind):
    class Obj:
        def __init__(self, fn):
            self.fn = fn

        def __call__(self, acts):
            return self.fn(acts)

        def __repr__(self):
            return f"<{kind}>"

    def up(a):
        return a["blocks.4"][:, 5].mean((1, 2))

    def down(a):
        return a["blocks.4"][:, 0].mean((1, 2))

    return Obj({"sum": lambda a: up(a) + down(a), "ratio": lambda a: up(a) / down(a),
                "one channel": up}[kind])


# ----------------------------------------------------------------------------- 05 attribution


def _f(x):   # as in test_notebook_exercises.py: (B, 3, 8, 8) -> (B, 2)
    s = torch.tanh(3 * x).flatten(1)
    return torch.stack([s.sum(1), (s[:, ::2] * 2).sum(1) - x.flatten(1)[:, 1::3].sum(1)], 1)


_X = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def _gxi_all_logits(x, t):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_f(x).sum(), x)
    return x.detach() * g


def _gxi_probability(x, t):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_f(x).softmax(1)[0, t], x)
    return x.detach() * g


def _gxi_wrong_logit(x, t):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_f(x)[0, 1 - t], x)
    return x.detach() * g


def _ig(alphas_fn=None, scale=True, reduce="mean"):
    def ig(x, t, b, n, batch_size=8):
        alphas = alphas_fn(n)
        path = (b + alphas[:, None, None, None] * (x - b)).requires_grad_(True)
        (g,) = torch.autograd.grad(_f(path)[:, t].sum(), path)
        g = g.mean(0, keepdim=True) if reduce == "mean" else g.sum(0, keepdim=True)
        return (x - b) * g if scale else g
    return ig


def _mid(n):
    return (torch.arange(n) + 0.5) / n


def _smoothgrad_one_noise(f, x, t, n, s, seed):
    gen = torch.Generator().manual_seed(seed)
    noisy = (x + s * torch.randn(x.shape, generator=gen)).repeat(n, 1, 1, 1).requires_grad_(True)
    (g,) = torch.autograd.grad(f(noisy)[:, t].sum(), noisy)
    return g.mean(0, keepdim=True)


def _smoothgrad_times_input(f, x, t, n, s, seed):
    return S.smoothgrad(f, x, t, n, s, seed) * x


def _smoothgrad_squared(f, x, t, n, s, seed):
    gen = torch.Generator().manual_seed(seed)
    noisy = (x + s * torch.randn((n, *x.shape[1:]), generator=gen)).requires_grad_(True)
    (g,) = torch.autograd.grad(f(noisy)[:, t].sum(), noisy)
    return (g ** 2).mean(0, keepdim=True)


def _rank_rows(a, b):   # ranks along the last axis only (no flatten)
    ra, rb = a.argsort(-1).argsort(-1).double().flatten(), b.argsort(-1).argsort(-1).double().flatten()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def _rank_descending_one(a, b):
    ra = a.flatten().argsort(descending=True).argsort().double()
    rb = b.flatten().argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


# ----------------------------------------------------------------------------- 04 (solutions.py)


def _rf_jump_first(layers, position=0):
    size, jump, centre = 1, 1, 0.0
    for k, s, p in layers:
        jump *= s
        size += (k - 1) * jump
        centre += ((k - 1) / 2 - p) * jump
    return size, centre + position * jump


def _rf_pad_after(layers, position=0):   # moves the centre FORWARD by the padding
    size, jump, centre = 1, 1, 0.0
    for k, s, p in layers:
        size += (k - 1) * jump
        centre += ((k - 1) / 2 + p) * jump
        jump *= s
    return size, centre + position * jump


def _osi_no_rectify_abs(r, angles):
    r = torch.as_tensor(r, dtype=torch.float32)
    a = 2 * torch.deg2rad(torch.as_tensor(angles, dtype=torch.float32)).reshape(-1, *([1] * (r.dim() - 1)))
    return torch.sqrt((r * a.cos()).sum(0) ** 2 + (r * a.sin()).sum(0) ** 2) / r.abs().sum(0)


def _osi_cos_only(r, angles):
    r = torch.as_tensor(r, dtype=torch.float32).clamp_min(0)
    a = 2 * torch.deg2rad(torch.as_tensor(angles, dtype=torch.float32)).reshape(-1, *([1] * (r.dim() - 1)))
    return (r * a.cos()).sum(0).abs() / r.sum(0)


def _osi_max_min(r, angles):
    r = torch.as_tensor(r, dtype=torch.float32).clamp_min(0)
    return (r.amax(0) - r.amin(0)) / (r.amax(0) + r.amin(0))


def _gratings_image_centre(model, layer, angles, size=64, freq=0.25, n_phases=8):
    import featviz as fv

    rf = fv.circuits.receptive_field(model, layer, size=size)
    phases = [360 * k / n_phases for k in range(n_phases)]
    images = fv.data.gratings(list(angles), size=size, freq=freq, phases=phases)   # image centre
    with torch.no_grad():
        _, cache = fv.hooked(model).run_with_cache(model.preprocess(images), names=[layer], stop_at_last=True)
    i, j = rf.position
    return cache[layer][:, :, i, j].reshape(len(angles), n_phases, -1).mean(1)


def _gratings_max_phase(model, layer, angles, size=64, freq=0.25, n_phases=8):
    import featviz as fv

    rf = fv.circuits.receptive_field(model, layer, size=size)
    phases = [360 * k / n_phases for k in range(n_phases)]
    images = fv.data.gratings(list(angles), size=size, freq=freq, phases=phases, center=rf.center)
    with torch.no_grad():
        _, cache = fv.hooked(model).run_with_cache(model.preprocess(images), names=[layer], stop_at_last=True)
    i, j = rf.position
    return cache[layer][:, :, i, j].reshape(len(angles), n_phases, -1).amax(1)


def _fold_weight_bias_scaled(w, bn):
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (w * scale[:, None, None, None]).detach(), ((bn.bias - bn.running_mean) * scale).detach()


def _fold_std_multiplied(w, bn):
    scale = bn.weight * torch.sqrt(bn.running_var + bn.eps)
    return (w * scale[:, None, None, None]).detach(), (bn.bias - bn.running_mean * scale).detach()


def _wiring_negated(weights, k):   # offset = centre - index
    ch = weights.shape[-1] // 2
    return sorted((int(c), ch - int(i), ch - int(j), float(weights[k, c, i, j]))
                  for c, i, j in torch.nonzero(weights[k]).tolist())


def _wiring_argmax_only(weights, k):
    ch = weights.shape[-1] // 2
    flat = int(weights[k].abs().argmax())
    c, rem = divmod(flat, weights.shape[-1] * weights.shape[-2])
    i, j = divmod(rem, weights.shape[-1])
    return [(c, i - ch, j - ch, float(weights[k, c, i, j]))]


# ----------------------------------------------------------------------------- 06 / 07


def _reconstruct_mean(s, d):
    return torch.einsum("nkhw,kc->nchw", s, d) / s.shape[1]


def _reconstruct_first_group(s, d):
    return s[:, :1] * d[0][None, :, None, None]


def _cosine_distance(a, b):
    return 1 - F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


def _cosine_squared_norms(a, b):
    a, b = a.flatten(1), b.flatten(1)
    return (a * b).sum(1) / (a.norm(dim=1) ** 2 * b.norm(dim=1) ** 2)


def _top_one_based(a, k):
    return a.topk(k, dim=0).indices.permute(1, 2, 0) + 1


def _top_spatial_transposed(a, k):
    return a.topk(k, dim=0).indices.permute(2, 1, 0)


def _box_xy(m, box):   # reads the box as (left, top, right, bottom)
    t, l, b, r = box
    p = m.clamp(min=0)
    return float(p[l:r, t:b].sum() / p.sum())


def _box_over_abs_total(m, box):
    t, l, b, r = box
    return float(m.clamp(min=0)[t:b, l:r].sum() / m.abs().sum())


def _groups_spatial_only(s, d, a):
    parts = s[:, None].abs().expand(-1, d.shape[1], -1, -1)
    return (parts / parts.sum(0) * a).sum((1, 2, 3))


def _groups_unweighted(s, d, a):
    return (a.sum() / s.shape[0]).repeat(s.shape[0])


_GROUPS = SimpleNamespace(   # only the small signed case runs before these wrong answers fail
    factorization=SimpleNamespace(spatial=torch.rand(1, 3, 2, 2), directions=torch.rand(3, 4)),
    attribution=torch.zeros(3))


# ----------------------------------------------------------------------------- the table

CASES = [
    # 01 Ex1 output size
    ("01-1 ceil", "check_output_size", "C", lambda L, k, s=1, p=0: math.ceil((L + 2 * p - k) / s) + 1, (),
     "Round DOWN"),
    ("01-1 no stride", "check_output_size", "C", lambda L, k, s=1, p=0: L + 2 * p - k + 1, (),
     "divide by the stride"),
    ("01-1 minus padding", "check_output_size", "C", lambda L, k, s=1, p=0: (L - 2 * p - k) // s + 1, (),
     "Padding ADDS"),
    # 01 Ex2 sliding windows
    ("01-2 strides swapped", "check_sliding_windows_1d", "C", _windows_strides_swapped, (),
     "strides are swapped"),
    ("01-2 stride ignored", "check_sliding_windows_1d", "C", lambda x, k, s=1: x.unfold(0, k, 1), (),
     r"\(L - k\) // stride \+ 1"),
    # 01 Ex3 conv2d
    ("01-3 stride ignored", "check_conv2d_minimal", "C", _conv_ignores_stride, (), r"// s \+ 1"),
    ("01-3 first input channel", "check_conv2d_minimal", "C", _conv_one_channel, (),
     "sum over EVERY input channel"),
    ("01-3 kernel mirrored left-right", "check_conv2d_minimal", "C", _conv_mirrored_kernel, (),
     "mirrored the kernel"),
    # 01 Ex4 maxpool
    ("01-4 stride 1", "check_maxpool2d_minimal", "C", _maxpool_stride_1, (), "do not overlap"),
    ("01-4 average", "check_maxpool2d_minimal", "C", _avgpool, (), "You averaged"),
    # 01 Ex5 conv weight
    ("01-5 xavier", "check_conv2d_weight", "C", None, ("layer", _xavier), "Glorot"),
    ("01-5 1/N", "check_conv2d_weight", "C", None, ("layer", _bound_without_sqrt), "not by sqrt"),
    ("01-5 fixed seed", "check_conv2d_weight", "C", None, ("layer", _fixed_seed), "same weights"),
    # 01 Ex6 parameter counts
    ("01-6 k not squared", "check_n_params", "C", lambda i, o, k, bias=True: o * i * k + (o if bias else 0),
     ("linear",), "k x k"),
    ("01-6 bias ignores flag", "check_n_params", "C", lambda i, o, k, bias=True: o * i * k * k + o,
     ("linear",),
     "bias=False"),
    ("01-6 linear transposed bias", "check_n_params", "C", None,
     ("conv", lambda i, o, bias=True: i * o + (i if bias else 0)),
     "OUTPUT feature"),
    # 01 Ex7 same padding
    ("01-7 not halved", "check_same_padding", "C", lambda k, d=1: d * (k - 1), (), "BOTH sides"),
    ("01-7 k // 2 without dilation", "check_same_padding", "C", lambda k, d=1: k // 2, (),
     r"d \* \(k - 1\) // 2"),
    # 01 Ex8 permute / train
    ("01-8 column-major", "check_permute_pixels", "C", _permute_column_major, (), "column-major"),
    ("01-8 new permutation per image", "check_permute_pixels", "C", _permute_each_image, (), "the SAME perm"),
    ("01-8 lr ignored", "check_train", "C", _train_lr_ignored, (), "lr=lr"),
    ("01-8 no optimizer.step", "check_train", "C", _train_no_step, (), r"optimizer\.step"),
    ("01-8 loss after the step", "check_train", "C", _train_loss_after_step, (), "BEFORE optimizer.step"),
    # 02 Ex1 mean hook
    ("02-1 list of means", "check_mean_hook", "C", None, ("store", {"means": [_ACTS.mean((2, 3))]}),
     "tensor"),
    ("02-1 mean over channels and rows", "check_mean_hook", "C", None,
     ("store", {"means": _ACTS.mean((1, 2))}),
     "averaged over the channels"),
    ("02-1 squared", "check_mean_hook", "C", None, ("store", {"means": (_ACTS ** 2).mean((2, 3))}),
     "averaged the squares"),
    # 02 Ex2 direct contributions
    ("02-2 whole bias in every term", "check_direct_contributions", "C",
     lambda p, k: p * _TINY.fc.weight[k] + _TINY.fc.bias[k], ("dc",), "once"),
    ("02-2 another class's row", "check_direct_contributions", "C",
     lambda p, k: p * _TINY.fc.weight[k - 1], ("dc",), "class 1"),
    ("02-2 logits", "check_direct_contributions", "C", lambda p, k: _TINY.fc(p), ("dc",),
     "one number per CLASS"),
    # 02 Ex3 zero hook
    ("02-3 batch axis", "check_zero_hook", "C", None, ("zero", _zero_hook_batch), "channels are dim 1"),
    ("02-3 rows", "check_zero_hook", "C", None, ("zero", _zero_hook_spatial), "channels are dim 1"),
    # 02 Ex4 expanded weights
    ("02-4 one middle channel", "check_expand_weights", "C", _expand_first_middle_channel_only, (),
     "every middle channel"),
    ("02-4 correlation of kernels", "check_expand_weights", "C", _expand_conv2d, (), "is flipped"),
    ("02-4 size k1 + k2", "check_expand_weights", "C",
     lambda w1, w2: F.pad(S.expand_weights(w1, w2), (0, 1, 0, 1)), (), r"k1 \+ k2 - 1"),
    # 03 Ex1 channel objective
    ("03-1 negative", "check_channel_objective", "C", lambda a, l, c: -a[l][:, c].mean((1, 2)), (),
     "MAXIMISED"),
    ("03-1 batch axis", "check_channel_objective", "C", lambda a, l, c: a[l][c].mean((1, 2)), (),
     r"dim 1: acts\[layer\]\[:, c\]"),
    ("03-1 max", "check_channel_objective", "C", lambda a, l, c: a[l][:, c].amax((1, 2)), (),
     "took the maximum"),
    # 03 Ex2 contrast
    ("03-2 sum", "check_contrast", "C", None, ("contrast", "sum"), "added channel"),
    ("03-2 ratio", "check_contrast", "C", None, ("contrast", "ratio"), "divided"),
    ("03-2 one channel", "check_contrast", "C", None, ("contrast", "one channel"), "only channel 5"),
    # 03 Ex3 fft
    ("03-3 1/f unclamped", "check_fft_image", "C", _fft_unclamped, (), "zero frequency"),
    ("03-3 no output size", "check_fft_image", "C", _fft_no_size, (), r"s=\(h, w\)"),
    ("03-3 no sigmoid", "check_fft_image", "C", _fft_no_sigmoid, (), r"outside \[0, 1\]"),
    # 03 Ex4 jitter
    ("03-4 dy == dx", "check_jitter", "C", _jitter_same_offset, (), "independently"),
    ("03-4 global RNG", "check_jitter", "C", _jitter_global_rng, (), "generator"),
    ("03-4 per image", "check_jitter", "C", _jitter_per_image, (), "same offset for every image"),
    # 04 Ex1 receptive field
    ("04-1 jump updated first", "check_receptive_field_1d", "S", _rf_jump_first, (), "AFTER"),
    ("04-1 padding added", "check_receptive_field_1d", "S", _rf_pad_after, (), "subtract pad_before"),
    # 04 Ex2 OSI and gratings
    ("04-2 |r| in the denominator", "check_orientation_selectivity", "S", _osi_no_rectify_abs, (), "rectify"),
    ("04-2 cosine only", "check_orientation_selectivity", "S", _osi_cos_only, (), "sine part"),
    ("04-2 max-min index", "check_orientation_selectivity", "S", _osi_max_min, (), "vector sum"),
    ("04-2 image centre", "check_grating_responses", "S", _gratings_image_centre, ("model",), "IMAGE centre"),
    ("04-2 max over phases", "check_grating_responses", "S", _gratings_max_phase, ("model",),
     "maximum over the phases"),
    # 04 Ex3 fold
    ("04-3 bias scaled whole", "check_fold_batchnorm", "S", _fold_weight_bias_scaled, ("stem",),
     "only the mean"),
    ("04-3 std multiplied", "check_fold_batchnorm", "S", _fold_std_multiplied, ("stem",), "not multiply"),
    # 04 Ex4 wiring
    ("04-4 offsets negated", "check_read_wiring", "S", _wiring_negated, ("toy",), "negated"),
    ("04-4 strongest only", "check_read_wiring", "S", _wiring_argmax_only, ("toy",), "only the strongest"),
    # 05 Ex1 grad x input
    ("05-1 all logits", "check_grad_times_input", "C", _gxi_all_logits, ("f",), "sum of all logits"),
    ("05-1 probability", "check_grad_times_input", "C", _gxi_probability, ("f",), "softmax probability"),
    ("05-1 other logit", "check_grad_times_input", "C", _gxi_wrong_logit, ("f",), "logit 0"),
    # 05 Ex2 IG
    ("05-2 left Riemann", "check_integrated_gradients", "C", _ig(lambda n: torch.arange(n) / n), ("ig",),
     "left Riemann"),
    ("05-2 no (x - baseline)", "check_integrated_gradients", "C", _ig(_mid, scale=False), ("ig",),
     "not yet multiplied"),
    ("05-2 sum of gradients", "check_integrated_gradients", "C", _ig(_mid, reduce="sum"), ("ig",),
     "sums the"),
    # 05 Ex3 SmoothGrad
    ("05-3 one noise draw", "check_smoothgrad", "C", _smoothgrad_one_noise, (), "NEW noise"),
    ("05-3 times input", "check_smoothgrad", "C", _smoothgrad_times_input, (), "multiplied by the input"),
    ("05-3 squared", "check_smoothgrad", "C", _smoothgrad_squared, (), "signed"),
    # 05 Ex4 rank correlation
    ("05-4 no flatten", "check_rank_correlation", "C", _rank_rows, (), "flatten both"),
    ("05-4 one descending", "check_rank_correlation", "C", _rank_descending_one, (), "same direction"),
    # 06
    ("06-1 mean over groups", "check_reconstruct", "C", _reconstruct_mean, (), "averaged over the"),
    ("06-1 first group", "check_reconstruct", "C", _reconstruct_first_group, (), "only group 0"),
    ("06-2 distance", "check_map_cosine", "C", _cosine_distance, (), "DISTANCE"),
    ("06-2 squared norms", "check_map_cosine", "C", _cosine_squared_norms, (), "not their squares"),
    # 07
    ("07-1 one-based", "check_top_channels", "C", _top_one_based, (), "start at 0"),
    ("07-1 H and W swapped", "check_top_channels", "C", _top_spatial_transposed, (), r"permute\(1, 2, 0\)"),
    ("07-2 (left, top) order", "check_box_share", "C", _box_xy, (), r"\(top, left, bottom, right\)"),
    ("07-2 over |total|", "check_box_share", "C", _box_over_abs_total, (), "total POSITIVE"),
    ("07-3 spatial only", "check_group_shares", "C", _groups_spatial_only, ("groups",), "its direction"),
    ("07-3 equal shares", "check_group_shares", "C", _groups_unweighted, ("groups",), "the same share"),
]


@pytest.fixture(scope="module")
def lite0():
    import featviz as fv

    return fv.models.efficientnet_lite0()


def _call_args(wrong, extra, request):
    """The check's positional arguments for a case."""
    if not extra:
        return (wrong,)
    tag = extra[0]
    if tag == "layer":
        weight_fn = extra[1]

        class Layer(nn.Module):
            def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
                super().__init__()
                self.weight = weight_fn(in_channels, out_channels, kernel_size)

        return (Layer,)
    if tag == "linear":
        return (wrong, S.n_params_linear)
    if tag == "conv":
        return (S.n_params_conv, extra[1])
    if tag == "store":
        return (extra[1], _ACTS, _TINY)
    if tag == "dc":
        return (wrong, _TINY, _POOLED, 2, _LOGIT)
    if tag == "zero":
        import featviz as fv

        hm = fv.hooked(request.getfixturevalue("lite0"))
        return (extra[1]([3, 7]), [3, 7], hm, torch.rand(1, 3, 64, 64))
    if tag == "contrast":
        return (_contrast(extra[1]), "blocks.4", 5, 0)
    if tag == "model":
        return (wrong, request.getfixturevalue("lite0"), "blocks.1.depthwise_relu")
    if tag == "stem":
        m = request.getfixturevalue("lite0")
        x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        return (wrong, m.stem.conv, m.stem.bn, m.preprocess(x))
    if tag == "toy":
        import featviz as fv

        toy = fv.models.toy.edges_and_curves()
        return (wrong, fv.circuits.weights(toy, "relu1", "conv2"), toy.ground_truth["conv2"])
    if tag == "f":
        return (wrong, _f, _X, 1)
    if tag == "ig":
        return (wrong, _f, _X, 1, 16)
    if tag == "groups":
        return (wrong, _GROUPS, torch.zeros(4, 2, 2))
    raise KeyError(tag)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_wrong_answer_is_rejected_with_its_diagnosis(case, C, request):
    name, check, module, wrong, extra, match = case
    checks = C if module == "C" else S
    args = _call_args(wrong, extra, request)
    with torch.no_grad() if check == "check_zero_hook" else torch.enable_grad():
        rejects(getattr(checks, check), *args, match=match)
