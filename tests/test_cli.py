"""featviz.cli: every subcommand's help, model loading, one-line errors, small real runs on the toy model."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from featviz._modelfile import load_model
from featviz.cli import main

COMMANDS = ["demo", "render", "trace", "microscope", "models", "layers"]


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and all(c in out for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0 and f"featviz {command}" in capsys.readouterr().out


def test_models_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    assert {"efficientnet_lite0", "edges_and_curves"} <= set(capsys.readouterr().out.split())


def test_layers_shows_toy_shapes_and_channel_counts(capsys):
    assert main(["layers", "edges_and_curves"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["conv1"][2:] == ["1x8x64x64", "8"]   # 8 edge units, 7x7 with padding 3, input 64 px
    assert rows["relu2"][2:] == ["1x7x64x64", "7"]


def test_unknown_model_exits_2_naming_the_closest(capsys):
    assert main(["layers", "efficientnet_lite"]) == 2
    err = capsys.readouterr().err
    assert "efficientnet_lite0" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unknown_layer_exits_2_naming_the_closest(tmp_path, capsys):
    assert main(["render", "edges_and_curves", "relu3:0", "--out", str(tmp_path)]) == 2
    assert "relu2" in capsys.readouterr().err


def test_channel_out_of_range_exits_2_with_the_count(tmp_path, capsys):
    assert main(["render", "edges_and_curves", "relu2:9", "--steps", "1", "--out", str(tmp_path)]) == 2
    assert "7 channels" in capsys.readouterr().err


def test_console_script_error_has_no_traceback():
    exe = Path(sys.executable).with_name("featviz")
    run = subprocess.run([str(exe), "layers", "no_such_model"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "no_such_model" in run.stderr


def test_render_writes_one_png_per_channel(tmp_path, capsys):
    assert main(["--quiet", "render", "edges_and_curves", "relu1:2", "relu2:0", "--size", "24",
                 "--steps", "2", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["relu1_2.png", "relu2_0.png"]
    assert Image.open(tmp_path / "relu1_2.png").size == (24, 24)


def test_microscope_command_builds_the_first_n_channels(tmp_path):
    assert main(["--quiet", "microscope", "edges_and_curves", "--layers", "relu1,relu2", "--channels", "2",
                 "--size", "16", "--steps", "1", "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [layer["channels"] for layer in manifest["layers"]] == [[0, 1], [0, 1]]


def test_python_file_and_state_dict_load_the_same_weights(tmp_path):
    (tmp_path / "net.py").write_text("import torch.nn as nn\n"
                                     "model = lambda: nn.Sequential(nn.Conv2d(3, 4, 3))\n")
    trained = nn.Sequential(nn.Conv2d(3, 4, 3))
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    model = load_model(str(tmp_path / "w.pt"), arch=str(tmp_path / "net.py"))
    assert torch.equal(model[0].weight, trained[0].weight) and not model.training


def test_zoo_arch_loads_torchvision_file_with_aux_keys(tmp_path):
    import torchvision

    tv = torchvision.models.googlenet(aux_logits=True, init_weights=True).eval()
    torch.save(tv.state_dict(), tmp_path / "googlenet.pth")  # as downloaded: has aux1.*/aux2.* keys
    model = load_model(str(tmp_path / "googlenet.pth"), arch="inception_v1")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), tv(x), atol=1e-4)


def test_state_dict_for_wrong_zoo_arch_names_the_missing_keys(tmp_path):
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3)).state_dict(), tmp_path / "w.pt")
    with pytest.raises(ValueError, match="does not fit --arch resnet18: .*conv1.weight"):
        load_model(str(tmp_path / "w.pt"), arch="resnet18")


def test_state_dict_without_arch_says_to_add_it(tmp_path, capsys):
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    assert main(["layers", str(tmp_path / "w.pt")]) == 2
    assert "--arch" in capsys.readouterr().err


def test_trace_writes_diagram_and_json_with_the_wired_inputs(tmp_path):
    assert main(["--quiet", "trace", "edges_and_curves", "relu2:0", "--depth", "1", "--top-k", "4",
                 "--thumb-size", "16", "--thumb-steps", "1", "--out", str(tmp_path)]) == 0
    circuit = json.loads((tmp_path / "circuit_relu2_0.json").read_text())
    assert set(circuit["nodes"]) == {"relu2:0", "relu1:0", "relu1:1", "relu1:7", "relu1:4"}  # toy.py's table
    assert Image.open(tmp_path / "circuit_relu2_0.png").format == "PNG"


def test_demo_page_shows_both_grids_and_the_circuit(tmp_path):
    from featviz.demo import DEMO_LAYERS, run_demo

    index = run_demo(tmp_path, size=32, steps=2, channels=4, depth=1, top_k=2, progress=False)
    html = index.read_text()
    shown = [f"{layer}.png" for layer in DEMO_LAYERS] + ["circuit.png"]
    assert all(f'src="{png}"' in html and (tmp_path / png).stat().st_size > 0 for png in shown)
    circuit = json.loads((tmp_path / "circuit.json").read_text())
    assert len(circuit["nodes"]) == 3 and circuit["root"].startswith(DEMO_LAYERS[-1] + ":")


def test_an_internal_error_is_a_bug_report_line_exit_1(monkeypatch, capsys):
    import featviz._commands as commands

    def broken(args):
        raise KeyError("internal cache slot")  # not a UserError: a bug, even though it is a KeyError

    monkeypatch.setattr(commands, "cmd_models", broken)
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert "this is a bug in featviz" in err and "--debug" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["--debug", "models"], ["models", "--debug"]])
def test_debug_lets_the_traceback_through(argv, monkeypatch):
    import featviz._commands as commands

    monkeypatch.setattr(commands, "cmd_models", lambda args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(argv)


def test_bad_argument_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["layers", "edges_and_curves", "--size", "-1"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and "--size" in err


def test_model_file_imports_its_neighbour_like_python_does(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "path", list(sys.path))
    # a name no other test imports: sys.modules keeps the first module of a name for the whole process
    (tmp_path / "cli_neighbour_lib.py").write_text(
        "import torch.nn as nn\ndef block():\n    return nn.Conv2d(3, 5, 3)\n")
    (tmp_path / "net.py").write_text(
        "from __future__ import annotations\nfrom dataclasses import dataclass\nimport torch.nn as nn\n"
        "from cli_neighbour_lib import block\n\n@dataclass\nclass Config:\n    width: int = 5\n\n"
        "model = nn.Sequential(block(), nn.ReLU())\n")
    assert main(["layers", str(tmp_path / "net.py"), "--size", "8"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert rows[0].split()[2:] == ["1x5x6x6", "5"]


def test_trace_file_names_keep_layer_and_channel(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "net.py").write_text(
        "import torch.nn as nn\nmodel = nn.Sequential()\nmodel.add_module('blocks', nn.Sequential(\n"
        "    nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), nn.Sequential(nn.Conv2d(4, 6, 3), nn.ReLU())))\n")
    for ch in ("3", "5"):
        assert main(["--quiet", "trace", str(tmp_path / "net.py"), f"blocks.1:{ch}", "--depth", "1",
                     "--thumb-size", "8", "--thumb-steps", "1", "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        f"circuit_blocks.1_{ch}.{ext}" for ch in (3, 5) for ext in ("json", "png")]


def test_microscope_device_flag_moves_the_model_and_refuses_a_missing_one(tmp_path, monkeypatch, capsys):
    import featviz._commands as commands

    seen = {}

    def fake_build(model, layers, out, **kw):  # only where the model is matters here
        seen["device"] = next(model.parameters()).device.type
        (Path(out) / "index.html").parent.mkdir(parents=True, exist_ok=True)
        (Path(out) / "index.html").write_text("")
        return Path(out) / "index.html"

    monkeypatch.setattr(commands, "build_microscope", fake_build)
    assert main(["--quiet", "microscope", "edges_and_curves", "--layers", "relu1", "--device", "cpu",
                 "--out", str(tmp_path / "a")]) == 0
    assert seen["device"] == "cpu"
    for bad, says in [("tpu", "expected a torch device"), ("cuda:99", "cuda"), ("cuda", "cuda")]:
        if bad == "cuda" and torch.cuda.is_available():
            continue
        with pytest.raises(SystemExit) as e:
            main(["--quiet", "microscope", "edges_and_curves", "--device", bad, "--out", str(tmp_path / "b")])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "--device" in err and says in err, err


def test_microscope_early_stop_flag_reaches_the_settings(tmp_path, monkeypatch, capsys):
    import featviz._commands as commands

    seen = []

    def fake_build(model, layers, out, **kw):
        seen.append(kw["settings"].early_stop)
        (Path(out) / "index.html").parent.mkdir(parents=True, exist_ok=True)
        (Path(out) / "index.html").write_text("")
        return Path(out) / "index.html"

    monkeypatch.setattr(commands, "build_microscope", fake_build)
    for flags, want in [([], 0.005), (["--early-stop", "0.02"], 0.02), (["--early-stop", "0"], None)]:
        assert main(["--quiet", "microscope", "edges_and_curves", "--layers", "relu1", *flags,
                     "--out", str(tmp_path / f"s{len(seen)}")]) == 0
        assert seen[-1] == want
    with pytest.raises(SystemExit) as e:
        main(["--quiet", "microscope", "edges_and_curves", "--early-stop", "1.5",
              "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and "--early-stop" in capsys.readouterr().err
