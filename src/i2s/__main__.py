"""``python -m i2s`` (and ``torchrun ... -m i2s embed-dataset ...``): the command line."""

from i2s.cli.main import main

if __name__ == "__main__":
    main()
