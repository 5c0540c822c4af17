"""File safety that knows nothing of indexes: atomic writes, bounded reads of regular files,
free-space checks and the exclusive lock. Imports only :mod:`simsearch.errors`."""
