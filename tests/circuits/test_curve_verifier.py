"""The independent curve verifier (tests/circuits/curve_verifier.py) is itself checked before it is trusted:
it confirms curve units defined by geometry (OracleCurves) with their directions, and rejects line, ring and
disc units."""
import pytest
from curve_models import RADII, SHIFT, WIDTH, S, oracle_curves, planted_curves
from curve_verifier import verify


@pytest.fixture(scope="module")
def oracle():
    return oracle_curves()


@pytest.mark.parametrize("channel, direction", [(0, 0), (1, 90), (2, 180), (3, 270)])
def test_the_verifier_confirms_oracle_curve_units(oracle, channel, direction):
    v = verify(oracle, "1", channel, S, shift=SHIFT, radii=[4.0, 6.0], width=WIDTH)
    assert v["confirmed"], v
    assert min(abs(v["direction"] - direction) % 360, 360 - abs(v["direction"] - direction) % 360) <= 30
    assert v["centre"] == (32.0, 32.0)


@pytest.mark.parametrize("channel", [4, 5, 6])
def test_the_verifier_rejects_line_ring_and_disc_units(channel):
    assert not verify(planted_curves(), "1", channel, S, shift=SHIFT, radii=RADII, width=WIDTH)["confirmed"]
