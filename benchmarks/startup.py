"""Start-up time of the command line (issue: first-use friction, item 6).

Times ``i2s --version``, ``i2s --help`` and ``i2s generate --seed 1`` (the bundled demo model,
one 64 px image) as fresh processes, and ``import i2s``. With ``--compare REF`` the same
commands also run from a git worktree of REF (e.g. the commit before a change), interleaved
with the current tree (A B A B ...) so that a busy machine slows both alike. Prints the median
and range of each and the machine.

    python benchmarks/startup.py [--repeats 7] [--compare REF]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "import i2s": ["-c", "import i2s"],
    "i2s --version": ["-c", "from i2s.cli.main import main; main(['--version'])"],
    "i2s --help": ["-c", "from i2s.cli.main import main; main(['--help'])"],
    "i2s generate --seed 1": None,  # filled in with the output path
}


def _time(src: Path, args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--compare", default=None, help="a git ref to compare with")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"now": ROOT / "src"}
        if a.compare:
            wt = Path(tmp) / "ref"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt),
                            a.compare], check=True, capture_output=True)
            trees[a.compare] = wt / "src"
        try:
            out = Path(tmp) / "g.png"
            cmds = dict(COMMANDS)
            cmds["i2s generate --seed 1"] = [
                "-c", f"from i2s.cli.main import main; main(['generate', '--seed', '1', "
                      f"'--out', {str(out)!r}])"]
            times: dict[tuple[str, str], list[float]] = {}
            for name, args in cmds.items():
                for src in trees.values():  # warm the file cache once
                    _time(src, args)
                for _ in range(a.repeats):
                    for tree, src in trees.items():
                        times.setdefault((name, tree), []).append(_time(src, args))
        finally:
            if a.compare:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(wt)], check=False, capture_output=True)
    sys.path.insert(0, str(ROOT / "src"))
    from i2s.provenance import describe_machine

    print(f"machine: {describe_machine()}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'command':26s}" + "".join(f"{t:>24s}" for t in trees))
    for name in cmds:
        row = []
        for tree in trees:
            v = times[(name, tree)]
            row.append(f"{statistics.median(v):6.2f} s ({min(v):.2f}-{max(v):.2f})")
        print(f"{name:26s}" + "".join(f"{r:>24s}" for r in row))


if __name__ == "__main__":
    main()
