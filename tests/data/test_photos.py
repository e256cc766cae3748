"""Sample photos and user images load offline as (N, 3, size, size) in [0, 1], centre-cropped."""
import numpy as np
import pytest
import torch
from PIL import Image

import featviz as fv


def test_sample_images_are_rgb_in_unit_range(photos):
    images, names = photos
    assert images.shape == (len(fv.data.SAMPLE_PHOTOS), 3, 224, 224) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1 and images.std() > 0.1
    assert names == list(fv.data.SAMPLE_PHOTOS) and "chelsea" in names and "coffee" in names


def test_grey_sample_photo_is_repeated_over_rgb(photos):
    camera = photos.images[photos.names.index("camera")]
    torch.testing.assert_close(camera[0], camera[1])
    torch.testing.assert_close(camera[0], camera[2])


def test_resize_and_crop_keeps_the_centre_of_a_wide_image():
    ramp = torch.linspace(0, 1, 400).expand(1, 3, 100, 400)  # value = horizontal position
    out = fv.data.resize_and_crop(ramp, 50)
    assert out.shape == (1, 3, 50, 50)
    assert abs(float(out[0, 0, 0, 0]) - 0.375) < 0.02 and abs(float(out[0, 0, 0, -1]) - 0.625) < 0.02


def test_load_images_reads_a_folder_in_name_order(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {name: rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for name in ["b", "a"]}
    for name, array in arrays.items():
        Image.fromarray(array).save(tmp_path / f"{name}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    images, names = fv.data.load_images(tmp_path, size=16)
    assert names == ["a", "b"]
    expected = torch.from_numpy(arrays["a"]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(images[0], expected)


def test_load_images_names_an_unreadable_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        fv.data.load_images([bad])
    with pytest.raises(FileNotFoundError, match="missing"):
        fv.data.load_images(tmp_path / "missing")
