"""optvis results hold data; their figures live in featviz.viz.optvis_plot (issue 19).

``Factorization.plot`` / ``Atlas.plot`` / ``Rendering.show`` are one-line delegates: the same pixels as the
viz function. The figures keep their panels and titles, a group's colour is the same in its title and its map,
and figures are written by the one atomic writer (``fv.viz.save``).
"""
import io

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib import colormaps
from PIL import Image

import featviz as fv
from featviz.optvis.atlas import Atlas
from featviz.optvis.factorize import Factorization, group_colors
from featviz.optvis.rendering import Rendering
from featviz.viz.figures import figure_png

matplotlib.use("Agg")


def pixels(fig) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(figure_png(fig))).convert("RGB"))


def planted_factorization() -> Factorization:
    """K=3 groups, N=2 images, 4x4 maps: group g is on (value 1 + g) in column g of image 0 only; the largest
    value of all, 5, is group 1 at (2, 3) of image 1."""
    spatial = torch.zeros(2, 3, 4, 4)
    for g in range(3):
        spatial[0, g, :, g] = 1.0 + g
    spatial[1, 1, 2, 3] = 5.0
    return Factorization("relu9", torch.eye(3), spatial, torch.rand(2, 3, 8, 8), "nmf", None)


def planted_atlas(renders: Rendering | None = None) -> Atlas:
    """A 3x3 grid with four filled cells; classes 7, 2, 7, 0 (tab20 colours in order of first appearance)."""
    cells = torch.tensor([[0, 0], [0, 2], [1, 1], [2, 0]])
    counts = torch.zeros(3, 3, dtype=torch.long)
    counts[cells[:, 0], cells[:, 1]] = torch.tensor([4, 5, 6, 7])
    n = int(counts.sum())
    zeros = torch.zeros(n, 2, dtype=torch.long)
    return Atlas("relu9", torch.rand(n, 2), zeros[:, 0], zeros, 3, counts, cells, torch.rand(4, 5), renders,
                 torch.tensor([7, 2, 7, 0]), [f"class {i}" for i in range(8)])


def test_factorization_plot_is_plot_factorization_pixel_for_pixel():
    f = planted_factorization()
    r = Rendering(torch.rand(3, 3, 6, 6), torch.zeros(1, 3), torch.ones(3), ["a", "b", "c"], "o")
    assert np.array_equal(pixels(f.plot()), pixels(fv.viz.plot_factorization(f)))
    assert np.array_equal(pixels(f.plot(r, n_images=1)), pixels(fv.viz.plot_factorization(f, r, n_images=1)))
    assert f._repr_png_() == figure_png(fv.viz.plot_factorization(f))
    assert not np.array_equal(pixels(f.plot(r)), pixels(f.plot()))  # the renderings are drawn


def test_factorization_figure_panels_titles_and_group_colours():
    f = planted_factorization()
    colors = group_colors(3)
    fig = fv.viz.plot_factorization(f)
    assert len(fig.axes) == (2 + 1) * (3 + 1)  # (top row + one row per image) x (overlay + one per group)
    assert fig.axes[0].texts[0].get_text() == "relu9\nnmf, 3 groups"
    top = fig.axes[1:4]
    assert [ax.get_title() for ax in top] == ["group 0", "group 1", "group 2"]
    for g, ax in enumerate(top):  # the legend: title and swatch in group g's colour
        assert matplotlib.colors.to_rgb(ax.title.get_color()) == pytest.approx(tuple(colors[g]))
        assert np.allclose(ax.images[0].get_array(), colors[g])
    # image 1 (row 2), group 1's map: the global maximum (2, 3) is exactly group 1's colour, zeros are white
    m = np.asarray(fig.axes[2 * 4 + 2].images[0].get_array())  # (4, 4, 3)
    assert np.allclose(m[2, 3], colors[1]) and np.allclose(m[0, 0], 1.0)
    # image 0: group g's map is tinted towards colour g in column g only, by value (1 + g) / 5
    for g in range(3):
        m = np.asarray(fig.axes[1 * 4 + 1 + g].images[0].get_array())
        expected = (1 + g) / 5 * colors[g] + (1 - (1 + g) / 5)
        assert np.allclose(m[:, g], expected) and np.allclose(np.delete(m, g, axis=1), 1.0)


def test_group_colors_are_matplotlibs_tab10_then_evenly_spaced_hues():
    tab10 = np.array(colormaps["tab10"].colors)
    for k in (1, 3, 6, 10):
        assert np.array_equal(group_colors(k), tab10[:k])  # the colours matplotlib's tab10 gave before
    many = group_colors(12)
    assert many.shape == (12, 3) and many.min() >= 0 and many.max() <= 1
    hues = np.array([matplotlib.colors.rgb_to_hsv(c)[0] for c in many])
    assert np.allclose(np.diff(hues), 1 / 12) and len({tuple(c) for c in many.round(6)}) == 12


def test_atlas_plot_is_plot_atlas_and_draws_cells_counts_and_classes():
    a = planted_atlas()
    for kind in ("features", "classes"):
        assert np.array_equal(pixels(a.plot(kind)), pixels(fv.viz.plot_atlas(a, kind)))
    fig = fv.viz.plot_atlas(a, "classes", counts=False)
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and ax.get_title() == "class atlas of relu9"
    tab20 = colormaps["tab20"]
    order = {7: 0, 2: 1, 0: 2}  # class -> colour index, by first appearance
    patches = {(int(p.get_x()), int(p.get_y())): p for p in ax.patches}
    assert set(patches) == {(0, 0), (2, 0), (1, 1), (0, 2)}  # (col, row) of each filled cell
    for (r, c), k in zip(a.cells.tolist(), a.classes.tolist()):
        assert patches[(c, r)].get_facecolor() == pytest.approx(tab20(order[k]))
    assert sorted(t.get_text() for t in ax.texts) == ["class 0", "class 2", "class 7", "class 7"]
    fig = fv.viz.plot_atlas(a)  # features without renderings: the sample density, each cell's count
    assert fig.axes[0].get_title() == "activation atlas of relu9 (22 samples, 4 cells)"
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["4", "5", "6", "7"]
    with pytest.raises(fv.errors.BadValue, match="kind"):
        a.plot("pixels")


def test_atlas_features_show_the_mosaic_of_its_renderings():
    renders = Rendering(torch.rand(4, 3, 5, 5), torch.zeros(1, 4), torch.ones(4), list("abcd"), "o")
    a = planted_atlas(renders)
    shown = np.asarray(a.plot(counts=False).axes[0].images[0].get_array())
    assert np.array_equal(shown, a.mosaic().permute(1, 2, 0).numpy())
    assert np.array_equal(shown[5:10, 5:10], renders.images[2].permute(1, 2, 0).numpy())  # cell (1, 1)


def test_rendering_show_is_show_rendering():
    import matplotlib.pyplot as plt

    r = Rendering(torch.rand(3, 3, 8, 8), torch.zeros(1, 3), torch.tensor([1.0, 0.0, 2.0]), list("abc"), "o")
    r.dead = torch.tensor([False, True, False])
    a, b = r.show(ncol=2), fv.viz.show_rendering(r, ncol=2)
    try:
        assert np.array_equal(pixels(a), pixels(b))
        assert [ax.get_title() for ax in b.axes] == ["a", "b", "c", ""]
        assert b.axes[1].texts[0].get_text() == "no response\nfound" and not b.axes[0].texts
    finally:
        plt.close(a)
        plt.close(b)


def test_save_writes_the_figure_in_the_extensions_format(tmp_path):
    f = planted_factorization()
    fig = f.plot(path=tmp_path / "f.png")
    written = np.asarray(Image.open(tmp_path / "f.png").convert("RGB"))
    assert np.array_equal(written, pixels(fig))  # the file holds the figure
    fv.viz.save(fig, tmp_path / "sub" / "f.svg")
    assert b"<svg" in (tmp_path / "sub" / "f.svg").read_bytes()[:400]


def test_every_figure_file_is_written_atomically(tmp_path, monkeypatch):
    """A write that dies half-way (disk full) leaves each old file whole: Factorization.plot, Atlas.plot,
    plot_explanation and save_explanation's PNG all write through fv.viz.save / figure_png."""
    from matplotlib.figure import Figure

    from featviz.viz.explanation import plot_explanation, save_explanation

    real = Figure.savefig

    def dies_half_way(self, fname, **kwargs):
        buf = io.BytesIO()
        real(self, buf, **kwargs)
        data = buf.getvalue()
        if hasattr(fname, "write"):
            fname.write(data[: len(data) // 2])
        else:
            with open(fname, "wb") as out:
                out.write(data[: len(data) // 2])
        raise OSError("disk full")

    ex = fv.explain(fv.models.toy.edges_and_curves(), torch.rand(3, 16, 16), target="relu2:0")
    writes = {"f.png": lambda p: planted_factorization().plot(path=p),
              "a.png": lambda p: planted_atlas().plot(path=p),
              "e.png": lambda p: plot_explanation(ex, ["relu1"], path=p),
              "page.png": lambda p: save_explanation(ex, p.with_suffix(".html"), ["relu1"], size=8, steps=1,
                                                     n_groups=2, progress=False)}
    for name in writes:
        (tmp_path / name).write_bytes(b"old, whole")
    monkeypatch.setattr(Figure, "savefig", dies_half_way)
    for name, write in writes.items():
        with pytest.raises(OSError, match="disk full"):
            write(tmp_path / name)
        assert (tmp_path / name).read_bytes() == b"old, whole", name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(writes)  # no temporary file left
