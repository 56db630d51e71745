"""The model of ``model=torch-mlp``: a small PyTorch MLP on CPU after the same preprocessing.

:class:`TorchMLP` is a scikit-learn estimator (``fit``, ``predict``, ``predict_proba``,
``classes_``), so ``train.build_pipeline`` puts it where the linear model stands and
everything downstream (cross-validation, tuning, MLflow's sklearn flavour, the champion
gate, scoring, serving) treats it like any other pipeline. Two hidden ReLU layers, Adam,
a fixed seed and one CPU thread (the same weights on every run), early stopping on the
newest ``VALIDATION_SHARE`` of the training rows. ``C`` is the inverse L2 penalty (weight
decay ``1e-3 / C``) and ``class_weight="balanced"`` weighs the loss, as for the linear
model, so the tuning stages search the same parameters; ``max_iter`` caps the epochs.

Weights are kept as float64 NumPy arrays (the fitted estimator pickles and loads without
torch) and predictions run in float64. At the end of ``fit`` the network is exported to
ONNX with ``torch.onnx.export`` (``onnx_model_``: input ``features`` float64
``[n, n_inputs]``, output ``probabilities`` ``[n, classes]``); the serving fetch step
joins it after the skl2onnx graph of the preprocessing, so ONNX Runtime serves raw rows.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from ..schema import TASK

if TYPE_CHECKING:
    import torch

HIDDEN_UNITS = (32, 16)
"""Width of the two hidden layers."""
MAX_EPOCHS = 40
"""Upper bound on passes over the training rows (``max_iter`` may lower it)."""
PATIENCE = 4
"""Epochs without a better validation loss before training stops (best weights kept)."""
BATCH_SIZE = 256
LEARNING_RATE = 3e-3
VALIDATION_SHARE = 0.15
"""Share of the training rows held out for early stopping (the last rows given)."""
SEED = 0
ONNX_INPUT = "features"
ONNX_OUTPUT = "probabilities"
ONNX_OPSET = 17
"""Opset of the exported graph (the preprocessing graph is converted at the same one)."""


def _network(n_inputs: int, n_outputs: int) -> torch.nn.Sequential:
    import torch

    layers: list[torch.nn.Module] = []
    width = n_inputs
    for units in HIDDEN_UNITS:
        layers += [torch.nn.Linear(width, units), torch.nn.ReLU()]
        width = units
    layers.append(torch.nn.Linear(width, n_outputs))
    return torch.nn.Sequential(*layers)


class TorchMLP(BaseEstimator):
    """An MLP fitted with PyTorch: a classifier (TASK binary/multiclass) or a regressor."""

    def __init__(
        self,
        C: float = 1.0,
        class_weight: str | None = None,
        max_iter: int = MAX_EPOCHS,
        seed: int = SEED,
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.seed = seed

    # ---- training ---------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> TorchMLP:
        """Train on ``X`` (preprocessed numbers) and ``y``; export the network to ONNX."""
        import torch

        torch.manual_seed(self.seed)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # deterministic and cheap for a network this small
        try:
            features = np.asarray(X, dtype=np.float32)
            targets, loss_fn, n_outputs = self._targets(np.asarray(y))
            network = _network(features.shape[1], n_outputs)
            self._train(network, features, targets, loss_fn)
        finally:
            torch.set_num_threads(threads)
        self.weights_ = [p.detach().numpy().astype(np.float64) for p in network.parameters()]
        self.n_features_in_ = features.shape[1]
        self.onnx_model_ = self._export()
        return self

    def _targets(self, y: np.ndarray) -> tuple[Any, Any, int]:
        import torch

        if TASK == "regression":
            self.y_mean_ = float(np.mean(y))
            self.y_scale_ = float(np.std(y)) or 1.0
            scaled = (y.astype(np.float64) - self.y_mean_) / self.y_scale_
            return torch.tensor(scaled, dtype=torch.float32)[:, None], torch.nn.MSELoss(), 1
        self.classes_ = np.unique(y)
        codes = np.searchsorted(self.classes_, y)
        weight = None
        if self.class_weight == "balanced":
            counts = np.bincount(codes, minlength=len(self.classes_)).astype(np.float64)
            weight = torch.tensor(len(codes) / (len(self.classes_) * counts), dtype=torch.float32)
        loss = torch.nn.CrossEntropyLoss(weight=weight)
        return torch.tensor(codes, dtype=torch.long), loss, len(self.classes_)

    def _train(self, network: Any, features: np.ndarray, targets: Any, loss_fn: Any) -> None:
        import torch

        inputs = torch.from_numpy(features)
        n_valid = int(len(inputs) * VALIDATION_SHARE) if len(inputs) >= 20 else 0
        fit_x, fit_y = inputs[: len(inputs) - n_valid], targets[: len(inputs) - n_valid]
        valid_x, valid_y = inputs[len(inputs) - n_valid :], targets[len(inputs) - n_valid :]
        optimiser = torch.optim.Adam(
            network.parameters(), lr=LEARNING_RATE, weight_decay=1e-3 / float(self.C)
        )
        generator = torch.Generator().manual_seed(self.seed)
        best = (float("inf"), [p.detach().clone() for p in network.parameters()])
        stale = 0
        self.n_iter_ = 0
        for _ in range(max(1, min(int(self.max_iter), MAX_EPOCHS))):
            network.train()
            for batch in torch.randperm(len(fit_x), generator=generator).split(BATCH_SIZE):
                optimiser.zero_grad()
                loss_fn(network(fit_x[batch]), fit_y[batch]).backward()
                optimiser.step()
            self.n_iter_ += 1
            if not n_valid:
                continue
            network.eval()
            with torch.no_grad():
                loss = float(loss_fn(network(valid_x), valid_y))
            if loss < best[0]:
                best, stale = (loss, [p.detach().clone() for p in network.parameters()]), 0
            else:
                stale += 1
                if stale >= PATIENCE:
                    break
        if n_valid:
            with torch.no_grad():
                for parameter, kept in zip(network.parameters(), best[1], strict=True):
                    parameter.copy_(kept)

    # ---- inference --------------------------------------------------------------------

    def _module(self) -> torch.nn.Module:
        """The fitted network in float64, with the output layer of TASK (softmax or scale)."""
        import torch

        network = _network(self.n_features_in_, len(self.weights_[-1])).double()
        with torch.no_grad():
            for parameter, value in zip(network.parameters(), self.weights_, strict=True):
                parameter.copy_(torch.from_numpy(value))
        head: torch.nn.Module = torch.nn.Softmax(dim=1)
        if TASK == "regression":  # undo the scaling of the targets: y = out * scale + mean
            head = torch.nn.Linear(1, 1).double()
            with torch.no_grad():
                head.weight.fill_(self.y_scale_)
                head.bias.fill_(self.y_mean_)
        return torch.nn.Sequential(network, head).eval()

    def _forward(self, X: Any) -> np.ndarray:
        import torch

        with torch.no_grad():
            inputs = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float64))
            result: np.ndarray = self._module()(inputs).numpy()
        return result

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class (classification) or value (regression) of each row."""
        output = self._forward(X)
        if TASK == "regression":
            return output[:, 0]
        return np.asarray(self.classes_)[output.argmax(axis=1)]

    def _export(self) -> bytes:
        """The network as ONNX (``torch.onnx.export``, TorchScript exporter, float64)."""
        import torch

        with tempfile.TemporaryDirectory(prefix="mlp-onnx-") as scratch:
            path = Path(scratch, "mlp.onnx")
            with warnings.catch_warnings():  # the TorchScript exporter is deprecated, still shipped
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(
                    self._module(),
                    (torch.zeros(1, self.n_features_in_, dtype=torch.float64),),
                    path,
                    input_names=[ONNX_INPUT],
                    output_names=[ONNX_OUTPUT],
                    dynamic_axes={ONNX_INPUT: {0: "rows"}, ONNX_OUTPUT: {0: "rows"}},
                    opset_version=ONNX_OPSET,
                    dynamo=False,  # the TorchScript exporter: no onnxscript dependency
                )
            return path.read_bytes()


class TorchMLPClassifier(ClassifierMixin, TorchMLP):
    """:class:`TorchMLP` for binary and multiclass TASKs (scikit-learn's classifier tags)."""

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``[n, classes]``, like scikit-learn's."""
        return self._forward(X)


class TorchMLPRegressor(RegressorMixin, TorchMLP):
    """:class:`TorchMLP` for regression (scikit-learn's regressor tags)."""


def build_estimator(params: dict[str, Any]) -> TorchMLP:
    """The MLP of TASK with ``params`` (C, class_weight, max_iter), as train.build_pipeline."""
    kind = TorchMLPRegressor if TASK == "regression" else TorchMLPClassifier
    return kind(
        C=float(params.get("C", 1.0)),
        class_weight=None if TASK == "regression" else params.get("class_weight"),
        max_iter=int(params.get("max_iter", MAX_EPOCHS)),
    )
