"""The package version (read by ``pyproject.toml``, :mod:`i2s.provenance` and ``i2s --version``)."""

__version__ = "0.1.0"
