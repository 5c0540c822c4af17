"""A 2-D map of a corpus: UMAP layout, HDBSCAN clusters, Korean cluster labels.

The recipe is BERTopic's (Grootendorst 2022), with well-kept libraries for each step:

1. UMAP (McInnes et al. 2018, ``umap-learn``) projects the embeddings with the cosine
   metric twice: to ``cluster_dims`` dimensions (default 5) for clustering, where
   density is better kept than in 2-D, and to 2-D for the picture.
2. HDBSCAN (Campello et al. 2013, ``sklearn.cluster.HDBSCAN``) finds clusters of any
   shape and leaves outliers as noise (cluster ``-1``).
3. Each cluster is labelled by its most distinctive terms by class-based TF-IDF
   (c-TF-IDF, as BERTopic defines it) over the nouns Kiwi (``kiwipiepy``) finds:
   general and proper nouns (NNG, NNP) and Latin-script words (SL, e.g. "OLED").

Large corpora: UMAP and HDBSCAN run on a seeded random sample of at most
``max_points`` non-empty rows (20,000 by default); every other row gets the cluster of
its nearest sampled row (exact cosine top-1, :func:`simsearch.retrieval.topk.top_k`) and is
not drawn. Empty documents (zero vectors) are never drawn, get cluster ``-1`` and the
label ``"empty"`` (not ``"noise"``), and are marked ``empty`` in the frame.

Fonts: the PNG names clusters by their Korean terms in a font with Hangul glyphs: the
NanumGothic that the ``koreanize-matplotlib`` package of the ``map`` extra ships (its
file only; the package is never imported, as importing it changes matplotlib's
settings), else any installed font that has Hangul.
"""

from __future__ import annotations

import html
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simsearch.errors import InvalidParameter, SimsearchError
from simsearch.retrieval.parts import row_embeddings
from simsearch.retrieval.topk import top_k
from simsearch.store import index as store

if TYPE_CHECKING:
    import pandas as pd

NOISE = -1
#: Stages :func:`corpus_map` reports through ``on_progress``.
MAP_STAGES = 4
NOUN_TAGS = ("NNG", "NNP", "SL")


@dataclass(frozen=True)
class MapOptions:
    """How :func:`corpus_map` lays out and clusters.

    Attributes:
        n_neighbors: UMAP's neighbourhood size (local vs global structure).
        min_cluster_size: HDBSCAN's smallest cluster (default: 5, or 1% of the rows
            mapped when that is more).
        cluster_dims: UMAP dimensions the clusters are found in.
        max_points: rows mapped at most; more are sampled (see the module doc).
        n_terms: terms per cluster label.
        seed: random seed of the sample and of UMAP (fixed seed: same map each run).
    """

    n_neighbors: int = 15
    min_cluster_size: int | None = None
    cluster_dims: int = 5
    max_points: int = 20_000
    n_terms: int = 3
    seed: int = 0


@dataclass
class CorpusMap:
    """A corpus map.

    Attributes:
        frame: one row per source row: the source columns, ``row``, ``x``, ``y``
            (NaN when not drawn), ``cluster`` (int, ``-1`` noise or empty), ``cluster_label``
            (its terms, e.g. ``"3: 전지 음극 리튬"``; ``"empty"`` for an empty row),
            ``drawn`` (bool) and ``empty`` (bool: the row has no text).
        terms: cluster -> its most distinctive terms, most distinctive first.
        sampled: True when only a sample was laid out and clustered.
    """

    frame: pd.DataFrame
    terms: dict[int, list[str]]
    sampled: bool


def umap_project(embeddings: np.ndarray, dims: int, n_neighbors: int, seed: int) -> np.ndarray:
    """``(n, dims)`` float32 UMAP projection with the cosine metric (umap-learn)."""
    import umap

    n = len(embeddings)
    reducer = umap.UMAP(
        n_components=dims,
        n_neighbors=max(2, min(n_neighbors, n - 1)),
        metric="cosine",
        min_dist=0.0 if dims > 2 else 0.1,
        random_state=seed,
        # A fixed random_state makes umap-learn single-threaded anyway; say so, quietly.
        n_jobs=1,
    )
    return reducer.fit_transform(embeddings).astype(np.float32)


def hdbscan_labels(points: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """``(n,)`` int64 cluster of each point by scikit-learn's HDBSCAN; ``-1`` is noise.
    Clusters are renumbered by decreasing size (0 = largest)."""
    from sklearn.cluster import HDBSCAN

    labels = HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(points)
    found = [c for c, _ in Counter(labels[labels >= 0].tolist()).most_common()]
    relabel = {old: new for new, old in enumerate(found)}
    return np.array([relabel.get(c, NOISE) for c in labels.tolist()], dtype=np.int64)


def nouns(texts: Sequence[str]) -> list[list[str]]:
    """The nouns (NNG, NNP) and Latin-script words (SL) of each text, by Kiwi."""
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    out = []
    for tokens in kiwi.tokenize(list(texts)):
        out.append([t.form for t in tokens if t.tag in NOUN_TAGS and len(t.form) > 1])
    return out


def ctfidf_terms(
    tokens: Sequence[Sequence[str]],
    labels: Sequence[int],
    n_terms: int = 3,
    max_df: float = 0.5,
) -> dict[int, list[str]]:
    """Most distinctive terms of each cluster by c-TF-IDF (BERTopic): the documents of a
    cluster form one class, ``W(t, c) = tf(t, c) / |c| * log(1 + A / f(t))`` with ``A``
    the average number of terms per class and ``f(t)`` the frequency of ``t`` over all
    classes. Noise (``-1``) gets no label.

    Terms in more than ``max_df`` of all documents are dropped first (scikit-learn's
    ``CountVectorizer(max_df=...)`` rule): boilerplate such as patents'
    "발명 ... 특징 ... 상기" otherwise outweighs the topic words in every cluster.

    Returns:
        cluster -> up to ``n_terms`` terms, highest weight first (ties alphabetical).
    """
    df = Counter(t for doc in tokens for t in set(doc))
    common = {t for t, n in df.items() if n > max_df * len(tokens)}
    counts: dict[int, Counter] = {}
    for doc, label in zip(tokens, labels):
        if label >= 0:
            counts.setdefault(label, Counter()).update(t for t in doc if t not in common)
    if not counts:
        return {}
    total = Counter()
    for c in counts.values():
        total.update(c)
    average = sum(total.values()) / len(counts)
    terms = {}
    for label, c in counts.items():
        size = sum(c.values()) or 1
        weights = {t: n / size * math.log(1 + average / total[t]) for t, n in c.items()}
        ranked = sorted(weights, key=lambda t: (-weights[t], t))
        terms[label] = ranked[:n_terms]
    return terms


def corpus_map(
    index: store.Index,
    options: MapOptions = MapOptions(),
    on_progress: Callable[[int, int], None] | None = None,
) -> CorpusMap:
    """Lay out, cluster and label an opened index (see the module doc);
    ``on_progress(done, MAP_STAGES)`` after each stage (UMAP for the clusters, HDBSCAN,
    UMAP in 2-D, the labels).

    Raises:
        SimsearchError: fewer than 3 non-empty documents.
    """
    import pandas as pd

    emb = row_embeddings(index)
    present = np.flatnonzero(np.any(np.asarray(emb) != 0, axis=1))
    if len(present) < 3:
        raise SimsearchError("a map needs at least 3 non-empty documents")
    rng = np.random.default_rng(options.seed)
    sampled = len(present) > options.max_points
    drawn = np.sort(rng.choice(present, options.max_points, replace=False)) if sampled else present
    vectors = np.asarray(emb[drawn], dtype=np.float32)
    min_size = options.min_cluster_size or max(5, len(drawn) // 100)
    dims = min(options.cluster_dims, len(drawn) - 2)
    step = on_progress or (lambda done, total: None)
    step(0, MAP_STAGES)
    reduced = umap_project(vectors, dims, options.n_neighbors, options.seed)
    step(1, MAP_STAGES)
    clusters_drawn = hdbscan_labels(reduced, min_size)
    step(2, MAP_STAGES)
    xy = umap_project(vectors, 2, options.n_neighbors, options.seed)
    step(3, MAP_STAGES)

    cluster = np.full(index.n_docs, NOISE, dtype=np.int64)
    cluster[drawn] = clusters_drawn
    if sampled:  # the others take the cluster of their nearest sampled row
        rest = np.setdiff1d(present, drawn)
        nearest, _ = top_k(vectors, np.asarray(emb[rest], dtype=np.float32), 1)
        cluster[rest] = clusters_drawn[nearest[:, 0]]
    records = index.rows(list(range(index.n_docs)))
    texts = [_text(r.get(index.column)) for r in records]
    terms = ctfidf_terms(nouns([texts[i] for i in drawn]), clusters_drawn, options.n_terms)
    step(4, MAP_STAGES)

    frame = pd.DataFrame.from_records(records, columns=index.meta.columns)
    frame["row"] = np.arange(index.n_docs)
    frame["x"] = np.nan
    frame["y"] = np.nan
    frame.loc[drawn, "x"] = xy[:, 0]
    frame.loc[drawn, "y"] = xy[:, 1]
    frame["cluster"] = cluster
    frame["cluster_label"] = [cluster_label(c, terms) for c in cluster.tolist()]
    frame["drawn"] = False
    frame.loc[drawn, "drawn"] = True
    frame["empty"] = True
    frame.loc[present, "empty"] = False
    frame.loc[frame["empty"], "cluster_label"] = "empty"
    return CorpusMap(frame=frame, terms=terms, sampled=sampled)


def cluster_label(cluster: int, terms: dict[int, list[str]]) -> str:
    """``"3: 전지 음극 리튬"``; ``"noise"`` for ``-1``."""
    if cluster < 0:
        return "noise"
    return f"{cluster}: {' '.join(terms.get(cluster, []))}".strip()


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _hover(value: object, width: int = 60, limit: int = 300) -> str:
    """A hover line: escaped (the page shows text, never markup), cut, wrapped."""
    text = " ".join(_text(value).split())
    if len(text) > limit:
        text = text[:limit] + "…"
    lines = [html.escape(text[i : i + width]) for i in range(0, len(text), width)]
    return "<br>".join(lines)


def check_columns(columns: Sequence[str], color: str, hover: Sequence[str]) -> None:
    """Raises InvalidParameter (``color`` or ``hover``) for a column not in ``columns``
    (the map's own ``cluster`` and ``cluster_label`` are always there)."""
    known = [*columns, *(c for c in ("cluster", "cluster_label") if c not in columns)]
    for param, names in (("color", [color]), ("hover", hover)):
        missing = [c for c in names if c not in known]
        if missing:
            listed = ", ".join(repr(c) for c in known)
            raise InvalidParameter(
                param, f"no column {missing[0]!r} for {{name}}; choose from: {listed}"
            )


def write_html(
    result: CorpusMap,
    path: str | os.PathLike,
    color: str = "cluster_label",
    hover: Sequence[str] = (),
) -> Path:
    """An interactive plotly page (self-contained: plotly.js is embedded, so it opens
    offline). Hover shows the row, its cluster and the ``hover`` columns.

    Args:
        color: a column of ``result.frame`` to colour by (default the cluster label);
            numeric columns get a colour scale, others one colour per value.

    Raises:
        InvalidParameter: ``color`` or a ``hover`` column is not in the frame.
        SimsearchError: the file cannot be written.
    """
    import plotly.express as px

    frame = result.frame[result.frame["drawn"]].copy()
    check_columns(list(frame.columns), color, hover)
    shown = {f"{col} ": frame[col].map(_hover) for col in hover}
    frame = frame.assign(**shown)
    if color in ("cluster", "cluster_label"):
        color = "cluster_label"
        order = sorted(frame["cluster_label"].unique(), key=_label_order)
    else:
        order = None
    fig = px.scatter(
        frame,
        x="x",
        y="y",
        color=color,
        category_orders={"cluster_label": order} if order else None,
        hover_data={
            "row": True,
            "cluster_label": True,
            "x": False,
            "y": False,
            **{name: True for name in shown},
        },
        title=f"{len(frame):,} documents" + (" (a sample)" if result.sampled else ""),
        render_mode="webgl" if len(frame) > 5000 else "auto",
    )
    fig.update_traces(marker={"size": 7 if len(frame) < 2000 else 3, "opacity": 0.8})
    fig.update_layout(xaxis_title="UMAP 1", yaxis_title="UMAP 2", legend_title_text=color)
    from simsearch.tables.write import atomic_write

    page = fig.to_html(include_plotlyjs=True, full_html=True)
    path = Path(path)
    atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path


def _label_order(label: str) -> tuple[int, str]:
    head = label.split(":", 1)[0]
    return (int(head) if head.isdigit() else 10**9, label)


def shipped_font() -> str | None:
    """NanumGothic from the ``koreanize-matplotlib`` package (``map`` extra), registered
    with matplotlib; its name, or None when the package is absent. The package is not
    imported (its import changes matplotlib's settings): only its font file is used."""
    import importlib.util

    from matplotlib import font_manager

    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "fonts" / "NanumGothic.ttf"
    if not path.is_file():
        return None
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def hangul_font() -> str | None:
    """Name of a font that has Hangul glyphs (:func:`shipped_font`, else an installed
    one), or None (matplotlib)."""
    from matplotlib import font_manager

    shipped = shipped_font()
    if shipped is not None:
        return shipped
    for entry in font_manager.fontManager.ttflist:
        if "last resort" in entry.name.lower():  # maps every character to a box
            continue
        try:
            from matplotlib.ft2font import FT2Font

            if FT2Font(entry.fname).get_char_index(ord("한")):
                return entry.name
        except (OSError, RuntimeError):
            continue
    return None


def write_png(result: CorpusMap, path: str | os.PathLike, log: Any = None) -> Path:
    """A static picture of the map (matplotlib; plotly's PNG export needs kaleido), drawn
    by :func:`draw_png`.

    Raises:
        SimsearchError: the file cannot be written.
    """
    import matplotlib.pyplot as plt

    from simsearch.tables.write import atomic_write

    fig = draw_png(result, log)
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path


def draw_png(result: CorpusMap, log: Any = None) -> Any:
    """The map as a matplotlib Figure: points coloured by cluster, noise grey, each
    cluster's terms at its centre and in the legend. Without a font that has Hangul
    glyphs, clusters are labelled by number (``log`` says so)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = result.frame[result.frame["drawn"]]
    font = hangul_font()
    if font is None and log is not None:
        log(
            "no font with Hangul glyphs is installed; the PNG labels clusters by number "
            "(pip install -e '.[map]' ships one; or install fonts-nanum or fonts-noto-cjk)"
        )
    family = font or "DejaVu Sans"
    fig, ax = plt.subplots(figsize=(10, 8), dpi=110)
    noise = frame[frame["cluster"] < 0]
    if len(noise):
        ax.scatter(noise["x"], noise["y"], s=6, c="#c8c8c8", label="noise")
    cmap = plt.get_cmap("tab20")
    for c, group in frame[frame["cluster"] >= 0].groupby("cluster"):
        text = group["cluster_label"].iloc[0] if font else str(c)
        ax.scatter(group["x"], group["y"], s=10, color=cmap(c % 20), label=text)
        ax.annotate(
            text,
            (group["x"].median(), group["y"].median()),
            fontsize=9,
            ha="center",
            fontfamily=family,
            bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8, "lw": 0},
        )
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    n_clusters = frame.loc[frame["cluster"] >= 0, "cluster"].nunique()
    ax.set_title(f"{len(frame):,} documents, {n_clusters} clusters")
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, markerscale=1.5,
        prop={"family": family, "size": 8}, frameon=False,
    )  # fmt: skip
    fig.tight_layout()
    return fig


def map_corpus(
    *,
    root: str | os.PathLike = store.DEFAULT_ROOT,
    name: str = store.DEFAULT_NAME,
    min_cluster_size: int | None = None,
    max_points: int = 20_000,
    seed: int = 0,
) -> CorpusMap:
    """Notebook API: the corpus map of an index; ``.frame`` is a DataFrame with ``x``,
    ``y``, ``cluster`` and ``cluster_label`` beside the source columns, ``.terms`` the
    label terms. Draw it with :func:`write_html` / :func:`write_png`.

    Raises:
        SimsearchError: no index, fewer than 3 non-empty documents.
    """
    options = MapOptions(min_cluster_size=min_cluster_size, max_points=max_points, seed=seed)
    return corpus_map(store.load_index(root, name), options)
