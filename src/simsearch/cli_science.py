"""CLI commands ``eval``, ``inspect`` and ``train``; the main app calls :func:`register`.

Heavy libraries are imported inside the commands, so ``simsearch --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from simsearch.commands import handle_errors
from simsearch.errors import SimsearchError

DEFAULT_PLOT = "simsearch-inspect.png"


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise SimsearchError(f"--format {fmt!r} is not supported: use table or json.")


def _print_table(title: str, columns: list[str], rows: list[list[Any]], digits: int = 2) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[f"{v + 0.0:.{digits}f}" if isinstance(v, float) else str(v) for v in row])
    Console(width=160).print(table)


# ----------------------------------------------------------------------------- eval
def eval_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="Scored pairs (KorSTS tsv, csv, xlsx) or, with --index, (query, relevant) rows."
        ),
    ],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Model to score; repeat for several. With --index: overrides the index's model.",
        ),
    ] = None,
    index: Annotated[
        Path | None, typer.Option(help="Retrieval mode: evaluate against this index directory.")
    ] = None,
    text1: Annotated[str, typer.Option(help="First text column.")] = "sentence1",
    text2: Annotated[str, typer.Option(help="Second text column.")] = "sentence2",
    score: Annotated[str, typer.Option(help="Gold score column.")] = "score",
    query_column: Annotated[str, typer.Option(help="Retrieval: query column.")] = "query",
    relevant_column: Annotated[
        str, typer.Option(help="Retrieval: relevant document row (0-based) or exact text.")
    ] = "relevant",
    whiten: Annotated[
        bool,
        typer.Option(help="BERT-whitening fitted on the eval sentences (or on --whiten-corpus)."),
    ] = False,
    whiten_corpus: Annotated[
        Path | None, typer.Option(help="Fit the whitening on this file's texts instead.")
    ] = None,
    whiten_dim: Annotated[int | None, typer.Option(help="Keep D whitened dimensions.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N pairs.")] = None,
    batch_size: Annotated[int, typer.Option(help="Encoding batch size.")] = 64,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Score models on labeled pairs: Spearman/Pearson x100 of cosine vs gold, or
    recall@1/5/10, MRR@10, nDCG@10 against an index."""
    _check_format(fmt)
    if index is not None:
        _eval_retrieval(file, index, model, query_column, relevant_column, batch_size, fmt)
        return
    from simsearch.evaluation import evaluate_sts
    from simsearch.labeled import read_sts_pairs

    if not model:
        raise SimsearchError("Name at least one model: --model DIR_OR_HUB_ID (repeatable).")
    if whiten_dim is not None and not (whiten or whiten_corpus):
        raise SimsearchError("--whiten-dim needs --whiten (or --whiten-corpus FILE).")
    pairs = read_sts_pairs(file, text1, text2, score)
    whiten_arg: bool | Path = whiten_corpus if whiten_corpus else whiten
    results = evaluate_sts(model, pairs, batch_size, whiten_arg, whiten_dim, limit)
    if fmt == "json":
        typer.echo(json.dumps(results.to_dict(orient="records"), indent=2))
        return
    _print_table(f"STS on {file.name}", list(results.columns), results.values.tolist())


def _eval_retrieval(
    file: Path,
    index_path: Path,
    model: list[str] | None,
    query_column: str,
    relevant_column: str,
    batch_size: int,
    fmt: str,
) -> None:
    from simsearch._compat import index_whitening, open_index
    from simsearch.evaluation import evaluate_retrieval, read_retrieval_pairs

    index = open_index(index_path)
    if model and len(model) > 1:
        raise SimsearchError(
            "Retrieval evaluation uses one model (the index's); drop extra --model."
        )
    model_name = model[0] if model else index.meta["model"]
    queries, relevant = read_retrieval_pairs(file, index.texts, query_column, relevant_column)
    metrics = evaluate_retrieval(
        model_name, queries, relevant, index.embeddings, index_whitening(index), batch_size
    )
    record = {"model": model_name} | metrics
    if fmt == "json":
        typer.echo(json.dumps(record, indent=2))
        return
    _print_table(f"Retrieval on {file.name}", list(record), [list(record.values())])


# -------------------------------------------------------------------------- inspect
def inspect_command(
    index: Annotated[
        list[Path] | None, typer.Option(help="Index directory to diagnose; repeat to overlay two.")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Model to diagnose over --texts; repeatable."),
    ] = None,
    texts: Annotated[
        Path | None, typer.Option(help="Text file (csv/tsv/xlsx) for --model.")
    ] = None,
    column: Annotated[list[str] | None, typer.Option(help="Text column(s) of --texts.")] = None,
    sample: Annotated[int, typer.Option(help="Texts/documents sampled (seeded).")] = 2000,
    pairs: Annotated[
        Path | None,
        typer.Option(
            help="Scored pairs (KorSTS format) for "
            "alignment: pairs scoring >= --positive-score are positives."
        ),
    ] = None,
    positive_score: Annotated[float, typer.Option(help="Gold score of a positive pair.")] = 4.0,
    whiten: Annotated[
        bool, typer.Option(help="Also diagnose each set after BERT-whitening.")
    ] = False,
    plot: Annotated[Path, typer.Option(help="PNG file for the spectrum plot.")] = Path(
        DEFAULT_PLOT
    ),
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Anisotropy diagnostics: mean random-pair cosine, singular value spectrum (PNG),
    alignment and uniformity (Wang & Isola 2020)."""
    from simsearch.science_inspect import inspect_sources

    _check_format(fmt)
    diagnostics, plot_path = inspect_sources(
        indexes=index or [],
        models=model or [],
        texts=texts,
        columns=column,
        sample=sample,
        pairs=pairs,
        positive_score=positive_score,
        whiten=whiten,
        plot=plot,
        seed=seed,
    )
    records = [d.as_dict() for d in diagnostics]
    if fmt == "json":
        typer.echo(json.dumps({"plot": str(plot_path), "results": records}, indent=2))
        return
    columns = [
        "name",
        "n",
        "dim",
        "mean_cosine",
        "top1_share",
        "dims_for_90pct",
        "alignment",
        "uniformity",
    ]
    rows = [[r[c] if r[c] is not None else "-" for c in columns] for r in records]
    _print_table("Anisotropy", columns, rows, digits=3)
    typer.echo(f"spectrum plot: {plot_path}")
    typer.echo(
        "mean_cosine near 0 and a flat spectrum = isotropic; lower alignment and "
        "uniformity are better."
    )


# ---------------------------------------------------------------------------- train
def train_command(
    method: Annotated[str, typer.Option(help="simcse, nli, sts or triplet.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the model.")],
    data: Annotated[list[Path] | None, typer.Option(help="Training file; repeatable.")] = None,
    index: Annotated[Path | None, typer.Option(help="simcse: train on this index's texts.")] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Base model (default: the core's default model)."),
    ] = None,
    column: Annotated[list[str] | None, typer.Option(help="simcse/triplet text column(s).")] = None,
    label_column: Annotated[str, typer.Option(help="triplet: class column.")] = "label",
    text1: Annotated[str, typer.Option(help="sts: first text column.")] = "sentence1",
    text2: Annotated[str, typer.Option(help="sts: second text column.")] = "sentence2",
    score: Annotated[str, typer.Option(help="sts: score column.")] = "score",
    anchor: Annotated[str, typer.Option(help="nli: premise/anchor column.")] = "sentence1",
    positive: Annotated[str, typer.Option(help="nli: hypothesis/positive column.")] = "sentence2",
    negative: Annotated[
        str | None,
        typer.Option(
            help="nli: negative column of a generic 3-column file (NLI files use gold_label)."
        ),
    ] = None,
    dev: Annotated[
        Path | None, typer.Option(help="Scored pairs (KorSTS format) evaluated before and after.")
    ] = None,
    epochs: Annotated[float, typer.Option(help="Training epochs.")] = 1.0,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default per method).")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default per method).")] = None,
    max_seq_length: Annotated[int, typer.Option(help="Tokens kept per text.")] = 128,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N steps.")] = None,
    max_texts: Annotated[int | None, typer.Option(help="simcse: sample at most N texts.")] = None,
    sts_loss: Annotated[str, typer.Option(help="sts: cosent or cosine.")] = "cosent",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Fine-tune a model (SimCSE, NLI triplets, scored pairs or labeled texts) and save a
    directory usable with --model."""
    from simsearch.science_train import train_from_files

    _check_format(fmt)
    result = train_from_files(
        method=method,
        output=output,
        data=data or [],
        index=index,
        model=model,
        columns=column,
        label_column=label_column,
        text1=text1,
        text2=text2,
        score=score,
        anchor=anchor,
        positive=positive,
        negative=negative,
        dev=dev,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        max_seq_length=max_seq_length,
        max_steps=max_steps,
        max_texts=max_texts,
        sts_loss=sts_loss,
        seed=seed,
        show_progress=fmt == "table",
    )
    from dataclasses import asdict

    if fmt == "json":
        typer.echo(json.dumps(asdict(result), indent=2))
        return
    typer.echo(
        f"saved {result.output_dir} ({result.method}, {result.examples} examples, "
        f"{result.steps} steps, {result.train_seconds:.0f} s)"
    )
    if result.dev_after is not None:
        typer.echo(f"dev Spearman x100: {result.dev_before:.2f} -> {result.dev_after:.2f}")


def register(app: typer.Typer) -> None:
    """Add the ``eval``, ``inspect`` and ``train`` commands to ``app``."""
    app.command("eval")(handle_errors(eval_command))
    app.command("inspect")(handle_errors(inspect_command))
    app.command("train")(handle_errors(train_command))
