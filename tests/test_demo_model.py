"""The bundled ``demo`` model: it ships, matches its registered digest, loads, samples faces of
varied colour, and is what the commands use without ``--model``."""

import json

import numpy as np
import pytest
import torch

import i2s
from i2s.demo import teacher as dcgan
from i2s.experiments.image_set import packaged_examples
from i2s.media.files import sha256_file
from i2s.media.images import to_uint8
from i2s.weights.generator_file import read_generator_metadata
from i2s.weights.load import packaged_path
from i2s.weights.registry import REGISTRY
from tests.cli_run import run


@pytest.fixture(scope="module")
def demo():
    return i2s.load_generator("demo")


def test_demo_ships_with_its_digest_and_provenance():
    entry = REGISTRY["demo"]
    path = packaged_path(entry)
    assert entry.packaged and path.is_file()
    assert path.stat().st_size < 20 * 2**20
    assert entry.sha256 is not None and sha256_file(path) == entry.sha256
    prov = json.loads(read_generator_metadata(path)["provenance"])
    assert prov["teacher_sha256"] == dcgan.SHA256
    assert prov["steps"] == prov["train_config"]["steps"]
    assert prov["adversarial_steps"] == prov["adversarial_config"]["steps"]
    assert (path.parent / "demo.md").is_file()


def test_demo_architecture_and_samples(demo):
    assert (demo.resolution, demo.z_dim, demo.w_dim, demo.num_ws) == (64, 100, 512, 10)
    assert demo.file_sha256 == REGISTRY["demo"].sha256
    z = torch.randn(8, demo.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img = to_uint8(demo(z)).astype(np.float64) / 255
    # Varied samples: different seeds give clearly different images and mean colours.
    assert img.std() > 0.15
    pair = ((img[:, None] - img[None]) ** 2).mean(axis=(2, 3, 4))
    assert pair[~np.eye(8, dtype=bool)].min() > 0.005
    assert img.mean(axis=(1, 2)).std(axis=0).max() > 0.03


def test_commands_default_to_demo(tmp_path, capsys):
    code, _, err = run(["generate", "--seed", 3, "--out", tmp_path / "g.png"], capsys)
    assert code == 0, err
    face = packaged_examples() / "faces" / "face_seed100.png"
    code, _, err = run(["embed", face, "--loss", "mse", "--steps", 3, "--out", tmp_path / "e",
                        "-q"], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "e" / "face_seed100" / "metrics.json").read_text())
    assert metrics["model"] == "demo" and metrics["model_file_sha256"] == REGISTRY["demo"].sha256
    assert metrics["resolution"] == 64
