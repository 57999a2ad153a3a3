"""Helpers shared by the CLI commands: device choice, output folders, stderr lines, the
per-step progress bar, SIGTERM as Ctrl-C. Light on purpose (PyTorch is imported only by the
helpers that need it), so that commands that never compute (align, paste-back) start fast."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from i2s.cli.messages import flush_notes
from i2s.errors import I2SError
from i2s.faces.detect import DETECTORS, FaceChoice
from i2s.progress import progress_bar

if TYPE_CHECKING:
    import torch

    from i2s.embedding import StepInfo

DEVICE_CHOICES = ("auto", "cpu", "cuda")


class FiniteFloat(click.FloatRange):
    """A float option in a range that is also finite (click's FloatRange lets NaN through,
    since every comparison with NaN is false, and inf where there is no upper bound)."""

    name = "number"

    def _describe_range(self) -> str:
        if self.min is None and self.max is None:
            return "finite"  # click would print "x<=None"
        return super()._describe_range()

    def convert(self, value, param, ctx):
        v = super().convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return v


# (parameter name, option): which face alignment takes (i2s align, --align)
FACE_OPTIONS: list[tuple[str, Callable]] = [
    ("detector", click.option(
        "--detector", type=click.Choice(DETECTORS), default="hog", show_default=True,
        help="Face detector: hog (fast) or cnn (dlib's MMOD CNN: finds turned, small and "
             "dim faces HOG misses; slower).")),
    ("min_face_score", click.option(
        "--min-face-score", type=FiniteFloat(), default=None,
        help="Ignore detections scoring below this (HOG: clear faces score 0.5-2.5, most false "
             "alarms under 0.3; CNN: about 1 for clear faces).")),
    ("face_index", click.option(
        "--face-index", type=click.IntRange(min=0), default=0, show_default=True,
        help="Which face to align: 0 the largest, 1 the next, ...")),
]


def face_options(f: Callable) -> Callable:
    """--detector, --min-face-score, --face-index (i2s align)."""
    for _, opt in reversed(FACE_OPTIONS):
        f = opt(f)
    return f


def face_choice(values: dict) -> FaceChoice:
    """The :class:`i2s.faces.FaceChoice` of the face options' values."""
    return FaceChoice(values.get("detector") or "hog", values.get("min_face_score"),
                      values.get("face_index") or 0)


def pick_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is an error."""
    import torch  # noqa: PLC0415 (start-up time of the commands that never compute)

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise I2SError(f"--device {name}: CUDA is not available in this torch "
                       f"({torch.__version__}); use --device cpu")
    return torch.device(name)


def load_2d_generator(model: str, device: torch.device) -> torch.nn.Module:
    """The generator of an image command; a 3D (GET3D) model gets a clear one-line error."""
    from i2s.weights import load_generator  # noqa: PLC0415 (start-up time)

    G = load_generator(model, device=device)
    if getattr(G, "architecture", "") == "get3d":
        raise I2SError(f"{model} is a 3D (GET3D) model; this command needs an image "
                       "generator (StyleGAN / StyleGAN2)")
    return G


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and prove it is writable; I2SError otherwise."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".i2s-write-test-", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise I2SError(f"cannot write to output folder {p}: {e.strerror or e}") from None
    return p


def ensure_parent_dir(path: str | os.PathLike) -> Path:
    """:func:`ensure_writable_dir` for the folder of an output file; returns the file's path."""
    p = Path(path)
    ensure_writable_dir(p.parent if str(p.parent) else ".")
    return p


class StepBar:
    """A progress bar over one embedding's steps: the per-step callback the library takes
    (``progress(description, steps)`` factories return one)."""

    def __init__(self, desc: str, steps: int, *, leave: bool = True, every: int = 10) -> None:
        flush_notes()
        self.bar = progress_bar(steps, desc, "step", leave=leave)
        self.every = every

    def __call__(self, s: StepInfo) -> None:
        self.bar.update(s.step - self.bar.n)  # a resumed run starts where it stopped
        if s.step % self.every == 0 or s.step == s.steps:
            stage = {"stage": s.stage} if s.stage else {}
            self.bar.set_postfix(**stage, loss=f"{s.loss.mean().item():.4f}",
                                 psnr=f"{s.psnr.mean().item():.2f}")

    def close(self) -> None:
        self.bar.close()



EXIT_TERMINATED = 128 + signal.SIGTERM  # 143: the shell's code for a job ended by SIGTERM
EXIT_INTERRUPTED = 128 + signal.SIGINT   # 130: ... and for one stopped by Ctrl-C


def stop_exit_code(e: KeyboardInterrupt) -> int:
    """The exit code for a run stopped by ``e``: 143 for SIGTERM, 130 for Ctrl-C."""
    return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED


def stop_word(e: KeyboardInterrupt) -> str:
    """How a stop by ``e`` is told: "terminated (SIGTERM)" or "interrupted" (Ctrl-C)."""
    return "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler) raised where Ctrl-C raises KeyboardInterrupt, so that
    the same clean-up runs (see :func:`stop_signals`)."""


class StopPoints:
    """Where Ctrl-C (SIGINT) and SIGTERM stop a command (see :func:`stop_signals`): at once,
    or, while an embedding runs its steps, at the next step. A step callback is a safe place:
    raised there, the interrupt leaves the last finished step to save, while at an arbitrary
    moment it may land inside an optimiser update, which leaves nothing consistent to save. A
    second Ctrl-C interrupts at once (the user insists); a second SIGTERM changes nothing."""

    def __init__(self) -> None:
        self.requested: type[KeyboardInterrupt] | None = None  # what the next stop raises
        self._steps = 0          # step loops under way (then stop at the next step)

    def handle(self, signum: int, frame: object) -> None:
        """The handler of both signals: remember the first; raise it unless a step loop runs
        (its next step raises it)."""
        if self.requested is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.requested = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        if not self._steps:
            raise self.requested

    def check(self) -> None:
        """Raise the interrupt of a signal that came (:class:`Terminated` for SIGTERM)."""
        if self.requested is not None:
            raise self.requested

    def progress(self, factory: Callable[[str, int], Callable[[StepInfo], None]] | None
                 ) -> Callable[[str, int], _StoppableSteps]:
        """A progress factory for :func:`i2s.embedding.files.embed_files` whose per-step
        callbacks (``factory``'s, e.g. :class:`StepBar`, or silent ones) are the stop points."""
        return lambda desc, steps: _StoppableSteps(
            self, factory(desc, steps) if factory is not None else None)


class _StoppableSteps:
    """One embedding's step callback: ``inner``'s, then the stop check; ``close`` ends it."""

    def __init__(self, stops: StopPoints, inner: Callable[[StepInfo], None] | None) -> None:
        stops.check()  # a signal between two embeddings: stop before the next one starts
        self.stops, self.inner = stops, inner
        stops._steps += 1

    def __call__(self, s: StepInfo) -> None:
        if self.inner is not None:
            self.inner(s)
        self.stops.check()

    def close(self) -> None:
        if self.stops is not None:
            self.stops._steps -= 1
            self.stops = None
        if self.inner is not None and hasattr(self.inner, "close"):
            self.inner.close()


@contextlib.contextmanager
def stop_signals() -> Iterator[StopPoints]:
    """While inside, Ctrl-C raises KeyboardInterrupt and SIGTERM :class:`Terminated` (a
    KeyboardInterrupt, so the same clean-up runs) in the main thread: at once, or at the next
    step of an embedding whose progress callbacks come from :meth:`StopPoints.progress`. The
    previous handlers are restored on leaving. Outside the main thread (where Python cannot
    set handlers) nothing changes."""
    stops = StopPoints()
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    old = {sig: signal.signal(sig, stops.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stops
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
