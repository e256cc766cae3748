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


def _net(units):
    conv = nn.Conv2d(3, len(units), K, padding=K // 2, bias=False)
    with torch.no_grad():
        for k, w in enumerate(units):
            conv.weight[k] = w / 3
    return nn.Sequential(conv, nn.ReLU()).eval()


def blended(direction, ring=0.0, line=0.0):
    """A curve unit bulging toward ``direction`` plus ``ring`` x a ring unit and ``line`` x a line unit (K x K
    weights): small amounts still prefer arcs, larger ones make a ring or line unit."""
    w = curve_unit(direction)
    w = w + ring * matched(fv.data.circles([5.0], size=S, width=WIDTH, center=(C, C)))
    return w + line * matched(fv.data.lines([direction], size=S, length=max(ARC_LEN) / S, width=WIDTH,
                                            center=(C, C)))


# hand-wired units for calibrating the curve finder: (ring, line) blend amounts of each kind
POSITIVE_BLENDS = [(0.0, 0.0), (0.02, 0.0), (0.04, 0.0), (0.06, 0.0), (0.07, 0.0), (0.0, 0.02), (0.0, 0.04),
                   (0.0, 0.06), (0.0, 0.08)]
DECOY_BLENDS = [(0.1, 0.0), (0.15, 0.0), (0.0, 0.12), (0.0, 0.16)]


def calibration_net(directions=(0, 90, 180, 270)):
    """(net, labels): blended curve units that prefer arcs (label True) and blends that a ring or line
    dominates, plus pure line, ring and disc units (label False), for every direction."""
    units, labels = [], []
    for d in directions:
        for (r, ln), label in [(b, True) for b in POSITIVE_BLENDS] + [(b, False) for b in DECOY_BLENDS]:
            units.append(blended(d, r, ln))
            labels.append(label)
    units.append(matched(fv.data.lines([90], size=S, length=max(ARC_LEN) / S, width=WIDTH, center=(C, C))))
    units.append(matched(fv.data.circles([5.0], size=S, width=WIDTH, center=(C, C))))
    units.append(matched(fv.data.circles([5.0], size=S, filled=True, center=(C, C))))
    labels += [False, False, False]
    return _net(units), labels


def _thick(images, px=1):
    """Strokes widened by ``px`` pixels (max-pooling): masks that tolerate small rendering differences."""
    return torch.nn.functional.max_pool2d(images[:, :1], 2 * px + 1, stride=1, padding=px)[:, 0]


class OracleCurves(nn.Module):
    """Position-tolerant curve units defined by geometry, not by weights: for each bulge direction, the best
    over positions within 2 px and radii 4-8 px of (mean brightness on an arc of ``fv.data.curves``) minus the
    largest mean brightness on four regions kept 1 px clear of it: the rest of its circle with the inside, its
    tangent line beyond the arc, and the parallel arcs 2.5 px inside and outside. A ring lights the first, a
    line the second, a disc the third; arcs of other directions miss the arc itself. Output: (B, D, S, S), the
    value everywhere (the unit at the map centre reads it), plus a vanishing term over a 63 x 63 window about
    the image centre so the unit's input support is symmetric about it."""

    def __init__(self, directions=(0, 90, 180, 270), radii=(4.0, 5.0, 6.0, 8.0)):
        super().__init__()
        shifts = [(dr, dc) for dr in (-2, -1, 0, 1, 2) for dc in (-2, -1, 0, 1, 2)]
        on, off = [], []
        for d in directions:
            t = math.radians(d)
            on_d, off_d = [], []
            for r in radii:
                length = r * 2 * math.pi / 3
                for dr, dc in shifts:
                    c = (C + dr, C + dc)
                    arc_ = fv.data.curves([d], S / r, size=S, length=length / S, width=WIDTH, center=c)
                    clear = 1 - _thick(arc_)[0]
                    behind = (c[0] + r * math.sin(t), c[1] - r * math.cos(t))  # the circle's centre
                    regions = [fv.data.circles([r], size=S, width=WIDTH, center=behind)
                               + fv.data.circles([r], size=S, filled=True, center=behind),
                               fv.data.lines([d], size=S, length=3 * length / S, width=WIDTH, center=c)]
                    regions += [fv.data.curves([d], S / (r + o), size=S, length=length / S, width=WIDTH,
                                               center=(c[0] - o * math.sin(t), c[1] + o * math.cos(t)))
                                for o in (-2.5, 2.5)]
                    masks = [(m[0, 0].clamp(0, 1) * clear) for m in regions]
                    on_d.append(arc_[0, 0] / arc_[0, 0].sum())
                    off_d.append(torch.stack([m / m.sum().clamp_min(1e-6) for m in masks]))
            on.append(torch.stack(on_d))
            off.append(torch.stack(off_d))
        self.register_buffer("on", torch.stack(on))  # (D, R * P, S, S)
        self.register_buffer("off", torch.stack(off))  # (D, R * P, 4, S, S)
        window = torch.zeros(S, S)
        window[1:S, 1:S] = 1e-6  # rows and columns 1..63: centred on pixel 32, wider than every mask
        self.register_buffer("window", window)

    def forward(self, x):
        g = x.mean(1)  # (B, S, S)
        score = (torch.einsum("bhw,dkhw->bdk", g, self.on)
                 - torch.einsum("bhw,dkjhw->bdkj", g, self.off).amax(-1))
        v = score.amax(-1) + torch.einsum("bhw,hw->b", g, self.window)[:, None]  # (B, D)
        return v[:, :, None, None].expand(-1, -1, x.shape[-2], x.shape[-1])


def oracle_curves():
    """Channels 0-3: oracle curve units bulging 0, 90, 180, 270 (``OracleCurves``), then ReLU."""
    return nn.Sequential(OracleCurves(), nn.ReLU()).eval()
