"""Float64 NumPy reference trainer for the ``--compare-float`` check.

:class:`FloatMLP` trains the same multilayer perceptron as the verifiable trainer, from the
same initial weights, with the same batches and learning-rate schedule (both come from
:mod:`veil._batching`), but in plain float64 with no enclave, no quantisation and no checks.
Its accuracy is the yardstick for the cost of veil's fixed-point arithmetic.

Weights use veil's layout: layer ``l`` has a matrix of shape ``(n_l + 1, m_l)`` whose last
row is the bias, and its input ``A`` gets a column of ones appended, so ``Z = [A, 1] @ W``.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _conv
from ._batching import epoch_batches, lr_exponent_at

__all__ = ["ACTIVATIONS", "LOSSES", "FloatMLP"]

_Fn = Callable[[np.ndarray], np.ndarray]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp(-|z|) never overflows, and each branch avoids cancellation on its side of zero.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z: np.ndarray) -> np.ndarray:
    # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): no overflow for large z, full precision for
    # very negative z.
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


# name -> (sigma, sigma'), both as functions of the pre-activation z.
_ACTIVATION_FNS: Dict[str, Tuple[_Fn, _Fn]] = {
    "identity": (lambda z: z, np.ones_like),
    # sigma'(0) is taken as 0, as in the enclave's fixed-point ReLU.
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(np.float64)),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "arctan": (np.arctan, lambda z: 1.0 / (1.0 + z * z)),
    "softplus": (_softplus, _sigmoid),
}

ACTIVATIONS: Tuple[str, ...] = tuple(_ACTIVATION_FNS)
"""Names of the supported activations."""

LOSSES: Tuple[str, ...] = ("cross_entropy", "mse")
"""Names of the supported losses."""


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _with_ones(a: np.ndarray) -> np.ndarray:
    return np.hstack([a, np.ones((a.shape[0], 1), dtype=a.dtype)])


class FloatMLP:
    """A float64 multilayer perceptron trained with plain SGD.

    Args:
        weights: One matrix per layer, shape ``(n_l + 1, m_l)`` with the bias as the last
            row; consecutive layers must chain (``m_l == n_{l+1}``). The arrays are copied, so
            training never changes the caller's arrays.
        activations: One name per layer from :data:`ACTIVATIONS`.
        loss: ``"cross_entropy"`` (softmax fused with the last layer, whose activation must
            then be ``"identity"``) or ``"mse"``. Both average over the batch.
        shapes: Per layer, a convolution's geometry (``veil._conv.shapes`` of the model's
            ``wire_specs()``) or None for a dense layer: a convolutional network, laid out
            and pooled exactly as the enclave lays it out (docs/design.md §4.4).
        update_divisor: When given, an SGD step divides the batch's summed gradient by this
            constant instead of by the batch size, i.e. ``W <- W - lr * (B / D) * dC/dW``.
            veil's verifiable trainer divides by ``2^ceil(log2(max batch size))`` so that the
            step stays an exact shift; passing that value makes the reference take the same
            steps, including on a smaller last batch. Losses are still batch means.

    Raises:
        ValueError: If the shapes do not chain, a name is unknown, cross-entropy follows
            a non-identity output activation, or ``update_divisor`` is not a positive integer.
    """

    def __init__(
        self,
        weights: Sequence[np.ndarray],
        activations: Sequence[str],
        loss: str,
        *,
        update_divisor: Optional[int] = None,
        shapes: Optional[Sequence[Optional["_conv.Shape"]]] = None,
    ):
        if len(weights) == 0:
            raise ValueError("FloatMLP needs at least one layer")
        if len(activations) != len(weights):
            raise ValueError(
                f"got {len(weights)} weight matrices but {len(activations)} activations"
            )
        self._weights: List[np.ndarray] = []
        for index, w in enumerate(weights):
            w = np.array(w, dtype=np.float64, copy=True)
            if w.ndim != 2 or w.shape[0] < 2 or w.shape[1] < 1:
                raise ValueError(
                    f"layer {index}: weights must have shape (n + 1, m) with n, m >= 1, "
                    f"got {w.shape}"
                )
            if not np.all(np.isfinite(w)):
                raise ValueError(f"layer {index}: weights hold NaN or Inf")
            if shapes is None and self._weights and self._weights[-1].shape[1] != w.shape[0] - 1:
                raise ValueError(
                    f"layer {index}: expects {w.shape[0] - 1} inputs but layer {index - 1} "
                    f"has {self._weights[-1].shape[1]} outputs"
                )
            self._weights.append(w)
        for index, name in enumerate(activations):
            if name not in _ACTIVATION_FNS:
                raise ValueError(
                    f"layer {index}: unknown activation {name!r}; expected one of "
                    f"{', '.join(ACTIVATIONS)}"
                )
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
        if loss == "cross_entropy" and activations[-1] != "identity":
            raise ValueError(
                "cross_entropy fuses softmax with the last layer, whose activation must be "
                f"'identity', got {activations[-1]!r}"
            )
        if update_divisor is not None and (
            isinstance(update_divisor, bool)
            or not isinstance(update_divisor, (int, np.integer))
            or update_divisor < 1
        ):
            raise ValueError(f"update_divisor must be a positive integer, got {update_divisor!r}")
        self._shapes = list(shapes) if shapes is not None else [None] * len(self._weights)
        self._activations: Tuple[str, ...] = tuple(activations)
        self._loss = loss
        self._update_divisor = None if update_divisor is None else int(update_divisor)

    @property
    def weights(self) -> List[np.ndarray]:
        """Copies of the current weight matrices (bias in the last row)."""
        return [w.copy() for w in self._weights]

    @property
    def activations(self) -> Tuple[str, ...]:
        """The activation name of each layer."""
        return self._activations

    @property
    def loss(self) -> str:
        """The loss name."""
        return self._loss

    @property
    def update_divisor(self) -> Optional[int]:
        """The constant dividing summed gradients in an SGD step, or None for the batch size."""
        return self._update_divisor

    @property
    def n_features(self) -> int:
        """Number of inputs of the first layer (C·H·W for a convolution)."""
        first = self._shapes[0]
        if first is not None:
            return first.c * first.h * first.w
        return self._weights[0].shape[0] - 1

    @property
    def n_outputs(self) -> int:
        """Number of outputs of the last layer (the number of classes)."""
        return self._weights[-1].shape[1]

    # -----------------------------------------------------------------------------------------
    # Core computation

    def _check_inputs(self, X: np.ndarray, y: Optional[np.ndarray]) -> Tuple[np.ndarray, ...]:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"X must have shape (batch, {self.n_features}), got {X.shape}"
            )
        if y is None:
            return (X,)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must have shape ({len(X)},), got {y.shape}")
        if y.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers, got dtype {y.dtype}")
        if len(y) and (y.min() < 0 or y.max() >= self.n_outputs):
            raise ValueError(f"labels must lie in [0, {self.n_outputs}), got "
                             f"[{int(y.min())}, {int(y.max())}]")
        return X, y.astype(np.int64)

    def _forward(self, X: np.ndarray) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """Returns (operands of each layer without the bias column, pre-activations of
        each layer); a convolution's operand is im2col of its input."""
        inputs: List[np.ndarray] = []
        pre: List[np.ndarray] = []
        self._pool_args: List[Optional[np.ndarray]] = []
        a, n = X, len(X)
        for layer, (w, name) in enumerate(zip(self._weights, self._activations)):
            shape = self._shapes[layer]
            if shape is not None:
                a = _conv.im2col(np, shape, a, first_layer=layer == 0)
            inputs.append(a)
            z = _with_ones(a) @ w
            pre.append(z)
            a = _ACTIVATION_FNS[name][0](z)
            arg = None
            if shape is not None:
                a, arg = _conv.pool(np, shape, a, n)
                if layer + 1 < len(self._shapes) and self._shapes[layer + 1] is None:
                    a = a.reshape(n, -1)
            self._pool_args.append(arg)
        return inputs, pre

    def _output(self, z_last: np.ndarray) -> np.ndarray:
        return _ACTIVATION_FNS[self._activations[-1]][0](z_last)

    def _loss_and_output_grad(
        self, z_last: np.ndarray, y: np.ndarray
    ) -> Tuple[float, np.ndarray, np.ndarray]:
        """Returns (loss, dC/dz of the last layer, the network's output scores)."""
        batch = len(y)
        if self._loss == "cross_entropy":
            log_p = _log_softmax(z_last)
            loss = float(-log_p[np.arange(batch), y].mean())
            p = np.exp(log_p)
            dz = p.copy()
            dz[np.arange(batch), y] -= 1.0
            return loss, dz / batch, p
        a = self._output(z_last)
        target = np.zeros_like(a)
        target[np.arange(batch), y] = 1.0
        diff = a - target
        loss = float((diff * diff).sum() / batch)
        dz = _ACTIVATION_FNS[self._activations[-1]][1](z_last) * (2.0 * diff / batch)
        return loss, dz, a

    def _backward(
        self, inputs: List[np.ndarray], pre: List[np.ndarray], dz: np.ndarray
    ) -> List[np.ndarray]:
        grads: List[np.ndarray] = [np.empty(0)] * len(self._weights)
        for layer in range(len(self._weights) - 1, -1, -1):
            # dC/dW on the bias-augmented input: its last row is the bias gradient sum(dz).
            grads[layer] = _with_ones(inputs[layer]).T @ dz
            if layer > 0:
                # The bias row does not feed back into the previous layer.
                da = dz @ self._weights[layer][:-1].T
                shape, below = self._shapes[layer], self._shapes[layer - 1]
                if shape is not None:
                    n = len(pre[-1])
                    da = _conv.unpool(np, below, _conv.col2im(np, shape, da, n),
                                      self._pool_args[layer - 1], n)
                dz = _ACTIVATION_FNS[self._activations[layer - 1]][1](pre[layer - 1]) * da
        return grads

    # -----------------------------------------------------------------------------------------
    # Public API

    def loss_and_gradients(self, X: np.ndarray, y: np.ndarray) -> Tuple[float, List[np.ndarray]]:
        """Computes the batch loss and its gradient with respect to every weight matrix.

        Args:
            X: Inputs of shape (batch, n_features).
            y: Integer labels of shape (batch,).

        Returns:
            The loss and one gradient per layer, shaped like the weights.
        """
        X, y = self._check_inputs(X, y)
        inputs, pre = self._forward(X)
        loss, dz, _ = self._loss_and_output_grad(pre[-1], y)
        return loss, self._backward(inputs, pre, dz)

    def train_step(self, X: np.ndarray, y: np.ndarray, lr: float) -> Tuple[float, int]:
        """Takes one SGD step ``W <- W - lr * dC/dW`` on one batch.

        With ``update_divisor`` D set, the step is ``W <- W - lr * (B / D) * dC/dW`` for a
        batch of B samples (the summed gradient divided by D).

        Args:
            X: Inputs of shape (batch, n_features).
            y: Integer labels of shape (batch,).
            lr: Learning rate, positive.

        Returns:
            The batch loss and the number of correctly classified samples, both measured
            before the update.
        """
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be positive and finite, got {lr!r}")
        X, y = self._check_inputs(X, y)
        inputs, pre = self._forward(X)
        loss, dz, scores = self._loss_and_output_grad(pre[-1], y)
        n_correct = int(np.count_nonzero(scores.argmax(axis=1) == y))
        step = lr if self._update_divisor is None else lr * len(y) / self._update_divisor
        for w, g in zip(self._weights, self._backward(inputs, pre, dz)):
            w -= step * g
        return loss, n_correct

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Returns class scores: softmax probabilities for cross-entropy, else the last activation.

        Args:
            X: Inputs of shape (n, n_features).

        Returns:
            Array of shape (n, n_outputs).
        """
        (X,) = self._check_inputs(X, None)
        _, pre = self._forward(X)
        if self._loss == "cross_entropy":
            return np.exp(_log_softmax(pre[-1]))
        return self._output(pre[-1])

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> Dict[str, float]:
        """Measures loss and accuracy on a dataset without changing the weights.

        Args:
            X: Inputs of shape (n, n_features).
            y: Integer labels of shape (n,).

        Returns:
            ``{"loss": mean loss, "accuracy": fraction classified correctly}``.
        """
        X, y = self._check_inputs(X, y)
        if len(y) == 0:
            raise ValueError("cannot evaluate on an empty dataset")
        _, pre = self._forward(X)
        loss, _, scores = self._loss_and_output_grad(pre[-1], y)
        accuracy = float(np.count_nonzero(scores.argmax(axis=1) == y) / len(y))
        return {"loss": loss, "accuracy": accuracy}

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        epochs: int,
        batch_size: int,
        seed: int,
        base_lr_exp: int,
        halve_at: Sequence[int],
        validation_data: Optional[Tuple[np.ndarray, np.ndarray]] = None,
    ) -> List[Dict[str, object]]:
        """Trains with SGD on the shared batch order and learning-rate schedule.

        Epoch ``e`` (zero-based) uses the batches of ``epoch_batches(len(X), batch_size,
        seed, e)`` and the learning rate ``2 ** -lr_exponent_at(e, base_lr_exp, halve_at)``.

        Args:
            X: Training inputs of shape (n, n_features).
            y: Training labels of shape (n,).
            epochs: Number of passes over the data.
            batch_size: Samples per batch.
            seed: Seed of the batch order.
            base_lr_exp: Learning-rate exponent k of the first epoch (rate 2^-k).
            halve_at: Zero-based epochs at whose start the learning rate halves.
            validation_data: Optional (X_val, y_val) evaluated after every epoch.

        Returns:
            One dict per epoch with keys ``epoch`` (one-based count of completed epochs),
            ``loss`` and ``accuracy`` (averaged over the epoch's batches, each measured before
            its update), ``val_loss`` and ``val_accuracy`` (None without validation data),
            ``lr_exp`` and ``seconds``.
        """
        X, y = self._check_inputs(X, y)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        if len(y) == 0:
            raise ValueError("cannot train on an empty dataset")
        history: List[Dict[str, object]] = []
        for epoch in range(int(epochs)):
            start = time.perf_counter()
            k = lr_exponent_at(epoch, base_lr_exp, halve_at)
            lr = 2.0 ** -k
            total_loss = 0.0
            total_correct = 0
            for idx in epoch_batches(len(y), batch_size, seed, epoch):
                loss, correct = self.train_step(X[idx], y[idx], lr)
                total_loss += loss * len(idx)
                total_correct += correct
            record: Dict[str, object] = {
                "epoch": epoch + 1,
                "loss": total_loss / len(y),
                "accuracy": total_correct / len(y),
                "val_loss": None,
                "val_accuracy": None,
                "lr_exp": k,
            }
            if validation_data is not None:
                scores = self.evaluate(*validation_data)
                record["val_loss"] = scores["loss"]
                record["val_accuracy"] = scores["accuracy"]
            record["seconds"] = time.perf_counter() - start
            history.append(record)
        return history
