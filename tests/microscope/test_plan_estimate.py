"""Plan.estimate: calibrated CPU seconds of a build, checked against a real build; the CLI's --plan."""
import time

import pytest
import torch

import featviz as fv
from featviz.cli import main
from featviz.microscope import MicroscopeSettings, build_microscope, plan
from featviz.microscope._estimate import calibrate, estimate

SMALL = MicroscopeSettings(size=32, steps=24, diversity=2, examples=2, evidence_random=5, evidence_photos=4)


def test_estimate_is_within_3x_of_a_real_small_build(tmp_path):
    model, layers = fv.models.toy.edges_and_curves(), ["relu1", "relu2"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the estimate is one thread's CPU time
    try:
        p = plan(model, layers, tmp_path / "site", settings=SMALL, channels=2)
        guess = p.estimate(model).total
        start = time.process_time()
        build_microscope(model, layers, tmp_path / "site", settings=SMALL, channels=2, progress=False)
        spent = time.process_time() - start
    finally:
        torch.set_num_threads(threads)
    assert 1 / 3 < guess / spent < 3, (guess, spent)


def test_a_built_site_estimates_nothing_left_but_a_new_setting_costs_its_parts(tmp_path):
    model, out = fv.models.toy.edges_and_curves(), tmp_path / "site"
    settings = MicroscopeSettings(size=16, steps=2, diversity=0, examples=1, evidence=False)
    build_microscope(model, ["relu1"], out, settings=settings, channels=2, progress=False)
    c = calibrate(model, ["relu1"], 16, 64, reps=1)
    assert estimate(model, plan(model, ["relu1"], out, settings=settings, channels=2), c).total == 0
    more = plan(model, ["relu1"], out, settings=settings, channels=3)  # one more channel: its parts only
    e = estimate(model, more, c)
    assert e.channels == {"relu1": 1}
    assert e.parts["relu1"]["fv"] == pytest.approx(settings.steps * c.step["relu1"])


def test_the_count_model_scales_with_steps_diversity_and_channels():
    model = fv.models.toy.edges_and_curves()
    c = calibrate(model, ["relu2"], 32, 64, reps=1)
    base = MicroscopeSettings(size=32, steps=10, diversity=2, evidence=False)
    one = estimate(model, plan(model, ["relu2"], "site", settings=base, channels=1), c).parts["relu2"]
    two = estimate(model, plan(model, ["relu2"], "site", settings=MicroscopeSettings(
        size=32, steps=20, diversity=4, evidence=False), channels=2), c).parts["relu2"]
    assert two["fv"] == pytest.approx(4 * one["fv"])  # 2x steps, 2x channels
    assert two["diversity"] > 7 * one["diversity"]  # 2x steps x 2x batch x 2x channels (+ the batch's pass)
    assert one["evidence"] == one["scans"] == 0


def test_cli_plan_prints_layers_and_estimate_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["--quiet", "microscope", "edges_and_curves", "--plan", "--channels", "3", "--size", "16",
                 "--steps", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "relu1" in text and "relu2" in text and "3 of 8" in text and "3 of 7" in text
    assert "estimated CPU time" in text
    assert not out.exists()


def test_cli_whole_model_build_prints_the_estimate_first(tmp_path, capsys):
    assert main(["microscope", "edges_and_curves", "--channels", "1", "--size", "16", "--steps", "1",
                 "--examples", "1", "--no-evidence", "--out", str(tmp_path / "site")]) == 0
    err = capsys.readouterr().err
    assert "estimated CPU time" in err and err.index("estimated CPU time") < err.index("pages")
    assert (tmp_path / "site" / "index.html").is_file()
