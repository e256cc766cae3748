"""fv.explain on a hand-wired net whose answers are built in: a red unit and a green unit in relu1, a class
"red" that counts red, a class "green" that counts green; captum's LayerIntegratedGradients as reference."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

import featviz as fv
from featviz.errors import BadType, BadValue, OutOfRange, UnknownName

RED, GREEN = 0, 1  # relu1's planted units (and the classes that count them)
SQUARE = (slice(3, 7), slice(9, 13))  # where the red square is (rows, cols) on a 16 x 16 photo
GREEN_SQUARE = (slice(10, 14), slice(2, 6))


class Planted(nn.Module):
    """relu1 = (red, green, blue, white) detectors (1x1 conv); act2 = softplus of a 3x3 conv reading
    relu1 one column to the right (out(i, j) = 2 * in(i, j + 1) per colour); logits = mean of act2."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 2, 3, padding=1, bias=False)
        self.act2 = nn.Softplus()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(2, 2)
        with torch.no_grad():
            w1 = torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, 1]])
            self.conv1.weight.copy_(w1[..., None, None])
            self.conv1.bias.copy_(torch.tensor([0., 0, 0, -2.5]))
            self.conv2.weight.zero_()
            self.conv2.weight[0, RED, 1, 2] = 2.0
            self.conv2.weight[1, GREEN, 1, 2] = 2.0
            self.fc.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 3.0]]))
            self.fc.bias.zero_()
        self.labels = ["red", "green"]
        self.eval()

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.act2(self.conv2(self.relu1(self.conv1(x)))))))


def photo(green: bool = True) -> torch.Tensor:
    x = torch.zeros(3, 16, 16)
    x[0][SQUARE] = 1.0
    if green:
        x[1][GREEN_SQUARE] = 1.0
    return x


@pytest.fixture
def ex():
    return fv.explain(Planted(), photo(), layers=["relu1", "act2"], steps=50)


def test_the_dictionary_names_the_planted_unit_where_the_stimulus_is(ex):
    top = ex.top_channels("relu1", k=2)  # (16, 16, 2)
    values, _ = ex.top_values("relu1", k=1)
    assert top.shape == (16, 16, 2) and top.dtype == torch.long
    assert (top[SQUARE][..., 0] == RED).all() and (top[GREEN_SQUARE][..., 0] == GREEN).all()
    outside = torch.ones(16, 16, dtype=torch.bool)
    outside[SQUARE] = outside[GREEN_SQUARE] = False
    assert values[outside].max() == 0 and values[SQUARE].min() == 1.0  # nothing fires on black


def test_the_top_class_is_the_default_target_and_names_and_units_resolve(ex):
    assert ex.target.label.startswith("red") or ex.target.label.startswith("green")
    assert ex.target.channel == int(Planted()(photo()[None]).argmax())
    assert ex.resolve_target("green").channel == GREEN and ex.resolve_target(0).label == "red (0)"
    node = ex.resolve_target("act2:-1")
    assert (node.layer, node.channel, node.kind) == ("act2", 1, "node")
    with pytest.raises(UnknownName, match="gren|green"):
        ex.resolve_target("gren")
    with pytest.raises(OutOfRange, match="2 classes"):
        ex.resolve_target(5)


@pytest.mark.parametrize("cls, square", [(RED, SQUARE), (GREEN, GREEN_SQUARE)])
def test_attribution_lands_on_the_stimulus_and_the_planted_unit(ex, cls, square):
    attr = ex.attribution("relu1", target=cls)  # (4, 16, 16)
    assert attr.shape == (4, 16, 16)
    inside = attr[:, square[0], square[1]]
    assert float(inside[cls].sum()) > 0.99 * float(attr.abs().sum())
    per_channel = ex.channel_attribution("relu1", target=cls)
    assert int(per_channel.argmax()) == cls and torch.allclose(per_channel, attr.sum((1, 2)))


def test_attribution_is_complete_against_a_hand_computed_baseline(ex):
    net = Planted()
    with torch.no_grad():
        change = float(net(photo()[None])[0, RED] - net(torch.zeros(1, 3, 16, 16))[0, RED])
    attr = ex.attribution("relu1", target="red")
    assert abs(float(attr.sum()) - change) < 0.01 * abs(change)
    check = ex.completeness("relu1", "red")
    assert check["relative_error"] < 0.01 and abs(check["delta"] - change) < 1e-5


def test_attribution_matches_captum_layer_integrated_gradients(ex):
    from captum.attr import LayerIntegratedGradients

    net = Planted()
    lig = LayerIntegratedGradients(net, net.relu1)
    ref = lig.attribute(photo()[None], baselines=torch.zeros(1, 3, 16, 16), target=GREEN, n_steps=50,
                        method="gausslegendre")[0]
    torch.testing.assert_close(ex.attribution("relu1", target=GREEN), ref.float(), atol=2e-5, rtol=1e-3)


def test_a_gray_baseline_is_honoured():
    net = Planted()
    ex = fv.explain(net, photo(), layers=["relu1"], target="red", baseline=0.5, steps=50)
    with torch.no_grad():
        change = float(net(photo()[None])[0, RED] - net(torch.full((1, 3, 16, 16), 0.5))[0, RED])
    assert abs(float(ex.attribution("relu1").sum()) - change) < 0.01 * abs(change)


def test_steps_double_until_complete():
    """A ReLU between the layer and the target makes the integrand jump: too few nodes miss the sum."""
    net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    torch.manual_seed(3)
    x = torch.rand(3, 14, 14)
    ex = fv.explain(net, x, layers=["1"], target="4:0", steps=2, max_steps=512)
    check = ex.completeness("1")
    assert check["relative_error"] < 0.01 and check["steps"] >= 2
    with torch.no_grad():
        change = float(net(x[None])[0, 0].mean() - net(torch.zeros(1, 3, 14, 14))[0, 0].mean())
    assert abs(check["delta"] - change) < 1e-5


def test_spatial_attribution_follows_the_wiring_and_is_complete(ex):
    sa = ex.spatial_attribution("relu1", "act2")  # (16, 16, 16, 16)
    assert sa.shape == (16, 16, 16, 16)
    # act2 at (i, j) reads relu1 at (i, j + 1): inside the red square's image, the credit is one column right
    for i, j in [(3, 8), (5, 10), (6, 11)]:
        flat = int(sa[i, j].abs().flatten().argmax())
        assert divmod(flat, 16) == (i, j + 1)
    # each map sums to the change of <act2(p), u_p> when relu1 goes from the black image's to the photo's
    net = Planted()
    with torch.no_grad():
        a = net.relu1(net.conv1(photo()[None]))
        a0 = net.relu1(net.conv1(torch.zeros(1, 3, 16, 16)))
        d, d0 = net.act2(net.conv2(a))[0], net.act2(net.conv2(a0))[0]
    u = d / d.norm(dim=0, keepdim=True)
    torch.testing.assert_close(sa.sum((2, 3)), ((d - d0) * u).sum(0), atol=1e-4, rtol=1e-3)
    with pytest.raises(BadValue, match="earlier layer first"):
        ex.spatial_attribution("act2", "relu1")


def test_groups_split_the_photo_and_credit_the_planted_group(ex):
    g = ex.groups("relu1", n=2, target="red")
    assert g.factorization.method == "nmf" and len(g) == 2
    red_group = int(g.factorization.directions[:, RED].argmax())
    assert int(g.factorization.directions[red_group].argmax()) == RED
    assert float(g.factorization.spatial[0, red_group][SQUARE].mean()) > 0.5  # active on the red square
    total = float(ex.attribution("relu1", "red").sum())
    assert float(g.attribution[red_group]) > 0.99 * total
    assert abs(float(g.attribution.sum()) + g.unassigned - total) < 1e-5 * max(1.0, abs(total))


def test_groups_of_a_signed_layer_use_pca():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 2, 3))
    ex = fv.explain(net, torch.rand(3, 12, 12), layers=["0"], target="1:0")
    g = ex.groups("0", n=2)
    assert g.factorization.method == "pca"
    assert abs(float(g.attribution.sum()) + g.unassigned - float(ex.attribution("0").sum())) < 1e-4


def test_activation_grid_cells_are_crops_of_one_image_and_follow_their_vectors():
    net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU())  # unit 0: redder than green, unit 1: greener than red
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -1, 0], [-1, 1, 0]])[..., None, None])
        net[0].bias.fill_(0.1)
    x = torch.zeros(3, 16, 16)
    x[0, :, :8] = 1.0  # red left half, green right half
    x[1, :, 8:] = 1.0
    ex = fv.explain(net, x, layers=["1"], target="1:0")
    grid = ex.activation_grid("1", cell=8, size=16, steps=64)
    s, st = 16, grid.stride
    assert grid.images.shape == (2, 2, 3, s, s) and grid.vectors.shape == (2, 2, 2)
    torch.testing.assert_close(grid.images[0, 0][:, :, st:], grid.images[0, 1][:, :, : s - st])  # coherent
    torch.testing.assert_close(grid.mosaic[:, :s, :s], grid.images[0, 0])
    with torch.no_grad():  # each cell drives its own half's unit harder (crops share half their pixels)
        units = net(grid.images.flatten(0, 1)).mean((2, 3)).view(2, 2, 2)
    redness = units[..., 0] - units[..., 1]  # (2, 2)
    assert (redness[:, 0] > 0).all() and (redness[:, 1] < 0).all()
    assert (redness[:, 0] - redness[:, 1] > 0.1).all()


def test_bad_inputs_say_what_was_wrong():
    net = Planted()
    with pytest.raises(BadValue, match=r"one \(3, H, W\)"):
        fv.explain(net, torch.rand(2, 3, 16, 16))
    with pytest.raises(BadType, match="tensor"):
        fv.explain(net, [[0.0]])
    with pytest.raises(UnknownName, match="relu1"):
        fv.explain(net, photo(), layers=["relu"])
    with pytest.raises(BadType, match=r"layers=\['relu1'\]"):
        fv.explain(net, photo(), layers="relu1")
    with pytest.raises(BadValue, match="feature maps"):
        fv.explain(net, photo(), layers=["fc"])
    ex = fv.explain(net, photo(), layers=["relu1"])
    with pytest.raises(UnknownName, match="relu1"):
        ex.attribution("act2")
    with pytest.raises(BadValue, match="k must be"):
        ex.top_channels("relu1", k=9)


def test_default_layers_are_the_models_interesting_layers():
    model = fv.models.toy.edges_and_curves()
    ex = fv.explain(model, torch.rand(3, 16, 16), target="relu2:0")
    assert ex.layers == model.interesting_layers
    assert fv.explain(Planted(), photo()).layers == ["conv1", "conv2"]  # no list: evenly spaced convolutions


def test_the_page_is_self_contained_and_holds_the_dictionary(tmp_path, ex):
    path = ex.save_html(tmp_path / "photo.html", size=16, steps=4, n_groups=2, progress=False,
                        unit_url=lambda layer, c: f"../site/channels/{layer}/{c}.html" if c == RED else None)
    html = path.read_text()
    sources = re.findall(r'src="([^"]*)"', html.split("<script")[0])
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in html and "https://" not in html and "<link rel=\"stylesheet\"" not in html
    data = __import__("json").loads(re.search(r'id="explain-data">(.*?)</script>', html, re.S).group(1))
    layer = data["layers"][0]
    top = ex.top_channels("relu1", k=4)
    assert [[c for c, _ in cell] for cell in layer["top"][4]] == top[4].tolist()
    assert str(RED) in layer["thumbs"] and layer["links"] == {str(RED): "../site/channels/relu1/0.html"}
    assert "<noscript>" in html and path.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_the_page_shows_the_planted_unit_on_click(tmp_path, ex):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "viz"))
    from chromium_cdp import SKIP_REASON, Chromium, find_chromium

    binary = find_chromium()
    if binary is None:
        pytest.skip(SKIP_REASON)
    path = ex.save_html(tmp_path / "photo.html", size=16, steps=2, n_groups=2, progress=False)
    with Chromium(binary) as browser:
        page = browser.open(path.as_uri())
        text = browser.evaluate("""(() => {
          const photo = document.querySelector('.photo[data-layer="0"]'), r = photo.getBoundingClientRect();
          photo.dispatchEvent(new MouseEvent('click', {clientX: r.left + r.width * 10.5 / 16,
                                                       clientY: r.top + r.height * 4.5 / 16, bubbles: true}));
          return document.getElementById('panel-0').innerText; })()""")
    assert not page.errors, page.errors
    assert "row 4, column 10" in text and "relu1:0" in text and "relu1:1" not in text


def test_plot_draws_four_panels_per_layer(ex):
    fig = ex.plot()
    assert len(fig.axes) == 8
    rows = [fig.axes[:4], fig.axes[4:]]
    for row, layer in zip(rows, ["relu1", "act2"]):
        assert all(ax.get_title().startswith(f"{layer}: ") for ax in row[:3]), [a.get_title() for a in row]
        g = ex.groups(layer, n=min(6, ex.activations[layer].shape[0]))
        bars = torch.tensor([bar.get_width() for bar in row[3].patches], dtype=torch.float32)
        torch.testing.assert_close(bars, g.attribution.float(), rtol=1e-5, atol=1e-6)  # each group's share
    # relu1's strongest-channel panel: one colour all over the red square, another on the green one
    channels = np.asarray(rows[0][1].images[0].get_array())
    red, green = channels[SQUARE], channels[GREEN_SQUARE]
    assert (red == red[0, 0]).all() and (green == green[0, 0]).all()
    assert not np.array_equal(red[0, 0], green[0, 0])


@pytest.mark.slow  # 5-12 s on one loaded CPU: integrated gradients go up to 128 steps here
def test_efficientnet_attribution_is_complete_on_a_photo(effnet, photos):
    cat = photos.images[photos.names.index("chelsea")]
    ex = fv.explain(effnet, cat, layers=["blocks.10"])
    assert ex.target.label == "Egyptian cat (285)"
    check = ex.completeness("blocks.10")
    assert check["relative_error"] < 0.01
    with torch.no_grad():
        black = float(effnet(effnet.preprocess(torch.zeros(1, 3, 224, 224)))[0, 285])
    assert abs(check["delta"] - (ex.target_value() - black)) < 1e-3  # blocks.10 has no skip around it


def _photo_file(tmp_path, name="red"):
    from PIL import Image

    path = tmp_path / f"{name}.png"
    Image.fromarray((photo().permute(1, 2, 0).numpy() * 255).astype("uint8")).save(path)
    return path


def test_cli_writes_one_page_per_photo_with_a_summary(tmp_path, capsys):
    from featviz.cli import main

    photos = [str(_photo_file(tmp_path)), str(_photo_file(tmp_path, "b"))]
    code = main(["--quiet", "explain", "edges_and_curves", *photos, "--out", str(tmp_path / "pages"),
                 "--target", "relu2:0", "--size", "16", "--steps", "2",
                 "--groups", "2", "--image-size", "16"])
    out, err = capsys.readouterr()
    assert code == 0, err
    pages = sorted((tmp_path / "pages").glob("*.html"))
    assert [p.name for p in pages] == ["b.html", "red.html"]
    assert set(out.split()) == {str(p) for p in pages} and len(out.split()) == 2
    assert "featviz explain: 2 page(s)" in err and "relu1, relu2" in err
    assert "relu2:0 (mean over its map)" in pages[0].read_text()


@pytest.mark.parametrize("argv, message", [
    (["--layers", "relu9"], "relu1"),
    (["--target", "relu7:0"], "relu1"),
    (["--target", "relu2:99"], "7 channels"),
])
def test_cli_user_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    from featviz.cli import main

    code = main(["--quiet", "explain", "edges_and_curves", str(_photo_file(tmp_path)), "--out",
                 str(tmp_path / "pages"), "--image-size", "16", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_cli_missing_image_exits_2(tmp_path, capsys):
    from featviz.cli import main

    assert main(["explain", "edges_and_curves", str(tmp_path / "nope.png")]) == 2
    assert "no such image file" in capsys.readouterr().err
