"""--threads on the commands that compute, and the note on a busy machine."""

import pytest
import torch

from i2s import provenance
from tests.cli_run import run


@pytest.fixture
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_oversubscription_known_answers(monkeypatch):
    monkeypatch.setattr(provenance, "available_cpus", lambda: 2)
    monkeypatch.setattr(provenance.os, "getloadavg", lambda: (1.6, 1.0, 1.0))
    assert provenance.oversubscription(2) == (1.6, 1)  # one core left for two threads
    assert provenance.oversubscription(1) is None      # one thread never oversubscribes
    monkeypatch.setattr(provenance.os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert provenance.oversubscription(2) is None      # idle
    monkeypatch.setattr(provenance, "available_cpus", lambda: 16)
    monkeypatch.setattr(provenance.os, "getloadavg", lambda: (10.2, 0.0, 0.0))
    assert provenance.oversubscription(16) == (10.2, 6)


@pytest.mark.parametrize("command", ["embed", "embed-3d", "generate", "generate-3d",
                                     "render-3d", "morph", "style-transfer", "expression",
                                     "inpaint", "morph-3d", "swap-3d", "experiment", "convert",
                                     "train-demo", "train-demo-3d"])
def test_every_computing_command_has_threads(command, capsys):
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0 and "--threads" in out


def test_threads_sets_torch_and_busy_note(tmp_path, model_file, capsys, monkeypatch,
                                          restore_threads):
    code, _, err = run(["generate", "--model", model_file, "--seed", 1, "--threads", 1,
                        "--out", tmp_path / "a.png"], capsys)
    assert code == 0 and torch.get_num_threads() == 1 and "busy" not in err
    torch.set_num_threads(2)
    monkeypatch.setattr(provenance, "oversubscription", lambda threads=None: (3.0, 1))
    # the note waits for long work (the first progress bar): a quick or failing command
    # prints nothing more
    code, _, err = run(["generate", "--model", model_file, "--seed", 1,
                        "--out", tmp_path / "b.png"], capsys)
    assert code == 0 and "busy" not in err
    from PIL import Image
    Image.new("RGB", (16, 16)).save(tmp_path / "x.png")
    code, _, err = run(["embed", tmp_path / "x.png", "--model", model_file, "--loss", "mse",
                        "--steps", 2, "--out", tmp_path / "e"], capsys)
    assert code == 0 and "note: this machine is busy (load 3.0" in err and "--threads 1" in err
    code, _, err = run(["embed", tmp_path / "missing.png", "--model", model_file, "--loss",
                        "mse", "--steps", 2, "--out", tmp_path / "e2"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    code, _, err = run(["generate", "--model", model_file, "--seed", 1, "--threads", 0,
                        "--out", tmp_path / "c.png"], capsys)
    assert code == 2 and "--threads" in err
