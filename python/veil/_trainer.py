"""Verify-mode training (docs/design.md §4.2) from Python."""
from __future__ import annotations

import json
import math
import numbers
import os
import secrets
import shutil
import sys
import time
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from veil import _native
from veil._batching import epoch_batches
from veil import _codes
from veil._callbacks import History, call_each, check_callbacks, format_epoch
from veil._device import Device
from veil._enclave import default_enclave
from veil._errors import ConfigError, DeviceError, InputError, SaturationWarning
from veil._model import Sequential

_LOSSES = _codes.LOSS

#: The largest batch the enclave takes in one step or one inference slot.
MAX_BATCH = _codes.LIMIT["max_batch"]
MAX_THREADS = _codes.LIMIT["max_threads"]


def available_cores() -> int:
    """The cores this process may run on, at most MAX_THREADS (a pass has no more
    blocks than that): what ``threads="auto"`` lends."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))


def resolve_threads(threads) -> int:
    """``threads=`` as a count: None is 1 (no thread lent), "auto" the cores available.
    (Not lent by default: on the CPU device OpenBLAS's spinning threads take the cores.)"""
    if threads is None:
        return 1
    if threads == "auto":
        return available_cores()
    if not isinstance(threads, numbers.Integral) or isinstance(threads, bool) or not (
            1 <= threads <= MAX_THREADS):
        raise ConfigError(f"threads must be None, 'auto' or an int in [1, {MAX_THREADS}], got "
                          f"{threads!r}")
    return int(threads)

#: A fixed, publicly known sealing key for tests and demos. Checkpoints sealed
#: with it protect nothing: anyone can open them. The virtual backend has no
#: platform sealing key, so real use passes a secret 32-byte key of its own.
INSECURE_TEST_SEALING_KEY = b"veil INSECURE test sealing key!!"

_CHECKPOINT_FORMAT = "veil-checkpoint-1"

#: fit warns when more than this fraction of an epoch's fixed-point values were clipped.
#: Well-scaled inputs clip none or a few in 10^5; raw 0-16 pixels on digits clip 0.45% in
#: the first epoch and train to chance.
CLIPPED_WARN_FRACTION = 1e-3


def _sealing_key(key) -> bytes:
    if key is None:
        return b""  # the platform's sealing key (Open Enclave builds)
    key = bytes(key)
    if len(key) != 32:
        raise ConfigError(f"a sealing key is 32 bytes, got {len(key)}")
    return key


def read_sealing_key(path: Union[str, os.PathLike]) -> bytes:
    """Read a 32-byte sealing key from a file holding 64 hex digits (what
    ``openssl rand -hex 32 > FILE`` writes; surrounding whitespace is ignored) or the
    32 raw bytes (``openssl rand 32 > FILE``).

    Raises:
        veil.ConfigError: the file cannot be read or holds neither form.
    """
    shown = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read sealing key file {shown!r}: {e.strerror or e}; make "
                          f"one with `openssl rand -hex 32 > {shown}`") from None
    text = data.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    if len(data) == 32:
        return data
    raise ConfigError(f"sealing key file {shown!r} holds {len(data)} bytes: expected 64 hex "
                      f"digits or 32 raw bytes; make one with `openssl rand -hex 32 > {shown}`")


def _lr_exponent(lr: float) -> int:
    """The k of lr = 2^-k; veil's SGD step is exact only for powers of two."""
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"lr must be a positive power of two, got {lr!r}")
    k = -math.log2(lr)
    if abs(k - round(k)) > 1e-12 or round(k) < 0:
        raise ConfigError(
            f"lr={lr!r} is not 2^-k for an integer k >= 0; veil's exact integer SGD needs "
            f"a power of two (nearest: 2**-{max(0, round(k))})"
        )
    return int(round(k))


def resolve_device(device: Union[str, Device, "_native.NativeDevice"]):
    """Turn ``device=`` into (native device, name, the Python Device object or None).

    "cpu" is the C++ CPU device; "cuda" the CuPy device; "auto" picks CUDA when
    CuPy sees a GPU and the CPU otherwise (saying so once); a veil.Device
    instance is wrapped so the enclave's ocalls reach its Python methods.
    """
    if isinstance(device, _native.NativeDevice):
        return device, device.name, None
    if isinstance(device, Device):
        return _native.python_device(device), device.name, device
    if device == "cpu":
        return _native.cpu_device(), "cpu", None
    if device in ("cuda", "auto"):
        from veil import _cuda

        if _cuda.available():
            cuda = _cuda.CudaDevice()
            return _native.python_device(cuda), "cuda", cuda
        if device == "cuda":
            raise ConfigError(f"device='cuda' needs CuPy and a CUDA GPU: {_cuda.unavailable_reason()}")
        _cuda.note_cpu_fallback()
        return _native.cpu_device(), "cpu", None
    raise ConfigError(f"device={device!r}: use 'auto', 'cpu', 'cuda' or a veil.Device instance")


def _on_host(x):
    """CuPy arrays come to the host; anything else (numpy, pandas, lists) is left to numpy."""
    if type(x).__module__.split(".")[0] == "cupy":
        return x.get()
    return x


def _as_matrix(x, features: int, what: str, image_shape=None) -> np.ndarray:
    arr = np.asarray(_on_host(x))
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{what} must be numeric, got dtype {arr.dtype}")
    if image_shape is not None and arr.ndim == 4:
        # (N, C, H, W) images: the enclave takes each as its C·H·W values in that order.
        if tuple(arr.shape[1:]) != tuple(image_shape):
            raise InputError(f"{what} must have shape (n, {', '.join(map(str, image_shape))}), "
                             f"got {arr.shape}")
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2 or arr.shape[1] != features:
        raise InputError(f"{what} must have shape (n, {features}), got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"{what}[{bad[0]}, {bad[1]}] is {arr[bad[0], bad[1]]}; inputs must be finite")
    return arr


def _as_labels(y, n: int, classes: int, what: str) -> np.ndarray:
    arr = np.asarray(_on_host(y))
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(f"{what} must have shape ({n},), got {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise InputError(f"{what} must hold integer class ids")
    elif arr.dtype.kind not in "iu":
        raise InputError(f"{what} must hold integer class ids, got dtype {arr.dtype}")
    if n and (arr.min() < 0 or arr.max() >= classes):
        raise InputError(f"{what} holds {arr.min() if arr.min() < 0 else arr.max()}; labels must be in [0, {classes})")
    return np.ascontiguousarray(arr, dtype=np.int32)


class _EnclaveSession:
    """What every session object shares: the time split and device-error chaining.

    Subclasses set ``self._native`` (a native session) and ``self._device``.
    """

    def _start_session(self, native) -> None:
        # The session's passes run on self.threads threads (docs/design.md §5).
        self._native = native
        native.use_threads(self.threads)

    def timing(self) -> dict:
        """Work done so far: seconds ``total`` (inside ecalls), ``device`` (in device
        ocalls) and ``enclave`` (the rest), and the bytes device work moved across
        the enclave boundary, ``bytes_to_device`` and ``bytes_from_device``."""
        return self._native.timing()

    def reset_timing(self) -> None:
        self._native.reset_timing()

    def _call(self, fn, *args):
        # A Python device's own exception becomes the cause of the DeviceError.
        try:
            return fn(*args)
        except DeviceError as e:
            raise DeviceError(str(e)) from self._device.python_exception



def _fsync_dir(path: str) -> None:
    """Make a directory's entries (new files, renames) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

class Trainer(_EnclaveSession):
    """Trains a model with the weights on an untrusted device, every product checked.

    Args:
        model: the network.
        mode: "verify" (docs/design.md §2), or "private": fine-tuning with the first
            layers frozen (a ``veil._finetune.PrivateTrainer``, docs/design.md §4.5), which
            takes ``weights=``.
        device: "auto", "cpu", "cuda" or a veil.Device instance.
        loss: "cross_entropy" (softmax fused; the last layer must have no
            activation) or "mse" (the seed's, on one-hot labels).
        lr: learning rate, a power of two 2^-k (the SGD step is exact in integers).
        seed: initial weights and batch order; None draws a random one (kept in ``seed``).
        halve_lr_at: epochs at whose start the learning rate halves.
        batch_size: the largest batch a step will carry. The update is
            ``lr * sum(grad) / 2^ceil(log2(batch_size))``, i.e. the mean gradient
            for a full power-of-two batch. None: the first ``fit(batch_size=...)``
            sets it (64 if fit gives none).
        frac_act, frac_grad: fixed-point fractional bits (docs/design.md §3).
        act_clip, grad_clip, weight_max: magnitude bounds of the exactness budget.
        threads: threads the enclave's passes run on: this one and threads - 1 lent to
            the enclave; "auto": the cores available (at most 16); None: 1. Results
            are bit-identical for any count.
        workers: train data-parallel on this many workers, Ray actors each with its own
            enclave and device, each taking a contiguous shard of every batch; the weights
            are bit-identical to one worker's (docs/design.md §4.6). None: this process's
            own session, without Ray. ``device`` may then also be a
            ``veil.distributed.ShardDevice`` subclass, or a list with one device per worker.
        run_key: with workers, the 32 secret bytes every worker's enclave derives the
            run's shared secrets from; None draws one (kept in ``run_key``: resuming the
            run needs it).
    """

    def __new__(cls, model=None, mode: str = "verify", *args, **kwargs):
        # mode="private" is private fine-tuning (veil._finetune.PrivateTrainer).
        if cls is Trainer and mode == "private":
            from veil._finetune import PrivateTrainer

            return super().__new__(PrivateTrainer)
        return super().__new__(cls)

    def __init__(
        self,
        model: Sequential,
        mode: str = "verify",
        device: Union[str, Device] = "auto",
        loss: str = "cross_entropy",
        lr: float = 2.0**-2,
        seed: Optional[int] = 0,
        halve_lr_at: Sequence[int] = (),
        batch_size: Optional[int] = None,
        frac_act: int = 8,
        frac_grad: int = 12,
        act_clip: float = 64.0,
        grad_clip: float = 8.0,
        weight_max: float = 2.0,
        enclave=None,
        *,
        weights=None,
        threads: Optional[int] = None,
        workers: Optional[int] = None,
        run_key: Optional[bytes] = None,
        _checkpoint: Optional[Tuple[bytes, list, bytes]] = None,
    ):
        if not isinstance(model, Sequential):
            raise ConfigError(f"model must be a veil.Sequential, got {type(model).__name__}")
        if mode != "verify":
            raise ConfigError(f"mode={mode!r}: use 'verify' or 'private' (fine-tuning)")
        if weights is not None:
            raise ConfigError(
                "weights=: verify training starts from weights the enclave derives from the "
                "public seed (docs/design.md §4.2); to start from given weights, freeze the "
                "first layers and fine-tune with mode='private'")
        if loss not in _LOSSES:
            raise ConfigError(f"loss={loss!r}: use 'cross_entropy' or 'mse'")
        # Until a batch size is given (here or by fit), fit may still choose it.
        self._batch_size_open = batch_size is None
        batch_size = 64 if batch_size is None else batch_size
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or not (
                1 <= batch_size <= MAX_BATCH):
            raise ConfigError(f"batch_size must be an int in [1, {MAX_BATCH}], got {batch_size!r}")
        batch_size = int(batch_size)
        if seed is None:
            seed = secrets.randbits(63)
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
            raise ConfigError(f"seed must be an int or None, got {seed!r}")
        self.model = model
        self.mode = mode
        self.loss = loss
        self.lr_exp = _lr_exponent(lr)
        self.seed = int(seed)
        self.halve_lr_at = tuple(int(e) for e in halve_lr_at)
        self.batch_size = batch_size
        specs = model.layer_specs()
        layers = model.wire_specs()
        config = dict(
            loss=_LOSSES[loss], frac_act=int(frac_act), frac_grad=int(frac_grad),
            lr_exp=self.lr_exp, max_batch=batch_size, seed=self.seed & (2**64 - 1),
            act_clip=float(act_clip), grad_clip=float(grad_clip), weight_max=float(weight_max),
        )
        self.config = config
        self._layers = layers
        self.threads = resolve_threads(threads)
        self.workers = workers
        if workers is None:
            if run_key is not None:
                raise ConfigError("run_key= belongs to a run of several workers: give workers= too")
            self._device, self.device_name, self.python_device = resolve_device(device)
            self._enclave = enclave if enclave is not None else default_enclave()
        else:
            from veil import distributed

            if enclave is not None:
                raise ConfigError("enclave=: each worker of a run loads its own enclave")
            self.run_key = distributed.run_key(run_key)
            self._device_spec, self.device_name, self.python_device = device, "shard", None
        # resume() passes (sealed state, stored weights, key) to restore a session.
        self._start_session(self._open_session(_checkpoint))
        self._epochs_done = 0
        self.history: Dict[str, List[dict]] = {"epochs": []}
        #: A callback sets this to True to end fit after the current epoch.
        self.stop_training = False
        # Values the enclave quantizes per training sample: the input, each hidden
        # activation, and the gradient of every layer's output.
        hidden = sum(p * o for p, (_i, o, _a) in zip(model.positions()[:-1], specs[:-1]))
        self._values_per_sample = model.input_size + 2 * hidden + specs[-1][1]

    def _open_session(self, checkpoint=None):
        """A new session for the model and config (restored from checkpoint, if given):
        this process's own, or a run of ``workers`` Ray workers."""
        if self.workers is None:
            return _native.NativeTrainer(self._enclave, self._device, self._layers, self.config,
                                         *(checkpoint or ()))
        from veil import distributed

        old = getattr(self, "_native", None)
        if old is not None:
            old.close()
        session = distributed.DistributedSession(self._layers, self.config, self.workers,
                                                 self._device_spec, self.threads, self.run_key,
                                                 checkpoint)
        self._device = session  # Trainer._call reads python_exception (None) from it
        return session

    # -- introspection ---------------------------------------------------------
    @property
    def checks_passed(self) -> int:
        """Freivalds checks passed in this session."""
        return int(self._native.stats()["checks_passed"])

    def stats(self) -> dict:
        """The enclave's counters: step, checks_passed, products, saturated, lr_exp,
        aborted, threads (the passes' threads), and a trace of what steps cost beyond
        their passes: limb_splits (limb products), max_abs_refreshes (max |M| asked of
        the device), update_operands_sent (operands an update carried rather than
        reused from a product: layer 0's dZ each step, and split operands) and audits
        (weights read back and checked)."""
        return self._native.stats()

    # -- training --------------------------------------------------------------

    def train_step(self, x, y) -> Tuple[float, int]:
        """One checked SGD step on a batch; returns (mean loss, correct)."""
        features, classes = self.model.input_size, self.model.output_size
        x = _as_matrix(x, features, "x", self.model.input_shape)
        labels = _as_labels(y, x.shape[0], classes, "y")
        loss, correct, _saturated, _step, _checks = self._call(self._native.step, x, labels)
        return loss, correct

    def halve_lr(self) -> None:
        """Halve the learning rate now (exact: the device doubles M)."""
        self._call(self._native.halve_lr)
        self.lr_exp += 1

    def fit(
        self,
        X,
        y,
        epochs: int = 1,
        batch_size: Optional[int] = None,
        validation_data: Optional[Tuple[object, object]] = None,
        verbose: int = 1,
        checkpoint_dir: Optional[str] = None,
        sealing_key: Optional[bytes] = None,
        *,
        validation_split: float = 0.0,
        shuffle: bool = True,
        callbacks: Sequence = (),
    ) -> History:
        """Train for ``epochs`` epochs.

        Args:
            X, y: features (n, inputs) and integer labels (n,): numpy arrays, pandas
                objects, CuPy arrays or anything numpy turns into numbers.
            batch_size: samples per step (default: the Trainer's). A Trainer built
                without batch_size takes it from its first fit.
            validation_data: (X_val, y_val) scored after every epoch.
            validation_split: instead, hold out this fraction of (X, y), the last
                samples, as validation data.
            shuffle: a seeded new order each epoch; False keeps the given order.
            verbose: 0 silent; 1 a live bar on a terminal and one kept line per epoch;
                2 the line only.
            checkpoint_dir, sealing_key: save a checkpoint there after every epoch
                (see :meth:`save_checkpoint`).
            callbacks: :class:`veil.Callback` objects, or plain callables given each
                epoch's record; one may set ``trainer.stop_training = True``.

        Returns:
            A :class:`veil.History`: ``.history["loss"]``, ``["accuracy"]``,
            ``["val_loss"]``, ``["val_accuracy"]``, ``["clipped_fraction"]``, ... one
            value per epoch. Every epoch's record is also appended to
            ``self.history["epochs"]`` (kept in checkpoints).

        Warns:
            veil.SaturationWarning: when more than 0.1% of an epoch's fixed-point values
            were clipped (inputs out of scale); the record's ``clipped_fraction`` says how
            many.
        """
        batch_size = self._fit_batch_size(batch_size)
        features, classes = self.model.input_size, self.model.output_size
        X = _as_matrix(X, features, "X", self.model.input_shape)
        labels = _as_labels(y, X.shape[0], classes, "y")
        if X.shape[0] == 0:
            raise InputError("X is empty")
        if not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
            raise ConfigError(f"validation_split must be in [0, 1), got {validation_split!r}")
        if validation_split:
            if validation_data is not None:
                raise ConfigError("give validation_data or validation_split, not both")
            cut = int(X.shape[0] * (1 - validation_split))
            if not 0 < cut < X.shape[0]:
                raise ConfigError(f"validation_split={validation_split} of {X.shape[0]} samples "
                                  "leaves no training or no validation sample")
            validation_data = (X[cut:], labels[cut:])
            X, labels = X[:cut], labels[:cut]
        if validation_data is not None:
            Xv = _as_matrix(validation_data[0], features, "validation X", self.model.input_shape)
            yv = _as_labels(validation_data[1], Xv.shape[0], classes, "validation y")
        if verbose not in (0, 1, 2):
            raise ConfigError(f"verbose={verbose!r}: use 0, 1 or 2")
        callbacks = check_callbacks(callbacks)
        self.stop_training = False
        total = self._epochs_done + int(epochs)
        records: List[dict] = []
        warned = False
        for _ in range(int(epochs)):
            epoch = self._epochs_done
            if epoch in self.halve_lr_at:
                self.halve_lr()
            start = time.perf_counter()
            if shuffle:
                batches = epoch_batches(X.shape[0], batch_size, self.seed, epoch)
            else:
                batches = [np.arange(i, min(i + batch_size, X.shape[0]))
                           for i in range(0, X.shape[0], batch_size)]
            progress = None
            if verbose == 1:
                from tqdm.auto import tqdm

                # A live bar only on a terminal (disable=None); the kept line follows it.
                progress = tqdm(total=len(batches), desc=f"epoch {epoch + 1}/{total}",
                                leave=False, disable=None, unit="step", file=sys.stderr)
            total_loss, total_correct, seen, clipped = 0.0, 0, 0, 0
            try:
                for idx in batches:
                    loss, correct, saturated, _step, checks = self._call(
                        self._native.step, X[idx], labels[idx])
                    total_loss += loss * len(idx)
                    total_correct += correct
                    seen += len(idx)
                    clipped += saturated
                    if progress is not None:
                        progress.update(1)
                        progress.set_postfix(loss=f"{total_loss / seen:.4f}",
                                             acc=f"{total_correct / seen:.4f}", checks=checks)
            finally:
                if progress is not None:
                    progress.close()
            entry = {
                "epoch": epoch + 1,
                "loss": total_loss / seen,
                "accuracy": total_correct / seen,
                "lr_exp": self.lr_exp,
                "saturated": int(clipped),
                "clipped_fraction": min(1.0, clipped / (seen * self._values_per_sample)),
            }
            if validation_data is not None:
                val = self.evaluate(Xv, yv)
                entry["val_loss"], entry["val_accuracy"] = val["loss"], val["accuracy"]
            entry["checks_passed"] = self.checks_passed
            entry["seconds"] = time.perf_counter() - start
            self.history["epochs"].append(entry)
            records.append(entry)
            self._epochs_done += 1
            if checkpoint_dir is not None:
                self.save_checkpoint(checkpoint_dir, sealing_key=sealing_key)
            if verbose:
                print(format_epoch(entry, total), flush=True)
            if entry["clipped_fraction"] > CLIPPED_WARN_FRACTION and not warned:
                warned = True
                warnings.warn(self._clipping_advice(entry), SaturationWarning, stacklevel=2)
            call_each(callbacks, self, entry)
            if self.stop_training:
                break
        return History(records)

    def _clipping_advice(self, entry: dict) -> str:
        return (f"epoch {entry['epoch']}: {100 * entry['clipped_fraction']:.2f}% of the "
                f"fixed-point values were clipped (activations at +-{self.config['act_clip']:g}, "
                f"gradients at +-{self.config['grad_clip']:g}), so training learns little; "
                "scale the inputs to about [-1, 1] (divide pixels by their maximum, or "
                "standardize each feature: `veil train --standardize`)")

    def _fit_batch_size(self, batch_size) -> int:
        if batch_size is None:
            self._batch_size_open = False
            return self.batch_size
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool):
            raise ConfigError(f"batch_size must be an int, got {batch_size!r}")
        batch_size = int(batch_size)
        untouched = self._epochs_done == 0 and int(self._native.stats()["step"]) == 0
        if (batch_size != self.batch_size and self._batch_size_open and untouched
                and 1 <= batch_size <= MAX_BATCH):
            # Nothing trained yet: rebuild the session for this batch size (same seed,
            # so the same initial weights).
            self.batch_size = batch_size
            self.config["max_batch"] = batch_size
            self._start_session(self._open_session())
        self._batch_size_open = False
        if not 1 <= batch_size <= self.batch_size:
            raise ConfigError(
                f"batch_size={batch_size!r} must be in [1, {self.batch_size}], the batch_size "
                "this Trainer was built with (it fixes the largest batch and the update's "
                "divisor); build the Trainer with the batch_size you train with, or leave "
                "it out there"
            )
        return batch_size

    # -- checkpoints -----------------------------------------------------------
    @property
    def epochs_done(self) -> int:
        """Epochs trained so far (restored ones included)."""
        return self._epochs_done

    def save_checkpoint(self, path: str, sealing_key: Optional[bytes] = None) -> None:
        """Write a checkpoint directory to resume training from (not the model file
        that :func:`veil.save_model` writes for prediction): the enclave's sealed state (secrets,
        fingerprints, step, schedule; AES-256-GCM), the device's weights beside
        it, and the host-side progress (epochs, history).

        Args:
            path: the directory; replaced atomically, so a crash leaves the
                previous checkpoint intact.
            sealing_key: 32 secret bytes, or None for the platform's sealing key
                (Open Enclave builds; the virtual backend has none). See
                ``veil.INSECURE_TEST_SEALING_KEY`` for tests.
        """
        key = _sealing_key(sealing_key)
        # The enclave checks the device's weights against its fingerprints before
        # it seals; what is stored is what it checked (a lying device fails here,
        # and the previous checkpoint stays).
        blob, checked = self._native.checkpoint(key)
        weights = {f"layer{l}": w.reshape(spec[0] + 1, spec[1])
                   for l, (spec, w) in enumerate(zip(self._layers, checked))}
        meta = {
            "format": _CHECKPOINT_FORMAT,
            "layers": [list(spec) for spec in self._layers],
            "input_shape": None if self.model.input_shape is None else list(self.model.input_shape),
            "config": self.config,
            "loss": self.loss,
            "seed": self.seed,
            "halve_lr_at": list(self.halve_lr_at),
            "batch_size": self.batch_size,
            "lr_exp": self.lr_exp,
            "epochs_done": self._epochs_done,
            "history": self.history,
        }
        path = os.path.abspath(path)
        staging, previous = path + ".staging", path + ".previous"
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        with open(os.path.join(staging, "state.sealed"), "wb") as f:
            f.write(blob)
        np.savez(os.path.join(staging, "weights.npz"), **weights)
        with open(os.path.join(staging, "trainer.json"), "w") as f:
            json.dump(meta, f)
        for name in ("state.sealed", "weights.npz", "trainer.json"):
            with open(os.path.join(staging, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(staging)
        # The last good checkpoint goes only once the new one is on disk under
        # its name (resume falls back to .previous in between).
        shutil.rmtree(previous, ignore_errors=True)
        if os.path.exists(path):
            os.replace(path, previous)
        os.replace(staging, path)
        _fsync_dir(os.path.dirname(path))
        shutil.rmtree(previous, ignore_errors=True)

    @classmethod
    def resume(cls, path: str, device: Union[str, Device] = "auto",
               sealing_key: Optional[bytes] = None, enclave=None,
               threads: Optional[int] = None, workers: Optional[int] = None,
               run_key: Optional[bytes] = None) -> "Trainer":
        """Resume from a directory written by :meth:`save_checkpoint` (or by ``fit`` with
        ``checkpoint_dir``). The device receives the stored weights, and the
        enclave opens the sealed state and checks every layer's weights against
        its fingerprints before anything else happens. A run of several workers
        resumes with ``workers=`` and the same ``run_key`` (any number of workers, or
        none: the weights go on bit-identically).

        Raises:
            veil.InputError: tampered checkpoint, another key, another model.
            veil.VerificationError: weights that do not match the sealed state
                (altered, or from another point of the run).
        """
        path = os.path.abspath(path)
        if not os.path.isdir(path) and os.path.isdir(path + ".previous"):
            path = path + ".previous"  # a crash between the two renames of save()
        try:
            with open(os.path.join(path, "trainer.json")) as f:
                meta = json.load(f)
            with open(os.path.join(path, "state.sealed"), "rb") as f:
                blob = f.read()
            with np.load(os.path.join(path, "weights.npz"), allow_pickle=False) as stored:
                weights = [stored[f"layer{l}"] for l in range(len(meta["layers"]))]
        except (OSError, KeyError, ValueError) as e:
            raise InputError(f"{path} is not a veil checkpoint: {e}") from e
        if meta.get("format") != _CHECKPOINT_FORMAT:
            raise InputError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
        from veil._model import from_wire

        model = from_wire(meta["layers"], meta.get("input_shape"))
        config = meta["config"]
        self = cls(
            model, mode="verify", device=device, loss=meta["loss"],
            lr=2.0 ** -config["lr_exp"], seed=meta["seed"], halve_lr_at=meta["halve_lr_at"],
            batch_size=meta["batch_size"], frac_act=config["frac_act"],
            frac_grad=config["frac_grad"], act_clip=config["act_clip"],
            grad_clip=config["grad_clip"], weight_max=config["weight_max"], enclave=enclave,
            threads=threads, workers=workers, run_key=run_key,
            _checkpoint=(blob, weights, _sealing_key(sealing_key)))
        self.lr_exp = int(meta["lr_exp"])
        self._epochs_done = int(meta["epochs_done"])
        self.history = meta["history"]
        return self

    # -- inference -------------------------------------------------------------
    def predict(self, X) -> np.ndarray:
        """Verify-mode inference: the predicted class of each row (an int array, the
        argmax of :meth:`predict_proba`), every product checked."""
        return np.argmax(self.predict_proba(X), axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """Verify-mode inference: class probabilities (softmax for cross-entropy,
        the last activation for MSE), every product checked."""
        X = _as_matrix(X, self.model.input_size, "X", self.model.input_shape)
        if X.shape[0] == 0:
            return np.empty((0, self.model.output_size))
        parts = [self._call(self._native.predict, X[i:i + self.batch_size])
                 for i in range(0, X.shape[0], self.batch_size)]
        return np.concatenate(parts, axis=0)

    def evaluate(self, X, y) -> Dict[str, float]:
        """Loss and accuracy of verify-mode predictions on (X, y)."""
        probs = self.predict_proba(X)
        labels = _as_labels(y, probs.shape[0], self.model.output_size, "y")
        return score(probs, labels, self.loss)

    def export_weights(self) -> List[np.ndarray]:
        """The device's weights as float arrays of shape (inputs + 1, outputs), bias
        last, each checked against the enclave's fingerprints before release."""
        out = []
        for layer, (i, o, _a) in enumerate(self.model.layer_specs()):
            flat = self._call(self._native.export_weights, layer)
            out.append(flat.reshape(i + 1, o))
        return out


def score(probs: np.ndarray, labels: np.ndarray, loss: str) -> Dict[str, float]:
    """Mean loss and accuracy of predicted probabilities against integer labels."""
    n = probs.shape[0]
    if loss == "cross_entropy":
        value = float(-np.mean(np.log(np.clip(probs[np.arange(n), labels], 1e-300, None))))
    else:
        onehot = np.zeros_like(probs)
        onehot[np.arange(n), labels] = 1.0
        value = float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    accuracy = float(np.mean(np.argmax(probs, axis=1) == labels))
    return {"loss": value, "accuracy": accuracy}
