"""Rendering: indexing, joining, PNG output."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from featviz.optvis import Rendering
from featviz.optvis.rendering import dead_items, no_response_tile


def make(b=3, steps=4, fill=None):
    images = torch.rand(b, 3, 8, 8) if fill is None else torch.full((b, 3, 8, 8), fill)
    return Rendering(images, torch.arange(steps * b, dtype=torch.float).reshape(steps, b),
                     torch.arange(1, b + 1, dtype=torch.float), [f"l:{i}" for i in range(b)], "obj")


def test_indexing_selects_the_same_item_everywhere():
    r = make()
    one = r[-1]
    assert torch.equal(one.images, r.images[2:]) and one.labels == ["l:2"]
    assert torch.equal(one.losses, r.losses[:, 2:]) and one.activations.tolist() == [3.0]


def test_cat_joins_items_in_order():
    a, b = make(2), make(3)
    both = Rendering.cat([a, b])
    assert both.images.shape[0] == 5 and both.labels == a.labels + b.labels
    assert torch.equal(both.losses[:, 2:], b.losses)


def test_cat_refuses_different_step_counts():
    with pytest.raises(ValueError, match="step counts"):
        Rendering.cat([make(steps=2), make(steps=3)])


def test_repr_png_is_the_image_or_a_grid_with_white_gaps():
    one = Image.open(io.BytesIO(make(1, fill=0.0)._repr_png_()))
    two = Image.open(io.BytesIO(make(2, fill=0.0)._repr_png_()))
    assert one.size == (8, 8) and one.getpixel((0, 0)) == (0, 0, 0)
    assert two.size == (22, 12) and two.getpixel((0, 0)) == (255, 255, 255)
    assert two.getpixel((5, 5)) == (0, 0, 0)


def test_save_refuses_other_formats(tmp_path):
    with pytest.raises(ValueError, match=".png"):
        make().save(tmp_path / "x.jpg")


def test_show_draws_one_titled_panel_per_image():
    import matplotlib

    matplotlib.use("Agg")
    r = make(3)
    fig = r.show()
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["l:0", "l:1", "l:2"] and len(fig.axes) == 4  # 2x2 grid, last panel empty
    for ax, image in zip(fig.axes, r.images):  # each panel shows its own image, (H, W, 3)
        np.testing.assert_allclose(ax.images[0].get_array(), image.permute(1, 2, 0).numpy(), rtol=1e-6)
    assert not fig.axes[3].images


def with_acts(acts, flat=()):
    """Rendering with the given final activations; items in ``flat`` are uniform grey (never moved)."""
    images = torch.rand(len(acts), 3, 8, 8)
    for i in flat:
        images[i] = 0.5
    labels = [f"l:{i}" for i in range(len(acts))]
    return Rendering(images, torch.zeros(2, len(acts)), torch.tensor(acts), labels, "obj")


def test_dead_rule_by_hand():
    # scale = max(1, 5) = 5: dead at |a| <= 5e-4; a flat image is also dead at |a| <= 5e-2
    r = with_acts([5.0, 4e-4, -4e-4, 6e-4, 0.04, 0.06, 0.04], flat=[4, 5])
    assert r.dead.tolist() == [False, True, True, False, True, False, False]
    # small batch maximum: scale is 1, so the thresholds are 1e-4 and 1e-2
    assert with_acts([0.5, 2e-4, 5e-5]).dead.tolist() == [False, False, True]
    assert dead_items(torch.full((1, 3, 4, 4), 0.5), torch.tensor([0.0])).tolist() == [True]


def test_dead_flags_survive_indexing_and_cat():
    a, b = with_acts([5.0, 0.0, 1.0]), with_acts([0.0, 2.0])
    assert a[1].dead.tolist() == [True] and a[-1].dead.tolist() == [False]
    assert a[:2].dead.tolist() == [False, True]
    both = Rendering.cat([a, b])
    assert both.dead.tolist() == [False, True, False, True, False]
    # flags are kept, not recomputed against the joined batch's scale
    assert Rendering.cat([with_acts([1e-3]), with_acts([100.0])]).dead.tolist() == [False, False]


def test_explicit_dead_flags_win():
    r = Rendering(torch.rand(2, 3, 8, 8), torch.zeros(1, 2), torch.tensor([0.0, 1.0]), ["a", "b"], "o",
                  dead=torch.tensor([False, True]))
    assert r.dead.tolist() == [False, True] and "1 with no response" in repr(r)


def test_grid_draws_a_dead_item_as_the_crossed_out_tile_not_a_grey_square():
    r = with_acts([0.0, 3.0], flat=[0])  # item 0: the flat grey start image, activation 0
    grid = r.grid(ncol=2, pad=0)  # (3, 8, 16)
    dead_tile, live = grid[:, :, :8], grid[:, :, 8:]
    assert torch.equal(dead_tile, no_response_tile(8, 8)) and torch.equal(live, r.images[1])
    assert float(dead_tile.std()) > 0.1 and not torch.allclose(dead_tile, r.images[0], atol=0.2)
    assert dead_tile[0, 0, 0] > dead_tile[1, 0, 0] + 0.5  # the cross is red-dominant at the corners


def test_save_writes_the_tile_for_a_dead_item(tmp_path):
    r = with_acts([0.0], flat=[0])
    png = torch.tensor(list(Image.open(r.save(tmp_path / "d.png")).getdata())).float() / 255  # (64, 3)
    assert png.T.reshape(3, 8, 8).sub(no_response_tile(8, 8)).abs().max() < 1 / 255


def test_show_writes_no_response_found_on_a_dead_panel():
    import matplotlib

    matplotlib.use("Agg")
    fig = with_acts([0.0, 2.0], flat=[0]).show(ncol=2)
    texts = [[t.get_text() for t in ax.texts] for ax in fig.axes]
    assert texts == [["no response\nfound"], []]
