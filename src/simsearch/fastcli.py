"""Deprecated entry point: console scripts installed before the ``simsearch.cli`` package
still call ``simsearch.fastcli:main``. pyproject names ``simsearch.cli:main``; delete this
module once every environment has re-run ``pip install -e .``."""

from simsearch.cli import main

__all__ = ["main"]
