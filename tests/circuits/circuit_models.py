"""A hand-wired model whose circuits we know: Gabor edge detectors, then channels wired to two of them."""
import math

import torch
from torch import nn

ANGLES = [22.5 * k for k in range(8)]  # layer-1 channel k prefers gratings at this angle (stimuli convention)
# layer-2 channel -> [(layer-1 channel, (row, col) in the 5x5 kernel, weight), ...]
WIRING = {0: [(1, (0, 0), 1.0), (5, (4, 4), 0.8)], 1: [(2, (2, 0), 1.0), (6, (2, 4), 0.9)],
          2: [(0, (1, 3), 1.0), (3, (3, 1), 0.6)], 3: [(4, (2, 2), 1.0), (7, (0, 4), 0.7)]}


def gabor(angle: float, size: int = 5, freq: float = 0.125, sigma: float = 1.5) -> torch.Tensor:
    """Odd Gabor (size, size) whose wave runs along ``angle`` (x right, y up, as featviz.data.stimuli)."""
    c = (size - 1) / 2
    r = torch.arange(size, dtype=torch.float32)
    y, x = (c - r)[:, None].expand(size, size), (r - c)[None, :].expand(size, size)
    t = math.radians(angle)
    wave = torch.sin(2 * math.pi * freq * (x * math.cos(t) + y * math.sin(t)))
    return wave * torch.exp(-(x**2 + y**2) / (2 * sigma**2))


def planted() -> torch.Tensor:
    """The layer-2 wiring as a (4, 8, 5, 5) kernel."""
    w = torch.zeros(4, 8, 5, 5)
    for o, links in WIRING.items():
        for c, (u, v), value in links:
            w[o, c, u, v] = value
    return w


class Wired(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 5, padding=2, bias=False)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 4, 5, padding=2, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.relu2 = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(4, 3, 3)
        self.relu3 = nn.ReLU()
        with torch.no_grad():
            gabors = torch.stack([gabor(a) for a in ANGLES])  # (8, 5, 5)
            self.conv1.weight.copy_(gabors[:, None].expand(-1, 3, -1, -1) / 3)
            self.conv2.weight.copy_(planted())
            self.bn2.weight.copy_(torch.tensor([1.0, 2.0, 0.5, 1.5]))
            self.bn2.running_var.copy_(torch.tensor([1.0, 4.0, 0.25, 2.0]))
            self.bn2.bias.zero_()
            self.conv3.weight.copy_(torch.randn(3, 4, 3, 3, generator=torch.Generator().manual_seed(1)))

    def forward(self, x):
        h = self.relu2(self.bn2(self.conv2(self.relu1(self.conv1(x)))))
        return self.relu3(self.conv3(self.pool(h)))


def even_gabor(angle: float, size: int = 9, freq: float = 0.125, sigma: float = 2.0) -> torch.Tensor:
    """Even (cosine) Gabor: a bar/line detector, not an edge detector (it answers both edge polarities)."""
    c = (size - 1) / 2
    r = torch.arange(size, dtype=torch.float32)
    y, x = (c - r)[:, None].expand(size, size), (r - c)[None, :].expand(size, size)
    t = math.radians(angle)
    wave = torch.cos(2 * math.pi * freq * (x * math.cos(t) + y * math.sin(t)))
    g = wave * torch.exp(-(x**2 + y**2) / (2 * sigma**2))
    return g - g.mean()


def edge_calibration_net() -> tuple[nn.Module, list[bool]]:
    """(net, labels): a 9x9 conv + ReLU whose channels are odd Gabors (edge detectors: label True) at 8
    angles, 2 frequencies and 2 widths, and decoys (label False): even Gabors (bar detectors) at 8 angles
    and 2 frequencies, on- and off-centre difference-of-Gaussians, and a luminance unit."""
    units, labels = [], []
    for freq in (0.0625, 0.125):
        for sigma in (1.5, 2.5):
            units += [gabor(a, size=9, freq=freq, sigma=sigma) for a in ANGLES]
            labels += [True] * len(ANGLES)
    for freq in (0.0625, 0.125):
        units += [even_gabor(a, freq=freq) for a in ANGLES]
        labels += [False] * len(ANGLES)
    r = torch.arange(9, dtype=torch.float32) - 4
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    dog = torch.exp(-d2 / 2) / 2 - torch.exp(-d2 / 8) / 8
    units += [dog / dog.abs().sum(), -dog / dog.abs().sum(), torch.full((9, 9), 1 / 81)]
    labels += [False] * 3
    conv = nn.Conv2d(3, len(units), 9, padding=4)
    with torch.no_grad():
        conv.weight.copy_(torch.stack(units)[:, None].expand(-1, 3, -1, -1) / 3)
        conv.bias.zero_()
    return nn.Sequential(conv, nn.ReLU()).eval(), labels
