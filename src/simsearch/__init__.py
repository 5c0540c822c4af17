"""simsearch: sentence-embedding similarity search over the rows of a spreadsheet.

Notebook use::

    import simsearch
    simsearch.build_index("patents.xlsx", "abstract")   # encode once, cache in .simsearch/
    simsearch.similar(0, k=10)                          # DataFrame of the 10 nearest rows
    simsearch.query("배터리 전극", k=5)                  # DataFrame for a query sentence
    searcher = simsearch.open()                         # index and model loaded once
    searcher.query(["전극", "분리막"], k=5)              # a batch of queries
    simsearch.neighbors(10, show="title")               # every row's 10 nearest rows
    simsearch.dedup(0.96).groups                        # near-duplicate groups
    simsearch.map_corpus().frame                        # UMAP x, y and HDBSCAN clusters

Names are imported lazily so ``import simsearch`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "build_index": "simsearch.build",
    "BuildReport": "simsearch.build",
    "BuildOptions": "simsearch.build",
    "IndexMeta": "simsearch.store.meta",
    "similar": "simsearch.searcher",
    "query": "simsearch.searcher",
    "open": "simsearch.searcher",
    "Searcher": "simsearch.searcher",
    "load_index": "simsearch.store.index",
    "Index": "simsearch.store.index",
    "top_k": "simsearch.retrieval.topk",
    "read_corpus": "simsearch.tables.read",
    "read_table": "simsearch.tables.read",
    "load_model": "simsearch.encoding.sbert",
    "encode": "simsearch.encoding.sbert",
    "DEFAULT_MODEL": "simsearch.encoding.sbert",
    "SimsearchError": "simsearch.errors",
    "InvalidParameter": "simsearch.errors",
    "DamagedIndex": "simsearch.errors",
    "SearchOptions": "simsearch.retrieval.modes",
    "neighbors": "simsearch.workflows.neighbors",
    "dedup": "simsearch.workflows.dedup",
    "Duplicates": "simsearch.workflows.dedup",
    "map_corpus": "simsearch.workflows.corpus_map",
    "CorpusMap": "simsearch.workflows.corpus_map",
    "write_frame": "simsearch.tables.write",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:  # no typing import: see simsearch.cli.main
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'simsearch' has no attribute {name!r}")
