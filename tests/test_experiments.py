"""``i2s experiment``: every study in --quick form on a tiny generator, the image folders, the
embedding cache (resuming) and the command's errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from i2s.embedding import EmbedConfig
from i2s.errors import I2SError
from i2s.experiments import GROUPS, STUDIES, StudyContext, StudyOptions, run_studies
from i2s.experiments.image_set import load_image_set, packaged_examples
from i2s.media.grid import labelled_grid, tile_size
from tests.cli_run import run
from tests.conftest import make_generator

RES = 32


@pytest.fixture(scope="module")
def G32():
    G = make_generator(resolution=RES)
    G.sha256 = "f" * 64
    return G


def _write_images(folder, n, seed, size=40):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            folder / f"img{i}.png")


@pytest.fixture
def image_dir(tmp_path):
    root = tmp_path / "images"
    _write_images(root / "faces", 3, 0)
    _write_images(root / "cats", 2, 1)
    _write_images(root / "expression", 0, 2)
    rng = np.random.default_rng(3)
    for name in ("neutral", "expressive"):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
            root / "expression" / f"{name}.png")
    return root


SETTINGS = EmbedConfig(steps=4, loss="mse", batch_size=2)
QUICK = StudyOptions(quick=True)


def test_packaged_examples_are_the_documented_set():
    s = load_image_set(None, 64)
    assert s.source == "i2s packaged examples (i2s/data/examples)"
    assert (packaged_examples() / "faces").is_dir()
    assert {k: len(v) for k, v in s.images.items()} == {
        "cats": 1, "faces": 16, "objects": 2, "real_faces": 1}
    assert s.faces.shape == (16, 64, 64, 3) and s.faces.dtype == np.uint8
    quick = load_image_set(None, 32, quick=True)
    assert len(quick.faces) == 4 and all(len(v) == 1 for k, v in quick.images.items()
                                         if k != "faces")


def test_image_set_layouts(tmp_path, image_dir):
    s = load_image_set(image_dir, RES)
    assert list(s.images) == ["cats", "faces"] and s.other_classes == ["cats"]
    assert s.expression is not None and s.expression[0].shape == (RES, RES, 3)
    flat = tmp_path / "flat"
    _write_images(flat, 2, 5)
    assert list(load_image_set(flat, RES).images) == ["faces"]
    capped = load_image_set(image_dir, RES, max_images=1)
    assert {k: len(v) for k, v in capped.images.items()} == {"cats": 1, "faces": 1}
    assert capped.names["faces"] == ["img0.png"]
    no_faces = tmp_path / "nofaces"
    _write_images(no_faces / "cars", 1, 6)
    with pytest.raises(I2SError, match="no 'faces' folder"):
        _ = load_image_set(no_faces, RES).faces
    (image_dir / "expression" / "expressive.png").unlink()
    with pytest.raises(I2SError, match="neutral.<ext> and expressive"):
        load_image_set(image_dir, RES)
    (image_dir / "faces" / "broken.png").write_bytes(b"not an image")
    (image_dir / "expression").rename(tmp_path / "moved")
    with pytest.raises(I2SError, match="broken.png"):
        load_image_set(image_dir, RES)
    with pytest.raises(I2SError, match="not a folder"):
        load_image_set(tmp_path / "missing", RES)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(I2SError, match="no images"):
        load_image_set(empty, RES)


def test_embedding_cache_resumes_and_separates_settings(tmp_path, G32):
    targets = load_image_set(None, RES, quick=True).faces[:2]
    study = StudyContext(G32, tmp_path, SETTINGS, QUICK)
    a = study.embed(targets)
    b = study.embed(targets)
    assert (study.computed, study.reused) == (2, 2)
    assert np.array_equal(a.latent, b.latent) and np.array_equal(a.recon, b.recon)
    assert a.latent.shape == (2, G32.num_ws, G32.w_dim) and a.psnr_curve.shape == (4, 2)
    # Other settings, space or targets: another entry.
    StudyContext(G32, tmp_path, EmbedConfig(steps=5, loss="mse")).embed(targets)
    study.embed(targets, space="w")
    study.embed(targets[:1])
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 4
    # A damaged entry is recomputed, not trusted.
    for f in (tmp_path / "cache").glob("*.npz"):
        f.write_bytes(b"junk")
    again = StudyContext(G32, tmp_path, SETTINGS, QUICK)
    c = again.embed(targets)
    assert again.computed == 2 and np.array_equal(c.latent, a.latent)


def test_batches_are_independent(tmp_path, G32):
    targets = load_image_set(None, RES, quick=True).faces[:3]
    one = StudyContext(G32, tmp_path / "a", EmbedConfig(steps=3, loss="mse", batch_size=1))
    three = StudyContext(G32, tmp_path / "b", EmbedConfig(steps=3, loss="mse", batch_size=3))
    assert np.allclose(one.embed(targets).latent, three.embed(targets).latent, atol=1e-5)


def test_all_studies_quick(tmp_path, G32, image_dir):
    out = tmp_path / "out"
    G32.source = "tiny"
    res = run_studies(["all"], G32, out, SETTINGS, QUICK, images=image_dir)
    meta = res["meta"]
    assert meta["model"] == "tiny" and meta["options"]["quick"]
    assert meta["model_sha256"] == G32.sha256 and meta["settings"]["steps"] == 4
    assert meta["classes"] == {"cats": 1, "faces": 3} and meta["expression_pair"]  # quick: 1 cat
    assert f"torch {torch.__version__}" in meta["machine"] and "logical CPUs" in meta["machine"]
    exp = res["experiments"]
    assert list(exp) == list(STUDIES)
    assert set(exp["classes"]) >= {"faces", "cats", "faces_best"}
    assert len(exp["classes"]["faces"]["per_image"]["psnr"]) == 3
    assert list(exp["affine"]["transforms"])[0] == "none"
    assert exp["affine"]["transforms"]["none"]["psnr_drop"] == 0
    assert set(exp["defects"]["regions"]) == {"eyes", "nose", "mouth"}
    assert 0 <= exp["defects"]["fill_rate"] <= 1
    assert len(exp["spaces"]["combinations"]) == 6
    assert len(exp["spaces"]["combinations"]["W+, mean"]["psnr_curve_mean"]) == 4
    assert exp["morph"]["frames"] == 5 and "face 1 -> cats" in exp["morph"]["cross_class"]
    assert len(exp["crossover"]["splits"]) == G32.num_ws - 1
    assert exp["expression"]["pair"].startswith("the neutral and expressive")
    # Files: report, results, figures of the right sizes.
    report = (out / "report.md").read_text()
    for title in ("Which images embed", "Affine transformations", "Defects",
                  "Latent space and initialisation", "Morphing", "Style transfer (crossover)",
                  "Expression transfer", "`tiny`", G32.sha256):
        assert title in report
    assert json.loads((out / "results.json").read_text())["meta"]["num_ws"] == G32.num_ws
    side = tile_size(RES) + 4
    for name in [f for s in exp.values() for f in s["figures"]]:
        assert name in report
        w, h = Image.open(out / name).size
        assert w > side and h > side
    w, h = Image.open(out / "classes.png").size
    assert h == 4 * side + 4                     # 2 classes x (target, W+) rows
    w, h = Image.open(out / "edits_crossover.png").size
    assert w > (G32.num_ws + 1) * side           # content, style and every split
    assert Image.open(out / "spaces_curve.png").size == (640, 400)


def test_resume_after_an_interruption(tmp_path, G32, image_dir):
    class Interrupt(Exception):
        pass

    calls = []

    def progress(desc, steps):
        calls.append(desc)
        if len(calls) == 5:   # 3 faces in batches of 2: the third condition's first batch
            raise Interrupt

        class Cb:
            def __call__(self, s):
                pass

            def close(self):
                pass
        return Cb()

    out = tmp_path / "out"
    with pytest.raises(Interrupt):
        run_studies(["affine"], G32, out, SETTINGS, QUICK, images=image_dir, progress=progress)
    assert not (out / "report.md").exists()
    res = run_studies(["affine"], G32, out, SETTINGS, QUICK, images=image_dir)
    assert res["meta"]["embeddings_reused"] == 2 * 3          # two finished conditions
    assert res["meta"]["embeddings_computed"] == (4 - 2) * 3   # of the quick run's four
    res = run_studies(["affine"], G32, out, SETTINGS, QUICK, images=image_dir)
    assert res["meta"]["embeddings_computed"] == 0


def test_groups_expand_in_order_once():
    from i2s.experiments import expand_names

    assert expand_names(["edits"]) == GROUPS["edits"] == ["morph", "crossover", "expression"]
    assert expand_names(["morph", "all"]) == ["morph"] + [n for n in STUDIES if n != "morph"]
    with pytest.raises(I2SError, match="unknown experiment"):
        expand_names(["nope"])


def test_labelled_grid_layout():
    tiles = [[np.zeros((32, 32, 3), np.uint8), None], [np.ones((32, 32, 3), np.uint8)] * 2]
    g = labelled_grid(tiles)
    side = tile_size(32)
    assert side == 128 and tile_size(1024) == 256 and tile_size(200) == 200
    assert g.shape == (2 * (side + 4) + 4, 2 * (side + 4) + 4, 3)
    assert (g[4:4 + side, 4 + side + 4:4 + 2 * side + 4] == 255).all()   # empty cell
    labelled = labelled_grid(tiles, ["a", "b"], ["x", "y"])
    assert labelled.shape[0] > g.shape[0] and labelled.shape[1] > g.shape[1]


def test_cli_experiment(tmp_path, capsys, model_file, image_dir):
    code, out, err = run(["experiment", "classes", "--model", model_file, "--images", image_dir,
                          "--out", tmp_path / "o", "--quick", "--steps", "3", "--loss", "mse",
                          "-q"], capsys)
    assert code == 0, err
    assert "report.md" in out and (tmp_path / "o" / "classes.png").is_file()


@pytest.mark.parametrize("args,message", [
    (["experiment", "nope"], "Invalid value"),
    (["experiment", "affine", "--images", "{tmp}/missing"], "not a folder"),
    (["experiment", "affine", "--images", "{tmp}/nofaces"], "no 'faces' folder"),
    (["experiment", "classes", "--loss", "mse+vgg", "--vgg-weights", "{tmp}/none.pth"],
     "VGG-16 weights not found"),
    (["experiment", "classes", "--steps", "0"], "Invalid value"),
    (["experiment", "classes", "--out", "{tmp}/file.txt/sub"], "cannot write"),
])
def test_cli_experiment_bad_inputs(tmp_path, capsys, model_file, args, message):
    _write_images(tmp_path / "nofaces" / "cars", 1, 0)
    (tmp_path / "file.txt").write_text("x")
    base = ["--model", model_file, "--out", tmp_path / "o", "--quick", "--steps", "2",
            "--loss", "mse", "-q"]
    argv = args[:2] + base + [a.replace("{tmp}", str(tmp_path)) for a in args[2:]]
    code, out, err = run(argv, capsys)
    assert code != 0 and message in err
    if "Invalid value" not in message:
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
