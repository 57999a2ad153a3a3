"""``i2s embed-dataset``: sources, the manifest, resuming, and real torchrun runs with two
gloo processes on the CPU (a tiny random generator: a test fixture)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import i2s
from i2s.dataset import Ranks, embed_dataset, find_sources, settings_hash
from i2s.dataset.manifest import read_logs
from i2s.errors import I2SError
from tests.cli_run import run

STEPS = ["--loss", "mse", "--lr", "0.05"]


def make_dataset(root: Path, n: int = 12, broken: int = 2) -> list[str]:
    """``n`` images in two nested folders, the last ``broken`` of them not images."""
    names = []
    for i in range(n):
        sub = root / ("people" if i % 2 else "places") / ("deep" if i % 3 == 0 else "")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"img{i:02d}.png"
        if i >= n - broken:
            path.write_bytes(b"not a png at all")
        else:
            rng = np.random.default_rng(i)
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), np.uint8)).save(path)
        names.append(path.relative_to(root).with_suffix("").as_posix())
    return names


def torchrun(nproc: int, *args: str) -> subprocess.Popen:
    """``torchrun --nproc-per-node N -m i2s embed-dataset ARGS`` (gloo on the CPU)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "I2S_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
         "--master-port", str(_free_port()), "-m", "i2s", "embed-dataset", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_pid(launcher: int, rank: int) -> int:
    """The process of ``rank`` among the launcher's descendants (by its RANK variable)."""
    todo, seen = [launcher], []
    while todo:
        pid = todo.pop()
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        todo += [int(k) for k in kids.stdout.split()]
        seen.append(pid)
    for pid in seen:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and b"LOCAL_RANK=" + str(rank).encode() in env:
            return pid
    raise AssertionError(f"no process of rank {rank} under {launcher}")


def manifest(out: Path) -> dict[str, dict]:
    lines = (out / "manifest.jsonl").read_text().splitlines()
    return {d["name"]: d for d in map(json.loads, lines)}


def test_sources_folder_pattern_list_and_names(tmp_path):
    names = make_dataset(tmp_path / "d", n=6, broken=0)
    (tmp_path / "d" / ".hidden").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "d" / ".hidden" / "x.png")
    (tmp_path / "d" / "notes.csv").write_text("not an image")
    found = find_sources(tmp_path / "d")
    assert [s.name for s in found] == sorted(names)           # recursive, hidden skipped
    pattern = find_sources(str(tmp_path / "d" / "**" / "img0[0-2].png"))
    assert [s.name for s in pattern] == sorted(n for n in names if n[-1] in "012")
    listing = tmp_path / "d" / "list.txt"
    listing.write_text("# two of them\npeople/img01.png\n\nplaces/deep/img00.png\n")
    assert [s.name for s in find_sources(listing)] == ["people/img01", "places/deep/img00"]
    Image.new("RGB", (4, 4)).save(tmp_path / "d" / "people" / "img01.jpg")
    clash = [s.name for s in find_sources(tmp_path / "d" / "people")]
    assert "img01_jpg" in clash and "img01_png" in clash
    for bad, msg in ((tmp_path / "none", "no such"), (tmp_path / "d" / "notes.csv", "neither"),
                     (str(tmp_path / "*.webp"), "no images")):
        with pytest.raises(I2SError, match=msg):
            find_sources(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(I2SError, match="no images"):
        find_sources(tmp_path / "empty")


def test_ranks_from_env():
    r = Ranks.from_env({"RANK": "1", "WORLD_SIZE": "3", "LOCAL_RANK": "1"})
    assert (r.rank, r.world, r.local_rank, r.distributed) == (1, 3, 1, True)
    assert Ranks.from_env({}).world == 1 and Ranks().share({"a": 1}) == {"a": 1}
    for env in ({"RANK": "3", "WORLD_SIZE": "3"}, {"RANK": "x"}, {"WORLD_SIZE": "0"}):
        with pytest.raises(I2SError):
            Ranks.from_env(env)


def test_ranks_without_torchrun_is_one_line(monkeypatch):
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(I2SError, match="could not join the process group.*torchrun"):
        Ranks(rank=0, world=2).start(torch.device("cpu"))


def test_one_process_manifest_failures_and_rerun(tmp_path, tiny_G):
    names = make_dataset(tmp_path / "d")
    cfg = i2s.EmbedConfig(loss="mse", steps=3, batch_size=4)
    failed = []
    run = embed_dataset(tiny_G, tmp_path / "d", tmp_path / "o", cfg,
                        on_failure=lambda p, why: failed.append(why))
    assert (run.total, run.done, run.failed, run.pending) == (12, 10, 2, 0)
    assert not run.complete and len(failed) == 2 and "not an image" in failed[0]
    m = manifest(tmp_path / "o")
    assert sorted(m) == sorted(names)
    assert {k for k, d in m.items() if d["status"] == "failed"} == set(names[-2:])
    for name in names[:-2]:
        assert m[name]["status"] == "done" and m[name]["psnr"] > 0
        assert m[name]["settings"] == settings_hash(tiny_G, cfg, False)
        assert (tmp_path / "o" / name / "latent.npz").is_file()
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["done"] == 10 and summary["failures"][0]["reason"]
    assert summary["mean"]["psnr"] > 0 and summary["ranks"][0]["done"] == 10
    # the same again: nothing redone but the failures; a changed image is redone
    Image.new("RGB", (20, 24), "red").save(tmp_path / "d" / f"{names[0]}.png")
    again = embed_dataset(tiny_G, tmp_path / "d", tmp_path / "o", cfg.replace(batch_size=2))
    assert (again.skipped, again.embedded, again.failed) == (9, 1, 2)
    # other settings: everything redone
    other = embed_dataset(tiny_G, tmp_path / "d", tmp_path / "o", cfg.replace(steps=4))
    assert other.embedded == 10


def test_cli_errors_are_one_line(tmp_path, model_file, capsys):
    code, _, err = run(["embed-dataset", tmp_path / "nothing", "--out", tmp_path / "o",
                        "--model", model_file, *STEPS], capsys)
    assert code == 1 and err.count("\n") == 1 and "no such file" in err


def test_ctrl_c_says_what_is_done_once_and_exits_130(tmp_path, model_file, capsys,
                                                     monkeypatch):
    make_dataset(tmp_path / "d", n=2, broken=0)

    def stopped(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr("i2s.cli.embed_dataset_cmd.embed_dataset", stopped)
    code, _, err = run(["embed-dataset", tmp_path / "d", "--out", tmp_path / "o",
                        "--model", model_file, *STEPS], capsys)
    assert code == 130 and "manifest.jsonl" in err and "continues" in err
    assert "aborted" not in err and "Traceback" not in err


def test_embed_and_embed_dataset_give_an_image_the_same_noise_on_w(tmp_path, model_file,
                                                                     capsys):
    """The noise on w follows the image file (its content hash), not its place in a batch or
    in the command: i2s embed and embed-dataset agree, and batch mates change only rounding."""
    make_dataset(tmp_path / "d", n=3, broken=0)
    files = sorted((tmp_path / "d").rglob("*.png"))
    noisy = [*STEPS, "--steps", "6", "--w-noise", "0.5", "-q"]

    def embed(*args):
        code, _, err = run([*args, "--model", model_file, *noisy], capsys)
        assert code == 0, err

    embed("embed", *files, "--batch-size", "1", "--out", tmp_path / "a")
    embed("embed-dataset", tmp_path / "d", "--batch-size", "1", "--out", tmp_path / "c")
    embed("embed", *files[::-1], "--batch-size", "2", "--out", tmp_path / "b")
    embed("embed", *files, "--batch-size", "1", "--seed", "1", "--out", tmp_path / "s")
    for f in files:
        name = f.relative_to(tmp_path / "d").with_suffix("").as_posix()
        a, b, c, other = (np.load(tmp_path / k / p / "latent.npz")["w"] for k, p in (
            ("a", f.stem), ("b", f.stem), ("c", name), ("s", f.stem)))
        np.testing.assert_allclose(a, c, atol=1e-6)       # embed vs embed-dataset
        np.testing.assert_allclose(a, b, atol=3e-3)       # other order and batch mates
        assert np.abs(a - other).max() > 0.05             # while another noise stream moves it


def test_torchrun_two_processes_equal_one(tmp_path, model_file, capsys):
    """Two gloo processes: each good image embedded exactly once, the broken ones recorded,
    the latents equal a one-process run's."""
    names = make_dataset(tmp_path / "d")
    args = [str(tmp_path / "d"), "--model", str(model_file), *STEPS, "--batch-size", "1",
            "-q"]
    code, _, err = run(["embed-dataset", *args, "--steps", "20", "--out", tmp_path / "one"],
                       capsys)
    assert code == 1 and "10/12 done" in err, err         # two images failed
    p = torchrun(2, *args, "--steps", "20", "--out", str(tmp_path / "two"))
    log, _ = p.communicate(timeout=300)
    assert p.returncode != 0 and "10/12 done" in log, log
    records = read_logs(tmp_path / "two")
    done = [r.name for r in records if r.status == "done"]
    assert sorted(done) == sorted(names[:-2])              # each exactly once
    assert {r.rank for r in records} == {0, 1}
    m = manifest(tmp_path / "two")
    assert {k for k, d in m.items() if d["status"] == "failed"} == set(names[-2:])
    for name in names[:-2]:
        w1 = np.load(tmp_path / "one" / name / "latent.npz")["w"]
        w2 = np.load(tmp_path / "two" / name / "latent.npz")["w"]
        np.testing.assert_allclose(w1, w2, atol=1e-6)
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["processes"] == 2 and [r["images"] for r in summary["ranks"]] == [6, 6]
    assert sum(r["done"] for r in summary["ranks"]) == 10



def test_torchrun_killed_rank_then_resumed_with_three(tmp_path, model_file):
    """A run whose rank 1 is killed once a few images are done (torchrun then stops rank 0),
    rerun with three processes: nothing finished is redone, everything finishes."""
    names = make_dataset(tmp_path / "d")
    args = [str(tmp_path / "d"), "--model", str(model_file), *STEPS, "--batch-size", "1",
            "-q"]
    out = tmp_path / "killed"
    p = torchrun(2, *args, "--steps", "150", "--out", str(out))
    deadline = time.time() + 120
    while time.time() < deadline and sum(
            r.status == "done" for r in read_logs(out)) < 2:
        time.sleep(0.1)
    os.kill(rank_pid(p.pid, 1), signal.SIGKILL)
    log, _ = p.communicate(timeout=120)
    assert p.returncode != 0
    first = {r.name for r in read_logs(out) if r.status == "done"}
    assert 2 <= len(first) < 10, log
    assert json.loads((out / "summary.json").read_text())["pending"] >= 1   # rank 0 merged
    before = {n: (out / n / "latent.npz").stat().st_mtime_ns for n in first}
    p = torchrun(3, *args, "--steps", "150", "--out", str(out))
    log, _ = p.communicate(timeout=300)
    assert f"10/12 done ({len(first)} already before this run, {10 - len(first)} now" in log, log
    assert {n: (out / n / "latent.npz").stat().st_mtime_ns for n in first} == before
    m = manifest(out)
    assert sum(d["status"] == "done" for d in m.values()) == 10
    assert sorted(r.name for r in read_logs(out) if r.status == "done") == sorted(names[:-2])
