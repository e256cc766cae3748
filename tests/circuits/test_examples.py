"""dataset_examples: streaming top-k equals brute force; crops land on the stimulus."""
import torch
import torch.nn.functional as F

from featviz.circuits import dataset_examples


def test_streamed_top_k_equals_brute_force(wired):
    images = torch.rand(20, 3, 24, 24, generator=torch.Generator().manual_seed(3))
    maps = F.relu(F.conv2d(images, wired.conv1.weight, padding=2))[:, 5]  # independent: plain conv
    expected = maps.flatten(1).amax(1).topk(4).indices
    ex = dataset_examples(wired, "relu1:5", images, k=4, batch_size=3, progress=False)
    assert ex.indices.tolist() == expected.tolist()
    assert torch.allclose(ex.scores, maps.flatten(1).amax(1)[expected])


def test_a_dataloader_of_tuples_streams_like_a_tensor(wired):
    images = torch.rand(10, 3, 24, 24, generator=torch.Generator().manual_seed(4))
    loader = [(images[i:i + 4], torch.zeros(4)) for i in range(0, 10, 4)]
    a = dataset_examples(wired, "relu2:0", images, k=3, progress=False)
    b = dataset_examples(wired, "relu2:0", loader, k=3, progress=False)
    assert a.indices.tolist() == b.indices.tolist()


def test_crop_box_overlaps_the_only_stimulus(wired):
    images = torch.zeros(3, 3, 40, 40)
    images[1, :, 20:26, 8:14] = 1.0  # a white square in image 1 only, rows 20..25, cols 8..13
    ex = dataset_examples(wired, "relu2:3", images, k=1, progress=False)
    r0, r1, c0, c1 = ex.boxes[0].tolist()
    assert ex.indices.tolist() == [1] and r0 <= 25 and r1 >= 20 and c0 <= 13 and c1 >= 8
    assert (r1 - r0 + 1, c1 - c0 + 1) == (9, 9) and ex.crops.shape == (1, 3, 9, 9)
