"""Model commands: ``eval`` (STS and retrieval scores), ``inspect`` (anisotropy
diagnostics) and ``train`` (fine-tuning). Heavy libraries are imported inside."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

from simsearch.cli.run import index_path, say
from simsearch.cli.spec import (
    DEFAULT_NAME,
    Aggregate,
    Arg,
    DenseWeight,
    Fusion,
    IndexName,
    Mode,
    Opt,
    Rerank,
    RerankDepth,
    TableOrJson,
    Where,
)
from simsearch.errors import InvalidParameter

DEFAULT_PLOT = "simsearch-inspect.png"


# ----------------------------------------------------------------------------- eval
def eval_command(
    file: Annotated[
        Path,
        Arg(help="Scored pairs (KorSTS tsv, csv, xlsx) or, with --index, (query, relevant) rows."),
    ],
    model: Annotated[
        list[str] | None,
        Opt(
            "--model",
            "-m",
            help="Model to score; repeat for several. With --index: overrides the index's model.",
        ),
    ] = None,
    index: Annotated[
        Path | None,
        Opt(help="Retrieval mode: the folder holding the indexes; --name picks the index."),
    ] = None,
    name: IndexName = DEFAULT_NAME,
    text1: Annotated[str, Opt(help="First text column.")] = "sentence1",
    text2: Annotated[str, Opt(help="Second text column.")] = "sentence2",
    score: Annotated[str, Opt(help="Gold score column.")] = "score",
    query_column: Annotated[str, Opt(help="Retrieval: query column.")] = "query",
    relevant_column: Annotated[
        str, Opt(help="Retrieval: relevant document row (0-based) or exact text.")
    ] = "relevant",
    whiten: Annotated[
        bool,
        Opt(help="BERT-whitening fitted on the eval sentences (or on --whiten-corpus)."),
    ] = False,
    whiten_corpus: Annotated[
        Path | None, Opt(help="Fit the whitening on this file's texts instead.")
    ] = None,
    whiten_dim: Annotated[int | None, Opt(help="Keep D whitened dimensions.")] = None,
    flow: Annotated[
        bool, Opt(help="BERT-flow fitted on the eval sentences (or on --flow-corpus).")
    ] = False,
    flow_corpus: Annotated[
        Path | None, Opt(help="Fit the flow on this file's texts instead.")
    ] = None,
    limit: Annotated[int | None, Opt(help="Use only the first N pairs.")] = None,
    mode: Mode = None,
    aggregate: Aggregate = "max",
    chunking: Annotated[
        str, Opt(help="Retrieval: auto (the index's windows) or none (first window only).")
    ] = "auto",
    batch_size: Annotated[int, Opt(help="Encoding batch size.")] = 64,
    where: Where = None,
    dense_weight: DenseWeight = None,
    fusion: Fusion = None,
    tune: Annotated[
        bool,
        Opt("--tune", help="Retrieval: choose the hybrid fusion (method, dense weight) on "
            "these pairs by cross-validation, print held-out MRR@10 and store the choice "
            "in the index (needs 20+ queries; 50-100 are better)."),
    ] = False,
    folds: Annotated[int, Opt(help="--tune: cross-validation folds.")] = 5,
    rerank: Rerank = None,
    rerank_depth: RerankDepth = 50,
    fmt: TableOrJson = "table",
) -> None:
    """Score models on labeled pairs: Spearman/Pearson x100 of cosine vs gold, or
    recall@1/5/10, MRR@10, nDCG@10 against an index."""
    from simsearch.cli import render

    render.check_format(fmt, ("table", "json"))
    if where is not None and index is None:
        raise InvalidParameter("where", "{name} filters the documents of an index; add --index DIR")
    if rerank is not None and index is None:
        raise InvalidParameter("rerank", "{name} reranks an index's hits; add --index DIR")
    if index is not None or tune:
        from simsearch.cli.core import second_stage

        search = (mode, aggregate, dense_weight, fusion, chunking)
        _eval_index(file, index, name, model, (query_column, relevant_column), batch_size,
                    where, search, folds if tune else None, fmt,
                    second_stage(rerank, rerank_depth))
        return
    from simsearch.science.evaluate import evaluate_sts
    from simsearch.tables.labeled import read_sts_pairs

    if not model:
        raise InvalidParameter(
            "model", "Name at least one model: {name} DIR_OR_HUB_ID (repeatable)."
        )
    if whiten_dim is not None and not (whiten or whiten_corpus):
        raise InvalidParameter("whiten_dim", "{name} needs --whiten (or --whiten-corpus FILE).")
    pairs = read_sts_pairs(file, text1, text2, score)
    whiten_arg: bool | Path = whiten_corpus if whiten_corpus else whiten
    flow_arg: bool | Path = flow_corpus if flow_corpus else flow
    results = evaluate_sts(model, pairs, batch_size, whiten_arg, whiten_dim, limit, flow_arg)
    if fmt == "json":
        render.write_json_value(results.to_dict(orient="records"))
        return
    render.write_metrics(f"STS on {file.name}", list(results.columns), results.values.tolist())


def _eval_index(  # noqa: PLR0913 - eval's retrieval options, passed on
    file, index, name, model, columns, batch_size, where, search, folds, fmt, second=None
) -> None:
    """``eval --index``: retrieval metrics of the pairs (reranked by ``second``, a
    cross-encoder, when given), or with ``folds`` (``--tune``) the fusion tuned on them."""
    from simsearch.cli import render
    from simsearch.science.evaluate import evaluate_index
    from simsearch.search import search_options

    if index is None:
        raise InvalidParameter("tune", "{name} tunes an index's fusion; add --index DIR")
    if model and len(model) > 1:
        raise InvalidParameter(
            "model", "Retrieval evaluation uses one model (the index's); drop extra {name}."
        )
    mode, aggregate, dense_weight, fusion, chunking = search
    if chunking not in ("auto", "none"):
        raise InvalidParameter("chunking", f"{{name}} must be auto or none, got {chunking!r}")
    options = search_options(mode, aggregate, dense_weight, fusion)
    if folds is not None:
        _tune(file, index_path(index, name), *columns, batch_size, folds, fmt)
        return
    record = evaluate_index(
        file, index_path(index, name), model[0] if model else None, *columns, batch_size,
        where=where, search=(options, chunking), rerank=second,
    )
    if fmt == "json":
        render.write_json_value(record)
        return
    render.write_metrics(f"Retrieval on {file.name}", list(record), [list(record.values())])


def _tune(file, directory, query_column, relevant_column, batch_size, folds, fmt) -> None:
    """``eval --tune``: the cross-validated fusion choice, printed (and stored)."""
    from simsearch.cli import render
    from simsearch.science.tune import TuneOptions, tune_fusion

    result = tune_fusion(file, directory, query_column, relevant_column, batch_size,
                         TuneOptions(folds=folds))
    if fmt == "json":
        render.write_json_value(result)
        return
    rows = [[r["method"], r["dense_weight"], r["mrr"]] for r in result["table"]]
    render.write_metrics(f"MRR@10 on all {result['pairs']} queries per fusion setting",
                         ["fusion", "dense weight", "MRR@10"], rows)
    chosen, default = result["chosen"], result["default"]
    print(f"held-out MRR@10 ({result['folds']}-fold cross-validation): tuned "
          f"{result['heldout_mrr']:.2f}, default ({default['method']} "
          f"{default['dense_weight']}) {result['default_mrr']:.2f}")
    if result["stored"]:
        print(f"stored in the index: {chosen['method']} fusion, dense weight "
              f"{chosen['dense_weight']} (query, similar, neighbors, serve and eval use it)")
    else:
        print("kept the default: tuning did not beat it on held-out queries; nothing stored")


# -------------------------------------------------------------------------- inspect
def inspect_command(
    index: Annotated[
        Path | None, Opt(help="The folder holding the indexes to diagnose (with --name).")
    ] = None,
    name: Annotated[
        list[str] | None,
        Opt(
            "--name", help="Index to diagnose under --index (default: default); repeat to overlay."
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        Opt("--model", "-m", help="Model to diagnose over --texts; repeatable."),
    ] = None,
    texts: Annotated[Path | None, Opt(help="Text file (csv/tsv/xlsx) for --model.")] = None,
    column: Annotated[list[str] | None, Opt(help="Text column(s) of --texts.")] = None,
    sample: Annotated[int, Opt(help="Texts/documents sampled (seeded).")] = 2000,
    pairs: Annotated[
        Path | None,
        Opt(
            help="Scored pairs (KorSTS format) for "
            "alignment: pairs scoring >= --positive-score are positives."
        ),
    ] = None,
    positive_score: Annotated[float, Opt(help="Gold score of a positive pair.")] = 4.0,
    whiten: Annotated[bool, Opt(help="Also diagnose each set after BERT-whitening.")] = False,
    flow: Annotated[bool, Opt(help="Also diagnose each set after BERT-flow.")] = False,
    plot: Annotated[Path, Opt(help="PNG file for the spectrum plot.")] = Path(DEFAULT_PLOT),
    seed: Annotated[int, Opt(help="Sampling seed.")] = 0,
    fmt: TableOrJson = "table",
) -> None:
    """Anisotropy diagnostics: mean random-pair cosine, singular value spectrum (PNG),
    alignment and uniformity (Wang & Isola 2020)."""
    from simsearch.cli import render
    from simsearch.cli.spec import options_from
    from simsearch.science.anisotropy import InspectOptions, inspect_sources

    render.check_format(fmt, ("table", "json"))
    options = options_from(InspectOptions, locals())  # named like its fields
    paths = [index_path(index, n) for n in name or [DEFAULT_NAME]] if index else []
    diagnostics, plot_path = inspect_sources(paths, model or [], options)
    records = [d.as_dict() for d in diagnostics]
    if fmt == "json":
        render.write_json_value({"plot": str(plot_path), "results": records})
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
    render.write_metrics("Anisotropy", columns, rows, digits=3)
    print(f"spectrum plot: {plot_path}")
    print(
        "mean_cosine near 0 and a flat spectrum = isotropic; lower alignment and "
        "uniformity are better."
    )


# ---------------------------------------------------------------------------- train
def train_command(
    method: Annotated[
        str,
        Opt(
            help="simcse, nli, sts, triplet, softmax (SBERT NLI), mlm, tsdae, or "
            "cross-encoder (a --rerank model, from scored pairs or NLI labels).",
        ),
    ],
    output: Annotated[Path, Opt("--output", "-o", help="Directory for the model.")],
    data: Annotated[list[Path] | None, Opt(help="Training file; repeatable.")] = None,
    index: Annotated[
        Path | None,
        Opt(help="simcse/mlm/tsdae: train on the texts of an index (folder, with --name)."),
    ] = None,
    name: IndexName = DEFAULT_NAME,
    model: Annotated[
        str | None,
        Opt("--model", "-m", help="Base model (default: the core's default model)."),
    ] = None,
    column: Annotated[
        list[str] | None, Opt(help="simcse/mlm/tsdae/triplet text column(s).")
    ] = None,
    label_column: Annotated[
        str, Opt(help="triplet: class column; softmax: NLI label column (default gold_label).")
    ] = "label",
    text1: Annotated[str, Opt(help="sts/cross-encoder: first text column.")] = "sentence1",
    text2: Annotated[str, Opt(help="sts/cross-encoder: second text column.")] = "sentence2",
    score: Annotated[
        str, Opt(help="sts/cross-encoder: score column (cross-encoder without it: NLI labels).")
    ] = "score",
    anchor: Annotated[str, Opt(help="nli/softmax: premise/anchor column.")] = "sentence1",
    positive: Annotated[
        str, Opt(help="nli/softmax: hypothesis/positive column.")
    ] = "sentence2",
    negative: Annotated[
        str | None,
        Opt(help="nli: negative column of a generic 3-column file (NLI files use gold_label)."),
    ] = None,
    dev: Annotated[
        Path | None, Opt(help="Scored pairs (KorSTS format) evaluated before and after.")
    ] = None,
    epochs: Annotated[float, Opt(help="Training epochs.")] = 1.0,
    batch_size: Annotated[int | None, Opt(help="Batch size (default per method).")] = None,
    lr: Annotated[float | None, Opt(help="Learning rate (default per method).")] = None,
    max_seq_length: Annotated[int, Opt(help="Tokens kept per text.")] = 128,
    max_steps: Annotated[int | None, Opt(help="Stop after N steps.")] = None,
    max_texts: Annotated[
        int | None, Opt(help="simcse/mlm/tsdae: sample at most N texts.")
    ] = None,
    sts_loss: Annotated[str, Opt(help="sts: cosent or cosine.")] = "cosent",
    mlm_probability: Annotated[float, Opt(help="mlm: share of tokens masked.")] = 0.15,
    deletion_ratio: Annotated[float, Opt(help="tsdae: share of words deleted.")] = 0.6,
    seed: Annotated[int, Opt(help="Random seed.")] = 42,
    fmt: TableOrJson = "table",
) -> None:
    """Fine-tune a model (SimCSE, NLI triplets or labels, scored pairs, labeled texts) or
    pre-train it on your texts (MLM, TSDAE), and save a directory usable with --model."""
    from dataclasses import asdict

    from simsearch.cli import render
    from simsearch.cli.progress import progress
    from simsearch.cli.spec import options_from
    from simsearch.science.training.core import TrainConfig, TrainData, train_from_files

    render.check_format(fmt, ("table", "json"))
    where = index_path(index, name) if index is not None else None
    spec = options_from(TrainData, locals(), data=data or [], index=where)
    # Anything a library prints goes to stderr: stdout is for the JSON or the summary.
    with progress("training", "steps", fmt == "table") as on_progress, \
            contextlib.redirect_stdout(sys.stderr):  # fmt: skip
        # The options are named like the fields of the two dataclasses.
        config = options_from(
            TrainConfig, locals(), show_progress=fmt == "table", on_progress=on_progress
        )
        result = train_from_files(output, config, spec, model=model, dev=dev)
    warning = no_better(result)
    if warning:
        say(warning)
    if fmt == "json":
        render.write_json_value(asdict(result))
        return
    print(train_summary(result))


def no_better(result: Any) -> str | None:
    """A warning when the dev Spearman did not rise: the saved model ranks the dev pairs
    no better than the base did (e.g. a cross-encoder that collapsed to one score)."""
    before, after = result.dev_before, result.dev_after
    if before is None or after is None or after > before:
        return None
    use = ("as a --rerank model it will likely make rankings worse"
           if result.method == "cross-encoder" else "it is unlikely to search better")
    return (f"warning: dev Spearman x100 fell from {before:.2f} to {after:.2f}: {use}; "
            "try more steps, another --lr, or a base model trained on Korean")


#: What one training example is, by method.
EXAMPLE_UNITS = {"sts": "pairs", "softmax": "pairs", "simcse": "texts", "mlm": "texts",
                 "tsdae": "texts"}  # fmt: skip


def train_summary(result: Any) -> str:
    """One line: ``trained 1 epoch (10 steps) on 40 pairs in 0m31s -> model; dev
    Spearman x100 -20.91 -> -19.71`` (the dev part only with a dev file)."""
    epochs = f"{result.epochs:g} epoch{'' if result.epochs == 1 else 's'}"
    unit = EXAMPLE_UNITS.get(result.method.split()[0], "examples")
    minutes, seconds = divmod(round(result.train_seconds), 60)
    line = (
        f"trained {epochs} ({result.steps:,} steps) on {result.examples:,} {unit} in "
        f"{minutes}m{seconds:02d}s -> {result.output_dir}"
    )
    if result.dev_after is not None and result.dev_before is not None:
        line += f"; dev Spearman x100 {result.dev_before:.2f} -> {result.dev_after:.2f}"
    return line
