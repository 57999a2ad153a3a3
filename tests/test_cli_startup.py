"""Start-up: `i2s --help` and `--version` load no PyTorch; every listed command resolves; a
loaded generator holds real tensors (it is built on the meta device first)."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files

import click
import torch

import i2s
from i2s.cli.main import COMMANDS, cli

PROBE = ("import sys; from i2s.cli.main import main\n"
         "try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
         "print('torch' in sys.modules, file=sys.stderr)")


def _loads_torch(argv: list[str]) -> bool:
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)],
                          capture_output=True, text=True, check=True, timeout=120)
    return done.stderr.strip().splitlines()[-1] == "True"


def test_help_and_version_do_not_import_torch():
    assert not _loads_torch(["--version"])
    assert not _loads_torch(["--help"])


def test_align_and_paste_back_do_not_import_torch(tmp_path):
    """They never compute with it; importing PyTorch took 2.7-4.6 s of align's 8-11 s."""
    assert not _loads_torch(["align", "--help"])
    assert not _loads_torch(["paste-back", "--help"])
    # a real run too (without dlib it stops at the one-line install hint, still torch-free)
    photo = files("i2s") / "data" / "examples" / "real_faces" / "astronaut.png"
    assert not _loads_torch(["align", str(photo), "--out", str(tmp_path / "a"), "--size", "64"])
    assert _loads_torch(["generate", "--help"])  # the probe sees torch where it is imported


def test_import_i2s_is_lazy_and_names_resolve():
    done = subprocess.run([sys.executable, "-c", "import sys, i2s; print('torch' in sys.modules)"],
                          capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "False"
    assert set(i2s.__all__) == set(i2s._PUBLIC) | {"__version__"}
    for name in i2s.__all__:
        assert getattr(i2s, name) is not None
    assert set(i2s.__all__) <= set(dir(i2s))


def test_every_listed_command_resolves_to_itself():
    ctx = click.Context(cli)
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        assert isinstance(cmd, click.Command) and cmd.name == name
    assert cli.get_command(ctx, "no-such-command") is None


def test_help_lists_every_command(capsys):
    from tests.cli_run import run
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0
    for name, (_, _, short) in COMMANDS.items():
        assert name in out and short[:30] in out


def test_loaded_generator_has_no_meta_tensors(model_file):
    G = i2s.load_generator(model_file)
    tensors = [*G.parameters(), *G.buffers()]
    assert tensors and all(t.device.type == "cpu" and not t.requires_grad for t in tensors)
    assert all(bool(torch.isfinite(t).all()) for t in tensors)
