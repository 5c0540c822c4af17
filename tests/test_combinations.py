"""The combination matrix (issue 17, part 4): every way of searching agrees with brute force.

{one vector per row, windows} x {exact, ANN, ANN with ``exact``} x {hybrid, dense, lexical,
the default mode} x {no filter, ``where``} x {``similar``, ``query``}, through the notebook
API and the command line, and ``serve`` for its default mode. Each answer is compared with
:mod:`combinations_reference`, computed here from the index's stored arrays, ``bm25s`` and
the documented fusion. The exact scan must give the reference ranking (rows in order,
scores within 1e-5, near-ties within that tolerance in either order); the ANN must reach
recall@10 >= 0.95 against it, with exact similarities for the rows it returns.

The corpus: 600 rows of KorSTS sentences, every sixth row five sentences long (split into
windows by the tiny model), two empty rows, and a ``year`` column for the filter.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from combinations_reference import Expected, Reference, window_texts
from conftest import REPO, SHARED, run_cli, shared_file

import simsearch
from simsearch.errors import SimsearchError
from simsearch.retrieval.ann import require_usearch

try:  # through simsearch: it loads onnxruntime before usearch (the other order crashes)
    require_usearch()
except SimsearchError:
    pytest.skip("usearch is not installed (pip install -e '.[ann]')", allow_module_level=True)

K = 10
N_ROWS = 600
EMPTY = (7, 311)
WHERE = "year >= 2006"
#: Query documents of ``similar``: a short row, a long (windowed) row, a row the filter drops.
DOCS = (12, 17, 3)
#: Rows whose KorSTS paraphrase (sentence2) is a query text.
QUERY_ROWS = (10, 125, 400)
#: Cosine similarities: stored vectors against the index's own; query vectors are encoded
#: here with sentence-transformers while ``query`` runs the index's ONNX export.
TOL = 1e-5
QUERY_TOL = 1e-4
RECALL = 0.95

KINDS = ("rows", "windows")
#: (index built with --ann, search with --exact)
SEARCHES = {"exact": (False, False), "ann": (True, False), "ann-exact": (True, True)}
MODES = ("hybrid", "dense", "lexical", None)
WHERES = (None, WHERE)


# ------------------------------------------------------------------------------ fixtures
def korsts_dev():
    """``../shared/data/korsts/sts-dev.tsv``, also from a git worktree one level deeper
    (``wt/NAME`` beside the main checkout), else skip."""
    deeper = REPO.parent.parent / "shared" / "data" / "korsts" / "sts-dev.tsv"
    if not (SHARED / "korsts").exists() and deeper.exists():
        return deeper
    return shared_file("korsts", "sts-dev.tsv")


def korsts_corpus() -> tuple[pd.DataFrame, list[str]]:
    """The source table (``id``, ``year``, ``text``) and the query texts."""
    path = korsts_dev()
    pairs = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE).dropna(
        subset=["sentence1", "sentence2"]
    )
    pairs = pairs.drop_duplicates("sentence1").reset_index(drop=True)
    first, second = pairs["sentence1"].tolist(), pairs["sentence2"].tolist()
    texts, queries_of, used = [], {}, 0
    for i in range(N_ROWS):
        take = 5 if i % 6 == 5 else 1
        texts.append(" ".join(first[used : used + take]))
        queries_of[i] = second[used]
        used += take
    for i in EMPTY:
        texts[i] = ""
    frame = pd.DataFrame(
        {
            "id": [f"D{i:04d}" for i in range(N_ROWS)],
            "year": [2000 + (i * 7) % 20 for i in range(N_ROWS)],
            "text": texts,
        }
    )
    return frame, [queries_of[i] for i in QUERY_ROWS]


class Built:
    """The four indexes of one corpus and their references (made on first use)."""

    def __init__(self, root, frame: pd.DataFrame, queries: list[str], model: str):
        self.root, self.frame, self.queries, self.model = root, frame, queries, model
        self._refs: dict[str, Reference] = {}
        self._query_vectors = None
        self._query_terms = None

    @staticmethod
    def name(kind: str, search: str) -> str:
        return f"{kind}-ann" if SEARCHES[search][0] else kind

    def index(self, name: str):
        return simsearch.load_index(self.root, name)

    def reference(self, name: str) -> Reference:
        if name not in self._refs:
            texts = self.frame["text"].tolist()
            self._refs[name] = Reference(self.index(name), texts, self.frame["year"].to_numpy())
        return self._refs[name]

    def query_vectors(self) -> np.ndarray:
        """The query texts encoded here with sentence-transformers, L2-normalised."""
        if self._query_vectors is None:
            from sentence_transformers import SentenceTransformer

            st = SentenceTransformer(self.model, device="cpu")
            self._query_vectors = st.encode(
                self.queries, normalize_embeddings=True, convert_to_numpy=True
            ).astype(np.float32)
        return self._query_vectors

    def query_terms(self) -> list[list[str]]:
        if self._query_terms is None:
            from simsearch.text.kiwi import tokenize

            self._query_terms = tokenize(self.queries)
        return self._query_terms

    def expected_similar(self, name: str, doc: int, mode: str, where: str | None) -> Expected:
        return self.reference(name).similar(doc, mode, where, K)

    def expected_queries(self, name: str, mode: str, where: str | None) -> list[Expected]:
        ref = self.reference(name)
        return [
            ref.query(vector, terms, mode, where, K)
            for vector, terms in zip(self.query_vectors(), self.query_terms())
        ]


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model) -> Built:
    """One spreadsheet, indexed four ways with the tiny model: one vector per row and windows,
    each without and with an ANN index."""
    root = tmp_path_factory.mktemp("combinations")
    frame, queries = korsts_corpus()
    # An .xlsx keeps ``year`` an integer column for the filter (a CSV's columns are text).
    source = root / "corpus.xlsx"
    frame.to_excel(source, index=False)
    for kind in KINDS:
        chunking = "none" if kind == "rows" else "auto"
        simsearch.build_index(
            source, "text", model=tiny_model, root=root / "idx", name=kind, chunking=chunking
        )
        # The ANN twin: a copy of the index built again with --ann, which reuses its cached
        # vectors and terms (the same index a fresh build makes, in a fraction of the time).
        shutil.copytree(root / "idx" / kind, root / "idx" / f"{kind}-ann")
        simsearch.build_index(
            source, "text", model=tiny_model, root=root / "idx", name=f"{kind}-ann",
            chunking=chunking, ann=True,
        )  # fmt: skip
    return Built(root / "idx", frame, queries, tiny_model)


# ------------------------------------------------------------------------------ checking
def cases(op: str):
    """The parameters of one operation's matrix."""
    out = []
    for kind in KINDS:
        for search in SEARCHES:
            for mode in MODES:
                for where in WHERES:
                    ident = f"{kind}-{search}-{mode or 'default'}-{'where' if where else 'all'}"
                    out.append(pytest.param(kind, search, mode, where, id=ident))
    return out


#: The command line's share of the matrix: it is a thin layer over the library, which runs
#: the whole matrix above, so each value of each axis appears here at least once (each case
#: is a subprocess of a few seconds).
CLI_CASES = {
    "rows-exact-dense-where",
    "rows-ann-hybrid-all",
    "rows-ann-exact-default-where",
    "windows-exact-lexical-all",
    "windows-ann-dense-where",
    "windows-ann-hybrid-where",
    "windows-ann-default-all",
}


def cli_cases(op: str):
    """The cases of :data:`CLI_CASES` for one operation."""
    out = [param for param in cases(op) if param.id in CLI_CASES]
    assert len(out) == len(CLI_CASES), "a CLI case names no combination of the matrix"
    return out


def as_float(values) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def check(
    hits: list[dict], expected: Expected, mode: str, approximate: bool, tol: float
) -> tuple[int, int]:
    """Assert one answer against its reference; returns (found, wanted) of the reference's
    rows for recall. ``hits``: dicts with ``row``, ``score``, ``similarity``, ``mode``."""
    rows = np.array([int(h["row"]) for h in hits], dtype=np.int64)
    scores = as_float(h["score"] for h in hits)
    sims = as_float(h["similarity"] for h in hits)
    assert [h["mode"] for h in hits] == [mode] * len(hits)
    assert len(set(rows.tolist())) == len(rows), f"a row twice: {rows}"
    assert np.all(np.isfinite(expected.all_scores[rows])), (
        f"rows outside the candidates (filtered out, empty or the document itself): "
        f"{rows[~np.isfinite(expected.all_scores[rows])]}"
    )
    if mode == "lexical":
        assert np.all(np.isnan(sims)), "lexical results carry no cosine similarity"
    if approximate and mode != "lexical":
        assert np.all(np.diff(scores) <= tol), f"scores not best first: {scores}"
        return len(set(rows.tolist()) & set(expected.rows.tolist())), len(expected.rows)
    assert len(rows) == len(expected.rows), f"{rows} != {expected.rows}"
    for got, want in zip(rows.tolist(), expected.rows.tolist()):
        if got != want:  # only a near-tie may swap places
            gap = abs(expected.all_scores[got] - expected.all_scores[want])
            assert gap <= tol, f"rows {rows.tolist()} != reference {expected.rows.tolist()}"
    np.testing.assert_allclose(scores, expected.scores, atol=tol, rtol=0)
    if mode != "lexical":
        np.testing.assert_allclose(sims, expected.similarity, atol=tol, rtol=0)
    return len(rows), len(rows)


def check_similarities(hits: list[dict], ref: Reference, doc_or_vector, tol: float) -> None:
    """Every returned row's similarity is its exact dense similarity (the ANN rescores)."""
    rows = [int(h["row"]) for h in hits]
    if isinstance(doc_or_vector, int):
        dense = ref.dense_similar(doc_or_vector)
    else:
        dense = ref.dense_query(doc_or_vector)
    got = as_float(h["similarity"] for h in hits)
    np.testing.assert_allclose(got, dense[rows], atol=tol, rtol=0)


def frame_hits(frame: pd.DataFrame) -> list[dict]:
    if frame.empty:
        return []
    columns = ["row", "score", "similarity", "mode"] + (
        ["query"] if "query" in frame.columns else []
    )
    records = frame[columns].to_dict("records")
    for record in records:
        for key in ("score", "similarity"):
            value = record[key]
            record[key] = None if value is None or pd.isna(value) else float(value)
    return records


def by_query(hits: list[dict], queries: list[str]) -> list[list[dict]]:
    return [[h for h in hits if h["query"] == q] for q in queries]


def assert_recall(found: int, wanted: int) -> None:
    assert wanted and found / wanted >= RECALL, f"recall@{K} {found}/{wanted} < {RECALL}"


def verify_similar(built: Built, name, search, mode, where, answers) -> None:
    """``answers``: one list of hits per document of :data:`DOCS`."""
    run = mode or "hybrid"
    approximate = SEARCHES[search] == (True, False)
    found = wanted = 0
    ref = built.reference(name)
    for doc, hits in zip(DOCS, answers):
        expected = built.expected_similar(name, doc, run, where)
        f, w = check(hits, expected, run, approximate, TOL)
        found, wanted = found + f, wanted + w
        if run != "lexical":
            check_similarities(hits, ref, doc, TOL)
    assert_recall(found, wanted)


def verify_queries(built: Built, name, search, mode, where, answers) -> None:
    """``answers``: one list of hits per query text, in order."""
    run = mode or "hybrid"
    approximate = SEARCHES[search] == (True, False)
    found = wanted = 0
    ref = built.reference(name)
    expected = built.expected_queries(name, run, where)
    for hits, exp, vector in zip(answers, expected, built.query_vectors()):
        f, w = check(hits, exp, run, approximate, QUERY_TOL)
        found, wanted = found + f, wanted + w
        if run != "lexical":
            check_similarities(hits, ref, vector, QUERY_TOL)
    assert_recall(found, wanted)


# ------------------------------------------------------------------------ sanity of the fixture
def test_the_fixture_has_windows_empty_rows_and_a_selective_filter(built):
    rows, windows = built.reference("rows"), built.reference("windows")
    assert rows.n_windows == N_ROWS
    split = np.diff(windows.offsets) > 1
    assert 30 <= split.sum() < N_ROWS / 2, "some rows, not most, are split into windows"
    assert windows.n_windows > 4 * K * 10, "enough vectors for the ANN graph to be searched"
    assert not rows.nonempty[list(EMPTY)].any() and rows.nonempty.sum() == N_ROWS - len(EMPTY)
    kept = rows.allowed(WHERE)
    assert 0.5 < kept.mean() < 0.9 and kept[list(EMPTY)].all() and not kept[DOCS[2]]
    assert split[DOCS[1]] and not split[DOCS[0]]
    for name in ("rows-ann", "windows-ann"):
        assert "ann" in built.index(name).meta.files
    for name in KINDS:
        assert "ann" not in built.index(name).meta.files


@pytest.mark.parametrize("name", ["rows", "windows"])
def test_stored_vectors_are_the_models_encoding_of_each_row_or_window(built, name):
    """The reference reads the stored matrix: pin it to the model itself (empty rows are
    zero vectors; a window is its characters of the row's text)."""
    from sentence_transformers import SentenceTransformer

    index = built.index(name)
    texts = built.frame["text"].tolist()
    pieces = window_texts(index, texts) or texts
    st = SentenceTransformer(built.model, device="cpu")
    sample = [i for i, t in enumerate(pieces) if t.strip()][::7]
    vectors = st.encode([pieces[i] for i in sample], normalize_embeddings=True)
    stored = np.asarray(index.embeddings)
    np.testing.assert_allclose(stored[sample], vectors, atol=QUERY_TOL)
    blank = [i for i, t in enumerate(pieces) if not t.strip()]
    assert len(blank) == len(EMPTY) and not stored[blank].any()


# ------------------------------------------------------------------------------ the notebook API
@pytest.mark.parametrize("kind,search,mode,where", cases("similar"))
def test_similar_through_the_library(built, kind, search, mode, where):
    name = built.name(kind, search)
    exact = SEARCHES[search][1]
    answers = [
        frame_hits(
            simsearch.similar(doc, k=K, root=built.root, name=name, mode=mode, where=where,
                              exact=exact)
        )
        for doc in DOCS
    ]  # fmt: skip
    verify_similar(built, name, search, mode, where, answers)


@pytest.mark.parametrize("kind,search,mode,where", cases("query"))
def test_query_through_the_library(built, kind, search, mode, where):
    name = built.name(kind, search)
    exact = SEARCHES[search][1]
    frame = simsearch.query(
        built.queries, k=K, root=built.root, name=name, mode=mode, where=where, exact=exact
    )
    verify_queries(built, name, search, mode, where, by_query(frame_hits(frame), built.queries))


# ------------------------------------------------------------------------------ the command line
def cli_args(built: Built, name: str, search: str, mode: str | None, where: str | None):
    args = ["--k", str(K), "--index", str(built.root), "--name", name, "--format", "json"]
    if mode is not None:
        args += ["--mode", mode]
    if where is not None:
        args += ["--where", where]
    if SEARCHES[search][1]:
        args += ["--exact"]
    return args


def cli_json(result) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("kind,search,mode,where", cli_cases("similar"))
def test_similar_through_the_cli(built, tmp_path, kind, search, mode, where):
    """One document per combination (the long one), the same answer as the reference."""
    name = built.name(kind, search)
    doc = DOCS[1]
    hits = cli_json(
        run_cli("similar", "--doc", str(doc), *cli_args(built, name, search, mode, where),
                cwd=tmp_path)
    )  # fmt: skip
    run = mode or "hybrid"
    approximate = SEARCHES[search] == (True, False)
    found, wanted = check(hits, built.expected_similar(name, doc, run, where), run,
                          approximate, TOL)  # fmt: skip
    assert_recall(found, wanted)


@pytest.mark.slow
@pytest.mark.parametrize("kind,search,mode,where", cli_cases("query"))
def test_query_through_the_cli(built, tmp_path, kind, search, mode, where):
    """All query texts in one run (``--file -``)."""
    name = built.name(kind, search)
    hits = cli_json(
        run_cli("query", "--file", "-", *cli_args(built, name, search, mode, where),
                cwd=tmp_path, stdin="\n".join(built.queries) + "\n")
    )  # fmt: skip
    verify_queries(built, name, search, mode, where, by_query(hits, built.queries))


# ------------------------------------------------------------------------------ serve
def serve_cases():
    out = []
    for kind in KINDS:
        for search in ("exact", "ann"):
            out.append(pytest.param(kind, search, id=f"{kind}-{search}"))
    return out


@pytest.fixture(scope="module")
def clients(built):
    """A TestClient per index (as from 127.0.0.1); serve searches in the default mode."""
    pytest.importorskip("fastapi", reason="the [serve] extra (fastapi, uvicorn) is not installed")
    from fastapi.testclient import TestClient

    from simsearch.workflows.serve import ServeOptions, create_app

    made = {}

    def client(name: str):
        if name not in made:
            app = create_app(built.index(name), ServeOptions(k=K))
            made[name] = TestClient(app, base_url="http://127.0.0.1")
        return made[name]

    return client


@pytest.mark.parametrize("kind,search", serve_cases())
def test_serve_similar_and_query(built, clients, kind, search):
    name = built.name(kind, search)
    client = clients(name)
    answers = []
    for doc in DOCS:
        got = client.get(f"/api/similar/{doc}", params={"k": K})
        assert got.status_code == 200, got.text
        answers.append(got.json())
    verify_similar(built, name, search, None, None, answers)
    answers = []
    for text in built.queries:
        got = client.get("/api/query", params={"q": text, "k": K})
        assert got.status_code == 200, got.text
        answers.append(got.json())
    verify_queries(built, name, search, None, None, answers)

# That an ANN index answers through its graph (over windows, in hybrid) is counted in
# tests/retrieval/test_ann_windows.py.
