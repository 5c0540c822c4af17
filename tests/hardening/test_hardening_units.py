"""Unit tests of the hardening building blocks: _fs.safe, store.layout, long_texts,
model_fingerprint."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time

import numpy as np
import pytest

from simsearch._fs import safe as safe_files
from simsearch.encoding import model_files as model_fingerprint
from simsearch.encoding import truncation as long_texts
from simsearch.errors import SimsearchError
from simsearch.store import layout

GEN = "20261122034648-ac3fbb"


# ------------------------------------------------------------------- safe_files


def test_open_regular_refuses_a_fifo_at_once(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    started = time.monotonic()
    with pytest.raises(SimsearchError, match="FIFO"):
        safe_files.open_regular(tmp_path / "pipe")
    assert time.monotonic() - started < 1


def test_open_regular_refuses_symlinks_devices_directories_and_outsiders(tmp_path):
    inside, outside = tmp_path / "index", tmp_path / "outside.jsonl"
    inside.mkdir()
    outside.write_text("x\n")
    (inside / "link").symlink_to(outside)
    with pytest.raises(SimsearchError, match="symbolic link"):
        safe_files.open_regular(inside / "link")
    with pytest.raises(SimsearchError, match="device"):
        safe_files.open_regular(safe_files.Path("/dev/zero"))
    with pytest.raises(SimsearchError, match="directory"):
        safe_files.open_regular(tmp_path / "index")
    with pytest.raises(SimsearchError, match="outside"):
        safe_files.open_regular(inside / ".." / "outside.jsonl", within=inside)
    with safe_files.open_regular(outside) as handle:
        assert handle.read() == b"x\n"


def test_read_bounded_stops_at_the_limit(tmp_path):
    (tmp_path / "big").write_bytes(b"a" * 1000)
    assert safe_files.read_bounded(tmp_path / "big", None, 1000) == b"a" * 1000
    with pytest.raises(SimsearchError, match="larger"):
        safe_files.read_bounded(tmp_path / "big", None, 999)


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "../x.jsonl", f"rows-{GEN}.jsonl/../../x", "meta.json", 12, None, "", "a/b"],
)
def test_member_refuses_names_simsearch_does_not_write(tmp_path, name):
    with pytest.raises(SimsearchError, match="damaged"):
        layout.member(tmp_path, name)


def test_member_accepts_generation_names(tmp_path):
    assert layout.member(tmp_path, f"rows-{GEN}.jsonl") == tmp_path / f"rows-{GEN}.jsonl"


def test_claim_marks_new_and_empty_directories_and_refuses_foreign_ones(tmp_path):
    layout.claim_index_dir(tmp_path / "new" / "default")
    assert layout.is_marked(tmp_path / "new" / "default")
    (tmp_path / "empty").mkdir()
    layout.claim_index_dir(tmp_path / "empty")
    assert layout.is_marked(tmp_path / "empty")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / f"embeddings-{GEN}.npy").write_bytes(b"user data")
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(SimsearchError, match="not a simsearch index"):
        layout.claim_index_dir(tmp_path / "mine")
    assert sorted(os.listdir(tmp_path / "mine")) == [f"embeddings-{GEN}.npy", "notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(SimsearchError, match="is a file"):
        layout.claim_index_dir(tmp_path / "file")


def test_claim_adopts_an_index_of_an_older_version(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "meta.json").write_text('{"format_version": 1, "files": {}}')
    (old / f"rows-{GEN}.jsonl").write_text("{}\n")
    layout.claim_index_dir(old)
    assert layout.is_marked(old)


def test_lock_refuses_a_symlink_and_leaves_no_file(tmp_path):
    (tmp_path / ".lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SimsearchError, match="symbolic link"), safe_files.index_lock(tmp_path):
        pass
    assert not (tmp_path / "elsewhere").exists()
    (tmp_path / ".lock").unlink()
    with safe_files.index_lock(tmp_path):
        assert (tmp_path / ".lock").exists()
    assert not (tmp_path / ".lock").exists()


def test_lock_serialises_and_survives_removal_of_the_file(tmp_path):
    order: list[str] = []
    holding = threading.Event()

    def second() -> None:
        holding.wait()
        with safe_files.index_lock(tmp_path, on_wait=lambda: order.append("waited")):
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with safe_files.index_lock(tmp_path):
        holding.set()
        time.sleep(0.3)
        order.append("first")
    thread.join(10)
    assert order == ["waited", "first", "second"]
    assert not (tmp_path / ".lock").exists()


def test_umask_mode_follows_the_umask():
    old = os.umask(0o027)
    try:
        assert safe_files.umask_mode() == 0o640
        assert safe_files.umask_mode(executable=True) == 0o750
    finally:
        os.umask(old)


def test_check_free_space_refuses_what_does_not_fit(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    safe_files.check_free_space(tmp_path, 1000, "a test")
    with pytest.raises(SimsearchError, match="not enough space for a test"):
        safe_files.check_free_space(tmp_path, free * 2, "a test")


def test_os_error_words(tmp_path):
    import errno

    for code, words in [
        (errno.ENOSPC, "no space left"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission denied"),
        (errno.ENAMETOOLONG, "too long"),
    ]:
        message = str(safe_files.os_error(OSError(code, os.strerror(code), "f"), "writing x"))
        assert words in message and "\n" not in message


# ------------------------------------------------------------------- long_texts


def test_cut_long_texts_keeps_the_first_tokens_and_the_embedding(tiny_model):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(tiny_model, device="cpu")
    limit = st.max_seq_length
    count = long_texts.hf_counter(st.tokenizer)
    long = "배터리 음극재 실리콘 " * 3000
    texts = ["짧은 문장", long, "battery " * 40]
    cut, truncated = long_texts.cut_long_texts(texts, count, limit)
    assert truncated == sum(1 for t in texts if count(t) > limit) == 2
    assert cut[0] == texts[0] and len(cut[1]) < 10_000
    full = st.encode(texts, normalize_embeddings=True)
    short = st.encode(cut, normalize_embeddings=True)
    np.testing.assert_allclose(full, short, atol=1e-6)


def test_cut_long_text_tokenizes_a_bounded_amount():
    seen: list[int] = []

    def count(text: str) -> int:
        seen.append(len(text))
        return len(text.split())

    text = "word " * 1_000_000
    cut, truncated = long_texts.cut_long_text(text, count, 128)
    assert truncated and len(cut.split()) > 128
    assert max(seen) < 10_000


# ------------------------------------------------------------ model_fingerprint


def test_fingerprint_notices_new_weights_but_not_a_touch(tmp_path, tiny_model):
    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    recorded = model_fingerprint.fingerprint(str(model))
    assert recorded and not model_fingerprint.changed(str(model), recorded)
    weights = model / "model.safetensors"
    os.utime(weights, ns=(1, 1))  # touched, same bytes
    assert not model_fingerprint.changed(str(model), recorded)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert model_fingerprint.changed(str(model), recorded)
    assert model_fingerprint.fingerprint("jhgan/ko-sroberta-multitask") is None
    assert stat.S_ISREG(weights.stat().st_mode)


# -------------------------------------------------------------------- delimited


def test_check_rows_counts_records_and_names_the_ragged_line():
    from simsearch.tables import delimited

    assert delimited.check_rows('a,b\n1,"x\ny"\n2,z\n', ",", "f.csv") == 2
    assert delimited.check_rows('a\tb\n1\t"x\n2\ty"\n', "\t", "f.tsv") == 2
    with pytest.raises(SimsearchError, match="line 3 of f.csv has 3 fields"):
        delimited.check_rows("a,b\n1,2\n3,4,5\n", ",", "f.csv")
    with pytest.raises(SimsearchError, match="line 4 of f.tsv has 1 fields"):
        delimited.check_rows("a\tb\n1\t2\n\n3\n", "\t", "f.tsv")


# ---------------------------------------------------------------- generations


def test_clean_deletes_only_what_the_records_list(tmp_path):
    from simsearch.store import generations

    old, current, failed = GEN, "20261122050000-aaaaaa", "20261122060000-bbbbbb"
    for gen in (old, current, failed):
        (tmp_path / f"rows-{gen}.jsonl").write_text("{}\n")
    (tmp_path / "rows-mine.jsonl").write_text("user\n")
    (tmp_path / f".rows-{failed}.jsonl.abc123.tmp").write_text("partial")
    (tmp_path / ".draft.tmp").write_text("user\n")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "pending.npy").write_bytes(b"x")
    journal = {"generation": failed, "retire": [f"rows-{old}.jsonl", "../outside"]}
    (tmp_path / "work" / "job.json").write_text(json.dumps(journal))
    generations.clean(tmp_path, keep={f"rows-{current}.jsonl"})
    assert sorted(os.listdir(tmp_path)) == [
        ".draft.tmp",
        f"rows-{current}.jsonl",
        "rows-mine.jsonl",
    ]


def test_clean_keeps_a_work_directory_holding_user_files(tmp_path):
    from simsearch.store import generations

    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("mine")
    (tmp_path / "work" / "pending.npy").write_bytes(b"x")
    generations.clean(tmp_path, keep=set())
    assert os.listdir(tmp_path / "work") == ["notes.txt"]


# ------------------------------------------------------------- embeddings_file


def test_open_embeddings_refuses_what_cannot_be_embeddings(tmp_path):
    from simsearch.build.embeddings_file import open_embeddings

    np.save(tmp_path / "ok.npy", np.eye(3, 4, dtype=np.float32))
    assert open_embeddings(tmp_path / "ok.npy", 3).shape == (3, 4)
    np.save(tmp_path / "zero.npy", np.zeros((3, 4), np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((3, 0), np.float32))
    np.savez(tmp_path / "x.npz", a=np.eye(3))
    os.mkfifo(tmp_path / "pipe.npy")
    for name, words in [
        ("zero.npy", "every row"),
        ("empty.npy", "at least 1 column"),
        ("x.npz", ".npz archive"),
        ("pipe.npy", "FIFO"),
        ("none.npy", "not found"),
    ]:
        with pytest.raises(SimsearchError, match=words):
            open_embeddings(tmp_path / name, 3)
