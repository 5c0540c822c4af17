"""Diagnostics of an embedding space (``simsearch inspect``): anisotropy and its plot.

- Mean cosine similarity of random document pairs (Ethayarajh 2019): near 0 for an isotropic
  space; raw BERT-style embeddings sit in a narrow cone and score high.
- Normalised singular value spectrum of the (centred) embedding matrix: a few dominant
  directions mean the space is effectively low-dimensional.
- Alignment and uniformity (Wang & Isola 2020, "Understanding Contrastive Representation
  Learning through Alignment and Uniformity on the Hypersphere", used by SimCSE, Gao et al.
  2021): ``align = E ||f(x) - f(y)||^2`` over positive pairs (lower is better) and
  ``uniform = log E exp(-2 ||f(x) - f(y)||^2)`` over all pairs (lower is better).

All inputs are (n, d) float32 arrays of L2-normalised embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simsearch.errors import InvalidParameter, SimsearchError


@dataclass
class Diagnostics:
    """Summary of one embedding matrix; ``spectrum`` is (min(n, d),) float64 summing to 1."""

    name: str
    n: int
    dim: int
    mean_cosine: float
    spectrum: np.ndarray
    top1_share: float
    dims_for_90: int
    alignment: float | None = None
    uniformity: float | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary (the spectrum truncated to its first 10 values)."""
        return {
            "name": self.name,
            "n": self.n,
            "dim": self.dim,
            "mean_cosine": round(self.mean_cosine, 4),
            "top1_share": round(self.top1_share, 4),
            "dims_for_90pct": self.dims_for_90,
            "spectrum_top10": [round(float(v), 4) for v in self.spectrum[:10]],
            "alignment": None if self.alignment is None else round(self.alignment, 4),
            "uniformity": None if self.uniformity is None else round(self.uniformity, 4),
        }


def _check(emb: np.ndarray, minimum: int = 2) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] < minimum:
        raise SimsearchError(f"Need at least {minimum} embeddings to diagnose; got {emb.shape}.")
    return emb


def mean_random_cosine(emb: np.ndarray, pairs: int = 10_000, seed: int = 0) -> float:
    """Mean cosine similarity of ``pairs`` random pairs of distinct rows (seeded).

    Rows are re-normalised, so un-normalised input is fine. Returns a float in [-1, 1].
    """
    emb = _check(emb)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(emb), pairs)
    # Offset in 1..n-1 guarantees j != i without rejection sampling.
    j = (i + rng.integers(1, len(emb), pairs)) % len(emb)
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return float(np.einsum("ij,ij->i", unit[i], unit[j]).mean())


def singular_spectrum(emb: np.ndarray, center: bool = True) -> np.ndarray:
    """Singular values of the (centred) embedding matrix, normalised to sum to 1.

    Returns (min(n, d),) float64, descending.
    """
    x = _check(emb).astype(np.float64)
    if center:
        x = x - x.mean(axis=0)
    s = np.linalg.svd(x, compute_uv=False)
    total = s.sum()
    return s / total if total > 0 else s


def alignment(emb1: np.ndarray, emb2: np.ndarray, alpha: float = 2.0) -> float:
    """Wang & Isola alignment: mean ||f(x) - f(y)||^alpha over positive pairs (row i of each)."""
    a, b = _check(emb1, 1), _check(emb2, 1)
    if a.shape != b.shape:
        raise SimsearchError("Alignment needs two embedding arrays of the same shape.")
    return float((np.linalg.norm(a - b, axis=1) ** alpha).mean())


def uniformity(emb: np.ndarray, t: float = 2.0, max_n: int = 2000, seed: int = 0) -> float:
    """Wang & Isola uniformity: log mean exp(-t ||f(x) - f(y)||^2) over distinct pairs.

    At most ``max_n`` rows (a seeded sample) are used, since it is quadratic in n.
    """
    x = _check(emb).astype(np.float64)
    if len(x) > max_n:
        x = x[np.random.default_rng(seed).choice(len(x), max_n, replace=False)]
    sq = np.maximum(2.0 - 2.0 * (x @ x.T), 0.0)  # ||a-b||^2 for unit vectors
    iu = np.triu_indices(len(x), k=1)
    return float(np.log(np.exp(-t * sq[iu]).mean()))


def diagnose(
    emb: np.ndarray,
    name: str = "embeddings",
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
) -> Diagnostics:
    """All diagnostics for one (n, d) embedding matrix; ``pairs`` = positive-pair embeddings
    ((m, d), (m, d)) enable alignment; uniformity is computed on ``emb`` itself."""
    emb = _check(emb)
    # Uncentred on purpose: the shared mean direction (the "cone") is what we want to see.
    spectrum = singular_spectrum(emb, center=False)
    cumulative = np.cumsum(spectrum)
    return Diagnostics(
        name=name,
        n=int(emb.shape[0]),
        dim=int(emb.shape[1]),
        mean_cosine=mean_random_cosine(emb, seed=seed),
        spectrum=spectrum,
        top1_share=float(spectrum[0]),
        dims_for_90=int(np.searchsorted(cumulative, 0.9) + 1),
        alignment=alignment(*pairs) if pairs is not None else None,
        uniformity=uniformity(emb, seed=seed),
    )


def plot_spectra(diagnostics: list[Diagnostics], path: Path | str) -> Path:
    """Write a PNG with the normalised singular value spectra overlaid (log y axis).

    The legend carries each matrix's mean random-pair cosine. Uses matplotlib's Agg backend
    (no display needed). Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for diag in diagnostics:
        label = f"{diag.name} (mean cos {round(diag.mean_cosine, 2) + 0.0:.2f})"
        ranks = np.arange(1, len(diag.spectrum) + 1)
        ax.plot(ranks, diag.spectrum, label=label, linewidth=1.6)
        ax2.plot(ranks, np.cumsum(diag.spectrum), label=diag.name, linewidth=1.6)
    ax.set_yscale("log")
    # Rank-deficient matrices end in ~1e-18 values that would squash the informative part.
    informative = np.concatenate([d.spectrum[d.spectrum > 1e-6] for d in diagnostics])
    if informative.size:
        ax.set_ylim(bottom=float(informative.min()) / 3)
    ax.set_xlabel("singular value rank")
    ax.set_ylabel("singular value / sum")
    ax.set_title("Normalised singular value spectrum")
    ax.legend(fontsize=8)
    ax2.set_xlabel("number of directions")
    ax2.set_ylabel("cumulative share")
    ax2.set_ylim(0, 1.02)
    ax2.axhline(0.9, color="grey", linestyle=":", linewidth=1)
    ax2.set_title("Cumulative spectrum (flatter = more isotropic)")
    ax2.legend(fontsize=8)
    for a in (ax, ax2):
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- inspect


def _sample_rows(n: int, sample: int, seed: int) -> np.ndarray:
    if n <= sample:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))


def _short_name(model: str) -> str:
    """A plot/table label: a local directory's last two path parts, else the hub id."""
    path = Path(model)
    return "/".join(path.parts[-2:]) if path.is_dir() else model


def _positive_pairs(pairs: Path, positive_score: float) -> tuple[list[str], list[str]]:
    from simsearch.tables.labeled import read_sts_pairs

    df = read_sts_pairs(pairs)
    df = df[df["score"] >= positive_score]
    if df.empty:
        raise InvalidParameter(
            "positive_score", f"{pairs}: no pair scores >= {positive_score}; lower {{name}}."
        )
    return list(df["sentence1"]), list(df["sentence2"])


@dataclass(frozen=True)
class InspectOptions:
    """What :func:`inspect_sources` samples, pairs and plots.

    Attributes:
        texts: a table file whose texts the models embed; ``column``: its text column(s).
        sample: texts/documents sampled per source (seeded by ``seed``).
        pairs: scored pairs; those scoring >= ``positive_score`` give alignment.
        whiten: also diagnose each source after BERT-whitening fitted on its sample.
        flow: also diagnose each source after BERT-flow (:mod:`simsearch.transforms.flow`) fitted on
            its sample.
        plot: the PNG file of the spectra.
    """

    texts: Path | None = None
    column: Sequence[str] | None = None
    sample: int = 2000
    pairs: Path | None = None
    positive_score: float = 4.0
    whiten: bool = False
    flow: bool = False
    plot: Path | str = "simsearch-inspect.png"
    seed: int = 0


Source = tuple[str, np.ndarray, object, object]


def inspect_sources(
    indexes: Sequence[Path] = (),
    models: Sequence[str] = (),
    options: InspectOptions = InspectOptions(),  # noqa: B008 - frozen, so safe to share
) -> tuple[list[Diagnostics], Path]:
    """Diagnose each index (a seeded sample of its rows) and each model (over
    ``options.texts``).

    With ``options.pairs`` the positive pairs are encoded by each source's model for
    alignment. With ``options.whiten`` each source is also diagnosed after BERT-whitening
    fitted on its own sample, with ``options.flow`` after BERT-flow. Writes the overlaid
    spectra to ``options.plot`` (PNG) and returns (diagnostics, path).

    Raises:
        SimsearchError: nothing to inspect, models without texts, unreadable inputs.
    """
    if not indexes and not models:
        raise InvalidParameter(
            "indexes", "Nothing to inspect: give an index ({name}) and/or models with texts."
        )
    if models and options.texts is None:
        raise InvalidParameter("texts", "models need {name}: a file of the sentences to embed.")
    if options.sample < 2:
        raise InvalidParameter("sample", "{name} must be at least 2.")
    positives = _positive_pairs(options.pairs, options.positive_score) if options.pairs else None
    results = []
    for label, emb, model, stored_whitening in _sources(indexes, models, options):
        emb = emb[np.linalg.norm(emb, axis=1) > 0]  # empty documents are zero rows
        pair_emb = None
        if positives is not None:
            pair_emb = _pair_embeddings(model, positives, stored_whitening)
        results.append(diagnose(emb, label, pair_emb, options.seed))
        if options.whiten:
            from simsearch.transforms.whitening import fit_whitening

            w = fit_whitening(emb)
            white_pairs = None if pair_emb is None else (w.apply(pair_emb[0]), w.apply(pair_emb[1]))
            results.append(diagnose(w.apply(emb), f"{label} +whiten", white_pairs, options.seed))
        if options.flow:
            from simsearch.transforms.flow import FlowConfig, fit_flow

            f = fit_flow(emb, FlowConfig(seed=options.seed))
            flow_pairs = None if pair_emb is None else (f.apply(pair_emb[0]), f.apply(pair_emb[1]))
            results.append(diagnose(f.apply(emb), f"{label} +flow", flow_pairs, options.seed))
    return results, plot_spectra(results, options.plot)


def _sources(
    indexes: Sequence[Path], models: Sequence[str], options: InspectOptions
) -> list[Source]:
    """(label, sampled embeddings, model, stored whitening or flow) per index and model."""
    from simsearch.encoding.sbert import encode, load_model
    from simsearch.store.index import open_path
    from simsearch.tables.labeled import read_texts
    from simsearch.transforms import load_transform

    sources: list[Source] = []
    for path in indexes:
        idx = open_path(path)
        rows = _sample_rows(len(idx.embeddings), options.sample, options.seed)
        emb = np.asarray(idx.embeddings[rows], dtype=np.float32)
        sources.append((f"index {path}", emb, idx.model, load_transform(idx)))
    if models:
        all_texts = read_texts(options.texts, options.column)
        chosen = [all_texts[i] for i in _sample_rows(len(all_texts), options.sample, options.seed)]
        for name in models:
            model = load_model(name)
            sources.append((_short_name(name), encode(model, chosen), model, None))
    return sources


def _pair_embeddings(
    model: object, positives: tuple[list[str], list[str]], whitening: object
) -> tuple[np.ndarray, np.ndarray]:
    from simsearch.encoding.sbert import encode, load_model

    loaded = load_model(model)  # type: ignore[arg-type]
    pair = (encode(loaded, positives[0]), encode(loaded, positives[1]))
    if whitening is not None:
        pair = (whitening.apply(pair[0]), whitening.apply(pair[1]))  # type: ignore[attr-defined]
    return pair
