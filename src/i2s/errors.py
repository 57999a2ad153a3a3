"""The one exception type the CLI turns into a one-line message."""


class I2SError(Exception):
    """A user-facing error: bad input, missing weights, unwritable output.

    The CLI prints ``error: <message>`` and exits non-zero; it never shows a traceback for it.
    """
