"""Notebook exercise checks (01, 02, 03, 05): check_*(answer, ...) raises AssertionError saying what is wrong.

Each check runs the student's function on cases with a known answer (PyTorch, captum or a formula) and, when
the answer is wrong, tries the usual mistakes to say *which* one it is. ``tests/test_notebook_exercises.py``
feeds each plausible wrong answer to its check. (Notebook 04's checks live in ``solutions.py``.)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# ----------------------------------------------------------------------------- helpers


def _fail(message: str) -> None:
    raise AssertionError(message)


def _call(fn, *args, what: str, **kwargs):
    """fn(*args), turning an exception into a failure that names the call."""
    try:
        return fn(*args, **kwargs)
    except AssertionError:
        raise
    except Exception as err:  # noqa: BLE001 - the student's code may raise anything
        _fail(f"{what} raised {type(err).__name__}: {err}")


def _tensor(out, what: str) -> Tensor:
    if not isinstance(out, Tensor):
        _fail(f"{what} should return a tensor, got {type(out).__name__}"
              + (" (did you forget `return`?)" if out is None else ""))
    return out


def _shape(got: Tensor, want: tuple, what: str, hint: str = "") -> None:
    if tuple(got.shape) != tuple(want):
        _fail(f"{what} has shape {tuple(got.shape)}, expected {tuple(want)}" + (f": {hint}" if hint else ""))


# ----------------------------------------------------------------------------- 01 convolutions


def check_output_size(fn) -> None:
    """fn(L_in, kernel_size, stride, padding) == the length torch's conv2d produces."""
    for L, k, s, p in [(28, 3, 1, 1), (28, 3, 2, 1), (32, 5, 1, 0), (7, 3, 2, 0), (224, 3, 2, 1), (10, 4, 3, 2)]:
        want = F.conv2d(torch.zeros(1, 1, L, L), torch.zeros(1, 1, k, k), stride=s, padding=p).shape[-1]
        got = _call(fn, L, k, s, p, what=f"output_size({L}, {k}, {s}, {p})")
        if got != want:
            hint = ""
            if got == (L + 2 * p - k) / s + 1:
                hint = " Use floor division (//): a window that does not fit is not computed."
            elif got == (L + p - k) // s + 1:
                hint = " Padding is added on BOTH sides: 2 * padding."
            elif got == (L + 2 * p - k) // s:
                hint = " Count the first window too: + 1."
            elif got == math.ceil((L + 2 * p - k) / s) + 1:
                hint = " Round DOWN (//), not up: a window that does not fit is not computed."
            elif got == L + 2 * p - k + 1:
                hint = " That is the stride-1 length: divide by the stride (the window moves `stride` px a step)."
            elif got == (L - 2 * p - k) // s + 1:
                hint = " Padding ADDS pixels to the input: L_in + 2 * padding."
            _fail(f"output_size(L_in={L}, kernel_size={k}, stride={s}, padding={p}) returned {got!r}; torch "
                  f"gives {want}.{hint}")


def _strided_inputs_1d() -> list[tuple[str, Tensor]]:
    return [("a contiguous tensor", torch.randn(10)),
            ("x[::2] of a length-20 tensor (memory stride 2)", torch.randn(20)[::2]),
            ("a column of a (10, 6) matrix (memory stride 6)", torch.randn(10, 6)[:, 2])]


def check_sliding_windows_1d(fn) -> None:
    """fn(x, kernel_size, stride) == x.unfold(0, k, s), as a view of x, also when x is not contiguous."""
    for what, x in _strided_inputs_1d():
        for k, s in [(3, 1), (3, 2), (4, 3), (len(x), 1)]:
            want = x.unfold(0, k, s)
            got = _tensor(_call(fn, x, k, s, what=f"sliding_windows_1d(<{what}>, {k}, {s})"),
                          "sliding_windows_1d")
            _shape(got, want.shape, f"sliding_windows_1d(<{what}>, kernel_size={k}, stride={s})",
                   "the first axis has (L - k) // stride + 1 windows")
            if not torch.equal(got, want):
                (sx,) = x.stride()
                hint = ""
                try:
                    if sx != 1 and torch.equal(got, x.as_strided((want.shape[0], k), (s, 1))):
                        hint = (f" This input's memory stride is {sx}, not 1: build the view from x.stride() "
                                "(step between windows stride * x.stride(0), within a window x.stride(0)).")
                    elif torch.equal(got, x.as_strided((want.shape[0], k), (sx, s * sx))):
                        hint = (" The two strides are swapped: consecutive WINDOWS are stride * x.stride(0) apart, "
                                "consecutive elements of one window x.stride(0).")
                except RuntimeError:
                    pass
                _fail(f"sliding_windows_1d on {what}, kernel_size={k}, stride={s}: wrong values.{hint}")
            if got.data_ptr() != x.data_ptr() or got.untyped_storage().data_ptr() != \
                    x.untyped_storage().data_ptr():
                _fail("sliding_windows_1d should return a view of x (x.as_strided), not a copy")


def _conv_cases() -> list[tuple[str, Tensor, Tensor, int]]:
    gen = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=gen)

    return [
        ("x (2, 3, 10, 10)", r(2, 3, 10, 10), r(4, 3, 3, 3), 1),
        ("x (1, 2, 9, 11), kernel 3x2, stride 2", r(1, 2, 9, 11), r(5, 2, 3, 2), 2),
        ("a kernel as big as the image", r(1, 1, 5, 5), r(1, 1, 5, 5), 1),
        ("a channels-last x (memory order B, H, W, C)", r(2, 9, 9, 3).permute(0, 3, 1, 2), r(4, 3, 3, 3), 2),
        ("a crop x[:, :, 1:, 2:] of a larger image", r(1, 3, 12, 13)[:, :, 1:, 2:], r(2, 3, 3, 3), 1),
    ]


def _contiguous_strides(shape) -> tuple[int, ...]:
    return torch.empty(shape).stride()


def check_conv2d_minimal(fn) -> None:
    """fn(x, weight, stride) == F.conv2d(x, weight, stride=stride), on contiguous and non-contiguous x."""
    for what, x, w, s in _conv_cases():
        want = F.conv2d(x, w, stride=s)
        got = _tensor(_call(fn, x, w, s, what=f"conv2d_minimal(<{what}>, w{tuple(w.shape)}, stride={s})"),
                      "conv2d_minimal")
        _shape(got, want.shape, f"conv2d_minimal on {what}, w{tuple(w.shape)}, stride {s}",
               "(B, O, (H - kh) // s + 1, (W - kw) // s + 1)")
        if not torch.allclose(got, want, atol=1e-4):
            hint = ""
            if torch.allclose(got, F.conv2d(x, w.flip(-1, -2), stride=s), atol=1e-4):
                hint = (" You flipped the kernel (the textbook convolution). PyTorch's conv2d, and every CNN "
                        "library, computes a cross-correlation: weight[o, c, i, j] multiplies pixel (i, j) of the "
                        "window, no flip.")
            elif any(torch.allclose(got, F.conv2d(x, w.flip(d), stride=s), atol=1e-4) for d in (-1, -2)):
                hint = (" You mirrored the kernel along one axis (its rows or its columns): weight[o, c, i, j] "
                        "multiplies pixel (i, j) of the window, the same i and j, no flip.")
            elif x.shape[1] > 1 and torch.allclose(got, F.conv2d(x[:, :1], w[:, :1], stride=s), atol=1e-4):
                hint = (" That is input channel 0 alone: sum over EVERY input channel c (the einsum index c appears "
                        "in both inputs and not in the output).")
            elif not x.is_contiguous() and torch.allclose(_call(fn, x.contiguous(), w, s, what="conv2d_minimal"),
                                                          want, atol=1e-4):
                hint = (f" It is right on x.contiguous(): this x has memory strides {x.stride()}, not "
                        f"{_contiguous_strides(x.shape)}. Take sB, sC, sH, sW = x.stride() instead of computing "
                        "them from the shape.")
            _fail(f"conv2d_minimal on {what}, w{tuple(w.shape)}, stride {s}: values differ from F.conv2d by up "
                  f"to {float((got - want).abs().max()):.3g}.{hint}")


def check_maxpool2d_minimal(fn) -> None:
    """fn(x, k) == F.max_pool2d(x, k), on contiguous and non-contiguous x."""
    cases = [("x (2, 3, 8, 8)", torch.randn(2, 3, 8, 8), 2), ("x (1, 4, 9, 6)", torch.randn(1, 4, 9, 6), 3),
             ("a channels-last x", torch.randn(1, 6, 6, 2).permute(0, 3, 1, 2), 2)]
    for what, x, k in cases:
        want = F.max_pool2d(x, k)
        got = _tensor(_call(fn, x, k, what=f"maxpool2d_minimal(<{what}>, {k})"), "maxpool2d_minimal")
        H, W = x.shape[-2:]
        _shape(got, want.shape, f"maxpool2d_minimal on {what}, k={k}",
               f"the windows of a max-pool do not overlap: stride = kernel size, so {H}x{W} -> "
               f"{H // k}x{W // k} (you gave stride-1 windows)" if tuple(got.shape[-2:]) == (H - k + 1, W - k + 1)
               else "")
        if not torch.equal(got, want):
            hint = "" if x.is_contiguous() else f" (this x is not contiguous: use x.stride(), here {x.stride()})"
            if torch.allclose(got, F.avg_pool2d(x, k), atol=1e-6):
                hint = ". You averaged each window (that is avg_pool2d): take its maximum, .amax(dim=(-2, -1))"
            _fail(f"maxpool2d_minimal on {what}, k={k} differs from F.max_pool2d{hint}")


def check_conv2d_weight(layer_cls) -> None:
    """layer_cls(in, out, k, stride=, padding=) has an nn.Parameter ``weight`` (out, in, k, k) drawn uniformly
    from [-b, b], b = 1 / sqrt(in * k * k): PyTorch's default (``kaiming_uniform_(w, a=sqrt(5))``)."""
    torch.manual_seed(0)
    c_in, c_out, k = 64, 128, 3                   # 73 728 weights: enough for a test of the distribution's shape
    layer = _call(layer_cls, c_in, c_out, k, stride=1, padding=1,
                  what=f"MyConv2d({c_in}, {c_out}, kernel_size={k}, stride=1, padding=1)")
    w = getattr(layer, "weight", None)
    if not isinstance(w, nn.Parameter):
        _fail(f"self.weight must be an nn.Parameter (so optimisers and state_dict see it), got "
              f"{type(w).__name__}")
    _shape(w, (c_out, c_in, k, k), "self.weight", "(out_channels, in_channels, kernel_size, kernel_size)")
    w = w.detach().double().flatten()
    n_in = c_in * k * k
    b = 1 / n_in ** 0.5
    top = float(w.abs().max())
    if top > b * (1 + 1e-6):
        if top <= (6 ** 0.5) * b * (1 + 1e-6) and top > 0.9 * (6 ** 0.5) * b:
            _fail(f"the weights fill ±{top:.4f} ≈ sqrt(6 / N_in), He's bound for ReLU networks (section 6 measures "
                  f"it). This exercise builds PyTorch's default, the bound b = 1 / sqrt(N_in) = {b:.4f} with "
                  f"N_in = in_channels · k · k = {n_in}, so that your layer starts like nn.Conv2d")
        if abs(float(w.std()) - b) < 0.1 * b:
            _fail(f"the weights reach {top:.4f}, beyond b = 1 / sqrt(N_in) = {b:.4f}, and their std is about b: "
                  "torch.randn draws a normal distribution; draw uniformly in [-b, b] with b * (2 * torch.rand(...) "
                  "- 1)")
        glorot = (6 / (c_in * k * k + c_out * k * k)) ** 0.5
        if abs(top / glorot - 1) < 0.02:
            _fail(f"the weights fill ±{top:.4f} ≈ sqrt(6 / (fan_in + fan_out)), the Glorot (Xavier) bound of "
                  f"nn.init.xavier_uniform_. PyTorch's default uses the input side only: b = 1 / sqrt(N_in) = {b:.4f}, "
                  f"N_in = in_channels · k · k = {n_in}")
        _fail(f"the largest |weight| is {top:.4f}, beyond b = 1 / sqrt(N_in) = {b:.4f} (N_in = in_channels · k · "
              f"k = {n_in}: every input channel and kernel position)")
    if top < 0.9 * b:
        hint = ""
        for wrong_n, what in ((c_out * k * k, "out_channels · k · k"), (c_in * c_out * k * k, "every weight")):
            if abs(top * wrong_n ** 0.5 - 1) < 0.02:
                hint = f" (you divided by sqrt({what}) = sqrt({wrong_n}); N_in = in_channels · k · k = {n_in})"
        if abs(top * n_in - 1) < 0.02:
            hint = f" (you divided by N_in = {n_in}, not by sqrt(N_in) = {n_in ** 0.5:g})"
        _fail(f"the largest |weight| is {top:.4f}: the weights should fill [-b, b], b = 1 / sqrt(N_in) = "
              f"{b:.4f}{hint}")
    if abs(float(w.mean())) > 0.05 * b:
        _fail(f"the weights' mean is {float(w.mean()):.4f}, not about 0: 2 * torch.rand(...) - 1 is uniform in "
              "[-1, 1] (torch.rand alone is in [0, 1])")
    # uniform on [-b, b]: the CDF is (x + b) / 2b. Kolmogorov-Smirnov distance, 1% level for n = 73 728: 0.006
    xs = w.sort().values
    n = len(xs)
    cdf = ((xs + b) / (2 * b)).clamp(0, 1)
    ranks = torch.arange(1, n + 1, dtype=torch.float64) / n
    ks = float(torch.maximum((ranks - cdf).abs(), (ranks - 1 / n - cdf).abs()).max())
    if ks > 1.63 / n ** 0.5:
        inner = float((w.abs() < b / 2).double().mean())
        _fail(f"the weights stay in [-b, b] but are not uniform there: {inner:.0%} of them lie in [-b/2, b/2] "
              "(50% for a uniform distribution; a clipped or truncated normal piles them up in the middle). "
              "Draw b * (2 * torch.rand(...) - 1)")
    again = layer_cls(c_in, c_out, k, stride=1, padding=1).weight.detach().double().flatten()
    if torch.equal(again, w):
        _fail("two layers got the same weights: draw them at random in __init__ (not from a fixed seed)")


def check_n_params(conv_fn, linear_fn) -> None:
    """conv_fn(in, out, k, bias) / linear_fn(n_in, n_out, bias) == the parameter count of the torch layer."""
    def count(module: nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    for c_in, c_out, k, bias in [(3, 5, 3, True), (24, 12, 5, False), (1, 1, 1, True), (4, 6, 3, True)]:
        want = count(nn.Conv2d(c_in, c_out, k, bias=bias))
        got = _call(conv_fn, c_in, c_out, k, bias, what=f"n_params_conv({c_in}, {c_out}, {k}, bias={bias})")
        if got != want:
            w = c_out * c_in * k * k
            hint = {w: "add one bias per output channel when bias=True" if bias else "",
                    w + c_in: "there is one bias per OUTPUT channel, not per input channel",
                    c_out * k * k + (c_out if bias else 0): "each kernel has one k x k slice per INPUT channel",
                    w + c_out: "bias=False means no bias parameters"}.get(got, "")
            _fail(f"n_params_conv(in_channels={c_in}, out_channels={c_out}, kernel_size={k}, bias={bias}) "
                  f"returned {got!r}; nn.Conv2d has {want} = {c_out}·{c_in}·{k}·{k} weights"
                  f"{f' + {c_out} biases' if bias else ''}." + (f" Hint: {hint}." if hint else ""))
    for n_in, n_out, bias in [(3 * 28 * 28, 5 * 14 * 14, True), (10, 7, False), (4, 9, True)]:
        want = count(nn.Linear(n_in, n_out, bias=bias))
        got = _call(linear_fn, n_in, n_out, bias, what=f"n_params_linear({n_in}, {n_out}, bias={bias})")
        if got != want:
            hint = ("one bias per OUTPUT feature" if got == n_in * n_out + n_in
                    else "add one bias per output feature" if got == n_in * n_out and bias
                    else "bias=False means no bias parameters" if got == n_in * n_out + n_out else "")
            _fail(f"n_params_linear(in_features={n_in}, out_features={n_out}, bias={bias}) returned {got!r}; "
                  f"nn.Linear has {want}." + (f" Hint: {hint}." if hint else ""))


def check_same_padding(fn) -> None:
    """fn(kernel_size, dilation) -> the padding that keeps a stride-1 convolution's output the input's size."""
    for k, d in [(1, 1), (3, 1), (5, 1), (7, 1), (3, 2), (5, 3)]:
        got = _call(fn, k, d, what=f"same_padding({k}, {d})")
        x = torch.zeros(1, 1, 16, 16)
        try:
            out = F.conv2d(x, torch.zeros(1, 1, k, k), padding=int(got), dilation=d)
        except (TypeError, ValueError, RuntimeError) as err:
            _fail(f"same_padding({k}, dilation={d}) returned {got!r}, which F.conv2d refuses: {err}")
        if out.shape[-1] != 16:
            if d > 1:
                hint = (f" A kernel of size {k} with dilation {d} spans d * (k - 1) + 1 = {d * (k - 1) + 1} pixels: "
                        f"pad d * (k - 1) // 2 = {d * (k - 1) // 2} on each side"
                        + (" (you gave (k - 1) // 2, the undilated padding)." if got == (k - 1) // 2 else "."))
            elif got == k - 1:
                hint = (f" Padding is added on BOTH sides: the k - 1 = {k - 1} extra pixels are split, (k - 1) // 2 = "
                        f"{(k - 1) // 2} on each side (with dilation d: d * (k - 1) // 2).")
            else:
                hint = f" Pad (k - 1) // 2 = {(k - 1) // 2} on each side (k odd)."
            _fail(f"same_padding(kernel_size={k}, dilation={d}) returned {got!r}: a 16-px input comes out "
                  f"{out.shape[-1]} px.{hint}")


def check_permute_pixels(fn) -> None:
    """fn(images (B, C, H, W), perm (H*W,)) -> the same pixel permutation applied to every image and channel."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 4, 5, generator=gen)
    perm = torch.randperm(20, generator=gen)
    want = x.flatten(2)[:, :, perm].reshape(x.shape)
    got = _tensor(_call(fn, x, perm, what="permute_pixels(x, perm)"), "permute_pixels")
    _shape(got, x.shape, "permute_pixels(x (3, 2, 4, 5), perm)", "keep (B, C, H, W)")
    if torch.equal(got, want):
        return
    same_channel = all(sorted(got[b, c].flatten().tolist()) == sorted(x[b, c].flatten().tolist())
                       for b in range(3) for c in range(2))
    if not same_channel and sorted(got.flatten().tolist()) == sorted(x.flatten().tolist()):
        _fail("permute_pixels moves values between channels; flatten only H and W (x.flatten(2)) so that "
              "every channel of a pixel moves together")
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(20)
    if torch.equal(got, x.flatten(2)[:, :, inv].reshape(x.shape)):
        _fail("permute_pixels applies the inverse permutation: output pixel i should be input pixel perm[i]")
    if sorted(got.flatten().tolist()) != sorted(x.flatten().tolist()):
        _fail("permute_pixels changes values; it should only move pixels")
    if same_channel:   # which permutation did each image and channel get?
        used = {tuple((x[b, c].flatten()[None, :] == got[b, c].flatten()[:, None]).float().argmax(1).tolist())
                for b in range(3) for c in range(2)}
        if len(used) > 1:
            _fail("permute_pixels moved the pixels of different images (or channels) differently: apply the SAME "
                  "perm that is passed in to every image and channel (no torch.randperm inside)")
        cm = x.transpose(2, 3).flatten(2)[:, :, perm].reshape(3, 2, 5, 4).transpose(2, 3)
        if torch.equal(got, cm):
            _fail("permute_pixels numbers the pixels column-major (you transposed H and W before flattening): "
                  "pixel i is row i // W, column i % W, the order x.flatten(2) gives")
    _fail("permute_pixels moves pixels, but not as perm says: output pixel i (row-major over H, W) should be "
          "input pixel perm[i], the same for every image and channel")


def check_train(fn) -> None:
    """fn(model, x, y, steps, lr) trains ``model`` in place and returns the per-step losses."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 4, 4, generator=gen)
    y = (x[:, 0, 0, 0] > 0).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        logits0 = model(x)
    ce0 = float(F.cross_entropy(logits0, y))
    weight = model[1].weight
    stale = []    # at each backward pass: was a gradient from an earlier step still in weight.grad?

    def watch(grad: Tensor) -> None:   # a leaf's hooks run before the new gradient is added to .grad
        stale.append(weight.grad is not None and bool(weight.grad.abs().sum() > 0))

    handle = weight.register_hook(watch)
    try:
        losses = _call(fn, model, x, y, 100, 0.1, what="train(model, x, y, steps=100, lr=0.1)")
    finally:
        handle.remove()
    if not isinstance(losses, (list, tuple)) or len(losses) != 100:
        _fail(f"train should return the list of the {100} per-step losses (floats), got {type(losses).__name__}"
              + (f" of length {len(losses)}" if hasattr(losses, "__len__") else ""))
    if all(torch.equal(a, b.detach()) for a, b in zip(before, model.parameters())):
        _fail("train did not change the model's parameters: call loss.backward() and optimizer.step() with an "
              "optimizer over model.parameters()")
    losses = [float(v) for v in losses]
    if sum(stale) > len(stale) // 2:
        _fail(f"at {sum(stale)} of {len(stale)} backward passes the gradient of the previous step was still in "
              "the parameters' .grad, and backward() ADDS to it: call optimizer.zero_grad() every step, before "
              "loss.backward()")
    if abs(losses[0] - ce0) > 1e-4 * max(1.0, ce0) and losses[0] < ce0 and not any(
            abs(losses[0] - float(v)) < 1e-4 for v in (F.mse_loss(logits0.softmax(1), F.one_hot(y, 2).float()),
                                                       F.cross_entropy(logits0.softmax(1), y))):
        _fail(f"the first loss you returned is {losses[0]:.4f}, below the untrained model's cross-entropy "
              f"{ce0:.4f}: record the loss you call backward() on, computed BEFORE optimizer.step() (a loss "
              "computed after the step describes the next model)")
    if abs(losses[0] - ce0) > 1e-4 * max(1.0, ce0):
        probs, onehot = logits0.softmax(1), F.one_hot(y, 2).float()
        hint = ("that is the mean squared error between the probabilities and the one-hot labels: a classifier "
                "is trained on the cross-entropy of its logits, F.cross_entropy(model(x), y) (MSE on "
                "probabilities learns slowly when the model is confidently wrong: the softmax flattens its "
                "gradient)" if any(abs(losses[0] - float(v)) < 1e-4 for v in
                                   (F.mse_loss(probs, onehot), F.mse_loss(probs, onehot, reduction="sum") / len(y)))
                else "F.cross_entropy takes the logits and applies log-softmax itself; softmax them first and "
                "the loss is squashed" if abs(losses[0] - float(F.cross_entropy(probs, y))) < 1e-4
                else "return the loss of every step, computed as F.cross_entropy(model(x), y) on the logits")
        _fail(f"the first loss you returned is {losses[0]:.4f}; the cross-entropy of the untrained model is "
              f"{ce0:.4f}: {hint}")
    if not losses[-1] < 0.5 * losses[0]:   # the gradients and the loss are right (checked above): the step size
        _fail(f"the loss went from {losses[0]:.3f} to {losses[-1]:.3f} in 100 steps of lr=0.1 on an easy problem, "
              "with the right loss and fresh gradients: is the `lr` argument passed to the optimizer "
              "(torch.optim.Adam(model.parameters(), lr=lr))? A hard-coded small rate hardly moves")
    acc = float((model(x).argmax(1) == y).float().mean())
    if acc < 0.9:
        _fail(f"after training, accuracy on the training set is {acc:.0%} (expected > 90%)")


# ----------------------------------------------------------------------------- 02 hooks


def check_mean_hook(store: dict, reference: Tensor, model: nn.Module) -> None:
    """The student's hook stored ``store["means"]`` == reference.mean((2, 3)); no hook left behind."""
    if "means" not in store:
        _fail(f"the hook should put the per-channel means in store['means']; store has keys {sorted(store)}"
              + (" (did the hook run? register it with hm.hooks([(name, hook)]) and run the model inside the "
                 "`with` block)" if not store else ""))
    got = store["means"]
    if not isinstance(got, Tensor):
        _fail(f"store['means'] should be a tensor, got {type(got).__name__}")
    want = reference.mean(dim=(2, 3))
    got = got.detach()
    if tuple(got.shape) != tuple(want.shape):
        B, C, H, W = reference.shape
        if got.dim() == 1 and got.shape[0] == C:
            hint = "you averaged over the batch too: mean over dims (2, 3) only"
        elif got.dim() == 2 and any(tuple(got.shape) == tuple(reference.mean(d).shape) and torch.allclose(
                got, reference.mean(d), atol=1e-5) for d in ((1, 2), (1, 3))):
            hint = "you averaged over the channels and one spatial dim: mean over height and width, dims (2, 3)"
        elif got.dim() == 2 and got.shape[0] == B and got.shape[1] != C:
            hint = (f"{got.shape[1]} values per image, but the module outputs {C} channels: did you average "
                    "inputs[0] (what goes INTO the module)? Use `output`")
        elif tuple(got.shape) in ((B, H), (B, W), (B, C, H), (B, C, W)):
            hint = "average over both spatial dims, height and width: output.mean(dim=(2, 3))"
        elif got.dim() == 3:
            hint = "you averaged over the channels: mean over the spatial dims (2, 3)"
        else:
            hint = "mean over height and width: output.mean(dim=(2, 3))"
        _fail(f"store['means'] has shape {tuple(got.shape)}, expected (batch, channels) = {tuple(want.shape)}: "
              f"{hint}")
    if not torch.allclose(got, want, atol=1e-5):
        n = reference.shape[2] * reference.shape[3]
        if torch.allclose(got, want * n, rtol=1e-4, atol=1e-4):
            hint = f"you summed over the {n} positions; take the mean"
        elif torch.allclose(got, reference.amax(dim=(2, 3)), atol=1e-5):
            hint = "you took the maximum over the positions; take the mean"
        elif torch.allclose(got, reference.abs().mean(dim=(2, 3)), atol=1e-5):
            hint = "you averaged absolute values; average the activations themselves"
        elif torch.allclose(got, (reference ** 2).mean(dim=(2, 3)), atol=1e-5):
            hint = "you averaged the squares (a mean power); average the activations themselves"
        else:
            hint = ("is it the mean of this layer's `output` over height and width, for the images run inside "
                    "the `with` block?")
        _fail(f"store['means'] differs from the channel means of the cached activation by up to "
              f"{float((got - want).abs().max()):.3g}: {hint}")
    left = sum(len(m._forward_hooks) for m in model.modules())
    if left:
        _fail(f"{left} hook(s) left on the model: register hooks with `with hm.hooks(...)`, which removes them")


def check_direct_contributions(fn, model: nn.Module, pooled: Tensor, class_index: int, logit: float) -> None:
    """fn(pooled, class) -> (C,) terms pooled[c] * fc.weight[class, c], adding up (with the bias) to the logit."""
    got = _tensor(_call(fn, pooled, class_index, what="direct_contributions(pooled, class_index)"),
                  "direct_contributions")
    n_classes = model.fc.weight.shape[0]
    _shape(got, pooled.shape, "direct_contributions(pooled, k)",
           f"that is one number per CLASS ({n_classes}: the logits?); the terms are one per channel, "
           "pooled * fc.weight[k]" if tuple(got.shape) == (n_classes,) and n_classes != len(pooled)
           else "one term per channel")
    want = pooled * model.fc.weight[class_index]
    if torch.allclose(got, want, atol=1e-5):
        return
    if torch.allclose(got, want + model.fc.bias[class_index] / len(pooled), atol=1e-5):
        _fail("leave the bias out of the per-channel terms; it is added once to their sum")
    if torch.allclose(got, want + model.fc.bias[class_index], atol=1e-5):
        _fail("you added the whole bias to every term: the bias is added once, to their sum (logit = Σ terms + "
              "bias); leave it out of the per-channel terms")
    for other in range(model.fc.weight.shape[0]):
        if other != class_index and torch.allclose(got, pooled * model.fc.weight[other], atol=1e-5):
            _fail(f"these are the terms of class {other}, not of class {class_index}: row class_index of "
                  f"fc.weight, pooled * fc.weight[class_index]")
    _fail(f"the contributions add up to {float(got.detach().sum()):.3f}; with the bias {float(model.fc.bias[class_index].detach()):.3f} "
          f"the logit is {logit:.3f}: each term is pooled[c] * fc.weight[k, c]")


def check_zero_hook(hook, channels: list[int], hm, x: Tensor) -> None:
    """hook(module, inputs, output) returns a copy of output with ``channels`` zeroed; output is untouched."""
    gen = torch.Generator().manual_seed(0)
    output = torch.randn(2, 8, 5, 5, generator=gen)
    keep = output.clone()
    try:
        got = hook(None, (), output)
    except IndexError as err:
        _fail(f"zero_hook raised IndexError ({err}) on an output of shape {tuple(output.shape)}: channels are dim 1 "
              "of (batch, channels, height, width); index out[:, channels] = 0")
    except Exception as err:  # noqa: BLE001 - the student's code may raise anything
        _fail(f"zero_hook(module, inputs, output) raised {type(err).__name__}: {err}")
    if not torch.equal(output, keep):
        _fail("zero_hook modified `output` in place (output[:, channels] = 0 on the tensor the module returned): "
              "other hooks and the autograd graph may still read it. Clone first: out = output.clone()")
    if got is None:
        _fail("zero_hook returned None, which leaves the output unchanged: return the modified copy")
    got = _tensor(got, "zero_hook")
    want = keep.clone()
    want[:, channels] = 0
    _shape(got, want.shape, "zero_hook's output")
    if not torch.equal(got, want):
        if torch.equal(got, keep * 0):
            _fail("zero_hook zeroed every channel; only the channels in CHANNELS")
        for dim, what in ((0, "images of the batch"), (2, "rows"), (3, "columns")):
            other = keep.clone()
            index = [slice(None)] * 4
            index[dim] = [c for c in channels if c < other.shape[dim]]
            other[tuple(index)] = 0
            if torch.equal(got, other):
                _fail(f"zero_hook zeroed {what} {channels} (dim {dim}): channels are dim 1 of (batch, channels, "
                      "height, width): out[:, channels] = 0")
        _fail(f"zero_hook should set channels {channels} to 0 for every image and position and leave the rest; "
              "index the channel axis (dim 1): out[:, channels] = 0")
    with hm.hooks([("blocks.2", hook)]):
        mine = hm(x)
    with hm.ablate("blocks.2", channels):
        ref = hm(x)
    if not torch.allclose(mine, ref, atol=1e-5):
        _fail("on the model, your hook and hm.ablate give different logits")


def check_expand_weights(fn) -> None:
    """fn(w1, w2) == the kernel of conv2 ∘ conv1 (no nonlinearity): autograd's Jacobian of the central unit."""
    gen = torch.Generator().manual_seed(0)
    for (m, c, o, k1, k2) in [(1, 1, 1, 3, 3), (4, 3, 2, 3, 3), (5, 2, 3, 3, 5), (2, 2, 2, 1, 3)]:
        w1, w2 = torch.randn(m, c, k1, k1, generator=gen), torch.randn(o, m, k2, k2, generator=gen)
        k = k1 + k2 - 1
        want = F.conv_transpose2d(w2, w1)                              # (O, C, k, k)
        got = _tensor(_call(fn, w1, w2, what=f"expand_weights(w1 {tuple(w1.shape)}, w2 {tuple(w2.shape)})"),
                      "expand_weights")
        _shape(got, (o, c, k, k), f"expand_weights(w1 {tuple(w1.shape)}, w2 {tuple(w2.shape)})",
               "(O, C, k1 + k2 - 1, k1 + k2 - 1): a unit of conv2 sees k1 + k2 - 1 input pixels")
        if torch.allclose(got, want, atol=1e-4):
            continue
        if any(torch.allclose(got, v, atol=1e-4) for v in (
                want.flip(-1, -2), F.conv_transpose2d(w2.flip(-1, -2), w1.flip(-1, -2)),
                F.conv_transpose2d(w2, w1.flip(-1, -2)), F.conv_transpose2d(w2.flip(-1, -2), w1))):
            _fail("expand_weights is flipped: torch's conv2d is a cross-correlation (no flip), so input pixel "
                  "(i + a, j + b) of conv2's tap (a, b) is at offset (a + i', b + j') — add offsets, do not "
                  "subtract them")
        if k1 == k2 and tuple(got.shape) == (o, c, k1, k1) and torch.allclose(
                got, torch.einsum("om...,mc...->oc...", w2, w1), atol=1e-4):
            _fail("expand_weights multiplies the kernels entry by entry; composing two convolutions convolves "
                  "their kernels (every tap of w2 shifts a whole copy of w1)")
        if m > 1 and torch.allclose(got, F.conv_transpose2d(w2[:, :1], w1[:1]), atol=1e-4):
            _fail(f"expand_weights uses middle channel 0 only: sum over every middle channel m (w1 has {m}), "
                  "each contributes w2[o, m, a, b] * w1[m, c] at offset (a, b)")
        _fail(f"expand_weights(w1 {tuple(w1.shape)}, w2 {tuple(w2.shape)}) differs from the Jacobian of "
              f"conv2(conv1(x)) by up to {float((got - want).abs().max()):.3g}: sum over the middle channel m, "
              "and place w2[o, m, a, b] * w1[m, c] at offset (a, b) of the output kernel")


# ----------------------------------------------------------------------------- 03 feature visualization


def check_channel_objective(fn) -> None:
    """fn(acts, layer, c) == fv.objectives.channel(layer, c)(acts), shape (B,)."""
    import featviz as fv

    gen = torch.Generator().manual_seed(0)
    acts = {"blocks.4": torch.randn(3, 40, 7, 5, generator=gen), "blocks.2": torch.randn(3, 24, 14, 14,
                                                                                            generator=gen)}
    for layer, c in [("blocks.4", 0), ("blocks.4", 39), ("blocks.2", 5)]:
        got = _tensor(_call(fn, acts, layer, c, what=f"channel_objective(acts, {layer!r}, {c})"),
                      "the objective")
        want = fv.objectives.channel(layer, c)(acts)
        a = acts[layer]
        _shape(got, want.shape, f"channel_objective(acts, {layer!r}, {c})",
               f"acts[layer][c] is image {c} of the batch; the channel is dim 1: acts[layer][:, c]"
               if tuple(got.shape) == (a.shape[1],) else "one value per batch item: mean over (H, W) only")
        if not torch.allclose(got, want, atol=1e-6):
            n = a.shape[-2] * a.shape[-1]
            hint = (" (you used the sum)" if torch.allclose(got, want * n, atol=1e-4)
                    else " (you took the maximum over positions; the objective is the mean)"
                    if torch.allclose(got, a[:, c].amax((1, 2)), atol=1e-6)
                    else " (the sign is flipped: objectives are MAXIMISED, so return the mean itself, not a loss)"
                    if torch.allclose(got, -want, atol=1e-6) else "")
            _fail(f"{layer}:{c} differs from fv.objectives.channel: mean of acts[layer][:, c] over dims (1, 2)"
                  + hint)


def check_contrast(objective, layer: str, c_up: int, c_down: int) -> None:
    """objective(acts) == channel c_up - channel c_down of layer."""
    acts = {layer: torch.randn(2, 40, 7, 7, generator=torch.Generator().manual_seed(0))}
    want = acts[layer][:, c_up].mean(dim=(1, 2)) - acts[layer][:, c_down].mean(dim=(1, 2))
    got = _tensor(_call(objective, acts, what=f"{objective}(acts)"), "the objective")
    if torch.allclose(got, want, atol=1e-6):
        return
    if torch.allclose(got, -want, atol=1e-6):
        _fail(f"{objective} has the sign the wrong way round: objectives are MAXIMISED, so channel {c_up} gets "
              f"+1 and channel {c_down} gets -1")
    up = acts[layer][:, c_up].mean(dim=(1, 2))
    down = acts[layer][:, c_down].mean(dim=(1, 2))
    for value, hint in ((up + down, f"you added channel {c_down}; subtract it (objectives combine with - too)"),
                        (up / down, f"you divided by channel {c_down}; the contrast is a difference"),
                        (up, f"that is only channel {c_up}; subtract channel {c_down}")):
        if torch.allclose(got, value, atol=1e-6):
            _fail(f"{objective} does not compute channel({layer!r}, {c_up}) - channel({layer!r}, {c_down}): {hint}")
    _fail(f"{objective} does not compute channel({layer!r}, {c_up}) - channel({layer!r}, {c_down})")


def check_fft_image(fn) -> None:
    """fn(spectrum (B, 3, H, W//2+1, 2), h, w) == image_fn() of fv.optvis.fft_image with that spectrum."""
    import featviz as fv

    for h, w in [(16, 16), (12, 20), (9, 9)]:
        params, image_fn = fv.optvis.fft_image((h, w), batch=2, seed=1, sd=1.0)
        spectrum = params[0].detach().clone()
        with torch.no_grad():
            want = image_fn()
        got = _tensor(_call(fn, spectrum, h, w, what=f"fft_image_fn(spectrum, {h}, {w})"), "fft_image_fn")
        _shape(got, want.shape, f"fft_image_fn(spectrum, {h}, {w})", "irfft2 with s=(h, w) gives (B, 3, h, w)")
        got = got.detach()
        if torch.allclose(got, want, atol=1e-5):
            continue
        if not bool(torch.isfinite(got).all()):
            _fail(f"fft_image_fn({h}, {w}) has NaN or inf values: the zero frequency (the DC term) has f = 0, so "
                  "1 / f is infinite there; clamp f at 1 / max(h, w) before dividing")
        if float(got.min()) < 0 or float(got.max()) > 1:
            _fail(f"fft_image_fn({h}, {w}) has values outside [0, 1] ({float(got.min()):.2f} to "
                  f"{float(got.max()):.2f}): squash the colour-mixed image with torch.sigmoid last")
        freqs = fv.optvis.param.rfft2d_freqs(h, w)
        coeffs = torch.view_as_complex(spectrum)
        variants = {
            "scale each coefficient by 1 / max(f, 1 / max(h, w)); without it the image is white noise, "
            "dominated by the many high frequencies": (coeffs, True),
            "decorrelate the colours: mix the three channels with fv.optvis.param.COLOR_CORRELATION "
            "(einsum 'ij,bjhw->bihw') before the sigmoid": (coeffs / freqs.clamp(min=1 / max(h, w)), False),
        }
        for hint, (cf, deco) in variants.items():
            pix = torch.fft.irfft2(cf, s=(h, w), norm="ortho") / 4
            if torch.allclose(got, fv.optvis.param.to_rgb(pix, decorrelate=deco), atol=1e-5):
                _fail(f"fft_image_fn({h}, {w}): {hint}")
        pix = torch.fft.irfft2(coeffs / freqs.clamp(min=1 / max(h, w)), s=(h, w)) / 4
        if torch.allclose(got, fv.optvis.param.to_rgb(pix), atol=1e-5):
            _fail(f"fft_image_fn({h}, {w}): use norm='ortho' in irfft2 (the default 'backward' divides by h*w)")
        _fail(f"fft_image_fn({h}, {w}) differs from fv.optvis.fft_image by up to {float((got - want).abs().max()):.3g}"
              ": complex spectrum * 1/f scale -> irfft2(s=(h, w), norm='ortho') / 4 -> colour matrix -> sigmoid")


def check_jitter(fn) -> None:
    """fn(d) -> transform(x, generator): a random crop d px smaller, different offsets on different draws."""
    t = _call(fn, 4, what="my_jitter(4)")
    if not callable(t):
        _fail(f"my_jitter(4) should return a function transform(x, generator), got {type(t).__name__}")
    x = torch.arange(16 * 16.0).reshape(1, 1, 16, 16).repeat(2, 3, 1, 1)
    outs = []
    for seed in range(80):
        out = _tensor(_call(t, x, torch.Generator().manual_seed(seed), what="my_jitter(4)(x, generator)"),
                      "the transform")
        _shape(out, (2, 3, 12, 12), "my_jitter(4)(x (2, 3, 16, 16))", "crop d px off in each dimension")
        dy, dx = divmod(int(out[0, 0, 0, 0]), 16)
        if not torch.equal(out, x[..., dy:dy + 12, dx:dx + 12]):
            _fail("my_jitter's output is not a crop of the input (a contiguous 12x12 window, the same offset "
                  "for every image and channel)")
        outs.append((dy, dx))
    if len(set(outs)) < 4:
        _fail(f"my_jitter gave only the offsets {sorted(set(outs))} over 80 draws: draw dy, dx at random in "
              "0..d with torch.randint(d + 1, (2,), generator=generator)")
    if all(dy == dx for dy, dx in outs):
        _fail(f"over 80 draws dy always equalled dx ({sorted(set(outs))}): the crop only moves along the diagonal; "
              "draw the two offsets independently, torch.randint(d + 1, (2,), generator=generator)")
    for axis, name in ((0, "dy"), (1, "dx")):
        seen = sorted({o[axis] for o in outs})
        if seen[0] != 0 or seen[-1] != 4:
            _fail(f"over 80 draws {name} took only the values {seen}; a 16-px image cropped to 12 px has d + 1 = 5 "
                  "possible offsets, 0..4 (the crop may touch either edge): torch.randint(d + 1, ...), not "
                  "torch.randint(d, ...)")
    again = _call(t, x, torch.Generator().manual_seed(3), what="my_jitter")
    if not torch.equal(again, x[..., outs[3][0]:outs[3][0] + 12, outs[3][1]:outs[3][1] + 12]):
        _fail("my_jitter is not reproducible: draw the offsets from the `generator` argument")


# ----------------------------------------------------------------------------- 05 attribution


def check_grad_times_input(fn, f, x: Tensor, target: int) -> None:
    """fn(x, target) == captum's InputXGradient."""
    from captum.attr import InputXGradient

    got = _tensor(_call(fn, x, target, what="grad_times_input(x, target)"), "grad_times_input")
    want = InputXGradient(f).attribute(x, target=target)
    _shape(got, want.shape, "grad_times_input(x, target)")
    if torch.allclose(got, want, atol=1e-6):
        return
    xg = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(xg)[0, target], xg)
    if torch.allclose(got, g, atol=1e-6):
        _fail("grad_times_input returned the gradient alone: multiply by the input x")
    if torch.allclose(got, (x * g).abs(), atol=1e-6):
        _fail("grad_times_input took the absolute value; keep the sign (negative = evidence against)")
    with torch.no_grad():
        n_classes = f(x).shape[1]
    variants = {"you differentiated the sum of all logits (out.sum()); take the target's logit alone, "
                "f(x)[0, target]": lambda out: out.sum(),
                "you differentiated the softmax probability; attribution explains the target's LOGIT, "
                "f(x)[0, target], not its probability": lambda out: out.softmax(1)[0, target]}
    for other in range(n_classes):
        if other != target:
            variants[f"that is the attribution for logit {other}; differentiate f(x)[0, target] with target = "
                     f"{target}"] = lambda out, o=other: out[0, o]
    for hint, pick in variants.items():
        xv = x.detach().clone().requires_grad_(True)
        (gv,) = torch.autograd.grad(pick(f(xv)), xv)
        if torch.allclose(got, x * gv, atol=1e-6):
            _fail(f"grad_times_input: {hint}")
    _fail(f"grad_times_input differs from captum's InputXGradient by up to {float((got - want).abs().max()):.3g}")


def _ig_variants(f, x: Tensor, target: int, baseline: Tensor, n_steps: int) -> dict[str, Tensor]:
    """The usual slips in integrated gradients, each computed: {hint: attributions}."""
    def path_grads(alphas: Tensor) -> Tensor:
        path = (baseline + alphas[:, None, None, None] * (x - baseline)).detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f(path)[:, target].sum(), path)
        return g

    mid = path_grads((torch.arange(n_steps) + 0.5) / n_steps)
    return {
        "the path points are at alpha = k / n_steps (a left Riemann sum, starting at the baseline); captum's "
        "riemann_middle, as the exercise asks, takes the midpoints alpha = (k + 0.5) / n_steps":
            (x - baseline) * path_grads(torch.arange(n_steps) / n_steps).mean(0, keepdim=True),
        "alpha = (k + 1) / n_steps (a right Riemann sum, ending at x); use the midpoints (k + 0.5) / n_steps":
            (x - baseline) * path_grads((torch.arange(n_steps) + 1) / n_steps).mean(0, keepdim=True),
        "you return the path's average gradient, not yet multiplied by (x - baseline)":
            mid.mean(0, keepdim=True),
        f"it sums the {n_steps} path gradients; average them (divide by n_steps), so that the attributions add "
        "up to f(x) - f(baseline)": (x - baseline) * mid.sum(0, keepdim=True),
    }


def check_integrated_gradients(fn, f, x: Tensor, target: int, n_steps: int) -> None:
    """fn(x, target, baseline, n_steps) == captum IG (riemann_middle) for a black AND a non-zero baseline."""
    from captum.attr import IntegratedGradients

    grey = torch.full_like(x, 0.5)
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    for name, baseline in [("black", torch.zeros_like(x)), ("grey (0.5)", grey), ("uniform noise", noise)]:
        got = _tensor(_call(fn, x, target, baseline, n_steps,
                            what=f"integrated_gradients(x, target, <{name} baseline>, {n_steps})"),
                      "integrated_gradients")
        _shape(got, x.shape, "integrated_gradients(...)")
        want = IntegratedGradients(f).attribute(x, baselines=baseline, target=target, n_steps=n_steps,
                                                method="riemann_middle", internal_batch_size=8)
        err = float((got - want).norm() / want.norm())
        if err < 1e-3:
            continue
        with torch.no_grad():
            delta = float((f(x) - f(baseline))[0, target])
        if name != "black":
            naive = IntegratedGradients(f).attribute(x, baselines=torch.zeros_like(x), target=target,
                                                     n_steps=n_steps, method="riemann_middle",
                                                     internal_batch_size=8)
            if float((got - naive).norm() / naive.norm()) < 1e-3:
                _fail(f"with a {name} baseline you return the black-baseline attributions: the path must start "
                      "at the baseline (baseline + alpha * (x - baseline)) and the result is multiplied by "
                      "(x - baseline), not x")
        for hint, v in _ig_variants(f, x, target, baseline, n_steps).items():
            if float((got - v).norm() / v.norm()) < 1e-3:
                _fail(f"integrated_gradients with a {name} baseline: {hint}")
        _fail(f"integrated_gradients with a {name} baseline differs from captum (riemann_middle) by {err:.1%} "
              f"(L2); its sum is {float(got.sum()):.3f}, f(x) - f(baseline) = {delta:.3f}. The path points are "
              "baseline + alpha * (x - baseline) at alpha = (k + 0.5) / n_steps; average their gradients and "
              "multiply by (x - baseline)")


def check_smoothgrad(fn) -> None:
    """fn(f, x, target, n_samples, sigma, seed) -> mean gradient at x + sigma * noise; known answer for sin.

    For f(z) = Σ sin z the gradient cos z changes sign, so the answer E[cos(x + σε)] = cos(x) e^{-σ²/2} tells
    the mean of the gradients from the mean of their absolute values (which is never negative)."""
    gen = torch.Generator().manual_seed(0)
    x = 2 * torch.randn(1, 2, 4, 4, generator=gen)     # spread over several periods: cos x takes both signs

    def sines(z: Tensor) -> Tensor:   # (B, 2, 4, 4) -> (B, 2): logits; logit 1 = sum sin z, gradient cos z
        s = z.sin().flatten(1).sum(1)
        return torch.stack([-s, s], 1)

    sigma, n = 1.5, 2000
    got = _tensor(_call(fn, sines, x, 1, n, sigma, 0, what="smoothgrad(f, x, 1, 2000, 1.5, seed=0)"),
                  "smoothgrad")
    _shape(got, x.shape, "smoothgrad(f, x, ...)", "the same shape as x (one gradient per input value)")
    got = got.detach()
    want = x.cos() * math.exp(-sigma ** 2 / 2)         # E[cos(x + σε)], ε ~ N(0, 1)
    err = float((got - want).abs().mean())
    if err < 0.05:
        again = _call(fn, sines, x, 1, n, sigma, 0, what="smoothgrad")
        if not torch.equal(again.detach(), got):
            _fail("smoothgrad is not reproducible: draw the noise from torch.Generator().manual_seed(seed)")
        return

    def off(reference: Tensor) -> float:
        return float((got - reference).abs().mean())

    if off(x.cos()) < 0.05:
        _fail("smoothgrad gives the plain gradient at x: add noise sigma * randn to x for each sample")
    if off(-want) < 0.05:
        _fail("smoothgrad has the wrong sign: take the gradient of f(x)[:, target] itself (not of the loss "
              "-f or of another logit)")
    if float((got.abs() - want.abs()).abs().mean()) > 0.1 and bool((got >= 0).all()):
        _fail("smoothgrad is never negative, but the gradient of f(z) = Σ sin z is cos z, which changes sign: "
              "average the signed gradients (take absolute values only afterwards, for the heat map). The mean "
              "of |gradient| is large wherever the gradient is noisy, so it cannot show that noise cancels")
    if off(want * n) < 0.05 * n:
        _fail(f"smoothgrad sums the {n} gradients; average them (divide by n_samples)")
    if off(x.cos() * math.exp(-sigma ** 4 / 2)) < 0.05:
        _fail("the noise's standard deviation should be sigma (sigma * randn), not sigma**2")
    if off(want * x) < 0.05:
        _fail("smoothgrad multiplied by the input (that is SmoothGrad of gradient × input); return the averaged "
              "gradient itself")
    bound = math.exp(-sigma ** 2 / 2)                  # |E[cos(x + σε)]| <= exp(-σ²/2) at every x
    if float((got.abs() > bound + 0.15).float().mean()) > 0.2:
        _fail(f"{float((got.abs() > bound + 0.15).float().mean()):.0%} of the entries exceed {bound:.3f} = "
              f"exp(-σ²/2) in magnitude, which an average of cos(x + σε) over {n} noise draws cannot: the copies "
              "share one noise draw. Draw a NEW noise for each sample, torch.randn((n_samples, *x.shape[1:]), "
              "generator=gen)")
    _fail(f"smoothgrad on f(z) = Σ sin z should average cos(x + σε) to cos(x) · exp(-σ²/2) = "
          f"{math.exp(-sigma ** 2 / 2):.3f} · cos(x); yours is off by {err:.3f} on average per entry")


def check_rank_correlation(fn) -> None:
    """fn(a, b) -> Spearman's rank correlation of two tensors (flattened), a float in [-1, 1]."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(5, 6, generator=gen)
    cases = [("a map with itself", a, a, 1.0), ("a map with its negative", a, -a, -1.0),
             ("a map with exp(map) (same order, different values)", a, a.exp(), 1.0)]
    b = torch.randn(5, 6, generator=gen)
    ra, rb = a.flatten().argsort().argsort().float(), b.flatten().argsort().argsort().float()
    cases.append(("two random maps", a, b, float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])))
    for what, x, y, want in cases:
        got = _call(fn, x, y, what=f"rank_correlation(<{what}>)")
        try:
            got = float(got)
        except (TypeError, ValueError):
            _fail(f"rank_correlation should return a number, got {got!r}")
        if abs(got - want) > 1e-4:
            hint = ""
            oa, ob = x.flatten().argsort().double(), y.flatten().argsort().double()
            once = float(torch.corrcoef(torch.stack([oa, ob]))[0, 1])
            flat = x.dim() > 1 and abs(got - float(torch.corrcoef(torch.stack([
                x.argsort(-1).argsort(-1).double().flatten(), y.argsort(-1).argsort(-1).double().flatten()]))[0, 1])) \
                < 1e-4
            if what == "a map with itself" and abs(got + 1) < 1e-4:
                hint = (" A map against itself gives -1: you ranked one map ascending and the other descending; "
                        "rank both in the same direction (argsort().argsort())")
            elif flat:
                hint = (" You ranked each ROW separately (argsort along the last axis of a 2-d map): flatten both "
                        "maps first, a.flatten().argsort().argsort()")
            elif abs(got - once) < 1e-4:
                hint = (" You correlated x.argsort(): that is the ORDER (the index of the smallest value, then of "
                        "the next...), not the ranks. The rank of each value is x.argsort().argsort()")
            elif what.startswith("a map with exp"):
                hint = (" Pearson's correlation of the VALUES is not 1 here: correlate the RANKS "
                        "(x.flatten().argsort().argsort())")
            _fail(f"rank_correlation on {what} gave {got:.4f}, expected {want:.4f}.{hint}")


# ----------------------------------------------------------------------------- 06 beyond channels


def check_map_cosine(fn) -> None:
    """fn(a, b) (N, C, h, w) x2 -> (N,): cosine similarity of each pair of whole maps, flattened over (C, h, w)."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 4, 5, 6, generator=gen), torch.randn(3, 4, 5, 6, generator=gen)
    b[1] = 2.5 * a[1]                                    # the same map up to scale: cosine 1
    want = F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)
    got = _tensor(_call(fn, a, b, what="map_cosine(a (3, 4, 5, 6), b)"), "map_cosine").detach()
    _shape(got, (3,), "map_cosine(a (3, 4, 5, 6), b)", "one number per image: flatten each map with a.flatten(1)")
    if torch.allclose(got, want, atol=1e-5):
        return
    if torch.allclose(got, (a.flatten(1) * b.flatten(1)).sum(1), atol=1e-4):
        _fail("map_cosine returns the dot product: divide by the two norms (a cosine is in [-1, 1], and a map "
              "scaled by 2.5 should still give 1)")
    if torch.allclose(got, 1 - want, atol=1e-5):
        _fail("map_cosine returns 1 - cosine, the cosine DISTANCE; fv.invert maximises the similarity itself")
    fa, fb = a.flatten(1), b.flatten(1)
    if torch.allclose(got, (fa * fb).sum(1) / (fa.norm(dim=1) ** 2 * fb.norm(dim=1) ** 2), atol=1e-6):
        _fail("map_cosine divides by the squared norms: divide the dot product by the norms, not their squares "
              "(|a| · |b|)")
    if torch.allclose(got, F.cosine_similarity(a.flatten(2), b.flatten(2), dim=2).mean(1), atol=1e-5):
        _fail("map_cosine averages one cosine per channel; fv.invert compares the whole map at once: flatten "
              "channels and positions together (a.flatten(1))")
    _fail(f"map_cosine differs from the cosine of the flattened maps by up to {float((got - want).abs().max()):.3g}"
          f" (image 1 is image 1 of `a` times 2.5: its cosine should be 1, yours is {float(got[1]):.3f})")


def check_reconstruct(fn) -> None:
    """fn(spatial (N, K, h, w), directions (K, C)) -> (N, C, h, w) = Σ_k spatial[:, k] * directions[k]."""
    gen = torch.Generator().manual_seed(0)
    spatial, directions = torch.rand(2, 3, 4, 5, generator=gen), torch.rand(3, 6, generator=gen)
    want = torch.einsum("nkhw,kc->nchw", spatial, directions)
    got = _tensor(_call(fn, spatial, directions, what="reconstruct(spatial (2, 3, 4, 5), directions (3, 6))"),
                  "reconstruct").detach()
    _shape(got, want.shape, "reconstruct(spatial (2, 3, 4, 5), directions (3, 6))",
           "(N, C, h, w): every position gets a C-vector, the groups' directions weighted by their strength there")
    if torch.allclose(got, want, atol=1e-5):
        return
    if torch.allclose(got, want / spatial.shape[1], atol=1e-5):
        _fail(f"reconstruct averaged over the {spatial.shape[1]} groups; the activation is their SUM, "
              "Σ_k spatial[:, k] · directions[k]")
    if torch.allclose(got, spatial[:, :1] * directions[0][None, :, None, None], atol=1e-5):
        _fail("reconstruct uses only group 0: add every group's spatial map times its direction (sum over k)")
    if torch.allclose(got, spatial.sum(1, keepdim=True) * directions.sum(0)[None, :, None, None], atol=1e-5):
        _fail("reconstruct multiplies the sums: each group's spatial map multiplies its OWN direction, then the "
              "K products are added (einsum 'nkhw,kc->nchw')")
    _fail(f"reconstruct differs from Σ_k spatial[:, k] · directions[k] by up to "
          f"{float((got - want).abs().max()):.3g}: position (i, j) of image n is Σ_k spatial[n, k, i, j] · "
          "directions[k, :]")

# ----------------------------------------------------------------------------- 07 explaining a photo


def check_top_channels(fn) -> None:
    """fn(acts (C, H, W), k) -> (H, W, k) LongTensor: the k strongest channels at each position, strongest first."""
    gen = torch.Generator().manual_seed(7)
    for c, h, w, k in [(6, 3, 4, 2), (5, 2, 2, 5), (9, 4, 3, 1)]:
        acts = torch.randn(c, h, w, generator=gen)
        want = acts.topk(k, dim=0).indices.permute(1, 2, 0)
        got = _tensor(_call(fn, acts, k, what=f"top_channels(<acts {c}x{h}x{w}>, k={k})"), "top_channels")
        if tuple(got.shape) != (h, w, k):
            hint = ""
            if tuple(got.shape) == (w, h, k) and h != w:
                hint = (" That is (W, H, k): rows and columns swapped; permute(1, 2, 0) keeps the rows first and "
                        "moves the channels last")
            elif tuple(got.shape) == (k, h, w):
                hint = (" That is (k, H, W): topk along dim 0 gives the channels first; move them last with "
                        ".permute(1, 2, 0)")
            elif got.shape[-1] == min(h, w) or tuple(got.shape[:2]) == (c, h):
                hint = " The top-k runs over the CHANNELS (dim 0 of a (C, H, W) map), not over a spatial axis"
            _fail(f"top_channels on a ({c}, {h}, {w}) map with k={k} returned shape {tuple(got.shape)}; expected "
                  f"{(h, w, k)}.{hint}")
        if got.dtype not in (torch.int64, torch.int32):
            _fail(f"top_channels should return channel INDICES (integers), got {got.dtype}: topk(...).indices, "
                  "not .values")
        if not torch.equal(got.long(), want):
            hint = ""
            if torch.equal(got.long(), acts.topk(k, dim=0, largest=False).indices.permute(1, 2, 0)):
                hint = " These are the WEAKEST channels: the dictionary wants the largest activations"
            elif torch.equal(got.long(), want + 1):
                hint = " Every index is one too high: channel indices start at 0"
            elif torch.equal(got.long().sort(-1).values, want.sort(-1).values):
                hint = (" The right channels in the wrong order: strongest first (topk sorts; argsort ascending "
                        "does not)")
            _fail(f"top_channels picked the wrong channels at some positions (k={k}).{hint}")


def check_box_share(fn) -> None:
    """fn(amap (h, w), box (top, left, bottom, right), bottom/right exclusive) -> the fraction of the POSITIVE
    attribution inside the box, a float in [0, 1]."""
    amap = torch.zeros(4, 5)
    amap[1, 1], amap[1, 2], amap[3, 4] = 3.0, -2.0, 1.0  # inside: +3 and -2; outside: +1
    cases = [("a map with a negative value inside the box", amap, (0, 0, 2, 3), 0.75),
             ("a box whose last row/column would add a value", amap, (0, 0, 3, 4), 0.75),
             ("the whole map", amap, (0, 0, 4, 5), 1.0)]
    neg = torch.zeros(3, 3)
    neg[0, 0], neg[2, 2] = -4.0, 2.0
    cases.append(("a map whose only negative value is outside the box", neg, (1, 1, 3, 3), 1.0))
    gots = []
    for what, m, box, _ in cases:
        got = _call(fn, m.clone(), box, what=f"box_share(<{what}>, {box})")
        try:
            gots.append(float(got))
        except (TypeError, ValueError):
            _fail(f"box_share should return a number, got {got!r}")

    def ratio(num: Tensor, den: Tensor) -> float:
        return float(num.sum() / den.sum()) if float(den.sum()) != 0 else math.nan

    # the usual slips, each evaluated on every case: a hint is given only when it explains all of them
    slips = {
        "You used |attribution|: negative values count against the class, keep only the positive part":
            lambda m, t, l, b, r: ratio(m.abs()[t:b, l:r], m.abs()),
        "Signed sums let negative values cancel positive ones: clamp(min=0) first":
            lambda m, t, l, b, r: ratio(m[t:b, l:r], m),
        "bottom and right are EXCLUSIVE (Python slices): rows top..bottom-1":
            lambda m, t, l, b, r: ratio(m.clamp(min=0)[t:b + 1, l:r + 1], m.clamp(min=0)),
        "Divide by the total positive attribution of the whole map":
            lambda m, t, l, b, r: float(m.clamp(min=0)[t:b, l:r].sum()),
        "The inside is right, the denominator is not: divide by the total POSITIVE attribution, not the total "
        "|attribution| (negative values are not part of what is shared)":
            lambda m, t, l, b, r: ratio(m.clamp(min=0)[t:b, l:r], m.abs()),
        "The box is (top, left, bottom, right): rows first, amap[top:bottom, left:right]; you read it as (left, "
        "top, right, bottom)": lambda m, t, l, b, r: ratio(m.clamp(min=0)[l:r, t:b], m.clamp(min=0)),
    }
    for (what, m, box, want), got in zip(cases, gots):
        if abs(got - want) > 1e-6:
            hint = next((f" {h}" for h, slip in slips.items()
                         if all(abs(g - slip(mm, *bx)) < 1e-6 for g, (_, mm, bx, _) in zip(gots, cases))), "")
            _fail(f"box_share on {what} gave {got:.4f}, expected {want:.4f}.{hint}")


def check_group_shares(fn, groups, attribution) -> None:
    """fn(spatial (K, h, w), directions (K, C), attr (C, h, w)) -> (K,) each group's part of the attribution,
    shared at every (channel, position) by |spatial_k(p) * direction_k(c)|; compared with ``groups.attribution``."""
    gen = torch.Generator().manual_seed(3)
    spatial = torch.rand(3, 2, 2, generator=gen)
    directions = torch.rand(3, 4, generator=gen)
    directions[1] *= -1  # a signed factor (PCA): magnitudes share, signs do not
    attr = torch.randn(4, 2, 2, generator=gen)
    parts = (spatial[:, None] * directions[:, :, None, None]).abs()
    want = (parts / parts.sum(0) * attr).sum((1, 2, 3))
    for what, args, expect in [("a small signed case", (spatial, directions, attr), want),
                               ("this photo's groups", (groups.factorization.spatial[0],
                                                        groups.factorization.directions, attribution),
                                groups.attribution)]:
        got = _tensor(_call(fn, *args, what=f"group_shares(<{what}>)"), "group_shares")
        _shape(got, tuple(expect.shape), f"group_shares on {what}", "one number per group")
        if not torch.allclose(got.float(), expect.float(), atol=1e-4, rtol=1e-3):
            raw = (parts * attr).sum((1, 2, 3))
            signed = spatial[:, None] * directions[:, :, None, None]
            hint = ""
            spatial_only = spatial[:, None].abs().expand(-1, directions.shape[1], -1, -1)
            if what == "a small signed case" and torch.allclose(got, got[:1].expand_as(got)):
                hint = (" Every group got the same share: weight each group by its own part |spatial_k(p) · "
                        "direction_k(c)| at every (channel, position)")
            elif what == "a small signed case" and torch.allclose(
                    got.float(), (spatial_only / spatial_only.sum(0) * attr).sum((1, 2, 3)), atol=1e-4):
                hint = (" You shared by the spatial maps alone: each group's part at (channel c, position p) is "
                        "|spatial_k(p) · direction_k(c)|, its direction included")
            elif what == "a small signed case" and torch.allclose(got.float(), raw, atol=1e-4):
                hint = " Normalise: divide each group's part by the sum over groups at that (channel, position)"
            elif what == "a small signed case" and torch.allclose(
                    got.float(), (signed / signed.sum(0) * attr).sum((1, 2, 3)), atol=1e-4):
                hint = " Use magnitudes |spatial * direction|: with signed factors the shares are not in [0, 1]"
            _fail(f"group_shares on {what} gave {got.tolist()}, expected {expect.tolist()}.{hint}")
        if what == "a small signed case" and abs(float(got.sum()) - float(attr.sum())) > 1e-4:
            _fail("the groups' parts should add up to the whole attribution")
