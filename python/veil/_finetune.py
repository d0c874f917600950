"""Private fine-tuning (docs/design.md §4.5): the frozen layers run on the device as in
private inference, behind one-time pads and with every product checked; the trainable
head after them trains inside the enclave in float64."""
from __future__ import annotations

import numbers
import secrets
import weakref
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from veil._device import Device
from veil._errors import ConfigError, InputError
from veil._model import Sequential
from veil._trainer import MAX_BATCH, Trainer, _as_labels, _as_matrix, score

#: Slots sealed at a time when a step finds none left (the offline phase, on demand).
SLOTS_PER_PRECOMPUTE = 32


class _HeadSession:
    """What Trainer.fit asks of ``self._native``, answered by the fine-tuning session.

    It holds its trainer weakly: a reference cycle would keep the enclave session (of
    which the enclave holds a bounded number) open until the cyclic garbage collector ran.
    """

    def __init__(self, trainer: "PrivateTrainer") -> None:
        self._ref = weakref.ref(trainer)

    @property
    def _trainer(self) -> "PrivateTrainer":
        return self._ref()

    def step(self, x, labels):
        return self._trainer._step(x, labels)

    def stats(self) -> dict:
        st = self._trainer.inference.status()
        return {"step": self._trainer._steps, "checks_passed": st["checks_passed"],
                "saturated": st["saturated"], "aborted": st["aborted"]}

    def timing(self) -> dict:
        return self._trainer.inference.timing()

    def reset_timing(self) -> None:
        self._trainer.inference.reset_timing()


def initial_head(specs, seed: int) -> List[np.ndarray]:
    """Seeded initial weights of layers veil is not given: He-uniform for ReLU and
    softplus, Glorot-uniform otherwise, zero bias (as verify training starts)."""
    rng = np.random.default_rng(seed)
    out = []
    for n, m, act in specs:
        limit = np.sqrt(6.0 / n) if act in ("relu", "softplus") else np.sqrt(6.0 / (n + m))
        w = np.zeros((n + 1, m))
        w[:-1] = rng.uniform(-limit, limit, (n, m))
        out.append(w)
    return out


class PrivateTrainer(Trainer):
    """``veil.Trainer(model, mode="private", weights=...)``: fine-tunes a model whose first
    layers are frozen (``veil.Dense(..., trainable=False)`` or ``model.freeze(upto=k)``).

    The frozen layers run on the device exactly as private inference runs them: it sees
    only X~ = X_q + R mod p_b, uniform, and every product is checked; each step consumes
    one precomputed slot (sealed U = R·W_q), sealed on demand or by :meth:`precompute`.
    The trainable layers after them (the head) train inside the enclave in float64 with
    SGD, ``W <- W - lr * mean gradient``; the device never sees them.

    Args:
        model: the network; its first dense layer must be frozen and the frozen layers
            must come first.
        weights: float weights of the frozen layers, or of every layer (a model file,
            an ``.npz``, a PyTorch ``state_dict`` or a list: :func:`veil.load_weights`).
            Head layers without weights start from ``seed`` (He/Glorot-uniform).
        lr: the head's learning rate (any positive number).
        batch_size: rows per step and per slot (64 when None).
        frac_weights: fixed-point bits of the frozen layers' W_q.
        seed: the head's initial weights and the batch order (None draws one).
        device, loss, frac_act, act_clip, enclave: as for verify-mode
        :class:`veil.Trainer`. frac_grad, grad_clip and weight_max do not apply (the head
        trains in float64); ``halve_lr_at`` and checkpoints are not offered in this mode.
    """

    def __init__(self, model: Sequential, mode: str = "private",
                 device: Union[str, Device] = "auto", loss: str = "cross_entropy",
                 lr: float = 0.1, seed: Optional[int] = 0, halve_lr_at: Sequence[int] = (),
                 batch_size: Optional[int] = None, frac_act: int = 8, frac_grad: int = 12,
                 act_clip: float = 64.0, grad_clip: float = 8.0, weight_max: float = 2.0,
                 enclave=None, *, weights=None, frac_weights: int = 10,
                 threads: Optional[int] = None, _checkpoint=None):
        from veil._inference import Inference
        from veil._weights import load_weights

        if not isinstance(model, Sequential):
            raise ConfigError(f"model must be a veil.Sequential, got {type(model).__name__}")
        specs = model.layer_specs()
        frozen = _frozen_prefix(model)
        if not (isinstance(lr, numbers.Real) and 0 < float(lr) < 1e6):
            raise ConfigError(f"lr={lr!r}: the head's learning rate must be a positive number")
        if tuple(halve_lr_at):
            raise ConfigError("halve_lr_at is for verify mode; in private fine-tuning give the "
                              "head's lr directly")
        if weights is None:
            raise ConfigError(f"private fine-tuning needs weights for the {frozen} frozen "
                              "layer(s): weights=<model file, .npz, state_dict or list>")
        given = load_weights(weights)
        if len(given) not in (frozen, len(specs)):
            raise ConfigError(f"{len(given)} weight arrays: give the {frozen} frozen layers' "
                              f"or all {len(specs)} layers'")
        self.seed = secrets.randbits(63) if seed is None else int(seed)
        full = given + initial_head(specs[len(given):], self.seed)
        self.model, self.mode, self.loss = model, "private", loss
        self.lr, self.lr_exp, self.halve_lr_at = float(lr), None, ()
        self.batch_size = 64 if batch_size is None else batch_size
        self.frozen_layers = frozen
        #: The weights fine-tuning started from (float64 copies).
        self.initial_weights = [np.array(w, dtype=np.float64) for w in full]
        self.inference = Inference(full, mode="private", device=device, model=model, loss=loss,
                                   batch_size=self.batch_size, frac_act=frac_act,
                                   act_clip=act_clip, frac_weights=frac_weights,
                                   enclave=enclave, head_layers=len(specs) - frozen, head_lr=lr,
                                   threads=threads)
        self.threads = self.inference.threads
        self.config = dict(self.inference.config)
        self._device, self.device_name = self.inference._device, self.inference.device_name
        self.python_device = self.inference.python_device
        self._enclave = self.inference._enclave
        self._native = _HeadSession(self)
        self._steps = 0
        self._epochs_done = 0
        self._batch_size_open = False
        self.history: Dict[str, List[dict]] = {"epochs": []}
        self.stop_training = False
        # Values quantized per sample: the input and every frozen layer's output.
        self._values_per_sample = specs[0][0] + sum(o for _i, o, _a in specs[:frozen])

    def precompute(self, batches: int, verbose: int = 0) -> int:
        """Seal ``batches`` slots ahead (the offline phase): one per future step or
        prediction batch. Returns the bytes the host keeps."""
        return self.inference.precompute(batches, self.batch_size, verbose=verbose)

    def _next_slot(self) -> bytes:
        if self.inference.slots_left == 0:
            self.precompute(SLOTS_PER_PRECOMPUTE)
        return self.inference.sealed[min(self.inference.sealed)]

    def _step(self, x: np.ndarray, labels: np.ndarray):
        native = self.inference._native
        try:
            loss, correct, saturated, step = native.train_step(
                x, np.ascontiguousarray(labels, dtype=np.int32), self._next_slot())
        finally:
            self.inference._forget_spent_slots()
        self._steps = int(step)
        return loss, correct, saturated, step, self.checks_passed

    def train_step(self, x, y) -> Tuple[float, int]:
        """One step: the frozen layers privately on the device, SGD on the head in the
        enclave; returns (mean loss, correct)."""
        x = _as_matrix(x, self.model.input_size, "x")
        if not 1 <= x.shape[0] <= self.batch_size:
            raise InputError(f"a batch of {x.shape[0]} rows: slots hold 1 to {self.batch_size}")
        labels = _as_labels(y, x.shape[0], self.model.output_size, "y")
        loss, correct, *_ = self._call(self._step, x, labels)
        return loss, correct

    def _fit_batch_size(self, batch_size) -> int:
        if batch_size is None:
            return self.batch_size
        if (not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool)
                or not 1 <= batch_size <= MAX_BATCH):
            raise ConfigError(f"batch_size must be an int in [1, {MAX_BATCH}], got {batch_size!r}")
        if batch_size > self.batch_size:
            if self.inference.slots_left:
                raise ConfigError(f"batch_size={batch_size}: the unused slots hold batches of "
                                  f"{self.batch_size}; build the Trainer with batch_size="
                                  f"{batch_size}")
            self.batch_size = self.inference.batch_size = int(batch_size)
        return int(batch_size)

    def halve_lr(self) -> None:
        raise ConfigError("halve_lr is for verify mode; private fine-tuning has a fixed head lr")

    def save_checkpoint(self, path: str, sealing_key: Optional[bytes] = None) -> None:
        raise ConfigError("checkpoints of private fine-tuning are not offered (slots and masks "
                          "are bound to this enclave instance); write the trained model with "
                          "veil.save_model(path, trainer)")

    def _clipping_advice(self, entry: dict) -> str:
        return (f"epoch {entry['epoch']}: {100 * entry['clipped_fraction']:.2f}% of the "
                f"fixed-point inputs and frozen activations were clipped at "
                f"+-{self.config['act_clip']:g}; scale the inputs to about [-1, 1]")

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities through the frozen layers (privately, one slot per batch) and the
        current head."""
        X = _as_matrix(X, self.model.input_size, "X")
        needed = -(-X.shape[0] // self.batch_size) - self.inference.slots_left
        if needed > 0:
            self.precompute(needed)
        return self.inference.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)

    def evaluate(self, X, y) -> Dict[str, float]:
        probs = self.predict_proba(X)
        return score(probs, _as_labels(y, probs.shape[0], self.model.output_size, "y"), self.loss)

    def export_weights(self) -> List[np.ndarray]:
        """The frozen layers' weights as given and the head's as trained (float64)."""
        out = [w.copy() for w in self.initial_weights[:self.frozen_layers]]
        for layer in range(self.frozen_layers, len(self.initial_weights)):
            shape = self.initial_weights[layer].shape
            out.append(self._call(self.inference._native.export_head, layer).reshape(shape))
        return out


def _frozen_prefix(model: Sequential) -> int:
    """How many leading dense layers are frozen, after checking private fine-tuning can
    run the model: layer 0 frozen, frozen layers first, at least one trainable."""
    trainable = model.trainable
    specs = model.layer_specs()
    if trainable[0]:
        i, o, _a = specs[0]
        raise ConfigError(
            f"mode='private': layer 0 (Dense({i}, {o})) is trainable, but it sees the data. "
            "Training it privately would mean training the whole layer inside the enclave "
            "(O(B·n·m) per step, the device idle), since a one-time pad cannot hide the "
            "inputs of a layer whose weights change (docs/design.md §6). Freeze it and train "
            f"the layers after it: veil.Dense({i}, {o}, trainable=False) or "
            "model.freeze(upto=1) (or more layers)")
    frozen = trainable.index(True) if True in trainable else len(trainable)
    if frozen == len(trainable):
        raise ConfigError("mode='private': every layer is frozen, so nothing would train; use "
                          "veil.Inference(weights, mode='private') to run the model")
    if not all(trainable[frozen:]):
        raise ConfigError(f"mode='private': frozen layers must come first; layer {frozen} "
                          "trains but a later one is frozen")
    return frozen
