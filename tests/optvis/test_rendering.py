"""Rendering: indexing, joining, PNG output."""
import io

import pytest
import torch
from PIL import Image

from featviz.optvis import Rendering


def make(b=3, steps=4, fill=None):
    images = torch.rand(b, 3, 8, 8) if fill is None else torch.full((b, 3, 8, 8), fill)
    return Rendering(images, torch.arange(steps * b, dtype=torch.float).reshape(steps, b),
                     torch.arange(b, dtype=torch.float), [f"l:{i}" for i in range(b)], "obj")


def test_indexing_selects_the_same_item_everywhere():
    r = make()
    one = r[-1]
    assert torch.equal(one.images, r.images[2:]) and one.labels == ["l:2"]
    assert torch.equal(one.losses, r.losses[:, 2:]) and one.activations.tolist() == [2.0]


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
    fig = make(3).show()
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["l:0", "l:1", "l:2"] and len(fig.axes) == 4  # 2x2 grid, last panel empty
