"""Which encoding detector names Korean text files right: simsearch's ordered fallback
(simsearch.tables.charsets.detect_encoding) against charset-normalizer alone.

Samples: the first sentences of KorSTS dev (../shared/data), written as CSV files of
1, 3, 10 and 100 lines in UTF-8, UTF-8 with BOM, cp949, EUC-KR and UTF-16 (Excel's
"Unicode text"), from 30 different starting points. A guess is right when decoding the
bytes with it gives back the original text.

    python scripts/bench_charsets.py [--data ../shared/data/korsts/sts-dev.tsv]
"""

from __future__ import annotations

import argparse
import codecs
import csv
from collections import Counter
from pathlib import Path

from simsearch.tables.charsets import detect_encoding

ENCODINGS = ("utf-8", "utf-8-sig", "cp949", "euc-kr", "utf-16")


def sentences(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [r["sentence1"] for r in rows if r.get("sentence1")]


def encode(text: str, name: str) -> bytes:
    if name == "utf-16":
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    return text.encode(name)


def normalizer(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    return None if best is None else best.encoding


def right(data: bytes, guess: str | None, text: str) -> bool:
    if guess is None:
        return False
    try:
        return data.decode(guess).lstrip("\ufeff") == text
    except (UnicodeDecodeError, LookupError):
        return False


def measure(pool: list[str]) -> tuple[Counter, Counter, Counter]:
    """Right guesses and totals per (method, encoding, lines), wrong guesses by kind."""
    score: Counter = Counter()
    total: Counter = Counter()
    wrong: Counter = Counter()
    methods = (("ordered", detect_encoding), ("normalizer", normalizer))
    for start in range(0, 30 * 37, 37):
        for lines in (1, 3, 10, 100):
            rows = [f"{i},{s}" for i, s in enumerate(pool[start : start + lines])]
            text = "\r\n".join(["번호,문장", *rows])
            for name in ENCODINGS:
                try:
                    data = encode(text, name)
                except UnicodeEncodeError:  # a character outside EUC-KR
                    continue
                for method, guess_fn in methods:
                    guess = guess_fn(data)
                    total[(method, name, lines)] += 1
                    if right(data, guess, text):
                        score[(method, name, lines)] += 1
                    else:
                        wrong[(method, name, guess)] += 1
    return score, total, wrong


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/korsts/sts-dev.tsv")
    args = parser.parse_args()
    score, total, wrong = measure(sentences(Path(args.data)))
    print(f"{'encoding':10} {'lines':>5} {'ordered':>9} {'normalizer':>11}")
    for name in ENCODINGS:
        for lines in (1, 3, 10, 100):
            o, n = ("ordered", name, lines), ("normalizer", name, lines)
            if total[o]:
                ordered, plain = f"{score[o]}/{total[o]}", f"{score[n]}/{total[n]}"
                print(f"{name:10} {lines:5d} {ordered:>9} {plain:>11}")
    print("misnamed (method, true, guess): count")
    for key, count in wrong.most_common(12):
        print(" ", key, count)


if __name__ == "__main__":
    main()
