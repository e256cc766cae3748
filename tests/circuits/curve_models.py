"""A planted net for curve tests: least-squares curve units (0, 90, 180, 270) and decoys."""
import math

import torch
from torch import nn

import featviz as fv

S, K, C, SHIFT, RADII, WIDTH = 64, 31, 32.0, 2.0, [4.0, 6.0], 2.0
ARC_LEN = [r * 2 * math.pi / 3 for r in RADII]
CENTRES = [(C, C), (C - SHIFT, C), (C + SHIFT, C), (C, C - SHIFT), (C, C + SHIFT)]


def crop(images):
    """(N, 3, S, S) -> (N, K*K): the grey window a K x K unit centred at pixel (32, 32) reads."""
    h = K // 2
    return images[:, 0, 32 - h:32 + h + 1, 32 - h:32 + h + 1].reshape(len(images), -1)


def arcs(direction, centre):
    return torch.cat([fv.data.curves([direction], S / r, size=S, length=ln / S, width=WIDTH, center=centre)
                      for r, ln in zip(RADII, ARC_LEN)])


def decoy_stimuli(centre):
    lines = fv.data.lines(range(0, 180, 15), [-SHIFT, -SHIFT / 2, 0, SHIFT / 2, SHIFT], size=S,
                          length=max(ARC_LEN) / S, width=WIDTH, center=centre)
    return torch.cat([lines, fv.data.circles(RADII, size=S, width=WIDTH, center=centre),
                      fv.data.circles(RADII, size=S, filled=True, center=centre)])


def curve_unit(direction):
    """Least-squares weights that answer 1 to arcs bulging toward ``direction`` (every radius, at the centre
    and shifted) and 0 to every line, ring, disc and to arcs bulging 90 degrees or more away."""
    pos = torch.cat([crop(arcs(direction, c)) for c in CENTRES])
    neg = torch.cat([crop(decoy_stimuli(c)) for c in CENTRES]
                    + [crop(arcs(direction + o, c)) for c in CENTRES for o in range(90, 271, 15)])
    a = torch.cat([pos, neg]).double()
    b = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).double()[:, None]
    return torch.linalg.lstsq(a, b, driver="gelsd").solution[:, 0].float().reshape(K, K)


def matched(image):
    t = crop(image)[0]
    t = t - t.mean()
    return (t / t.norm()).reshape(K, K)


def planted_curves():
    """Units 0-3: curve detectors bulging 0, 90, 180, 270; 4: a line unit; 5: a ring unit; 6: a blob unit."""
    units = [curve_unit(d) for d in (0, 90, 180, 270)]
    units.append(matched(fv.data.lines([90], size=S, length=max(ARC_LEN) / S, width=WIDTH, center=(C, C))))
    units.append(matched(fv.data.circles([5.0], size=S, width=WIDTH, center=(C, C))))
    units.append(matched(fv.data.circles([5.0], size=S, filled=True, center=(C, C))))
    conv = nn.Conv2d(3, len(units), K, padding=K // 2, bias=False)
    with torch.no_grad():
        for k, w in enumerate(units):
            conv.weight[k] = w / 3
    return nn.Sequential(conv, nn.ReLU()).eval()
