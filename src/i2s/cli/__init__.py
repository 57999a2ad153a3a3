"""The ``i2s`` command line: thin wrappers that parse options, call the library, write files."""
