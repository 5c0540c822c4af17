"""Analysts' workflows over a whole index: neighbors of every row, near-duplicate groups,
a corpus map, and the local web page (``serve``)."""
