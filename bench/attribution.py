"""Benchmark: featviz's batched ``attribute`` for 16 dst channels vs the captum loop a user would write.

Same model (pretrained EfficientNet-Lite0), same images (bundled sample photos), same numbers
(asserted). The captum side is one ``LayerGradientXActivation`` / ``LayerIntegratedGradients`` call
per dst channel, whose forward function returns the dst layer's channel means (integrated gradients:
baseline = black images on both sides, i.e. ``model.preprocess(zeros)`` for captum):

* "captum (full forward)": the model runs to the end each call, as a plain wrapper does;
* "captum (stop at dst)": the forward stops after dst (featviz's ``DstMeans``), the fairer floor.

Run: ``.venv/bin/python bench/attribution.py [--images 4] [--src blocks.2] [--dst blocks.3] [--repeats 3]``
(``--quick`` for a smoke run). Times are the minimum over repeats, one thread.

``--floor``: instead, grad x act on torchvision googlenet (random init, seed 0), inception3a ->
inception4a, 16 dst channels, against its floor: a hand-written pass (prefix without autograd, a src
leaf, inception3b -> maxpool3 -> inception4a, one backward per dst channel), CPU seconds
(``time.process_time``), featviz and floor alternating, ``--images`` 1 and 4.
"""
from __future__ import annotations

import argparse
import time

import captum.attr as ca
import torch

import featviz as fv
from featviz.circuits import DstMeans, attribute


class FullForwardMeans(torch.nn.Module):
    """What a user writes: run the whole model, return dst's channel means (B, C_dst)."""

    def __init__(self, model, dst):
        super().__init__()
        self.hm, self.dst = fv.hooked(model), dst

    def forward(self, x):
        _, cache = self.hm.run_with_cache(x, names=[self.dst], detach=False)
        return cache[self.dst].mean((-2, -1))


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def captum_loop(cls, forward, layer, x, channels, **kwargs):
    method = cls(forward, layer)
    return torch.stack([method.attribute(x, target=c, **kwargs).detach().sum((0, 2, 3)) for c in channels])


def googlenet_floor(images: int, repeats: int) -> tuple[float, float]:
    """(featviz CPU s, floor CPU s), minimum over ``repeats`` alternating runs; same numbers asserted."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True).eval()
    x, chans = torch.rand(images, 3, 224, 224), list(range(16))

    def floor():
        with torch.no_grad():
            h = x
            for n in ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a"]:
                h = getattr(model, n)(h)
        a = h.detach().requires_grad_(True)
        v = model.inception4a(model.maxpool3(model.inception3b(a))).mean((-2, -1))
        gs = [torch.autograd.grad(v[:, c].sum(), a, retain_graph=c < chans[-1])[0] for c in chans]
        return torch.stack([(g * a).sum((0, 2, 3)) for g in gs])

    def ours():
        return attribute(model, "inception3a", "inception4a", x, chans, preprocess=False)

    def cpu(fn):
        t = time.process_time()
        out = fn()
        return time.process_time() - t, out

    t_ours, t_floor = [], []
    for _ in range(repeats):
        (a, out), (b, ref) = cpu(ours), cpu(floor)
        t_ours.append(a)
        t_floor.append(b)
        assert torch.allclose(out, ref, atol=1e-4 * float(ref.abs().max()), rtol=1e-3)
    return min(t_ours), min(t_floor)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--src", default="blocks.2")
    p.add_argument("--dst", default="blocks.3")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--steps", type=int, default=8, help="integrated-gradients steps")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="1 image, 1 repeat, 4 IG steps")
    p.add_argument("--floor", action="store_true", help="googlenet inception3a -> inception4a vs its floor")
    args = p.parse_args()
    if args.floor:
        torch.set_num_threads(1)
        print("googlenet (random init) inception3a -> inception4a, grad_x_act, 16 dst channels, "
              "1 thread, CPU s")
        for n in (1, 4):
            t_ours, t_floor = googlenet_floor(n, args.repeats)
            print(f"{n} image(s): featviz {t_ours:.3f}  floor {t_floor:.3f}  "
                  f"featviz/floor {t_ours / t_floor:.2f}x")
        return
    if args.quick:
        args.images, args.repeats, args.steps = 1, 1, 4
    torch.set_num_threads(1)
    model = fv.models.efficientnet_lite0()
    x = fv.data.sample_images(size=224)[0][: args.images]
    xn = model.preprocess(x)
    hm = fv.hooked(model)
    layer = hm.module(args.src)
    chans = list(range(args.channels))
    print(f"EfficientNet-Lite0, {args.images} images 224 px, src={args.src} dst={args.dst}, "
          f"{args.channels} dst channels, {torch.get_num_threads()} thread(s)")
    rows = []
    for name, method, cls, kw, ckw in [
        ("grad_x_act", "grad_x_act", ca.LayerGradientXActivation, {}, {}),
        ("integrated_gradients", "integrated_gradients", ca.LayerIntegratedGradients,
         {"steps": args.steps}, {"n_steps": args.steps, "baselines": model.preprocess(torch.zeros_like(x))}),
    ]:
        t_ours, ours = best_of(lambda m=method, k=kw: attribute(model, args.src, args.dst, x, chans, m, **k),
                               args.repeats)
        full, stop = FullForwardMeans(model, args.dst), DstMeans(hm, args.dst)
        t_full, ref_full = best_of(lambda c=cls, k=ckw, f=full: captum_loop(c, f, layer, xn, chans, **k),
                                   args.repeats)
        t_stop, ref_stop = best_of(lambda c=cls, k=ckw, f=stop: captum_loop(c, f, layer, xn, chans, **k),
                                   args.repeats)
        scale = float(ref_full.abs().max())
        for ref in (ref_full, ref_stop):
            assert torch.allclose(ours, ref, atol=1e-4 * scale, rtol=1e-3), float((ours - ref).abs().max())
        rows.append((name, t_ours, t_full, t_stop))
    print(f"{'method':22s} {'featviz s':>10s} {'captum full s':>14s} {'speedup':>8s} {'captum stop s':>14s} "
          f"{'speedup':>8s}")
    for name, t_ours, t_full, t_stop in rows:
        print(f"{name:22s} {t_ours:10.3f} {t_full:14.3f} {t_full / t_ours:7.1f}x {t_stop:14.3f} "
              f"{t_stop / t_ours:7.1f}x")
    print("same numbers: yes (asserted, atol 1e-4 x max |attribution|)")


if __name__ == "__main__":
    main()
