"""The checks of a build that touch the disk beyond the source, the network or torch,
each run once per build and before the lock is taken or anything slow is loaded."""

from __future__ import annotations

from simsearch.build.options import BuildOptions
from simsearch.errors import InvalidParameter
from simsearch.store.meta import IndexMeta, ModelFiles


def check_whiten_rows(whiten_dim: int | None, n_documents: int) -> None:
    """Refuse ``whiten_dim`` above what whitening can keep when fitted on ``n_documents``
    non-empty documents: ``(n - 1) // 2`` (:func:`simsearch.transforms.whitening.safe_dim`
    says why), checked from the rows alone, before the model is loaded or exported.

    Windows are at least as many as the non-empty rows, so a dimension allowed here is
    never lowered by the fit; the model's own dimension is checked once it is loaded
    (:func:`simsearch.build.options.check_whiten_dim`).

    Raises:
        InvalidParameter: ``whiten_dim > (n_documents - 1) // 2``.
    """
    limit = (n_documents - 1) // 2
    if whiten_dim is None or whiten_dim <= limit:
        return
    if limit < 2:
        raise InvalidParameter("whiten_dim", (
            f"{{name}} is {whiten_dim} but whitening needs at least 5 non-empty documents "
            f"to fit on, and the column has {n_documents}"))
    raise InvalidParameter("whiten_dim", (
        f"{{name}} is {whiten_dim} but whitening fitted on {n_documents:,} non-empty "
        f"documents keeps at most (n - 1) // 2 = {limit} dimensions (more would make all "
        f"documents equally similar); choose at most {limit}"))


def check_encoding(options: BuildOptions, model: str) -> str:
    """Refuse a model or encoding options that cannot work, in seconds, and return the
    backend to encode with (``auto`` resolved).

    Args:
        options: the build's options (``options.embeddings`` is ``None``).
        model: the resolved model name (:func:`simsearch.build.options.resolve_model`).

    Returns:
        ``"torch"`` or ``"onnx"``.

    Raises:
        InvalidParameter: a local model path that holds no model (before torch is
            imported), a hub id the hub does not know (online only), a backend,
            precision, device or Ray combination that cannot run.
    """
    from simsearch.encoding.encoders import check_options, resolve_backend

    check_model(model)
    backend = resolve_backend(options.backend, options.device, options.precision, options.ray)
    check_options(backend, options.precision, options.device, options.ray)
    return backend


def check_model(model: str) -> None:
    """Refuse a model that cannot load, in seconds and without torch: a local path that
    holds no model, or (online only) a hub id the hub does not know.

    Raises:
        InvalidParameter: as above.
    """
    from simsearch.encoding.model_files import check_local_model
    from simsearch.encoding.preflight import check_hub_model

    check_local_model(model)
    check_hub_model(model)


def model_files_changed(meta: IndexMeta | None, model: str) -> bool:
    """True when ``meta`` was built with ``model`` (a local directory) whose files have
    changed since (a model retrained into the same directory)."""
    if meta is None or meta.model != model:
        return False
    from simsearch.encoding.model_files import changed

    recorded = meta.get(ModelFiles)
    return recorded is not None and changed(meta.model, recorded.as_dict())
