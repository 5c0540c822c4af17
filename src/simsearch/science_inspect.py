"""File-level entry point of ``simsearch inspect``: gather embeddings, diagnose, plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from simsearch.anisotropy import Diagnostics, diagnose, plot_spectra
from simsearch.errors import SimsearchError


def _sample_rows(n: int, sample: int, seed: int) -> np.ndarray:
    if n <= sample:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))


def _short_name(model: str) -> str:
    """A plot/table label: a local directory's last two path parts, else the hub id."""
    path = Path(model)
    return "/".join(path.parts[-2:]) if path.is_dir() else model


def _positive_pairs(pairs: Path, positive_score: float) -> tuple[list[str], list[str]]:
    from simsearch.labeled import read_sts_pairs

    df = read_sts_pairs(pairs)
    df = df[df["score"] >= positive_score]
    if df.empty:
        raise SimsearchError(
            f"{pairs}: no pair scores >= {positive_score}; lower --positive-score."
        )
    return list(df["sentence1"]), list(df["sentence2"])


def inspect_sources(
    indexes: Sequence[Path] = (),
    models: Sequence[str] = (),
    texts: Path | None = None,
    columns: Sequence[str] | None = None,
    sample: int = 2000,
    pairs: Path | None = None,
    positive_score: float = 4.0,
    whiten: bool = False,
    plot: Path | str = "simsearch-inspect.png",
    seed: int = 0,
) -> tuple[list[Diagnostics], Path]:
    """Diagnose each index (a seeded sample of its rows) and each model (over ``texts``).

    With ``pairs`` the positive pairs are encoded by each source's model for alignment.
    With ``whiten`` each source is also diagnosed after BERT-whitening fitted on its own
    sample. Writes the overlaid spectra to ``plot`` (PNG) and returns (diagnostics, path).

    Raises:
        SimsearchError: nothing to inspect, models without ``texts``, unreadable inputs.
    """
    from simsearch._compat import encode, index_whitening, load_model, open_index
    from simsearch.labeled import read_texts

    if not indexes and not models:
        raise SimsearchError("Nothing to inspect: give --index DIR and/or --model M --texts FILE.")
    if models and texts is None:
        raise SimsearchError("--model needs --texts FILE (the sentences to embed).")
    if sample < 2:
        raise SimsearchError("--sample must be at least 2.")
    positives = _positive_pairs(pairs, positive_score) if pairs else None
    sources: list[tuple[str, np.ndarray, object, object]] = []
    for path in indexes:
        idx = open_index(path)
        rows = _sample_rows(len(idx.embeddings), sample, seed)
        emb = np.asarray(idx.embeddings[rows], dtype=np.float32)
        sources.append((f"index {path}", emb, idx.meta["model"], index_whitening(idx)))
    if models:
        all_texts = read_texts(texts, columns)
        chosen = [all_texts[i] for i in _sample_rows(len(all_texts), sample, seed)]
        for name in models:
            model = load_model(name)
            sources.append((_short_name(name), encode(model, chosen), model, None))
    results = []
    for label, emb, model, stored_whitening in sources:
        emb = emb[np.linalg.norm(emb, axis=1) > 0]  # empty documents are zero rows
        pair_emb = None
        if positives is not None:
            loaded = load_model(model) if isinstance(model, str) else model
            pair_emb = (encode(loaded, positives[0]), encode(loaded, positives[1]))
            if stored_whitening is not None:
                pair_emb = (
                    stored_whitening.apply(pair_emb[0]),
                    stored_whitening.apply(pair_emb[1]),
                )
        results.append(diagnose(emb, label, pair_emb, seed))
        if whiten:
            from simsearch.whitening import fit_whitening

            w = fit_whitening(emb)
            white_pairs = None if pair_emb is None else (w.apply(pair_emb[0]), w.apply(pair_emb[1]))
            results.append(diagnose(w.apply(emb), f"{label} +whiten", white_pairs, seed))
    return results, plot_spectra(results, plot)
