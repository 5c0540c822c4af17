"""Readers for labeled data: scored pairs (KorSTS), NLI triplets (KorNLI), texts, classes.

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

import csv
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from simsearch.errors import SimsearchError

_TEXT_SUFFIXES = {".tsv", ".csv", ".txt", ".xlsx", ".xls"}


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a CSV, TSV or Excel file into a DataFrame of strings/numbers.

    TSV files are read with ``quoting=csv.QUOTE_NONE`` because the KorNLU files contain
    stray quote characters inside sentences (a quoted parse would merge rows).

    Raises:
        SimsearchError: the file does not exist or its suffix is not csv/tsv/txt/xlsx.
    """
    path = Path(path)
    if not path.is_file():
        raise SimsearchError(f"File not found: {path}. Check the path (relative to {Path.cwd()}).")
    suffix = path.suffix.lower()
    if suffix not in _TEXT_SUFFIXES:
        raise SimsearchError(
            f"Unsupported file type {suffix!r} for {path}: use .csv, .tsv, .txt or .xlsx."
        )
    if suffix in {".xlsx", ".xls"}:
        return pd.read_excel(path)
    if suffix in {".tsv", ".txt"}:
        return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, encoding="utf-8")
    return pd.read_csv(path, encoding="utf-8")


def _require_columns(
    df: pd.DataFrame, columns: Sequence[str], path: Path | str, option: str
) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SimsearchError(
            f"{path}: no column {missing[0]!r} (columns are {list(df.columns)}); "
            f"name the right one with {option}."
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
    _require_columns(df, [text1, text2], path, "--text1/--text2")
    _require_columns(df, [score], path, "--score")
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
            _require_columns(df, cols, path, "--anchor/--positive/--negative")
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
    _require_columns(df, [premise, hypothesis], path, "--anchor/--positive")
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
    _require_columns(df, columns, path, "--column")
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
    _require_columns(df, [text], path, "--column")
    _require_columns(df, [label], path, "--label-column")
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
