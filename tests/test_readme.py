"""The README's own commands and code, as written: the quick start's embedding (offline, with
fewer steps) and the Python API example, run from another folder."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import i2s
from tests.cli_run import run

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def test_quick_start_embeds_offline_as_written(tmp_path, capsys, monkeypatch):
    block = re.search(r"```bash\n(.*?)\n```", _section("Quick start"), re.S).group(1)
    command = next(part.strip() for part in block.split("&&")
                   if part.strip().startswith("i2s embed"))
    argv = shlex.split(command)[1:]
    out = argv[argv.index("--out") + 1]
    argv[argv.index("--out") + 1] = str(tmp_path / out)
    monkeypatch.chdir(ROOT)                     # the README's paths are the repository's
    monkeypatch.setenv("I2S_OFFLINE", "1")      # a fresh offline machine
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    code, _, err = run([*argv, "--steps", 5, "-q"], capsys)   # as written, fewer steps
    assert code == 0, err
    done = tmp_path / out / "face_seed100"
    assert {"latent.npz", "comparison.png", "metrics.json"} <= {p.name for p in done.iterdir()}


def test_python_example_runs_from_any_folder(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)\n```", _section("Python API"), re.S).group(1)
    monkeypatch.chdir(tmp_path)                 # not the repository
    real = i2s.embed

    def quick(*a, **kw):                        # the example's settings, far fewer steps
        return real(*a, **{**kw, "steps": 3, "noise_steps": 0, "tune_steps": 0})

    monkeypatch.setattr(i2s, "embed", quick)
    exec(compile(code, "README.md (Python API)", "exec"), {})  # noqa: S102
    assert (tmp_path / "out" / "face" / "comparison.png").is_file()
    assert (tmp_path / "out" / "g.safetensors").is_file()


@pytest.mark.parametrize("doc", sorted(p.name for p in (ROOT / "docs").glob("*.md")))
def test_doc_links_resolve(doc):
    text = (ROOT / "docs" / doc).read_text()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (ROOT / "docs" / target).exists(), f"{doc}: {target}"
