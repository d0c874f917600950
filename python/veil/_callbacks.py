"""What ``Trainer.fit`` returns and calls each epoch: History, callbacks, the epoch line."""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from veil._errors import ConfigError


class History:
    """What :meth:`veil.Trainer.fit` returns, as in Keras.

    Attributes:
        history: metric name -> one value per epoch of that ``fit`` call ("loss",
            "accuracy", "val_loss", "val_accuracy", "clipped_fraction", "seconds", ...).
        epoch: the epoch numbers (1-based, counted over the trainer's whole life).
        epochs: the per-epoch records themselves, one dict each.
    """

    def __init__(self, records: Sequence[Dict[str, Any]]) -> None:
        self.epochs: List[Dict[str, Any]] = list(records)
        self.epoch: List[int] = [int(r["epoch"]) for r in self.epochs]
        keys: List[str] = []
        for record in self.epochs:
            keys += [k for k in record if k != "epoch" and k not in keys]
        self.history: Dict[str, List[Any]] = {k: [r.get(k) for r in self.epochs] for k in keys}

    def __repr__(self) -> str:
        return f"veil.History(epochs={len(self.epochs)}, keys={sorted(self.history)})"


class Callback:
    """Base of fit's callbacks: override :meth:`on_epoch_end`.

    A callback stops training by setting ``trainer.stop_training = True``.
    """

    def on_epoch_end(self, trainer, logs: Dict[str, Any]) -> None:
        """Called after each epoch with the trainer and that epoch's record."""


def _better(monitor: str, mode: str) -> Callable[[float, float, float], bool]:
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    if mode == "min":
        return lambda value, best, delta: value < best - delta
    if mode == "max":
        return lambda value, best, delta: value > best + delta
    raise ConfigError(f"mode={mode!r}: use 'auto', 'min' or 'max'")


def _monitored(logs: Dict[str, Any], monitor: str, who: str) -> float:
    value = logs.get(monitor)
    if value is None:
        known = ", ".join(k for k, v in logs.items() if isinstance(v, (int, float)))
        raise ConfigError(f"{who}: monitor={monitor!r} is not in this epoch's record "
                          f"(it has {known}); val_* needs validation_data or validation_split")
    return float(value)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs. ``mode="auto"`` maximizes metrics named like accuracy, minimizes the rest."""

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto") -> None:
        self.monitor, self.patience, self.min_delta = monitor, int(patience), abs(float(min_delta))
        self._better = _better(monitor, mode)
        self.best: Optional[float] = None
        self.wait = 0
        self.stopped_epoch: Optional[int] = None

    def on_epoch_end(self, trainer, logs: Dict[str, Any]) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if self.best is None or self._better(value, self.best, self.min_delta):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = int(logs["epoch"])
            trainer.stop_training = True


class ModelCheckpoint(Callback):
    """Save the public model file (:func:`veil.save_model`) after epochs.

    Args:
        filepath: where to write; ``{epoch}`` in it is replaced by the epoch number.
        monitor, mode: with ``save_best_only``, the metric that decides "best".
        save_best_only: write only when ``monitor`` improved.
        save_model_kwargs: passed on to :func:`veil.save_model` (e.g. ``mean``, ``scale``).
    """

    def __init__(self, filepath: str, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", **save_model_kwargs: Any) -> None:
        self.filepath, self.monitor, self.save_best_only = str(filepath), monitor, save_best_only
        self._better = _better(monitor, mode)
        self.best: Optional[float] = None
        self.kwargs = save_model_kwargs

    def on_epoch_end(self, trainer, logs: Dict[str, Any]) -> None:
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if self.best is not None and not self._better(value, self.best, 0.0):
                return
            self.best = value
        from veil._inference import save_model

        save_model(self.filepath.replace("{epoch}", str(logs["epoch"])), trainer, **self.kwargs)


CallbackLike = Union[Callback, Callable[[Dict[str, Any]], Any]]


def call_each(callbacks: Sequence[CallbackLike], trainer, logs: Dict[str, Any]) -> None:
    """Run every callback on one epoch's record; a plain callable gets the record only."""
    for cb in callbacks:
        if isinstance(cb, Callback):
            cb.on_epoch_end(trainer, logs)
        else:
            cb(logs)


def check_callbacks(callbacks) -> List[CallbackLike]:
    out = list(callbacks or ())
    for cb in out:
        if not isinstance(cb, Callback) and not callable(cb):
            raise ConfigError(f"callbacks: {cb!r} is neither a veil.Callback nor a callable")
    return out


def _number(value: Any) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{float(value):.4f}"


def format_epoch(record: Dict[str, Any], total: int) -> str:
    """The kept line per epoch that ``fit(verbose=1)`` and ``veil train`` print."""
    parts = [f"epoch {int(record['epoch']):>{len(str(total))}}/{total}",
             f"loss={_number(record.get('loss'))}", f"acc={_number(record.get('accuracy'))}"]
    if record.get("val_accuracy") is not None:
        parts.append(f"val_loss={_number(record.get('val_loss'))}")
        parts.append(f"val_acc={_number(record.get('val_accuracy'))}")
    if record.get("clipped_fraction") is not None:
        parts.append(f"clipped={100 * float(record['clipped_fraction']):.2f}%")
    if record.get("checks_passed") is not None:
        parts.append(f"checks={int(record['checks_passed'])}")
    if record.get("seconds") is not None:
        parts.append(f"{float(record['seconds']):.1f}s")
    return "  ".join(parts)
