"""BERT-flow (Li et al. 2020, "On the Sentence Embeddings from Pre-trained Language Models",
arXiv:2011.05864): fit a normalizing flow on corpus embeddings so that they follow a standard
Gaussian, then compare sentences in the flow's latent space.

The flow is zuko's ``RealNVP`` (Dinh et al. 2016, affine coupling layers with alternating
masks): the same family as the Glow used by BERT-flow (affine coupling), trained by maximum
likelihood of the embeddings with the encoder frozen, as in the paper. Before the flow, the
embeddings are standardised per dimension (the role of Glow's actnorm) and dimensions with
(near) zero variance are dropped (they would make the likelihood unbounded).

The fitted forward map ``x -> z`` is exported to ONNX once, at fit time, and always applied
with onnxruntime (index, queries, eval): one code path, and applying a stored flow needs no
torch or zuko. The ``.onnx`` file carries the fit report in its metadata.

Library: ``fit_flow(embeddings, FlowConfig()) -> EmbeddingFlow`` with ``.apply(x)``,
``.save(path)``, ``EmbeddingFlow.load(path)``.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simsearch.errors import SimsearchError

# Standard deviations below this share of the largest are treated as constant dimensions.
_REL_STD_EPS = 1e-4
_META_KEY = "simsearch_flow"


@dataclass
class FlowConfig:
    """How to fit the flow.

    Attributes:
        transforms: affine coupling layers (RealNVP); each updates half the dimensions.
        hidden: width of the two hidden layers of each coupling layer's MLP.
        epochs: maximum passes over the training embeddings.
        batch_size: embeddings per optimiser step.
        lr: Adam learning rate.
        validation: share of the embeddings held out for early stopping (0: none).
        patience: epochs without a better held-out likelihood before stopping.
        max_embeddings: fit on a seeded sample of at most this many embeddings (the flow is
            then applied to all): bounds the fitting time on a large corpus.
        seed: seeds the sample, the split, the initialisation and the batch order.
    """

    transforms: int = 4
    hidden: int = 256
    epochs: int = 60
    batch_size: int = 256
    lr: float = 1e-3
    validation: float = 0.1
    patience: int = 5
    max_embeddings: int = 20_000
    seed: int = 0


@dataclass
class EmbeddingFlow:
    """A fitted flow, held as a serialised ONNX graph of its forward map.

    Attributes:
        onnx_model: bytes of the ONNX graph mapping (m, d) float32 embeddings to (m, k)
            float32 latents (standardisation + coupling layers); input ``embeddings``,
            output ``latent``.
        info: the fit report (dims, config, epochs, negative log-likelihood per dimension on
            the training and held-out embeddings, seconds).
    """

    onnx_model: bytes
    info: dict[str, Any] = field(default_factory=dict)
    _session: Any = field(default=None, repr=False, compare=False)

    @property
    def input_dim(self) -> int:
        """Dimension d of the embeddings the flow was fitted on."""
        return int(self.info["input_dim"])

    @property
    def dim(self) -> int:
        """Output dimension k (d less the constant dimensions)."""
        return int(self.info["dim"])

    def latent(self, x: np.ndarray) -> np.ndarray:
        """The flow's latent ``z`` of (m, d) embeddings: (m, k) float32, not normalised.

        Raises:
            SimsearchError: ``x`` has a different dimension than the fitted flow.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[1] != self.input_dim:
            raise SimsearchError(
                f"The flow was fitted on {self.input_dim}-dim embeddings but got "
                f"{x.shape[1]}-dim ones: rebuild the index with the same model."
            )
        if len(x) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self._session is None:
            self._session = _ort_session(self.onnx_model)
        return self._session.run(["latent"], {"embeddings": np.ascontiguousarray(x)})[0]

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Map (m, d) embeddings to (m, k) float32 unit-length rows (cosine = dot product).

        Raises:
            SimsearchError: ``x`` has a different dimension than the fitted flow.
        """
        z = self.latent(x)
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        return (z / np.maximum(norms, 1e-12)).astype(np.float32)

    def save(self, path: Path | str) -> Path:
        """Write the ONNX graph (with the fit report in its metadata); returns the path."""
        path = Path(path)
        if path.suffix != ".onnx":
            path = path.with_suffix(".onnx")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.onnx_model)
        return path

    @classmethod
    def load(cls, path: Path | str) -> EmbeddingFlow:
        """Load a flow written by :meth:`save` (needs onnxruntime, not torch).

        Raises:
            SimsearchError: the file is missing or not a simsearch flow.
        """
        path = Path(path)
        if not path.is_file():
            raise SimsearchError(f"No flow file at {path}: rebuild the index with the flow.")
        data = path.read_bytes()
        try:
            session = _ort_session(data)
            info = json.loads(session.get_modelmeta().custom_metadata_map[_META_KEY])
        except Exception as exc:  # onnxruntime raises its own types for damaged graphs
            raise SimsearchError(f"{path} is not a simsearch flow file ({exc}).") from None
        return cls(data, info, session)


def _ort_session(data: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the graph is small; threads cost more than they save
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def fit_flow(embeddings: np.ndarray, config: FlowConfig | None = None) -> EmbeddingFlow:
    """Fit BERT-flow on (n, d) float embeddings (maximum likelihood, Adam, early stopping).

    Args:
        embeddings: (n, d) corpus embeddings; n >= 10.
        config: schedule and size of the flow (defaults: :class:`FlowConfig`).

    Returns:
        EmbeddingFlow whose ``apply`` maps (m, d) embeddings to (m, k) unit rows.

    Raises:
        SimsearchError: too few embeddings, non-finite values, or all dimensions constant.
    """
    import torch
    import zuko

    config = config or FlowConfig()
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 10:
        raise SimsearchError("A flow needs at least 10 embeddings (an (n, d) matrix).")
    if not np.isfinite(x).all():
        raise SimsearchError("The embeddings contain NaN or infinite values.")
    if len(x) > config.max_embeddings:
        rows = np.random.default_rng(config.seed).choice(len(x), config.max_embeddings, False)
        x = x[np.sort(rows)]
    n, d = x.shape
    std = x.std(axis=0)
    keep = np.flatnonzero(std > std.max() * _REL_STD_EPS)
    if len(keep) < 2:
        raise SimsearchError("A flow needs embeddings that vary in at least 2 dimensions.")
    mean = x[:, keep].mean(axis=0)
    scale = std[keep]
    z = ((x[:, keep] - mean) / scale).astype(np.float32)

    start = time.perf_counter()
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    order = torch.randperm(n, generator=gen)
    n_val = int(n * config.validation) if config.validation > 0 else 0
    data = torch.from_numpy(z)
    val, train = data[order[:n_val]], data[order[n_val:]]
    flow = zuko.flows.RealNVP(
        len(keep), transforms=config.transforms, hidden_features=(config.hidden, config.hidden)
    )
    optimiser = torch.optim.Adam(flow.parameters(), lr=config.lr)
    best, best_state, stale, epochs = float("inf"), None, 0, 0
    for epoch in range(config.epochs):
        flow.train()
        for batch in train[torch.randperm(len(train), generator=gen)].split(config.batch_size):
            loss = -flow().log_prob(batch).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        epochs = epoch + 1
        monitor = _nll(flow, val if n_val else train)
        if monitor < best - 1e-4:
            best, stale = monitor, 0
            best_state = {k: v.detach().clone() for k, v in flow.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is not None:
        flow.load_state_dict(best_state)
    dims = len(keep)
    info = {
        "method": "BERT-flow (Li et al. 2020), zuko RealNVP",
        "input_dim": d,
        "dim": dims,
        "fit_embeddings": n,
        "config": asdict(config),
        "epochs": epochs,
        # Per dimension, in the standardised space (comparable across fits of one model).
        "train_nll_per_dim": round(_nll(flow, train) / dims, 4),
        "heldout_nll_per_dim": round(_nll(flow, val) / dims, 4) if n_val else None,
        "fit_seconds": round(time.perf_counter() - start, 1),
    }
    model = _export(flow, keep, mean, scale, x[:512], info)
    return EmbeddingFlow(model, info)


def _nll(flow: Any, data: Any) -> float:
    """Mean negative log-likelihood of ``data`` under ``flow`` (nats per embedding)."""
    import torch

    flow.eval()
    with torch.no_grad():
        return float(-torch.cat([flow().log_prob(b) for b in data.split(4096)]).mean())


def _export(
    flow: Any, keep: np.ndarray, mean: np.ndarray, scale: np.ndarray, sample: np.ndarray, info: dict
) -> bytes:
    """Export standardisation + the flow's forward map to ONNX bytes with ``info`` attached.

    ``sample``: (m, d) embeddings on which the graph must match zuko's forward map.
    """
    import io

    import onnx
    import torch

    class Forward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.flow = flow
            self.register_buffer("keep", torch.from_numpy(keep.astype(np.int64)))
            self.register_buffer("mean", torch.from_numpy(mean.astype(np.float32)))
            self.register_buffer("scale", torch.from_numpy(scale.astype(np.float32)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = (x.index_select(1, self.keep) - self.mean) / self.scale
            # zuko's own coupling math (hyper-network + affine), but split and merged with
            # index_select/cat: its boolean-mask index_put does not export to a valid graph.
            for layer in self.flow.transform.transforms:
                coupling = layer()
                x_a = x.index_select(1, coupling.idx_a)
                y_b = coupling.meta(x_a)(x.index_select(1, coupling.idx_b))
                back = torch.argsort(torch.cat([coupling.idx_a, coupling.idx_b]))
                x = torch.cat([x_a, y_b], dim=1).index_select(1, back)
            return x

    module = Forward().eval()
    buffer = io.BytesIO()
    # The TorchScript exporter (dynamo=False) needs no onnxscript; silence its deprecation note.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (torch.zeros(2, sample.shape[1]),),
            buffer,
            input_names=["embeddings"],
            output_names=["latent"],
            dynamic_axes={"embeddings": {0: "n"}, "latent": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    # Check the graph against zuko's own forward map before trusting it.
    probe = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32))
    with torch.no_grad():
        standard = (probe.index_select(1, module.keep) - module.mean) / module.scale
        expected = flow().transform(standard)
    got = _ort_session(buffer.getvalue()).run(["latent"], {"embeddings": probe.numpy()})[0]
    info["export_max_abs_diff"] = float(np.abs(got - expected.numpy()).max())
    if not info["export_max_abs_diff"] < 1e-3:
        raise SimsearchError(
            f"The exported flow differs from the fitted one by {info['export_max_abs_diff']:.2g}."
        )
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = _META_KEY, json.dumps(info)
    return proto.SerializeToString()
