"""Entry point: ``i2s <command>``. Every expected failure becomes one line and exit code 1."""

from __future__ import annotations

import logging
import sys
import warnings

import click

from i2s._version import __version__
from i2s.cli.align_cmd import align_command
from i2s.cli.common import one_line
from i2s.cli.convert_cmd import convert_command
from i2s.cli.edit3d_cmd import morph_3d_command, swap_3d_command
from i2s.cli.embed3d_cmd import embed_3d_command
from i2s.cli.embed_cmd import embed_command
from i2s.cli.experiment_cmd import experiment_command
from i2s.cli.expression_cmd import expression_command
from i2s.cli.generate3d_cmd import generate_3d_command, render_3d_command
from i2s.cli.generate_cmd import generate_command
from i2s.cli.inpaint_cmd import inpaint_command
from i2s.cli.models_cmd import models_group
from i2s.cli.morph_cmd import morph_command
from i2s.cli.paste_back_cmd import paste_back_command
from i2s.cli.style_transfer_cmd import style_transfer_command
from i2s.cli.train_demo3d_cmd import train_demo_3d_command
from i2s.cli.train_demo_cmd import train_demo_command
from i2s.errors import I2SError
from i2s.ops.cpu_allocator import keep_freed_memory


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="i2s")
def cli() -> None:
    """Embed images into a StyleGAN's latent space (Image2StyleGAN) and edit them."""


cli.add_command(align_command)
cli.add_command(convert_command)
cli.add_command(embed_command)
cli.add_command(embed_3d_command)
cli.add_command(experiment_command)
cli.add_command(generate_command)
cli.add_command(inpaint_command)
cli.add_command(generate_3d_command)
cli.add_command(render_3d_command)
cli.add_command(models_group)
cli.add_command(morph_command)
cli.add_command(morph_3d_command)
cli.add_command(style_transfer_command)
cli.add_command(swap_3d_command)
cli.add_command(expression_command)
cli.add_command(paste_back_command)
cli.add_command(train_demo_command)
cli.add_command(train_demo_3d_command)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


class _NoteHandler(logging.Handler):
    """The library's log lines (logger ``i2s``) as ``note: ...`` on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"note: {record.getMessage()}", err=True)


def _set_up_process() -> None:
    """What the command line sets for its process: warnings and the library's notes as one
    line each, and glibc keeping freed memory (about 2x faster large steps on the CPU;
    I2S_KEEP_FREED_MEMORY=0 turns it off). The library itself changes none of this."""
    warnings.formatwarning = _one_line_warning
    logger = logging.getLogger("i2s")
    if not any(isinstance(h, _NoteHandler) for h in logger.handlers):
        logger.addHandler(_NoteHandler(logging.WARNING))
        logger.setLevel(logging.WARNING)
    keep_freed_memory()


def _usage_line(e: click.UsageError) -> str:
    """A usage error as one line: the reason and where to look."""
    where = e.ctx.command_path if e.ctx is not None else "i2s"
    hint = ""
    if isinstance(e, click.NoSuchOption) and not e.option_name.startswith("--"):
        hint = "; put -- before a file name that starts with '-'"
    return f"{e.format_message()} (see '{where} --help'{hint})"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map errors to one-line messages and exit codes (2 = usage, 1 = failure).

    This is the one place where exceptions become what the user sees: ``error: <reason>`` on
    one line (control characters in it, e.g. from a file name, are escaped), never a
    traceback."""
    _set_up_process()
    try:
        rc = cli.main(args=argv, prog_name="i2s", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as e:
        click.echo(f"error: {one_line(_usage_line(e))}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"error: {one_line(e.format_message())}", err=True)
        sys.exit(e.exit_code)
    except I2SError as e:
        click.echo(f"error: {one_line(str(e))}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except MemoryError:
        click.echo("error: out of memory", err=True)
        sys.exit(1)
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        click.echo(f"error: {one_line(f'{e.strerror or e}{where}')}", err=True)
        sys.exit(1)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
