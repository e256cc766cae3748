"""Exercise checks of notebooks 01, 02, 03 and 05 (notebooks/checks.py): each accepts the reference solution
(notebooks/solutions.py) and rejects a plausible wrong answer with a message that says what is wrong."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from exercise_helpers import load, rejects
from torch import nn

_load, _rejects = load, rejects


# ----------------------------------------------------------------------------- 01


def test_01_solutions_pass(C, S):
    C.check_output_size(S.output_size)
    C.check_sliding_windows_1d(S.sliding_windows_1d)
    C.check_conv2d_minimal(S.conv2d_minimal)
    C.check_maxpool2d_minimal(S.maxpool2d_minimal)
    C.check_n_params(S.n_params_conv, S.n_params_linear)
    C.check_same_padding(S.same_padding)
    C.check_permute_pixels(S.permute_pixels)
    C.check_train(S.train)


def test_01_output_size_without_floor(C):
    _rejects(C.check_output_size, lambda L, k, s=1, p=0: (L + 2 * p - k) / s + 1, match="floor division")
    _rejects(C.check_output_size, lambda L, k, s=1, p=0: (L + p - k) // s + 1, match="BOTH sides")


def test_01_sliding_windows_with_hard_coded_stride(C):
    def contiguous_only(x, k, s=1):
        return x.as_strided(((x.shape[0] - k) // s + 1, k), (s, 1))

    msg = _rejects(C.check_sliding_windows_1d, contiguous_only, match="memory stride")
    assert "x.stride()" in msg


def test_01_sliding_windows_copy(C):
    _rejects(C.check_sliding_windows_1d, lambda x, k, s=1: x.unfold(0, k, s).clone(), match="view")


def test_01_conv2d_with_strides_from_the_shape(C):
    def from_shape(x, w, stride=1):
        B, Cc, H, W = x.shape
        O, _, kh, kw = w.shape
        sB, sC, sH, sW = Cc * H * W, H * W, W, 1          # assumes a contiguous x
        Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
        win = x.as_strided((B, Cc, Ho, Wo, kh, kw), (sB, sC, sH * stride, sW * stride, sH, sW))
        return torch.einsum("bchwij,ocij->bohw", win, w)

    msg = _rejects(C.check_conv2d_minimal, from_shape, match="x.contiguous")
    assert "x.stride()" in msg


def test_01_maxpool_non_contiguous(C):
    def from_shape(x, k):
        B, Cc, H, W = x.shape
        win = x.as_strided((B, Cc, H // k, W // k, k, k), (Cc * H * W, H * W, W * k, k, W, 1))
        return win.amax((-2, -1))

    _rejects(C.check_maxpool2d_minimal, from_shape, match="not contiguous")


def test_01_n_params_messages(C, S):
    _rejects(C.check_n_params, lambda i, o, k, bias=True: o * i * k * k, S.n_params_linear, match="bias")
    _rejects(C.check_n_params, lambda i, o, k, bias=True: o * i * k * k + (i if bias else 0),
             S.n_params_linear, match="OUTPUT channel")
    _rejects(C.check_n_params, S.n_params_conv, lambda i, o, bias=True: i * o + i, match="OUTPUT feature")


def test_01_same_padding_ignoring_dilation(C):
    _rejects(C.check_same_padding, lambda k, d=1: (k - 1) // 2, match="dilated")


def test_01_permute_pixels_across_channels(C):
    def channels_last(x, perm):   # flattens (H*W, C) and permutes the wrong axis
        B, Cc, H, W = x.shape
        return x.reshape(B, H * W, Cc)[:, perm].reshape(x.shape)

    _rejects(C.check_permute_pixels, channels_last, match="between channels")

    def inverse(x, perm):
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(len(perm))
        return x.flatten(2)[:, :, inv].reshape(x.shape)

    _rejects(C.check_permute_pixels, inverse, match="inverse")


def test_01_train_that_does_not_train(C):
    _rejects(C.check_train, lambda model, x, y, steps, lr: [1.0] * steps, match="did not change")
    _rejects(C.check_train, lambda model, x, y, steps, lr: None, match="per-step losses")


# ----------------------------------------------------------------------------- 02


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(6, 4)


def test_02_mean_hook_messages(C):
    model = _Tiny()
    ref = torch.randn(3, 5, 4, 4)
    C.check_mean_hook({"means": ref.mean((2, 3))}, ref, model)
    _rejects(C.check_mean_hook, {}, ref, model, match="did the hook run")
    _rejects(C.check_mean_hook, {"means": ref.mean((0, 2, 3))}, ref, model, match="over the batch")
    _rejects(C.check_mean_hook, {"means": ref.amax((2, 3))}, ref, model, match="differs")


def test_02_direct_contributions(C, S):
    model = _Tiny()
    pooled = torch.rand(6)
    logit = float(model.fc(pooled)[2].detach())
    C.check_direct_contributions(lambda p, k: S.direct_contributions(model, p, k), model, pooled, 2, logit)
    _rejects(C.check_direct_contributions, lambda p, k: p * model.fc.weight[k] + model.fc.bias[k] / 6, model,
             pooled, 2, logit, match="bias")
    _rejects(C.check_direct_contributions, lambda p, k: p * 2, model, pooled, 2, logit, match="add up")


@pytest.fixture(scope="module")
def hooked_lite0():
    import featviz as fv

    model = fv.models.efficientnet_lite0()
    return fv.hooked(model), torch.rand(1, 3, 64, 64)


def test_02_zero_hook_in_place_is_rejected(C, S, hooked_lite0):
    hm, x = hooked_lite0
    with torch.no_grad():
        C.check_zero_hook(lambda m, i, o: S.zero_channels(o, [3, 7]), [3, 7], hm, x)

        def in_place(module, inputs, output):
            output[:, [3, 7]] = 0
            return output

        _rejects(C.check_zero_hook, in_place, [3, 7], hm, x, match="in place")
        _rejects(C.check_zero_hook, lambda m, i, o: None, [3, 7], hm, x, match="returned None")


def test_02_expand_weights(C, S):
    C.check_expand_weights(S.expand_weights)
    _rejects(C.check_expand_weights, lambda w1, w2: S.expand_weights(w1, w2).flip(-1, -2), match="flipped")


def test_expand_weights_is_the_jacobian(S):
    w1, w2 = torch.randn(4, 3, 3, 3), torch.randn(2, 4, 3, 3)
    x = torch.zeros(1, 3, 5, 5, requires_grad=True)
    (g,) = torch.autograd.grad(F.conv2d(F.conv2d(x, w1), w2)[0, 1, 0, 0], x)
    assert torch.allclose(g[0], S.expand_weights(w1, w2)[1], atol=1e-5)


# ----------------------------------------------------------------------------- 03


def test_03_solutions_pass(C, S):
    import featviz as fv

    C.check_channel_objective(S.channel_objective)
    C.check_contrast(S.contrast_objective("blocks.4", 5, 0), "blocks.4", 5, 0)
    C.check_fft_image(S.fft_image_fn)
    C.check_jitter(S.my_jitter)
    _rejects(C.check_contrast, fv.objectives.channel("blocks.4", 0) - fv.objectives.channel("blocks.4", 5),
             "blocks.4", 5, 0, match="sign")


def test_03_fft_without_scale_or_decorrelation(C):
    import featviz as fv

    def no_scale(spectrum, h, w):
        pix = torch.fft.irfft2(torch.view_as_complex(spectrum), s=(h, w), norm="ortho") / 4
        return fv.optvis.param.to_rgb(pix)

    def no_colour(spectrum, h, w):
        scale = 1 / fv.optvis.param.rfft2d_freqs(h, w).clamp(min=1 / max(h, w))
        pix = torch.fft.irfft2(torch.view_as_complex(spectrum) * scale, s=(h, w), norm="ortho") / 4
        return torch.sigmoid(pix)

    _rejects(C.check_fft_image, no_scale, match="1 / max")
    _rejects(C.check_fft_image, no_colour, match="COLOR_CORRELATION")


def test_03_jitter_not_random(C):
    _rejects(C.check_jitter, lambda d: (lambda x, generator=None: x[..., d:, d:]), match="offsets")
    _rejects(C.check_jitter, lambda d: (lambda x, generator=None: x[..., :-d, :-d] * 1.0 + 0 * x[..., d:, d:]
                                        if False else F.interpolate(x, size=(12, 12))), match="not a crop")


# ----------------------------------------------------------------------------- 05


def _f(x):   # a small nonlinear "classifier": (B, 3, 8, 8) -> (B, 2)
    s = torch.tanh(3 * x).flatten(1)
    return torch.stack([s.sum(1), (s[:, ::2] * 2).sum(1) - x.flatten(1)[:, 1::3].sum(1)], 1)


def test_05_integrated_gradients_ignoring_the_baseline(C, S):
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))

    def ours(xx, t, b, n, batch_size=8):
        return S.integrated_gradients(_f, xx, t, b, n, batch_size)

    C.check_integrated_gradients(ours, _f, x, 1, 16)

    def ignores_baseline(xx, t, b, n, batch_size=8):
        return S.integrated_gradients(_f, xx, t, torch.zeros_like(xx), n, batch_size)

    _rejects(C.check_integrated_gradients, ignores_baseline, _f, x, 1, 16, match="black-baseline")

    def starts_at_zero_times_delta(xx, t, b, n, batch_size=8):
        return S.integrated_gradients(_f, xx, t, torch.zeros_like(xx), n, batch_size) * (xx - b) / xx

    _rejects(C.check_integrated_gradients, starts_at_zero_times_delta, _f, x, 1, 16, match="baseline")


def test_05_grad_times_input(C, S):
    x = torch.rand(1, 3, 8, 8)
    C.check_grad_times_input(lambda xx, t: S.grad_times_input(_f, xx, t), _f, x, 1)

    def grad_only(xx, t):
        xx = xx.clone().requires_grad_(True)
        return torch.autograd.grad(_f(xx)[0, t], xx)[0]

    _rejects(C.check_grad_times_input, grad_only, _f, x, 1, match="multiply by the input")


def test_05_smoothgrad(C, S):
    C.check_smoothgrad(S.smoothgrad)
    _rejects(C.check_smoothgrad, lambda f, x, t, n, s, seed: S.smoothgrad(f, x, t, n, 0.0, seed),
             match="plain gradient")
    _rejects(C.check_smoothgrad, lambda f, x, t, n, s, seed: S.smoothgrad(f, x, t, n, s, seed) * n,
             match="average")
    _rejects(C.check_smoothgrad, lambda f, x, t, n, s, seed: S.smoothgrad(f, x, t, n, s ** 2, seed),
             match="not sigma\\*\\*2")


def _smoothgrad_abs_before_mean(f, x, target, n_samples=16, sigma=0.1, seed=0):
    """Issue 25's wrong answer: |gradient| of every noisy copy, then the mean (the notebook then called it
    'smoother', reversing its conclusion)."""
    gen = torch.Generator().manual_seed(seed)
    noisy = (x + sigma * torch.randn((n_samples, *x.shape[1:]), generator=gen)).requires_grad_(True)
    (grad,) = torch.autograd.grad(f(noisy)[:, target].sum(), noisy)
    return grad.abs().mean(0, keepdim=True)


def test_05_smoothgrad_abs_before_the_mean_is_rejected(C):
    msg = _rejects(C.check_smoothgrad, _smoothgrad_abs_before_mean, match="changes sign")
    assert "signed" in msg


def test_05_smoothgrad_check_answer_is_the_gaussian_expectation():
    # independent of the check: E[cos(x + s e)] = cos(x) exp(-s^2 / 2), by quadrature over e
    x, s = torch.tensor([0.3, 2.0, -1.1], dtype=torch.float64), 1.5
    e = torch.linspace(-8, 8, 4001, dtype=torch.float64)
    w = torch.exp(-e ** 2 / 2) / math.sqrt(2 * math.pi) * (e[1] - e[0])
    quad = (torch.cos(x[:, None] + s * e[None]) * w).sum(1)
    assert torch.allclose(quad, x.cos() * math.exp(-s ** 2 / 2), atol=1e-6)


def test_05_rank_correlation(C, S):
    C.check_rank_correlation(S.rank_correlation)

    def pearson(a, b):
        return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])

    _rejects(C.check_rank_correlation, pearson, match="RANKS")


# ------------------------------------------------------------------------- issue 25: the last wrong answers


def _conv_layer(weight_fn):
    class Layer(nn.Module):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
            super().__init__()
            self.weight = weight_fn(in_channels, out_channels, kernel_size)

    return Layer


def test_01_conv2d_weight_accepts_pytorchs_default(C, S):
    C.check_conv2d_weight(_conv_layer(S.conv2d_weight))

    def torch_default(i, o, k):   # PyTorch: kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(N_in))
        return nn.Conv2d(i, o, k, bias=False).weight

    C.check_conv2d_weight(_conv_layer(torch_default))


def test_01_conv2d_weight_names_he_and_the_normal_mistakes(C):
    def he(i, o, k):
        return nn.Parameter(math.sqrt(6 / (i * k * k)) * (2 * torch.rand(o, i, k, k) - 1))

    msg = _rejects(C.check_conv2d_weight, _conv_layer(he), match="He's bound")
    assert "1 / sqrt(N_in)" in msg

    def clipped_normal(i, o, k):
        b = 1 / math.sqrt(i * k * k)
        return nn.Parameter((b * torch.randn(o, i, k, k)).clamp(-b, b))

    _rejects(C.check_conv2d_weight, _conv_layer(clipped_normal), match="not uniform")

    def truncated_normal(i, o, k):
        b = 1 / math.sqrt(i * k * k)
        return nn.Parameter(nn.init.trunc_normal_(torch.empty(o, i, k, k), std=b / 2, a=-b, b=b))

    _rejects(C.check_conv2d_weight, _conv_layer(truncated_normal), match="not uniform")

    def normal(i, o, k):
        return nn.Parameter(torch.randn(o, i, k, k) / math.sqrt(i * k * k))

    _rejects(C.check_conv2d_weight, _conv_layer(normal), match="torch.randn")

    def rand_only(i, o, k):
        return nn.Parameter(torch.rand(o, i, k, k) / math.sqrt(i * k * k))

    _rejects(C.check_conv2d_weight, _conv_layer(rand_only), match="mean")

    def out_channels(i, o, k):
        return nn.Parameter((2 * torch.rand(o, i, k, k) - 1) / math.sqrt(o * k * k))

    _rejects(C.check_conv2d_weight, _conv_layer(out_channels), match="out_channels")

    def tensor_not_parameter(i, o, k):
        return (2 * torch.rand(o, i, k, k) - 1) / math.sqrt(i * k * k)

    _rejects(C.check_conv2d_weight, _conv_layer(tensor_not_parameter), match="nn.Parameter")


def test_01_same_padding_hint_gives_the_dilated_formula(C):
    msg = _rejects(C.check_same_padding, lambda k, d=1: (d * k - 1) // 2, match="dilation")
    assert "d * (k - 1) // 2" in msg and "Pad (k - 1) // 2" not in msg
    msg = _rejects(C.check_same_padding, lambda k, d=1: (k - 1) // 2, match="undilated")
    assert "d * (k - 1) // 2" in msg


def test_01_conv2d_flipped_kernel(C, S):
    def flipped(x, w, stride=1):
        return S.conv2d_minimal(x, w.flip(-1, -2), stride)

    _rejects(C.check_conv2d_minimal, flipped, match="flipped the kernel")


def _train_with(optimizer_cls, loss_fn, zero_grad=True):
    def train(model, x, y, steps, lr):
        opt = optimizer_cls(model.parameters(), lr=lr)
        losses = []
        for _ in range(steps):
            loss = loss_fn(model(x), y)
            if zero_grad:
                opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    return train


def test_01_train_without_zero_grad_is_rejected(C):
    msg = _rejects(C.check_train, _train_with(torch.optim.SGD, F.cross_entropy, zero_grad=False),
                   match="zero_grad")
    assert "ADDS" in msg
    C.check_train(_train_with(torch.optim.SGD, F.cross_entropy))          # SGD with zero_grad is fine


def test_01_train_with_mse_on_probabilities_is_rejected(C):
    def mse(logits, y):
        return F.mse_loss(logits.softmax(1), F.one_hot(y, 2).float())

    _rejects(C.check_train, _train_with(torch.optim.Adam, mse), match="mean squared error")

    def softmax_then_ce(logits, y):
        return F.cross_entropy(logits.softmax(1), y)

    _rejects(C.check_train, _train_with(torch.optim.Adam, softmax_then_ce), match="takes the logits")


def test_02_mean_hook_diagnoses_sum_max_and_inputs(C):
    model = _Tiny()
    ref = torch.randn(3, 5, 4, 6)
    _rejects(C.check_mean_hook, {"means": ref.sum((2, 3))}, ref, model, match="summed over the 24 positions")
    msg = _rejects(C.check_mean_hook, {"means": ref.amax((2, 3))}, ref, model, match="maximum")
    assert "inputs" not in msg
    _rejects(C.check_mean_hook, {"means": torch.randn(3, 7, 4, 6).mean((2, 3))}, ref, model, match="inputs")
    _rejects(C.check_mean_hook, {"means": ref.mean(3)}, ref, model, match="both spatial dims")


def test_03_jitter_that_never_reaches_offset_d(C):
    def short(d):
        def transform(x, generator=None):
            h, w = x.shape[-2:]
            dy, dx = torch.randint(d, (2,), generator=generator).tolist()     # 0..d-1: one offset short
            return x[..., dy:dy + h - d, dx:dx + w - d]
        return transform

    _rejects(C.check_jitter, short, match=r"randint\(d \+ 1")


def test_05_rank_correlation_with_argsort_once(C):
    def argsort_once(a, b):
        ra, rb = a.flatten().argsort().double(), b.flatten().argsort().double()
        return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])

    _rejects(C.check_rank_correlation, argsort_once, match=r"argsort\(\)\.argsort\(\)")


# ----------------------------------------------------------------------------- 06


def test_06_solutions_pass(C, S):
    C.check_map_cosine(S.map_cosine)
    C.check_reconstruct(S.reconstruct)


def test_06_map_cosine_wrong_answers(C):
    _rejects(C.check_map_cosine, lambda a, b: (a.flatten(1) * b.flatten(1)).sum(1), match="dot product")
    _rejects(C.check_map_cosine, lambda a, b: F.cosine_similarity(a.flatten(2), b.flatten(2), dim=2).mean(1),
             match="one cosine per channel")
    _rejects(C.check_map_cosine, lambda a, b: F.cosine_similarity(a.flatten(), b.flatten(), dim=0),
             match="one number per image")


def test_06_reconstruct_wrong_answers(C):
    _rejects(C.check_reconstruct, lambda s, d: s.sum(1, keepdim=True) * d.sum(0)[None, :, None, None],
             match="OWN direction")
    _rejects(C.check_reconstruct, lambda s, d: torch.einsum("nkhw,kc->nkhw", s, d), match="shape")


def test_06_reconstruct_matches_a_factorization_of_planted_groups():
    # independent of the solution: activations built from two known groups are reconstructed exactly
    S = _load("solutions")
    spatial = torch.zeros(1, 2, 2, 2)
    spatial[0, 0, 0, 0], spatial[0, 1, 1, 1] = 2.0, 3.0
    directions = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    acts = S.reconstruct(spatial, directions)
    assert acts[0, :, 0, 0].tolist() == [2.0, 0.0, 2.0] and acts[0, :, 1, 1].tolist() == [0.0, 3.0, 0.0]
    assert float(acts[0, :, 0, 1].abs().sum()) == 0.0
