"""Model evaluation: STS correlation on scored pairs, and retrieval metrics against an index.

STS follows the convention of Reimers & Gurevych 2019 (Sentence-BERT) and the KorSTS paper
(Ham et al. 2020): Spearman and Pearson correlation between the cosine similarity of the two
sentence embeddings and the gold score, reported x 100.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simsearch._compat import encode, load_model, model_label
from simsearch.errors import SimsearchError

if TYPE_CHECKING:
    from simsearch.whitening import Whitening

STS_COLUMNS = ["model", "spearman", "pearson", "pairs", "encode_seconds"]


@dataclass
class StsEmbeddings:
    """The embeddings an STS score was computed from (for independent checks).

    ``emb1``/``emb2`` are (pairs, dim) float32, L2-normalised (whitened when asked);
    ``cosine`` is (pairs,) float32; ``scores`` the gold scores (pairs,) float64.
    """

    emb1: np.ndarray
    emb2: np.ndarray
    cosine: np.ndarray
    scores: np.ndarray


def sts_correlations(cosine: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(Spearman, Pearson) x 100 of predicted similarities against gold scores (scipy.stats)."""
    from scipy.stats import pearsonr, spearmanr

    if np.std(cosine) == 0 or np.std(scores) == 0:
        raise SimsearchError("All similarities or all gold scores are equal: correlation undefined.")
    return float(spearmanr(scores, cosine)[0] * 100), float(pearsonr(scores, cosine)[0] * 100)


def embed_sts_pairs(
    model: Any,
    pairs: pd.DataFrame,
    batch_size: int = 64,
    whitening: Whitening | None = None,
) -> StsEmbeddings:
    """Encode both sides of ``pairs`` (columns sentence1, sentence2, score) once.

    Each unique sentence is encoded a single time; with ``whitening`` the embeddings are
    whitened (and re-normalised) before the cosine is taken.
    """
    texts = list(dict.fromkeys([*pairs["sentence1"], *pairs["sentence2"]]))
    emb = encode(model, texts, batch_size=batch_size)
    if whitening is not None:
        emb = whitening.apply(emb)
    row = {text: i for i, text in enumerate(texts)}
    emb1 = emb[[row[t] for t in pairs["sentence1"]]]
    emb2 = emb[[row[t] for t in pairs["sentence2"]]]
    cosine = np.einsum("ij,ij->i", emb1, emb2).astype(np.float32)
    return StsEmbeddings(emb1, emb2, cosine, pairs["score"].to_numpy(dtype=np.float64))


def evaluate_sts(
    models: Sequence[Any] | Any,
    pairs: pd.DataFrame | Path | str,
    batch_size: int = 64,
    whiten: bool | str | Path = False,
    whiten_dim: int | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Score one or several models on scored sentence pairs.

    Args:
        models: model names/directories (str) or loaded SentenceTransformer objects.
        pairs: DataFrame with sentence1, sentence2, score, or a KorSTS-format file path.
        whiten: False; True to fit BERT-whitening (Su et al. 2021) on the eval sentences
            themselves; or a path to a corpus file whose texts the whitening is fitted on.
        whiten_dim: keep this many whitened dimensions (None: all).
        limit: use only the first ``limit`` pairs (quick checks).

    Returns:
        DataFrame, one row per model, columns ``model``, ``spearman``, ``pearson`` (cosine
        similarity vs gold, x 100), ``pairs`` (int), ``encode_seconds`` (wall clock, s).

    Raises:
        SimsearchError: unreadable pairs file or model.
    """
    from simsearch.labeled import read_sts_pairs, read_texts

    if not isinstance(pairs, pd.DataFrame):
        pairs = read_sts_pairs(pairs)
    if limit:
        pairs = pairs.head(limit)
    if isinstance(models, (str, Path)) or not isinstance(models, Sequence):
        models = [models]
    rows = []
    for model_arg in models:
        model = load_model(str(model_arg) if isinstance(model_arg, Path) else model_arg)
        start = time.perf_counter()
        whitening = None
        if whiten:
            from simsearch.whitening import fit_whitening

            if whiten is True:
                fit_texts = list(dict.fromkeys([*pairs["sentence1"], *pairs["sentence2"]]))
            else:
                fit_texts = read_texts(whiten)
            whitening = fit_whitening(encode(model, fit_texts, batch_size=batch_size), whiten_dim)
        emb = embed_sts_pairs(model, pairs, batch_size=batch_size, whitening=whitening)
        seconds = time.perf_counter() - start
        spearman, pearson = sts_correlations(emb.cosine, emb.scores)
        name = model_label(model_arg)
        if whitening is not None:
            name += f" +whiten{'' if whiten_dim is None else f'({whiten_dim})'}"
        rows.append([name, spearman, pearson, len(pairs), seconds])
    return pd.DataFrame(rows, columns=STS_COLUMNS)
