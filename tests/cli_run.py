"""Run the CLI in-process for tests."""

import pytest

from i2s.cli.main import main


def run(argv, capsys):
    """Run the CLI in-process; return (exit code, stdout, stderr). No traceback may leak."""
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return e.value.code, out, err
