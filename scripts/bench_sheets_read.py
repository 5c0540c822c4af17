"""Reading a workbook the way simsearch does now (openpyxl full mode: merged ranges,
header row detection; simsearch.tables.sheets.read_workbook) against pandas.read_excel (the
reader before issue 10), same file, same run.

    PYTHONPATH=src python scripts/bench_sheets_read.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from simsearch.tables import sheets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    n = args.rows
    frame = pd.DataFrame(
        {
            "번호": range(n),
            "제목": [f"제목 {i} 리튬 이차전지" for i in range(n)],
            "초록": ["본 발명은 리튬 이차전지용 실리콘 음극재에 관한 것으로 " * 5] * n,
        }
    )
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "big.xlsx"
        frame.to_excel(path, index=False)
        for _ in range(2):
            start = time.perf_counter()
            pd.read_excel(path, dtype=object)
            before = time.perf_counter() - start
            start = time.perf_counter()
            sheets.read_workbook(path, columns=["초록"])
            now = time.perf_counter() - start
            print(f"{n:,} rows: pandas.read_excel {before:.2f} s, "
                  f"sheets.read_workbook {now:.2f} s ({now / before:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
