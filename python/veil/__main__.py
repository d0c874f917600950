"""Entry point for ``python -m veil``; the same as the ``veil`` console script."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
