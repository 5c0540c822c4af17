"""Property-based and Unicode robustness, several indexes, and the write lock."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import threading
import time

import pandas as pd
import pytest
from conftest import cli_command, cli_env, run_cli
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from simsearch.build import build_index
from simsearch.errors import SimsearchError
from simsearch.store import index as store
from simsearch.store.meta import META
from simsearch.tables.read import read_corpus

pytestmark = pytest.mark.slow

cells = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
names = st.text(alphabet="abcxyz가나", min_size=1, max_size=4)


@st.composite
def csv_and_column(draw):
    """Random bytes with a .csv name, or a well-formed CSV of random cells; a column
    name that is usually one of the header's; and whether the case must index."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=200)), draw(names), False
    header = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    rows = draw(st.lists(st.lists(cells, min_size=len(header), max_size=len(header)), max_size=8))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    column = draw(st.one_of(st.sampled_from(header), names))
    # A well-formed CSV whose column exists and holds some text must be indexed.
    valid = column in header and any(row[header.index(column)].strip() for row in rows)
    return buffer.getvalue().encode("utf-8"), column, valid


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=csv_and_column(), k=st.integers(-2, 12), doc=st.integers(-2, 12))
def test_random_csv_never_crashes_and_indexes_one_row_per_source_row(
    tmp_path_factory, tiny_model, case, k, doc
):
    content, column, valid = case
    root = tmp_path_factory.mktemp("prop")
    source = root / "random.csv"
    source.write_bytes(content)
    try:
        corpus = read_corpus(source, column)
        report = build_index(source, column, model=tiny_model, root=root / "idx")
    except SimsearchError as exc:
        assert "\n" not in str(exc)
        # Refusing is right only for input that cannot be indexed.
        assert not valid, f"a valid CSV was refused: {exc}"
        event("refused")
        return
    # pandas is the oracle for the row count, reading the encoding simsearch detected
    # (random bytes may be valid cp949 text now, read as such).
    encoding = corpus.notes.encoding or "utf-8-sig"
    try:
        oracle = pd.read_csv(source, dtype=str, keep_default_na=False, encoding=encoding)
    except Exception:  # bytes pandas cannot parse as a table: no oracle, only consistency
        oracle = corpus.frame
    expected_rows = len(oracle) if corpus.notes.header_row == 1 else len(corpus.frame)
    assert report.meta.n_docs == len(corpus.texts) == expected_rows
    event("indexed")
    index = store.load_index(root / "idx")
    assert index.embeddings.shape[0] == expected_rows
    assert index.texts == corpus.texts
    from simsearch.search import similar_hits

    try:
        hits = similar_hits(index, doc, k)
    except SimsearchError as exc:
        assert not (0 <= doc < expected_rows and k >= 1), exc
        return
    # Empty documents never rank: the candidates are the other non-empty documents.
    candidates = sum(1 for i, t in enumerate(corpus.texts) if t.strip() and i != doc)
    assert len(hits) == min(k, candidates)
    assert all(corpus.texts[h.row].strip() for h in hits)


ODD_TEXTS = [
    "한국어 특허 초록 배터리 음극재",
    "emoji 🔋⚡️ 👩‍🔬 battery",
    "עברית מימין לשמאל and العربية",
    "control \x07 bell \x1b[31m escape",
    "nul \x00 inside",
    "tab\tand\nnewline",
    '[bold]not markup[/bold] \\ backslash "quotes"',
    "combining e\u0301 and zero\u200bwidth",
]


def test_any_unicode_round_trips_into_json_and_csv(tmp_path, tiny_model):
    source = tmp_path / "odd.jsonl"
    with open(source, "w", encoding="utf-8") as handle:
        for i, text in enumerate(ODD_TEXTS):
            handle.write(json.dumps({"id": i, "text": text}) + "\n")
    built = run_cli("index", "odd.jsonl", "-c", "text", "-m", tiny_model, "-q", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    n = str(len(ODD_TEXTS))
    out = run_cli(
        "similar",
        "--doc",
        "0",
        "--k",
        n,
        "--include-self",
        "-f",
        "json",
        "--show",
        "id",
        cwd=tmp_path,
    )
    hits = json.loads(out.stdout)
    assert {h["text"] for h in hits} == set(ODD_TEXTS)
    assert all(ODD_TEXTS[h["columns"]["id"]] == h["text"] for h in hits)
    rows = run_cli("similar", "--doc", "4", "--k", n, "--include-self", "-f", "csv", cwd=tmp_path)
    parsed = list(csv.DictReader(io.StringIO(rows.stdout, newline="")))
    assert {r["text"] for r in parsed} == set(ODD_TEXTS)
    table = run_cli("query", "[bold]not markup[/bold]", "--k", n, cwd=tmp_path)
    assert table.returncode == 0 and "[bold]not markup[/bold]" in table.stdout


def test_named_indexes_list_info_and_stale(tmp_path, tiny_model):
    source = tmp_path / "docs.csv"
    pd.DataFrame(
        {"abstract": ["배터리 음극재", "반도체 식각"], "claims": ["청구항 1", "청구항 2"]}
    ).to_csv(source, index=False)
    build_index(source, "abstract", model=tiny_model, root=tmp_path / ".simsearch")
    build_index(source, "claims", model=tiny_model, root=tmp_path / ".simsearch", name="claims")
    listing = run_cli("list", cwd=tmp_path)
    assert listing.returncode == 0
    assert "default" in listing.stdout and "claims" in listing.stdout
    assert listing.stdout.count("up to date") == 2
    info = run_cli("info", "--name", "claims", "--verify", "-f", "json", cwd=tmp_path)
    detail = json.loads(info.stdout)
    assert detail["column"] == "claims" and detail["rows"] == 2 and detail["stale"] is None
    time.sleep(0.01)
    source.write_text(source.read_text() + "식품 발효,청구항 3\n")
    stale = run_cli("similar", "--doc", "0", "--name", "claims", cwd=tmp_path)
    assert stale.returncode == 0 and "changed after the index was built" in stale.stderr
    assert "stale" in run_cli("list", cwd=tmp_path).stdout


def test_second_index_run_waits_for_the_lock(tmp_path, tiny_model):
    source = tmp_path / "docs.csv"
    pd.DataFrame({"text": ["하나", "둘", "셋"]}).to_csv(source, index=False)
    path = store.index_dir(tmp_path / ".simsearch")
    lines: list[str] = []
    with store.write_lock(path):
        process = subprocess.Popen(
            [*cli_command(), "index", "docs.csv", "-c", "text", "-m", tiny_model, "-q"],
            cwd=tmp_path,
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
        reader.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("waiting" in line for line in lines):
            assert process.poll() is None, lines
            time.sleep(0.1)
        assert any("waiting for another 'simsearch index' run" in line for line in lines)
        time.sleep(0.5)
        assert process.poll() is None and not (path / META).exists()
    assert process.wait(timeout=120) == 0, lines
    reader.join(timeout=10)
    assert (path / META).exists()
