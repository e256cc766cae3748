"""render / render_layer mechanics: frozen parameters, no leftover hooks, early stop, seeds, errors."""
import pytest
import torch
import torch.nn as nn
from PIL import Image

import featviz as fv
from featviz.optvis.render import _REFUSES_CHANNELS_LAST, capture


class Counter(nn.Module):
    """Identity that counts its calls (to see which parts of a model ran)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x


def small_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3), Counter(), nn.ReLU())


def all_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in model.modules())


def test_forward_stops_after_the_last_layer_the_objective_needs():
    model = small_model()
    fv.render(model, "1:3", size=16, steps=3, progress=False)
    assert model[3].calls == 0


def test_parameters_get_no_grad_and_requires_grad_is_restored():
    model = small_model()
    model[2].weight.requires_grad_(False)
    fv.render(model, "2:1", size=16, steps=3, progress=False)
    assert [p.requires_grad for p in model.parameters()] == [True, True, False, True]
    assert all(p.grad is None for p in model.parameters())


def test_requires_grad_training_mode_and_hooks_restored_after_an_exception():
    model = small_model().train()
    with pytest.raises(IndexError):
        fv.render(model, "2:99", size=16, steps=3, progress=False)
    assert all(p.requires_grad for p in model.parameters()) and model.training and model[0].training
    assert all_hooks(model) == 0


def test_no_hooks_left_after_render_layer():
    model = small_model()
    fv.render_layer(model, "2", channels=[0, 3], size=16, steps=2, progress=False)
    assert all_hooks(model) == 0


def test_activations_are_the_objective_on_the_final_untransformed_images():
    model = small_model()
    r = fv.render(model, "4:2", size=16, steps=5, batch=2, progress=False)
    with torch.no_grad():
        expected = model(r.images)[:, 2].mean((1, 2))
    torch.testing.assert_close(r.activations, expected, rtol=1e-4, atol=1e-6)
    assert r.images.shape == (2, 3, 16, 16) and r.losses.shape == (5, 2)


def test_render_layer_item_i_maximises_its_own_channel():
    model = small_model()
    r = fv.render_layer(model, "4", channels=[3, 0], size=16, steps=3, progress=False)
    with torch.no_grad():
        acts = model(r.images).mean((2, 3))  # (2, 4)
    torch.testing.assert_close(r.activations, torch.stack([acts[0, 3], acts[1, 0]]), rtol=1e-4, atol=1e-6)
    assert r.labels == ["4:3", "4:0"]


def test_same_seed_same_images_different_seed_different_images():
    a, b, c = (fv.render(small_model(), "2:0", size=16, steps=4, seed=s, progress=False) for s in (1, 1, 2))
    assert torch.equal(a.images, b.images)
    assert (a.images - c.images).abs().max() > 1e-3


def test_unknown_layer_is_a_key_error_before_any_forward():
    model = nn.Sequential(Counter(), small_model())
    with pytest.raises(KeyError, match="nope"):
        fv.render(model, fv.objectives.channel("nope", 0) + "1.2:0", size=16, steps=3, progress=False)
    assert model[0].calls == 0


def test_channel_out_of_range_names_the_channel_count():
    with pytest.raises(IndexError, match="4 channels"):
        fv.render(small_model(), "2:4", size=16, steps=3, progress=False)


class NaNAfter(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, x):
        self.calls += 1
        return x * float("nan") if self.calls >= self.n else x


def test_nan_in_the_objective_is_an_error_naming_the_step():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), NaNAfter(3))
    with pytest.raises(FloatingPointError, match="step 3 "):
        fv.render(model, "1:0", size=16, steps=10, progress=False)


def test_thresholds_record_images_and_last_equals_final():
    r = fv.render(small_model(), "2:1", size=16, steps=6, thresholds=(2, 6), progress=False)
    assert sorted(r.snapshots) == [2, 6]
    assert torch.equal(r.snapshots[6], r.images)
    assert (r.snapshots[2] - r.images).abs().max() > 0


def test_save_writes_a_png_grid_and_leaves_no_temp_file(tmp_path):
    r = fv.render(small_model(), "2:1", size=16, steps=2, batch=4, progress=False)
    path = r.save(tmp_path / "grid.png")
    assert Image.open(path).size == (2 * 18 + 2, 2 * 18 + 2)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    assert path.stat().st_mode & 0o044 == 0o044  # readable by others, like any file written with open()


def test_class_logit_reads_the_model_output():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    r = fv.render(model, fv.objectives.class_logit(2), size=16, steps=5, progress=False)
    with torch.no_grad():
        torch.testing.assert_close(r.activations, model(r.images)[:, 2])
    with pytest.raises(IndexError, match="5 classes"):
        fv.render(model, fv.objectives.class_logit(5), size=16, steps=1, progress=False)


@pytest.mark.parametrize("kwargs, match", [({"steps": 0}, "steps"), ({"lr": -1.0}, "lr"),
                                           ({"thresholds": (9,)}, "thresholds"), ({"batch": 0}, "batch")])
def test_bad_arguments_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fv.render(small_model(), "2:0", size=16, progress=False, **{"steps": 3, **kwargs})


def test_param_returning_the_wrong_shape_is_a_clear_error():
    def bad_param(size, batch, seed=0, device=None):
        return fv.optvis.pixel_image(size + 1, batch, seed=seed, device=device)

    with pytest.raises(ValueError, match="image_fn returned shape"):
        fv.render(small_model(), "2:0", size=16, steps=2, param=bad_param, progress=False)


class Flattens(nn.Module):
    """A conv and a ``.view`` that fails on channels-last memory."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return y.view(y.shape[0], -1)  # (B, 4 * H * W)


def test_capture_feeds_channels_last_on_cpu_and_falls_back_for_models_that_refuse_it():
    model, x = small_model(), torch.rand(2, 3, 12, 12)
    seen = []
    model[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous()))
    acts = capture(fv.hooked(model), x, fv.objectives.channel("1", 0))
    assert seen == [False]  # channels-last memory, same values
    torch.testing.assert_close(acts["1"], model[1](model[0](x)))
    net = Flattens()
    out = capture(fv.hooked(net), x, fv.objectives.class_logit(1))
    torch.testing.assert_close(out[fv.objectives.OUTPUT], net(x))
    assert net in _REFUSES_CHANNELS_LAST


def test_an_activation_between_channels_last_linears_is_read_by_feature_not_by_row():
    class Block(torch.nn.Module):  # ConvNeXt's pattern: conv, permute, Linear, GELU, Linear, permute
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.fc1, self.act, self.fc2 = torch.nn.Linear(4, 10), torch.nn.GELU(), torch.nn.Linear(10, 4)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(self.conv(x).permute(0, 2, 3, 1)))).permute(0, 3, 1, 2)

    net = Block()
    with pytest.raises(IndexError, match="10 channels"):  # 10 features, not the 16 rows of the image
        fv.render(net, "act:12", size=16, steps=1, progress=False, transforms=[])
    r = fv.render(net, "act:7", size=16, steps=2, progress=False, transforms=[])
    with torch.no_grad():
        feats = net.act(net.fc1(net.conv(r.images).permute(0, 2, 3, 1)))  # (1, 16, 16, 10)
    assert float(r.activations[0]) == pytest.approx(float(feats[..., 7].mean()), rel=1e-4, abs=1e-5)
