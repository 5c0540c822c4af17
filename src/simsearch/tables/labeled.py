"""Labeled data sets: readers for: scored pairs (KorSTS), NLI triplets (KorNLI), texts, classes.

Every reader returns a :class:`pandas.DataFrame` with fixed column names so the
evaluation and training code never has to know the file format:

- :func:`read_sts_pairs` -> ``sentence1, sentence2, score`` (score float64)
- :func:`read_nli_triplets` -> ``anchor, positive, negative``
- :func:`read_texts` -> ``list[str]``
- :func:`read_labeled_texts` -> ``text, label`` (label int64 class id) and the class names

Bad input (missing file, unknown column, too few rows) raises
:class:`simsearch.errors.SimsearchError` with the fix in the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from simsearch.errors import InvalidParameter, SimsearchError


def read_table(path: Path | str) -> pd.DataFrame:
    """A labeled-data table read by :func:`simsearch.tables.read.read_table` (same formats
    and errors), with TSV quotes taken literally (KorNLU) and empty cells as missing
    values (so ``dropna`` drops rows without a sentence).

    Raises:
        SimsearchError: missing, unsupported, empty, damaged or non-UTF-8 file.
    """
    from simsearch.tables.read import read_table as read_any

    frame, _ = read_any(path, raw_quotes=True)
    return frame.mask(frame.astype(str) == "")


def require_columns(df: pd.DataFrame, columns: dict[str, str], path: Path | str) -> None:
    """Raises InvalidParameter (naming the parameter) for the first of ``columns``
    (parameter -> column name) that ``df`` lacks."""
    for param, column in columns.items():
        if column not in df.columns:
            raise InvalidParameter(
                param,
                f"{path}: no column {column!r} (columns are {list(df.columns)}); "
                "name the right one with {name}.",
            )


def _clean_text(series: pd.Series) -> pd.Series:
    return series.astype(str).str.strip()


def read_sts_pairs(
    path: Path | str,
    text1: str = "sentence1",
    text2: str = "sentence2",
    score: str = "score",
) -> pd.DataFrame:
    """Read scored sentence pairs (KorSTS format by default, any CSV/TSV/XLSX by column names).

    Rows with a missing text or a non-numeric score are dropped (a handful of KorSTS dev
    rows have a missing sentence).

    Returns:
        DataFrame with columns ``sentence1``, ``sentence2`` (str) and ``score`` (float64,
        the file's own scale, e.g. 0-5 for KorSTS).

    Raises:
        SimsearchError: missing file/column, or no usable pair left.
    """
    df = read_table(path)
    require_columns(df, {"text1": text1, "text2": text2, "score": score}, path)
    out = pd.DataFrame(
        {
            "sentence1": df[text1],
            "sentence2": df[text2],
            "score": pd.to_numeric(df[score], errors="coerce"),
        }
    ).dropna()
    out["sentence1"] = _clean_text(out["sentence1"])
    out["sentence2"] = _clean_text(out["sentence2"])
    out = out[(out["sentence1"] != "") & (out["sentence2"] != "")].reset_index(drop=True)
    if len(out) < 2:
        raise SimsearchError(f"{path}: fewer than 2 usable scored pairs; check the columns.")
    return out


def read_nli_triplets(
    paths: Path | str | Sequence[Path | str],
    anchor: str = "sentence1",
    positive: str = "sentence2",
    negative: str | None = None,
    label: str = "gold_label",
) -> pd.DataFrame:
    """Build (anchor, positive, hard negative) triplets for supervised SimCSE.

    Two formats are accepted per file:

    - NLI (KorNLI/XNLI, detected by a ``label`` column): for every premise (``anchor``
      column) each ``entailment`` hypothesis is paired with each ``contradiction``
      hypothesis of the same premise, as in Gao et al. 2021 (SimCSE, section 4).
    - Generic three-column file: columns ``anchor``, ``positive``, ``negative`` given by
      name (``negative`` must be set), or else the file's first three columns.

    Returns:
        DataFrame with str columns ``anchor``, ``positive``, ``negative``.

    Raises:
        SimsearchError: missing file/column or no triplet could be built.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    frames = []
    for path in paths:
        df = read_table(path)
        if label in df.columns and negative is None:
            frames.append(_nli_to_triplets(df, path, anchor, positive, label))
        else:
            cols = [anchor, positive, negative] if negative else list(df.columns[:3])
            if len(cols) < 3:
                raise SimsearchError(
                    f"{path}: need 3 columns (anchor, positive, negative); "
                    "or a gold_label column in NLI format."
                )
            require_columns(df, dict(zip(("anchor", "positive", "negative"), cols)), path)
            part = df[cols].dropna()
            part.columns = ["anchor", "positive", "negative"]
            frames.append(part.astype(str))
    out = pd.concat(frames, ignore_index=True)
    if out.empty:
        raise SimsearchError(
            "No (anchor, entailment, contradiction) triplet found: the NLI file needs "
            "premises with both an entailment and a contradiction hypothesis."
        )
    return out


def _nli_to_triplets(
    df: pd.DataFrame, path: Path | str, premise: str, hypothesis: str, label: str
) -> pd.DataFrame:
    require_columns(df, {"anchor": premise, "positive": hypothesis}, path)
    df = df.dropna(subset=[premise, hypothesis, label])
    labels = df[label].astype(str).str.strip().str.lower()
    ent = df[labels == "entailment"][[premise, hypothesis]]
    con = df[labels == "contradiction"][[premise, hypothesis]]
    ent.columns = ["anchor", "positive"]
    con.columns = ["anchor", "negative"]
    # Inner join on the premise text: every entailment meets every contradiction of it.
    return ent.merge(con, on="anchor", how="inner").astype(str).reset_index(drop=True)


def read_texts(path: Path | str, columns: Sequence[str] | None = None) -> list[str]:
    """Unique non-empty texts of the given columns of a table, in first-seen order.

    With ``columns=None`` a KorSTS/KorNLI file contributes ``sentence1`` and ``sentence2``;
    other files their first column.

    Raises:
        SimsearchError: missing file/column or no text.
    """
    df = read_table(path)
    if not columns:
        pair_cols = [c for c in ("sentence1", "sentence2") if c in df.columns]
        columns = pair_cols or [df.columns[0]]
    for column in columns:
        require_columns(df, {"columns": column}, path)
    seen: dict[str, None] = {}
    for column in columns:
        for text in _clean_text(df[column].dropna()):
            if text:
                seen.setdefault(text, None)
    if not seen:
        raise SimsearchError(f"{path}: no text in column(s) {list(columns)}.")
    return list(seen)


def read_labeled_texts(
    path: Path | str, text: str = "text", label: str = "label"
) -> tuple[pd.DataFrame, list[str]]:
    """Texts with a class column, for triplet training.

    Returns:
        (DataFrame with ``text`` str and ``label`` int64 class id, class names by id).
        Classes with a single text are dropped: a triplet needs two texts of a class.

    Raises:
        SimsearchError: missing file/column or fewer than 2 classes with 2+ texts.
    """
    df = read_table(path)
    require_columns(df, {"text": text, "label": label}, path)
    df = df[[text, label]].dropna()
    df = pd.DataFrame({"text": _clean_text(df[text]), "cls": df[label].astype(str)})
    counts = df["cls"].value_counts()
    df = df[df["cls"].isin(counts[counts >= 2].index)]
    names = sorted(df["cls"].unique())
    if len(names) < 2:
        raise SimsearchError(
            f"{path}: triplet training needs at least 2 classes with 2+ texts each in {label!r}."
        )
    ids = {name: i for i, name in enumerate(names)}
    out = pd.DataFrame({"text": df["text"], "label": df["cls"].map(ids).astype("int64")})
    return out.reset_index(drop=True), names
