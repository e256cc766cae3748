"""``input_boxes`` remembers a layer's boxes by row and column: every answer must equal a fresh measurement
(autograd through the linearised net for that position alone), on a real net and on a planted net whose
boxes are not separable (where the table must notice and measure every position)."""
import torch
from torch import nn

import featviz as fv
from featviz.circuits.examples import _BOX_TABLES, _BoxTable, input_boxes
from featviz.hooks import hooked


def _fresh(model, layer, shape, positions):
    """Each position measured on its own, with no table (the reference)."""
    return torch.cat([_BoxTable(hooked(model), layer, shape).measure(p[None])[0] for p in positions])


def test_table_matches_fresh_measurements_on_lite0():
    model = fv.models.efficientnet_lite0()
    shape = (3, 96, 96)
    g = torch.Generator().manual_seed(0)
    calls = [torch.randint(0, 24, (5, 2), generator=g) for _ in range(4)]  # blocks.2 is 24 x 24 at 96 px
    calls.append(torch.tensor([[0, 23], [23, 0], [11, 12], [0, 0]]))
    for positions in calls:
        assert input_boxes(model, "blocks.2", shape, positions).tolist() == \
            _fresh(model, "blocks.2", shape, positions).tolist()
    table = _BOX_TABLES[model][("blocks.2", shape)]
    assert table.separable is True
    # a box near the border is cut by the image; one in the middle is the full field (off by stride)
    boxes = input_boxes(model, "blocks.2", shape, torch.tensor([[0, 0], [12, 12], [13, 12]]))
    assert boxes[0, 0] == 0 and boxes[0, 2] == 0
    assert boxes[2, 0] - boxes[1, 0] == 4 and boxes[2, 2] == boxes[1, 2]  # blocks.2 has stride 4


class _Transpose(nn.Module):
    def forward(self, x):
        return x.transpose(-1, -2)


def test_non_separable_layer_is_measured_position_by_position():
    # after the transpose a (1, 5) kernel widens rows by the map's column: a box's rows depend on its column
    net = nn.Sequential(nn.Conv2d(3, 2, 3, stride=2, padding=1), _Transpose(), nn.Conv2d(2, 2, (1, 5)),
                        nn.Conv2d(2, 2, (3, 1), padding=(1, 0)))
    shape = (3, 16, 20)
    positions = torch.tensor([[r, c] for r in range(0, 10, 3) for c in range(4)])  # the map is 10 x 4
    got = input_boxes(net, "3", shape, positions)
    assert _BOX_TABLES[net][("3", shape)].separable is False
    assert got.tolist() == _fresh(net, "3", shape, positions).tolist()
    again = input_boxes(net, "3", shape, positions.flip(0))
    assert again.tolist() == got.flip(0).tolist()
