"""Korean text analysis with Kiwi (kiwipiepy): morphemes as index terms and their spans.

Korean attaches particles and endings to words (``전지는``, ``전지를``, ``전지의``), so
whitespace tokens barely match between a query and a document. Kiwi
(:class:`kiwipiepy.Kiwi`) splits each eojeol into morphemes; we keep the content-bearing
ones as terms:

* nouns (``NNG``, ``NNP``), pronouns (``NP``), numerals (``NR``), roots (``XR``) and
  hanja (``SH``);
* verb and adjective stems (``VV``, ``VA``), auxiliary verbs (``VX``: ``않다``,
  ``있다``) and the negative copula (``VCN``: ``아니다``), written with ``다`` (``관하``
  becomes ``관하다``) so the matched terms read as words; ``포함하다`` is the noun
  ``포함`` plus a derivational suffix and gives ``포함``;
* adverbs (``MAG``: ``안``, ``못``, ``매우``) and determiners (``MM``: ``두``, ``모든``);
* foreign words (``SL``, lower-cased) and numbers (``SN``).

Particles, endings, suffixes, bound nouns (``것``, ``수``) and punctuation are dropped.
Negation, quantity and pronouns carry meaning a paraphrase keeps: adding ``MAG``, ``MM``,
``VX``, ``VCN`` and ``NP`` to the nouns and stems raised BM25's MRR@10 by 2-3 points on
each task of ``scripts/retrieval_bench.py``, while keeping every morpheme (particles and
endings too, as a plain ``bm25s`` over Kiwi does) lost up to 3 points on the KorNLI task
(docs/retrieval.md). BM25's ``k1``/``b`` moved the scores by less than a point.

Kiwi costs 1.3-1.8 s to start on 2 cores, more than a whole cold dense ``query``
(``scripts/bench.py --only kiwi``), so it is imported lazily, configured without the typo
and multi-word dictionaries (which make the start-up 2.5-3 times as long), and created
once per process (:func:`get_kiwi`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from functools import lru_cache

#: Kiwi part-of-speech tags kept as index terms (Sejong tag set, as Kiwi names them).
KEEP_TAGS = frozenset({
    "NNG", "NNP", "NP", "NR", "XR", "SH", "SL", "SN", "VV", "VA", "VX", "VCN", "MAG", "MM",
})
STEM_TAGS = frozenset({"VV", "VA", "VX", "VCN"})
#: Bumped whenever the terms of a text change (the tag set above): cached terms of an
#: older version are analysed again (:func:`simsearch.retrieval.bm25.text_key`).
TERMS_VERSION = 2


#: Held while the process's Kiwi is made, so a caller waits for the one that
#: :func:`start_kiwi` is making instead of making a second one.
_MAKING = threading.Lock()


def get_kiwi(num_workers: int = 1):
    """The process's :class:`kiwipiepy.Kiwi` (created on first use, about 0.7 s, plus
    about 0.8-1.1 s of lazy set-up on its first analysis, both holding the GIL; see
    :func:`start_kiwi`).

    The typo and multi-word dictionaries are off: they triple the start-up and the index
    and the query must use the same analyser anyway. The default dictionary (proper
    nouns) stays on: without it the analysis differs (on 359 of the 13,105 KorSTS
    sentences, in the terms of 180: ``트램폴린``, ``산탄총``...), so an index built with it
    would be queried with other terms.
    """
    with _MAKING:
        return _make_kiwi(num_workers)


@lru_cache(maxsize=1)
def _make_kiwi(num_workers: int):
    from kiwipiepy import Kiwi

    kiwi = Kiwi(num_workers=num_workers, load_typo_dict=False, load_multi_dict=False)
    kiwi.tokenize("")  # completes Kiwi's lazy set-up here, under the lock
    return kiwi


def start_kiwi() -> None:
    """Make the process's Kiwi (:func:`get_kiwi`) and run its lazy set-up in a background
    thread now; a later :func:`get_kiwi` or :func:`tokenize` waits for it. The analysis
    is the same Kiwi's: results unchanged.

    For a process that then waits (a server before its first request). Kiwi's
    constructor and its first analysis hold the GIL throughout (1.3-1.8 s on 2 cores), so
    beside Python work (imports, loading a model) the thread only takes turns with it:
    a cold CLI ``query`` was no faster with it (``scripts/bench.py --only kiwi``).
    """

    def work() -> None:
        # A failure here (no kiwipiepy...) is reported by the caller's own call.
        with contextlib.suppress(Exception):
            get_kiwi()

    threading.Thread(target=work, name="kiwi-start", daemon=True).start()


def _term(form: str, tag: str) -> str | None:
    tag = tag.split("-")[0]  # Kiwi marks irregular stems as VV-R / VV-I
    if tag not in KEEP_TAGS:
        return None
    if tag in STEM_TAGS:
        return form + "다"
    if tag == "SL":
        return form.lower()
    return form


def terms_of(tokens) -> list[str]:
    """Index terms of one analysed text (a list of :class:`kiwipiepy.Token`)."""
    out = []
    for token in tokens:
        term = _term(token.form, token.tag)
        if term is not None:
            out.append(term)
    return out


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Index terms of each text (see the module docstring for which morphemes count).

    Args:
        texts: ``n`` strings (``""`` gives ``[]``).

    Returns:
        ``n`` lists of terms, in text order, duplicates kept (BM25 counts them).
    """
    kiwi = get_kiwi()
    out: list[list[str]] = [[] for _ in texts]
    todo = [i for i, t in enumerate(texts) if t and t.strip()]
    for i, tokens in zip(todo, kiwi.tokenize([texts[i] for i in todo])):
        out[i] = terms_of(tokens)
    return out


def term_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int, str]]:
    """Character spans ``(start, end, term)`` in ``text`` of the morphemes whose term is in
    ``terms`` (for highlighting why a document matched)."""
    wanted = set(terms)
    spans = []
    if not wanted or not text.strip():
        return spans
    for token in get_kiwi().tokenize(text):
        term = _term(token.form, token.tag)
        if term in wanted:
            spans.append((token.start, token.start + token.len, term))
    return spans


def surface_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int, str]]:
    """Character spans ``(start, end, term)`` where a term's surface form occurs in
    ``text`` (a stem without its ``다``; foreign words case-insensitively), without Kiwi.

    Faster than :func:`term_spans` (no analyser start-up, so ``similar`` stays fast) and
    close to it: a Korean content morpheme is written as is inside its eojeol; a surface
    form may also match inside a longer word (``전지`` in ``전지용``), which is the same
    morpheme there more often than not. A stem fused with its ending into one syllable
    (``높인다`` = ``높이`` + ``ㄴ다``) is not found. Overlapping matches keep the longest.
    """
    lowered = text.lower()
    found = []
    for term in set(terms):
        form = term[:-1] if term.endswith("다") and len(term) > 1 else term
        if not form:
            continue
        at = lowered.find(form.lower())
        while at >= 0:
            found.append((at, at + len(form), term))
            at = lowered.find(form.lower(), at + len(form))
    found.sort(key=lambda span: (span[0], -(span[1] - span[0])))
    spans, end = [], -1
    for span in found:
        if span[0] >= end:
            spans.append(span)
            end = span[1]
    return spans
