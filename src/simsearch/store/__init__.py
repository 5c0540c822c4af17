"""The on-disk index format: ``meta.json`` (:mod:`~simsearch.store.meta`), generations
(:mod:`~simsearch.store.generations`) and the opened, memory-mapped
:class:`~simsearch.store.index.Index`."""
