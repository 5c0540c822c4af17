"""``python -m simsearch``: the command line (see :mod:`simsearch.cli`)."""

from simsearch.cli import main

main()
