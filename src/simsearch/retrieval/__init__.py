"""Ranking: arrays and row filters in, top-k rows out. Exact and approximate dense search,
BM25 over Kiwi terms, fusion, ``--where`` filters and why a row matched."""
