"""``python -m simsearch.cli``: the command line."""

from simsearch.cli import main

main()
