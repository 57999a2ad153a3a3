"""Hostile inputs to the commands (issue 15): each gives one ``error:`` line and a non-zero exit
(or a correct result), leaves no half-written output, and writes no non-finite number.

Tiny generators, ``--loss mse`` and a few steps, so the whole file runs in seconds."""

import json
import os

import numpy as np
import pytest
from PIL import Image

import i2s
from tests.cli_run import run
from tests.conftest import make_generator


@pytest.fixture
def face(tmp_path):
    p = tmp_path / "face.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), np.uint8)).save(p)
    return p


@pytest.fixture
def latent(tmp_path, tiny_G):
    """A valid latent of the tiny model (no model hash: fits any tiny model)."""
    p = tmp_path / "a.npz"
    i2s.save_latent(p, i2s.LatentFile(w=tiny_G.w_avg.expand(tiny_G.num_ws, -1).numpy(),
                                      space="w+", model_sha256=""))
    return p


def bad_latent(tmp_path, tiny_G, value, name="bad.npz"):
    w = tiny_G.w_avg.expand(tiny_G.num_ws, -1).numpy().copy()
    w[0, 0] = value
    p = tmp_path / name
    i2s.save_latent(p, i2s.LatentFile(w=w, space="w+", model_sha256=""))
    return p


def one_line_error(code, err, exit_code=None):
    assert code != 0, err
    if exit_code is not None:
        assert code == exit_code, (code, err)
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() \
        else []


def no_non_finite_json(folder):
    for p in folder.rglob("*.json"):
        text = p.read_text()
        assert "NaN" not in text and "Infinity" not in text, p
        json.loads(text)


EMBED = ["--loss", "mse", "--steps", "3", "-q"]


# --- numbers: non-finite, out of range, absurd -------------------------------------------
@pytest.mark.parametrize("args", [
    ["--steps", "1000000000000"],
    ["--lr", "inf"], ["--lr", "nan"], ["--lambda-mse", "nan"], ["--lambda-mse", "inf"],
    ["--lambda-perceptual", "nan"],
])
def test_embed_refuses_bad_numbers(tmp_path, model_file, face, capsys, args):
    code, _, err = run(["embed", face, "--model", model_file, "--out", tmp_path / "o", *EMBED,
                        *args], capsys)
    one_line_error(code, err)
    assert files_under(tmp_path / "o") == []


def test_embed_that_diverges_writes_nothing(tmp_path, model_file, face, capsys):
    code, _, err = run(["embed", face, "--model", model_file, "--out", tmp_path / "o", *EMBED,
                        "--lr", "1e308", "--lambda-mse", "1e308"], capsys)
    line = one_line_error(code, err)
    assert "diverged" in line
    assert not (tmp_path / "o" / "face").exists()


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e38])
def test_embed_refuses_a_bad_init_latent(tmp_path, tiny_G, model_file, face, capsys, value):
    bad = bad_latent(tmp_path, tiny_G, value)
    code, _, err = run(["embed", face, "--model", model_file, "--out", tmp_path / "o", *EMBED,
                        "--init", bad], capsys)
    one_line_error(code, err)
    assert files_under(tmp_path / "o") == []


@pytest.mark.parametrize("value", [np.nan, -np.inf, 1e38])
def test_generate_refuses_a_bad_latent(tmp_path, tiny_G, model_file, capsys, value):
    bad = bad_latent(tmp_path, tiny_G, value)
    code, _, err = run(["generate", "--model", model_file, "--latent", bad,
                        "--out", tmp_path / "g.png"], capsys)
    one_line_error(code, err)
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("value", [1e10, -1e10, 1e30, -1e30])
def test_generate_and_morph_refuse_huge_latents(tmp_path, tiny_G, model_file, latent, capsys,
                                                value):
    """Finite but absurd: every value 1e10 or 1e30 would saturate every pixel; refused where
    the file is read, naming it and the bound."""
    huge = tmp_path / "huge.npz"
    i2s.save_latent(huge, i2s.LatentFile(w=np.full((tiny_G.num_ws, tiny_G.w_dim), value,
                                                   np.float32), space="w+", model_sha256=""))
    code, _, err = run(["generate", "--model", model_file, "--latent", huge,
                        "--out", tmp_path / "g.png"], capsys)
    line = one_line_error(code, err)
    assert "huge.npz" in line and "10000" in line
    assert not (tmp_path / "g.png").exists()
    code, _, err = run(["morph", latent, huge, "--model", model_file, "--out", tmp_path / "m",
                        "-q"], capsys)
    assert "10000" in one_line_error(code, err)
    assert files_under(tmp_path / "m") == []


def test_latent_magnitude_bound(tmp_path, tiny_G):
    """Values as large as real latents get (W within about 100, z and noise within about 10)
    load; beyond MAX_LATENT_ABS, in w, z or a noise map, they are refused."""
    from i2s.embedding.latents import MAX_LATENT_ABS

    shape = (tiny_G.num_ws, tiny_G.w_dim)
    w = np.where(np.arange(shape[1]) % 2, 100.0, -100.0).astype(np.float32) * np.ones(shape)
    ok = i2s.LatentFile(w=w, space="z", model_sha256="", z=np.full(tiny_G.z_dim, -10.0),
                        noise={"b4.conv1.noise_const": np.full((4, 4), 8.0)})
    p = tmp_path / "l.npz"
    i2s.save_latent(p, ok)
    assert np.array_equal(i2s.load_latent(p).w, w)
    i2s.save_latent(p, i2s.LatentFile(w=np.full(shape, MAX_LATENT_ABS), space="w+",
                                      model_sha256=""))
    assert i2s.load_latent(p).w.max() == MAX_LATENT_ABS
    for bad in [i2s.LatentFile(w=np.full(shape, 2e4), space="w+", model_sha256=""),
                i2s.LatentFile(w=w, space="z", model_sha256="", z=np.full(tiny_G.z_dim, 1e10)),
                i2s.LatentFile(w=w, space="w+", model_sha256="",
                               noise={"b4.conv1.noise_const": np.full((4, 4), -1e30)})]:
        i2s.save_latent(p, bad)
        with pytest.raises(i2s.I2SError, match="beyond the bound of 10000") as e:
            i2s.load_latent(p)
        assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_an_optimised_latent_is_accepted(tmp_path, model_file, latent, face, capsys):
    code, _, err = run(["embed", face, "--model", model_file, "--out", tmp_path / "o", *EMBED],
                       capsys)
    assert code == 0, err
    found = tmp_path / "o" / "face" / "latent.npz"
    assert np.isfinite(i2s.load_latent(found).w).all()
    code, _, err = run(["generate", "--model", model_file, "--latent", found,
                        "--out", tmp_path / "g.png"], capsys)
    assert code == 0 and (tmp_path / "g.png").is_file(), err
    code, _, err = run(["morph", latent, found, "--model", model_file, "--out", tmp_path / "m",
                        "--frames", "3", "-q"], capsys)
    assert code == 0, err


def test_morph_refuses_a_nan_latent(tmp_path, tiny_G, model_file, latent, capsys):
    bad = bad_latent(tmp_path, tiny_G, np.nan)
    code, _, err = run(["morph", latent, bad, "--model", model_file, "--out", tmp_path / "m",
                        "-q"], capsys)
    one_line_error(code, err)
    assert files_under(tmp_path / "m") == []


@pytest.mark.parametrize("fps", ["nan", "inf", "0", "-1"])
def test_morph_refuses_bad_fps_and_leaves_nothing(tmp_path, model_file, latent, capsys, fps):
    code, _, err = run(["morph", latent, latent, "--model", model_file, "--out", tmp_path / "m",
                        "--fps", fps, "-q"], capsys)
    one_line_error(code, err)
    assert files_under(tmp_path / "m") == []


def test_morph_refuses_absurd_frame_counts(tmp_path, model_file, latent, capsys):
    code, _, err = run(["morph", latent, latent, "--model", model_file, "--out", tmp_path / "m",
                        "--frames", "100000", "-q"], capsys)
    one_line_error(code, err, 2)


@pytest.mark.parametrize("args", [["--truncation", "nan"], ["--truncation", "inf"],
                                  ["--truncation-cutoff", "-3"], ["--truncation-cutoff", "999"]])
def test_generate_refuses_bad_truncation(tmp_path, model_file, capsys, args):
    code, _, err = run(["generate", "--model", model_file, "--seed", "1", "--out",
                        tmp_path / "g.png", *args], capsys)
    one_line_error(code, err)
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("args", [["--threshold", "nan"], ["--strength", "nan"],
                                  ["--strengths", "0,nan", "--sweep"]])
def test_expression_refuses_non_finite_numbers(tmp_path, model_file, latent, capsys, args):
    code, _, err = run(["expression", "--target", latent, "--neutral", latent, "--expressive",
                        latent, "--model", model_file, "--out", tmp_path / "e", "-q", *args],
                       capsys)
    one_line_error(code, err)
    assert files_under(tmp_path / "e") == []


@pytest.mark.parametrize("name", ["x.bmp", "x.tif", "x.gif", "x.webp", "x"])
def test_image_outputs_are_png_or_jpeg(tmp_path, model_file, capsys, name):
    code, _, err = run(["generate", "--model", model_file, "--seed", "1", "--out",
                        tmp_path / name], capsys)
    one_line_error(code, err)
    assert not (tmp_path / name).exists()


def test_experiment_refuses_absurd_steps(tmp_path, model_file, capsys):
    code, _, err = run(["experiment", "classes", "--model", model_file, "--out", tmp_path / "x",
                        "--steps", str(10**12), "--loss", "mse", "-q"], capsys)
    one_line_error(code, err)


# --- messages ---------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["embed"],                                          # missing argument
    ["embed", "x.png"],                                 # missing --out
    ["embed", "x.png", "--out", "o", "--steps", "zero"],
    ["embed", "x.png", "--out", "o", "--space", "q"],
    ["embed", "x.png", "--out", "o", "--steps", "0"],
    ["embed", "x.png", "--out", "o", "--bogus"],
    ["generate", "--seed", "1"],
    ["generate", "--seed", "x", "--out", "g.png"],
    ["generate", "--out", "g.png"],                     # neither --seed nor --latent
    ["morph", "a.npz"],
    ["morph", "a.npz", "b.npz", "c.npz", "--out", "m"],  # extra argument
    ["nonsense"],
    ["experiment", "nope", "--out", "o"],
    ["models", "info"],
    ["paste-back", "e.png", "--into", "o.png", "--transform", "t.json", "--out", "r.png",
     "--feather", "2"],
    ["align", "--out", "o"],
    ["embed", "-x.png", "--out", "o"],                  # a file name starting with a dash
    ["convert", "a.pkl"],
])
def test_usage_errors_are_one_line(tmp_path, capsys, argv):
    os.chdir(tmp_path)
    code, out, err = run(argv, capsys)
    line = one_line_error(code, err, 2)
    assert "--help" in line and "Usage:" not in err


def test_a_file_name_with_a_newline_stays_one_line(tmp_path, model_file, capsys):
    code, _, err = run(["embed", tmp_path / "bad\nname.png", "--model", model_file,
                        "--out", tmp_path / "o", *EMBED], capsys)
    line = one_line_error(code, err)
    assert "bad\\nname.png" in line


def test_a_symlink_loop_is_named(tmp_path, model_file, capsys):
    loop = tmp_path / "loop.png"
    os.symlink(loop, loop)
    code, _, err = run(["embed", loop, "--model", model_file, "--out", tmp_path / "o", *EMBED],
                       capsys)
    line = one_line_error(code, err)
    assert "symbolic link" in line and "no such file" not in line


def test_a_foreign_vgg_file_gets_our_message(tmp_path, model_file, face, capsys):
    import argparse

    import torch

    p = tmp_path / "random.pt"  # a pickled object: torch's weights_only loader refuses it
    torch.save({"features.0.weight": argparse.Namespace(a=1)}, p)
    code, _, err = run(["embed", face, "--model", model_file, "--out", tmp_path / "o",
                        "--steps", "2", "-q", "--vgg-weights", p], capsys)
    line = one_line_error(code, err)
    assert "weights_only" not in err and "random.pt" in line


# --- outputs: one run per folder, nothing half-written --------------------------------------
def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path, model_file, face, capsys):
    from i2s.media.files import output_lock

    out = tmp_path / "o"
    with output_lock(out):
        code, _, err = run(["embed", face, "--model", model_file, "--out", out, *EMBED],
                           capsys)
    line = one_line_error(code, err)
    assert "another i2s run" in line
    assert files_under(out) == []


def test_a_folder_locked_by_another_process_is_refused_until_it_ends(tmp_path, model_file,
                                                                       face, capsys):
    import subprocess
    import sys

    out = tmp_path / "o"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom i2s.media.files import output_lock\n"
         "with output_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(120)",
         str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _, err = run(["embed", face, "--model", model_file, "--out", out, *EMBED], capsys)
        line = one_line_error(code, err)
        assert f"another i2s run (process {holder.pid})" in line
        assert files_under(out) == [".i2s-lock"]       # the other process's, nothing of ours
    finally:
        holder.kill()                       # killed: its lock stays behind, stale
        holder.wait()
    assert (out / ".i2s-lock").read_text().split()[0] == str(holder.pid)
    code, _, err = run(["embed", face, "--model", model_file, "--out", out, *EMBED], capsys)
    assert code == 0, err
    assert (out / "face" / "latent.npz").is_file() and not (out / ".i2s-lock").exists()


def test_a_stale_lock_is_taken_over(tmp_path, model_file, face, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / ".i2s-lock").write_text("999999999\n")  # no such process
    code, _, err = run(["embed", face, "--model", model_file, "--out", out, *EMBED], capsys)
    assert code == 0, err
    assert (out / "face" / "latent.npz").is_file() and not (out / ".i2s-lock").exists()


def test_a_failed_rerun_keeps_the_previous_folder_whole(tmp_path, model_file, face, capsys,
                                                       monkeypatch):
    """The files of one image folder come from one run: a run that fails while writing leaves
    the previous run's folder as it was."""
    out = tmp_path / "o"
    code, _, err = run(["embed", face, "--model", model_file, "--out", out, *EMBED], capsys)
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in (out / "face").iterdir()}

    import i2s.embedding.outputs as outputs

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "write_json_atomic", boom)  # metrics.json, the last file
    code, _, err = run(["embed", face, "--model", model_file, "--out", out, *EMBED,
                        "--steps", "4"], capsys)
    one_line_error(code, err)
    assert {p.name: p.read_bytes() for p in (out / "face").iterdir()} == before
    assert files_under(out) == sorted(["face", "summary.csv"] + [f"face/{n}" for n in before])


def test_outputs_hold_no_non_finite_numbers(tmp_path, model_file, face, capsys):
    code, _, err = run(["embed", face, "--model", model_file, "--out", tmp_path / "o",
                        *EMBED], capsys)
    assert code == 0, err
    no_non_finite_json(tmp_path / "o")


def test_a_perfect_reconstruction_writes_valid_json(tmp_path, capsys):
    """PSNR is infinite for a perfect reconstruction: metrics.json says null, not Infinity."""
    G = make_generator()
    target = G.synthesis(G.w_avg.expand(1, G.num_ws, -1))
    r = i2s.embed(G, target, steps=1, loss="mse", lr=1e-30)
    r.save(tmp_path / "o", names=["x"])
    no_non_finite_json(tmp_path / "o")


def test_an_interrupted_experiment_resumes_to_the_same_numbers(tmp_path, capsys):
    """Interrupted in the middle of a study (some embeddings cached, the report not written),
    then resumed: the same results as a run that was never interrupted."""
    from i2s.embedding import EmbedConfig
    from i2s.experiments import StudyOptions, run_studies

    G = make_generator(resolution=32)
    G.sha256 = "e" * 64
    cfg, opts = EmbedConfig(steps=3, loss="mse", batch_size=2), StudyOptions(quick=True)

    class Interrupt(Exception):
        pass

    calls = []

    def progress(desc, steps):
        calls.append(desc)
        if len(calls) == 4:
            raise Interrupt

        class Bar:
            def __call__(self, s):
                pass

            def close(self):
                pass
        return Bar()

    with pytest.raises(Interrupt):
        run_studies(["classes", "spaces"], G, tmp_path / "a", cfg, opts, progress=progress)
    assert not (tmp_path / "a" / "results.json").exists()
    cached = list((tmp_path / "a" / "cache").glob("*.npz"))
    assert cached and not list((tmp_path / "a" / "cache").glob(".*"))  # whole entries only
    resumed = run_studies(["classes", "spaces"], G, tmp_path / "a", cfg, opts)
    fresh = run_studies(["classes", "spaces"], G, tmp_path / "b", cfg, opts)
    assert resumed["meta"]["embeddings_reused"] > 0
    assert _without_timings(resumed["experiments"]) == _without_timings(fresh["experiments"])
    no_non_finite_json(tmp_path / "a")


def _without_timings(d):
    if isinstance(d, dict):
        return {k: _without_timings(v) for k, v in d.items()
                if k not in ("seconds", "embedding_seconds")}
    if isinstance(d, list):
        return [_without_timings(v) for v in d]
    return d
