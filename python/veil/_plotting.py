"""Training-curve plots written by ``veil train``."""

from __future__ import annotations

import math
import os
from typing import Any, List, Mapping, Optional, Sequence, Union

__all__ = ["plot_history"]


def _series(epochs: Sequence[Mapping[str, Any]], key: str) -> Optional[List[float]]:
    """Returns the values of ``key`` per epoch (NaN where absent), or None if all are absent."""
    values: List[float] = []
    for record in epochs:
        value = record.get(key)
        values.append(float("nan") if value is None else float(value))
    if all(math.isnan(v) for v in values):
        return None
    return values


def plot_history(history: Mapping[str, Any], path: Union[str, os.PathLike[str]]) -> str:
    """Writes a PNG with loss and accuracy per epoch.

    The left panel shows loss and the right panel accuracy, each with the training curve and
    the validation curve when present. When the history also holds the float64 reference's
    epochs, its curves are drawn dashed in the same panels.

    Args:
        history: A mapping with ``"epochs"``, a list of per-epoch dicts with keys ``loss``,
            ``accuracy`` and optionally ``val_loss`` and ``val_accuracy`` (None or missing
            means not measured), and optionally ``"float_epochs"``, the reference trainer's
            list in the same format (None when there is none). ``veil train``'s
            ``history.json`` has this shape.
        path: Where to write the PNG.

    Returns:
        The path written, as a string.

    Raises:
        ValueError: If ``history`` has no ``"epochs"`` list.
    """
    epochs = history.get("epochs")
    if not isinstance(epochs, (list, tuple)):
        raise ValueError("history needs an 'epochs' list of per-epoch dicts")
    float_epochs = history.get("float_epochs") or []

    # Imported here so that importing veil (and `veil --help`) never pays for matplotlib.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A bare Figure on an Agg canvas avoids pyplot's global state and any GUI backend.
    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 2)
    # (label, records, line style, train colour, validation colour); the reference is dashed
    # and differently coloured so it stays visible where it coincides with veil's curve.
    runs = [
        ("veil", epochs, "-", "tab:blue", "tab:orange"),
        ("float64", float_epochs, "--", "tab:green", "tab:red"),
    ]
    for axis, metric, title in zip(panels, ("loss", "accuracy"), ("Loss", "Accuracy")):
        for label, records, style, train_color, val_color in runs:
            # Epochs are numbered by position so both runs line up whatever their own counter.
            x = list(range(1, len(records) + 1))
            for prefix, part, color in (("", "train", train_color), ("val_", "val", val_color)):
                values = _series(records, prefix + metric)
                if values is not None:
                    axis.plot(x, values, style, color=color, marker="." if len(x) < 40 else None,
                              label=f"{label} {part}")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(True, alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    figure.tight_layout()
    out = os.fspath(path)
    figure.savefig(out, format="png")
    return out
