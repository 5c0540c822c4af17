"""``python -m simsearch``: the command line (with the fast lane of :mod:`simsearch.fastcli`)."""

from simsearch.fastcli import main

main()
