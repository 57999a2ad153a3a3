"""What a newcomer sees: comparison.png, summary.csv, folder and pattern inputs, seed grids."""

import csv

import numpy as np
import pytest
from PIL import Image

import i2s
from i2s.embedding.files import expand_inputs
from i2s.errors import I2SError
from i2s.media.grid import labelled_grid, labelled_strip
from tests.cli_run import run


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("b.png", "a.jpg"):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_expand_inputs_folders_patterns_files(photos):
    assert expand_inputs([str(photos)]) == [str(photos / "a.jpg"), str(photos / "b.png")]
    assert expand_inputs([str(photos / "*.png"), "x.png"]) == [str(photos / "b.png"), "x.png"]
    with pytest.raises(I2SError, match="no images"):
        expand_inputs([str(photos / "*.gif")])


def test_embed_folder_writes_comparison_and_summary(tmp_path, photos, model_file, capsys):
    out = tmp_path / "o"
    code, _, err = run(["embed", photos, tmp_path / "missing.png", "--model", model_file,
                        "--out", out, "--loss", "mse", "--steps", 3, "-q", "--upscale", 4],
                       capsys)
    assert code == 1 and "missing.png" in err
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["done", "done", "failed"]
    assert rows[0]["image"].endswith("a.jpg") and float(rows[0]["psnr"]) > 0
    assert rows[2]["reason"].endswith("no such file") and rows[2]["psnr"] == ""
    comp = np.asarray(Image.open(out / "a" / "comparison.png"))
    target = np.asarray(Image.open(out / "a" / "target.png"))
    recon = np.asarray(Image.open(out / "a" / "reconstruction.png"))
    psnr = float(rows[0]["psnr"])
    assert np.array_equal(comp, labelled_grid([[target, recon]], col_labels=[
        "target", f"recon. {psnr:.2f} dB"], side=16 * 4))


def test_generate_seed_grid_and_folder(tmp_path, model_file, capsys):
    code, _, _ = run(["generate", "--model", model_file, "--seeds", "2-4,9", "--grid",
                      "--out", tmp_path / "grid.png"], capsys)
    assert code == 0
    code, _, _ = run(["generate", "--model", model_file, "--seeds", "2-4,9",
                      "--out", tmp_path / "many"], capsys)
    assert code == 0
    tiles = [np.asarray(Image.open(tmp_path / "many" / f"seed{s}.png")) for s in (2, 3, 4, 9)]
    code, _, _ = run(["generate", "--model", model_file, "--seed", 9,
                      "--out", tmp_path / "one.png"], capsys)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "one.png")), tiles[3])
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert np.array_equal(grid, labelled_strip(tiles, ["seed 2", "seed 3", "seed 4", "seed 9"],
                                               cols=2))
    for bad in ("5-2", "x", "1-99999"):
        code, _, err = run(["generate", "--model", model_file, "--seeds", bad, "--out",
                            tmp_path / "b"], capsys)
        assert code == 2 and "--seeds" in err
    code, _, err = run(["generate", "--model", model_file, "--seed", 1, "--grid", "--out",
                        tmp_path / "c.png"], capsys)
    assert code == 2 and "--grid needs --seeds" in err


def test_labelled_strip_rows_have_equal_width():
    tiles = [np.full((8, 8, 3), v, np.uint8) for v in (0, 60, 120, 180, 240)]
    strip = labelled_strip(tiles, list("abcde"), cols=2)
    assert strip.shape[1] == labelled_strip(tiles[:2], ["a", "b"]).shape[1]
    with pytest.raises(ValueError):
        labelled_strip(tiles, ["a"])
    assert i2s.__version__
