"""Feature visualization on the pretrained default model: renders beat photos, diversity diversifies."""
import pytest
import torch
import torch.nn.functional as F

import featviz as fv

EARLY, MIDDLE = "blocks.2", "blocks.7"


def channel_means(model, images: torch.Tensor, layer: str) -> torch.Tensor:
    """(N, C) mean activation per channel of ``layer`` for [0, 1] images, through the hooks API."""
    with torch.no_grad():
        _, cache = fv.hooked(model).run_with_cache(model.preprocess(images), names=[layer], stop_at_last=True)
    return cache[layer].mean((2, 3))


def gram_distances(model, images: torch.Tensor, layer: str) -> torch.Tensor:
    """Mean pairwise (1 - cosine similarity) between the items' Gram matrices at ``layer``."""
    with torch.no_grad():
        _, cache = fv.hooked(model).run_with_cache(model.preprocess(images), names=[layer], stop_at_last=True)
    flat = cache[layer].flatten(2)  # (B, C, HW)
    grams = F.normalize((flat @ flat.transpose(1, 2)).flatten(1), dim=1)
    sims = grams @ grams.T
    b = len(images)
    return (1 - sims)[~torch.eye(b, dtype=torch.bool)].mean()


def check_renders_beat_photos(effnet, photos, layer, channels, size, steps):
    r = fv.render_layer(effnet, layer, channels=channels, size=size, steps=steps, progress=False)
    small = F.interpolate(photos.images, size=(size, size), mode="bilinear", antialias=True).clamp(0, 1)
    rendered = channel_means(effnet, r.images, layer)[range(len(channels)), channels]  # (n,)
    best_photo = channel_means(effnet, small, layer)[:, channels].max(0).values  # (n,)
    assert (rendered > best_photo).all(), (rendered, best_photo)


@pytest.mark.parametrize("layer", [EARLY, MIDDLE])
def test_rendered_images_excite_their_channel_more_than_any_photo(effnet, photos, layer):
    check_renders_beat_photos(effnet, photos, layer, [0, 7, 13], size=64, steps=40)


@pytest.mark.slow
@pytest.mark.parametrize("layer", [EARLY, "blocks.4", MIDDLE, "blocks.10"])
def test_rendered_images_beat_photos_thorough(effnet, photos, layer):
    check_renders_beat_photos(effnet, photos, layer, list(range(0, 24, 3)), size=128, steps=256)


def check_diversity(effnet, channel, size, steps, batch, weight):
    plain = fv.objectives.channel(EARLY, channel)
    kw = dict(size=size, steps=steps, batch=batch, progress=False)
    base = fv.render(effnet, plain, **kw)
    diverse = fv.render(effnet, plain + weight * fv.objectives.diversity(EARLY), **kw)
    assert gram_distances(effnet, diverse.images, EARLY) > gram_distances(effnet, base.images, EARLY)


def test_diversity_gives_more_different_batch_items(effnet):
    check_diversity(effnet, channel=5, size=64, steps=40, batch=3, weight=100.0)


@pytest.mark.slow
@pytest.mark.parametrize("channel", [0, 5, 11])
def test_diversity_thorough(effnet, channel):
    check_diversity(effnet, channel=channel, size=128, steps=256, batch=4, weight=100.0)
