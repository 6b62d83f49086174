"""Allows ``python -m ino ...`` (and ``torchrun -m ino ...``) to behave like the ``ino`` console script."""

from ino.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
