"""Korean lexical search: BM25 over Kiwi morphemes (kiwipiepy + bm25s).

Korean attaches particles and endings to words (``전지는``, ``전지를``, ``전지의``), so
whitespace tokens barely match between a query and a document. Kiwi
(:class:`kiwipiepy.Kiwi`) splits each eojeol into morphemes; we keep the content-bearing
ones as index terms:

* nouns, pronouns, numerals, roots, hanja, verb/adjective/auxiliary stems (written with
  ``다``), adverbs, determiners, foreign words and numbers (the list and why:
  :mod:`simsearch.text.kiwi`);

Particles, endings, suffixes, bound nouns (``것``, ``수``) and punctuation are dropped.
BM25 (Robertson et al.; the "lucene" variant of :class:`bm25s.BM25`, Lù 2024,
arXiv:2407.03618) ranks the rows: bm25s computes the sparse score matrix once at build
time, so a query is a sum of a few sparse columns.

Kiwi costs about a second to start (measured in ``scripts/retrieval_bench.py``), so it is
imported lazily, configured without the typo and multi-word dictionaries (which triple the
start-up), and created once per process (:func:`get_kiwi`).

Incremental builds: :class:`TokenStore` keeps each row's terms keyed by a hash of its
text, so only new or changed texts are tokenized again; the BM25 matrix itself is rebuilt
from the stored terms (cheap next to tokenization: see the benchmark).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The Kiwi analysis lives in simsearch.text.kiwi; re-exported here for the BM25 callers.
from simsearch.text.kiwi import (  # noqa: F401
    KEEP_TAGS,
    STEM_TAGS,
    TERMS_VERSION,
    get_kiwi,
    surface_spans,
    term_spans,
    terms_of,
    tokenize,
)

#: File names inside a lexical index directory.
TOKENS_FILE = "terms.jsonl"


def text_key(text: str) -> str:
    """Stable key of a text for the token cache (sha1, 20 hex digits) under the current
    :data:`~simsearch.text.kiwi.TERMS_VERSION` (version 1, the first tag set, hashed the
    text alone), so terms cached by an older tag set are analysed again."""
    salt = b"" if TERMS_VERSION == 1 else f"terms-v{TERMS_VERSION}\0".encode()
    return hashlib.sha1(salt + text.encode("utf-8")).hexdigest()[:20]


class AnalysisStopped(Exception):
    """:meth:`TokenStore.update` was stopped before it finished (its caller asked)."""


class TokenStore:
    """Terms of each row keyed by text hash, stored as JSON lines ``{"key", "terms"}`` in
    row order. Rows whose text is unchanged keep their terms; only new texts are analysed."""

    def __init__(self, keys: list[str], terms: list[list[str]]):
        self.keys = keys
        self.terms = terms

    @classmethod
    def load(cls, path: str | os.PathLike) -> TokenStore:
        """Read a store; a missing file gives an empty store.

        Raises:
            ValueError: a line that is not JSON ``{"key": str, "terms": list}`` (UTF-8
                and JSON errors are ``ValueError`` too); OSError: unreadable.
        """
        keys, terms = [], []
        path = Path(path)
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    record = json.loads(line)
                    if not isinstance(record, dict) or not isinstance(record.get("key"), str) \
                            or not isinstance(record.get("terms"), list):
                        raise ValueError("a line of the terms file is not {key, terms}")
                    keys.append(record["key"])
                    terms.append(record["terms"])
        return cls(keys, terms)

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (a temporary file renamed over the old one)."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for key, terms in zip(self.keys, self.terms):
                fh.write(json.dumps({"key": key, "terms": terms}, ensure_ascii=False) + "\n")
        os.replace(tmp, path)

    def update(
        self,
        texts: Sequence[str],
        chunk: int | None = None,
        stopped: Callable[[], bool] | None = None,
    ) -> tuple[TokenStore, int]:
        """A store for ``texts`` reusing this one's terms for unchanged texts; a text that
        occurs several times is analysed once.

        Args:
            chunk: analyse this many texts per call of Kiwi (``None``: all at once).
            stopped: checked before each chunk; when it returns True the update stops
                with :class:`AnalysisStopped`.

        Returns:
            ``(store, n_tokenized)``: the new store in the order of ``texts`` and how many
            distinct texts had to be analysed.
        """
        known = dict(zip(self.keys, self.terms))
        keys = [text_key(t) for t in texts]
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key not in known:
                first.setdefault(key, i)
        missing = sorted(first.values())
        step = chunk or max(1, len(missing))
        for start in range(0, len(missing), step):
            if stopped is not None and stopped():
                raise AnalysisStopped("the Kiwi analysis was stopped")
            part = missing[start : start + step]
            for i, terms in zip(part, tokenize([texts[i] for i in part])):
                known[keys[i]] = terms
        return TokenStore(keys, [known[key] for key in keys]), len(missing)


@dataclass(frozen=True)
class BM25Options:
    """BM25 parameters (bm25s defaults: k1 1.5, b 0.75, Lucene's idf)."""

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"


class LexicalIndex:
    """A BM25 index over rows: the sparse ``(n_terms, n_rows)`` score matrix that bm25s
    computes at build time (CSC by term: ``data``/``indices``/``indptr``), its vocabulary,
    and optionally the per-row terms (for ``similar`` and highlighting).

    Queries do not import bm25s: its import pulls in numba and scipy (about 0.5 s), so a
    query sums the matrix columns of its terms with numpy, exactly as bm25s's numpy
    backend does (``BM25.get_scores``; pinned in the tests).

    Attributes:
        n_rows: number of indexed rows (empty rows match nothing).
    """

    FILES = {"matrix": "bm25.npz", "vocab": "vocab.json", "terms": TOKENS_FILE}

    def __init__(
        self,
        data: np.ndarray,
        indices: np.ndarray,
        indptr: np.ndarray,
        vocab: dict[str, int],
        n_rows: int,
        terms: list[list[str]] | None = None,
    ):
        self.data, self.indices, self.indptr = data, indices, indptr
        self.vocab = vocab
        self.n_rows = int(n_rows)
        self.terms = terms

    @classmethod
    def build(cls, terms: list[list[str]], options: BM25Options = BM25Options()) -> LexicalIndex:
        """BM25 over the given per-row terms (``n_rows`` lists) with :class:`bm25s.BM25`."""
        if not any(terms):  # no row has a term (e.g. only punctuation): an empty index
            return cls(
                np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(1, np.int64), {},
                len(terms), terms,
            )
        import bm25s

        retriever = bm25s.BM25(k1=options.k1, b=options.b, method=options.method)
        retriever.index([list(t) for t in terms], show_progress=False)
        scores = retriever.scores
        return cls(
            np.asarray(scores["data"], dtype=np.float32),
            np.asarray(scores["indices"], dtype=np.int32),
            np.asarray(scores["indptr"], dtype=np.int64),
            {str(k): int(v) for k, v in retriever.vocab_dict.items()},
            int(scores["num_docs"]),
            terms,
        )

    @classmethod
    def from_texts(cls, texts: Sequence[str], options: BM25Options = BM25Options()) -> LexicalIndex:
        """Tokenize ``texts`` with Kiwi and build (no cache)."""
        return cls.build(tokenize(list(texts)), options)

    def save(
        self,
        directory: str | os.PathLike,
        names: dict[str, str] | None = None,
        store: TokenStore | None = None,
    ) -> None:
        """Write the matrix (``.npz``), the vocabulary (``.json``) and the row terms
        (``.jsonl``: ``store``, or the terms this index was built from, keyed by text
        hash when a store is given) into ``directory``.

        Args:
            names: file name per role (``matrix``, ``vocab``, ``terms``); default
                :attr:`FILES`.
            store: the token store of this build (keeps the text keys for the next
                incremental build).
        """
        names = {**self.FILES, **(names or {})}
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / names["matrix"], "wb") as fh:
            np.savez(fh, data=self.data, indices=self.indices, indptr=self.indptr,
                     n_rows=np.array(self.n_rows))
        vocab = sorted(self.vocab, key=self.vocab.__getitem__)
        (directory / names["vocab"]).write_text(json.dumps(vocab, ensure_ascii=False),
                                                encoding="utf-8")
        if store is None and self.terms is not None:
            store = TokenStore([""] * len(self.terms), self.terms)
        if store is not None:
            store.save(directory / names["terms"])

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        names: dict[str, str] | None = None,
        with_terms: bool = False,
        n_rows: int | None = None,
    ) -> LexicalIndex:
        """Open a saved index; ``with_terms`` also reads the row terms (needed by
        ``similar`` in lexical mode and :meth:`document_terms`).

        Every part is checked before anything is allocated from it: the arrays' headers
        against the bytes the archive holds (:func:`read_npz`), the CSC structure, the
        vocabulary's length, and (``n_rows`` given: the index's documents) the row count
        and every row index.

        Raises:
            ValueError: a damaged or inconsistent file (``BadZipFile``, JSON and UTF-8
                errors are ``ValueError`` or turned into one); OSError: unreadable.
        """
        names = {**cls.FILES, **(names or {})}
        directory = Path(directory)
        arrays = read_npz(directory / names["matrix"], ("data", "indices", "indptr", "n_rows"))
        vocab_list = _read_vocab(directory / names["vocab"])
        data, indices, indptr, stored_rows = (
            arrays["data"], arrays["indices"], arrays["indptr"], arrays["n_rows"]
        )
        if stored_rows.shape != () or stored_rows.dtype.kind not in "iu":
            raise ValueError("the BM25 row count is not one integer")
        rows = int(stored_rows)
        if n_rows is not None and rows != n_rows:
            raise ValueError(f"the BM25 matrix has {rows} rows, the index {n_rows}")
        check_csc(data, indices, indptr, len(vocab_list), rows)
        terms = None
        if with_terms:
            terms = TokenStore.load(directory / names["terms"]).terms
            if len(terms) != rows:
                raise ValueError(f"the terms file holds {len(terms)} rows, not {rows}")
        index = cls(data, indices, indptr, {t: i for i, t in enumerate(vocab_list)}, rows, terms)
        index._names_list = vocab_list
        return index

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        """BM25 score of every row for a query given as terms (unknown terms score 0; a
        repeated term counts again, as in bm25s).

        Returns:
            ``(n_rows,)`` float32, 0 for rows sharing no term with the query.
        """
        out = np.zeros(self.n_rows, dtype=np.float32)
        for term in terms:
            t = self.vocab.get(term)
            if t is None or t + 1 >= len(self.indptr):  # unknown, or a term with no column
                continue
            a, b = self.indptr[t], self.indptr[t + 1]
            out[self.indices[a:b]] += self.data[a:b]  # one entry per row within a term
        return out

    def rows_terms(self, rows: Sequence[int]) -> dict[int, list[str]]:
        """The unique terms of each of ``rows``, read from the score matrix itself (one
        pass over its nonzeros: no Kiwi, no terms file), rarest first.

        Returns:
            ``{row: [term, ...]}`` for every row asked (``[]`` for an empty row).
        """
        rows = [int(r) for r in rows]
        out: dict[int, list[str]] = {r: [] for r in rows}
        positions = np.flatnonzero(np.isin(self.indices, rows))
        if len(positions):
            term_ids = np.searchsorted(self.indptr, positions, side="right") - 1
            names = self._names()
            df = np.diff(self.indptr)
            order = np.lexsort((term_ids, df[term_ids]))
            for p in order:
                out[int(self.indices[positions[p]])].append(names[term_ids[p]])
        return out

    def _names(self) -> list[str]:
        if getattr(self, "_names_list", None) is None:
            self._names_list = sorted(self.vocab, key=self.vocab.__getitem__)
        return self._names_list

    def document_terms(self, row: int) -> list[str]:
        """The unique terms of row ``row`` (the query of ``similar`` in lexical mode):
        from the stored terms when loaded, else from the score matrix."""
        if self.terms is not None:
            return list(dict.fromkeys(self.terms[row]))
        return self.rows_terms([row])[row]


#: The largest BM25 archive member read (a header may claim any shape).
MAX_MEMBER_BYTES = 1 << 40


def read_npz(path: str | os.PathLike, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an uncompressed ``.npz`` (as :func:`numpy.savez` writes),
    each read only after its header's shape and dtype agree with the bytes the archive
    stores for it, so a damaged or hostile header can never make numpy allocate more
    than the file holds.

    Raises:
        ValueError: not a zip of ``.npy`` members (``BadZipFile`` is turned into this), a
            member missing, compressed, an object dtype, or a header that disagrees
            with its member's size.
    """
    import zipfile

    from numpy.lib import format as npy

    size_on_disk = os.path.getsize(path)
    out = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for key in keys:
                info = archive.getinfo(f"{key}.npy")
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > size_on_disk:
                    raise ValueError(f"{key}: not a stored member of the archive")
                with archive.open(info) as handle:
                    version = npy.read_magic(handle)
                    read_header = (npy.read_array_header_1_0 if version == (1, 0)
                                   else npy.read_array_header_2_0)
                    shape, fortran, dtype = read_header(handle)
                    if dtype.hasobject or fortran:
                        raise ValueError(f"{key}: not a plain numeric array")
                    count = int(np.prod(shape, dtype=object))
                    if count * dtype.itemsize != info.file_size - handle.tell():
                        raise ValueError(f"{key}: its header disagrees with its size")
                    out[key] = np.frombuffer(handle.read(), dtype=dtype, count=count).reshape(shape)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a zip archive ({exc})") from None
    except KeyError as exc:
        raise ValueError(f"the archive has no member {exc}") from None
    return out


def _read_vocab(path: Path) -> list[str]:
    """The vocabulary file: a JSON list of term strings (term id = position)."""
    vocab = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
        raise ValueError("the vocabulary is not a list of terms")
    return vocab


def check_csc(
    data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n_terms: int, n_rows: int
) -> None:
    """Check a CSC score matrix by term: ``data`` float32 and ``indices`` integer of one
    length, ``indptr`` ``(n_terms + 1,)`` (or ``(n_terms,)``: the last term has no
    column) non-decreasing integers from 0 to that length,
    every row index in ``range(n_rows)``.

    Raises:
        ValueError: naming the first check that fails.
    """
    if data.ndim != 1 or data.dtype != np.float32:
        raise ValueError("the BM25 scores are not a float32 vector")
    if indices.shape != data.shape or indices.dtype.kind not in "iu":
        raise ValueError("the BM25 row indices do not match the scores")
    # bm25s gives the empty term ("", last in its vocabulary) no column, so
    # ``indptr`` may be one shorter than the vocabulary plus one.
    if indptr.ndim != 1 or len(indptr) - 1 not in (n_terms, n_terms - 1) \
            or indptr.dtype.kind not in "iu":
        raise ValueError(f"the BM25 term pointers do not match the {n_terms} terms")
    if indptr[0] != 0 or indptr[-1] != len(data) or np.any(np.diff(indptr) < 0):
        raise ValueError("the BM25 term pointers are out of order")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_rows):
        raise ValueError(f"the BM25 matrix names rows outside 0..{n_rows - 1}")


def matched_terms(query_terms: Iterable[str], row_terms: Iterable[str]) -> list[str]:
    """Query terms that occur in the row, in query order, each once."""
    present = set(row_terms)
    return [t for t in dict.fromkeys(query_terms) if t in present]


def build_incremental(
    texts: Sequence[str], previous: TokenStore | None = None, options: BM25Options = BM25Options()
) -> tuple[LexicalIndex, TokenStore, int]:
    """Build the BM25 index of ``texts`` reusing the terms of unchanged texts.

    Args:
        texts: ``n_rows`` texts (``""`` for empty rows).
        previous: the token store of the last build (``None``: analyse everything).
        options: BM25 parameters.

    Returns:
        ``(index, store, n_tokenized)``: the index, the store to save for the next build
        and how many texts Kiwi analysed this time.
    """
    store, n_new = (previous or TokenStore([], [])).update(list(texts))
    return LexicalIndex.build(store.terms, options), store, n_new
