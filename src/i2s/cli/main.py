"""Entry point: ``i2s <command>``. Every expected failure becomes one line and exit code 1."""

from __future__ import annotations

import importlib
import logging
import sys
import warnings

import click

from i2s._version import __version__
from i2s.cli.common import stop_exit_code, stop_word
from i2s.cli.messages import clear_notes, one_line
from i2s.errors import I2SError

# name -> (module, attribute, one-line help). A command's module (and with it PyTorch) is
# imported only when that command runs, so `i2s --help` and `i2s --version` start at once;
# tests/test_cli_startup.py checks each line here against the command's own help.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "align": ("align_cmd", "align_command",
              "Detect faces, find 68 landmarks and crop each the FFHQ way."),
    "convert": ("convert_cmd", "convert_command",
                "Convert an official checkpoint to an i2s .safetensors file."),
    "directions": ("directions_cmd", "directions_group",
                   "Semantic directions: list what a model has, show what they do."),
    "edit": ("edit_cmd", "edit_command",
             "Move an embedded image along a semantic direction (SeFa, GANSpace, ...)."),
    "embed": ("embed_cmd", "embed_command",
              "Embed IMAGE... into the generator's latent space (Image2StyleGAN)."),
    "embed-dataset": ("embed_dataset_cmd", "embed_dataset_command",
                      "Embed a folder, pattern or list of images; resumable; torchrun-ready."),
    "embed-3d": ("embed3d_cmd", "embed_3d_command",
                 "Invert views or a mesh into GET3D's geometry and texture latents."),
    "experiment": ("experiment_cmd", "experiment_command",
                   "Rerun one of the paper's studies, or several, into OUT/report.md."),
    "expression": ("expression_cmd", "expression_command",
                   "Transfer the expression between NEUTRAL and EXPRESSIVE to TARGET."),
    "generate": ("generate_cmd", "generate_command",
                 "Generate an image from --seed S or --latent latent.npz."),
    "generate-3d": ("generate3d_cmd", "generate_3d_command",
                    "Generate a 3D shape with GET3D: a textured mesh and views."),
    "inpaint": ("inpaint_cmd", "inpaint_command",
                "Fill the black part of MASK in IMAGE with what the generator knows."),
    "models": ("models_cmd", "models_group", "Pretrained models: list, info, download."),
    "morph": ("morph_cmd", "morph_command", "Morph from A to B (latents or images)."),
    "morph-3d": ("edit3d_cmd", "morph_3d_command",
                 "Morph two GET3D latents with separate weights per branch."),
    "paste-back": ("paste_back_cmd", "paste_back_command",
                   "Blend an edited aligned face back into the original photo."),
    "render-3d": ("generate3d_cmd", "render_3d_command",
                  "Render a GET3D latent from given cameras."),
    "serve": ("serve_cmd", "serve_command",
              "Serve the web app: upload, embed with live progress, edit with sliders."),
    "style-transfer": ("style_transfer_cmd", "style_transfer_command",
                       "Give CONTENT the style of STYLE (latents or images)."),
    "swap-3d": ("edit3d_cmd", "swap_3d_command",
                "Geometry of one GET3D latent with the texture of another."),
    "train-demo": ("train_demo_cmd", "train_demo_command",
                   "Train the 2D demo model (a small StyleGAN2) here."),
    "train-demo-3d": ("train_demo3d_cmd", "train_demo_3d_command",
                      "Train the 3D demo model (a small GET3D) here."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use; the command list in ``--help``
    comes from :data:`COMMANDS` without importing anything."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"i2s.cli.{entry[0]}")
        return getattr(module, entry[1])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="i2s")
def cli() -> None:
    """Embed images into a StyleGAN's latent space (Image2StyleGAN) and edit them."""


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
    from i2s.ops.cpu_allocator import keep_freed_memory  # noqa: PLC0415 (start-up time)

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
    clear_notes()
    try:
        rc = cli.main(args=argv, prog_name="i2s", standalone_mode=False)
    except click.exceptions.Abort as e:   # click's wrapping of a KeyboardInterrupt
        stop = e.__cause__ if isinstance(e.__cause__, KeyboardInterrupt) else None
        click.echo("aborted" if stop is None else stop_word(stop), err=True)
        sys.exit(130 if stop is None else stop_exit_code(stop))
    except click.UsageError as e:
        click.echo(f"error: {one_line(_usage_line(e))}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"error: {one_line(e.format_message())}", err=True)
        sys.exit(e.exit_code)
    except I2SError as e:
        click.echo(f"error: {one_line(str(e))}", err=True)
        sys.exit(1)
    except KeyboardInterrupt as e:
        click.echo(stop_word(e), err=True)
        sys.exit(stop_exit_code(e))
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
