"""Benchmark: featviz's maco_image vs horama 0.3's maco (the reference MaCo), same model and channel.

Records the objective per step for both (each on what its own optimiser sees: featviz's transformed
image, horama's random crops), then scores both final images the same way (the channel's mean
activation on the untransformed image at the render size), and writes a side-by-side picture with
each method's attribution map. horama downloads its magnitude spectrum at run time; this script
writes featviz's ``natural_spectrum`` into the file horama looks for (in a temporary folder), so both
use the same magnitude and nothing is downloaded.

Usage (bench only: ``.venv/bin/pip install --no-deps horama==0.3.0 einops``):
    .venv/bin/python bench/maco.py [--layer blocks.9] [--channel 3] [--steps 64] [--size 128]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

import featviz as fv
from featviz.optvis.maco import maco_image, natural_spectrum


def channel_score(model, layer: str, channel: int):
    hm = fv.hooked(model)

    def score(x: torch.Tensor) -> torch.Tensor:  # x in [0, 1], (B, 3, H, W) -> mean over batch
        _, cache = hm.run_with_cache(model.preprocess(x), names=[layer], stop_at_last=True, detach=False)
        return cache[layer][:, channel].mean()

    return score


def run_horama(model, layer, channel, steps, size, crops, lr):
    import horama
    import horama.maco_fv as mfv

    score = channel_score(model, layer, channel)
    history = []

    def objective(x):  # horama's crops, values in values_range=(0, 1)
        s = score(x.clamp(0, 1))
        history.append(float(s.detach()))
        return s

    big = 4 * size  # horama crops ~25-30 % boxes of a larger canvas and resizes them to the model size
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            np.save(mfv.MACO_SPECTRUM_FILENAME, natural_spectrum(big, big).numpy())
            t = time.process_time()
            for p in model.parameters():
                p.requires_grad_(False)
            image, alpha = horama.maco(objective, total_steps=steps, learning_rate=lr, image_size=big,
                                       model_input_size=size, crops_per_iteration=crops, values_range=(0, 1),
                                       device="cpu")
            cpu = time.process_time() - t
        finally:
            os.chdir(cwd)
    image = F.interpolate(image.detach()[None], size=(size, size), mode="area")[0]
    alpha = F.interpolate(alpha.mean(0, keepdim=True)[None], size=(size, size), mode="area")[0]
    return image, alpha / alpha.flatten().quantile(0.99).clamp(min=1e-12), history, cpu


def run_featviz(model, layer, channel, steps, size, lr):
    t = time.process_time()
    r = fv.render(model, f"{layer}:{channel}", size=size, steps=steps, lr=lr, param=maco_image,
                  progress=False)
    return r.images[0], r.alpha[0], r.losses[:, 0].tolist(), time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", default="blocks.9")
    ap.add_argument("--channel", type=int, default=3)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--crops", type=int, default=6, help="horama's crops per step (its default: 6)")
    ap.add_argument("--lr", type=float, default=0.25, help="featviz (Adam) learning rate on the phase")
    ap.add_argument("--horama-lr", type=float, default=1.0, help="horama (NAdam) learning rate (its default)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench/maco.png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.models.efficientnet_lite0()
    score = channel_score(model, args.layer, args.channel)
    fv_img, fv_alpha, fv_hist, fv_cpu = run_featviz(model, args.layer, args.channel, args.steps, args.size,
                                                    args.lr)
    ho_img, ho_alpha, ho_hist, ho_cpu = run_horama(model, args.layer, args.channel, args.steps, args.size,
                                                   args.crops, args.horama_lr)
    with torch.no_grad():
        final = {"featviz": float(score(fv_img[None])), "horama": float(score(ho_img[None].clamp(0, 1)))}
    print(f"efficientnet_lite0 {args.layer}:{args.channel}, {args.size} px, {args.steps} steps, "
          f"{torch.get_num_threads()} thread(s)")
    marks = sorted({1, args.steps // 4, args.steps // 2, args.steps})
    print("step   " + "  ".join(f"{m:>7d}" for m in marks))
    for name, hist in (("featviz", fv_hist), ("horama", ho_hist)):
        print(f"{name:7s}" + "  ".join(f"{hist[m - 1]:7.3f}" for m in marks))
    for name, cpu in (("featviz", fv_cpu), ("horama", ho_cpu)):
        print(f"{name}: final image {final[name]:.3f}, CPU {cpu:.1f} s ({cpu / args.steps:.3f} s/step)")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.6))
    axes = fig.subplots(1, 4)
    for ax, (title, img) in zip(axes, [("featviz maco_image", fv_img), ("its attribution", fv_alpha),
                                       ("horama 0.3 maco", ho_img), ("its attribution", ho_alpha)]):
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy().squeeze(), cmap="magma")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{args.layer}:{args.channel}, {args.steps} steps; final activation featviz "
                 f"{final['featviz']:.2f}, horama {final['horama']:.2f}", fontsize=9)
    fig.savefig(args.out, bbox_inches="tight", dpi=80)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
