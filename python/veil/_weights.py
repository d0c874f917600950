"""Float weights from elsewhere: a veil model file or any ``.npz``, a list of arrays, or a
PyTorch ``state_dict`` of Linear layers, as veil's (inputs + 1, outputs) arrays, bias last."""
from __future__ import annotations

import os
from typing import List

import numpy as np

from veil._errors import ConfigError, InputError


def host_array(value, what: str) -> np.ndarray:
    """A float64 numpy copy of a numpy, CuPy or torch array (InputError if not numeric)."""
    if hasattr(value, "detach"):  # a torch tensor, on any device
        value = value.detach().cpu().numpy()
    elif hasattr(value, "get") and not isinstance(value, np.ndarray):  # CuPy
        value = value.get()
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{what}: weights must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _from_state_dict(state) -> List[np.ndarray]:
    """Linear layers in the dict's order: ``<name>.weight`` (outputs, inputs) and an
    optional ``<name>.bias`` (outputs,)."""
    names = [k[:-len(".weight")] for k in state if k.endswith(".weight")]
    if not names:
        raise ConfigError("the state_dict has no '<layer>.weight' entries")
    unknown = [k for k in state if not k.endswith((".weight", ".bias"))]
    if unknown:
        raise ConfigError(f"the state_dict has entries veil cannot place: {unknown[:3]}; only "
                          "Linear layers (weight and bias) are read")
    out = []
    for name in names:
        w = host_array(state[name + ".weight"], f"{name}.weight")
        if w.ndim != 2:
            raise ConfigError(f"{name}.weight has shape {w.shape}: only Linear layers "
                              "(2-D weights) are read from a state_dict")
        b = (host_array(state[name + ".bias"], f"{name}.bias") if name + ".bias" in state
             else np.zeros(w.shape[0]))
        if b.shape != (w.shape[0],):
            raise InputError(f"{name}.bias has shape {b.shape}; {name}.weight needs "
                             f"({w.shape[0]},)")
        out.append(np.vstack([w.T, b[None, :]]))
    return out


def load_weights(source) -> List[np.ndarray]:
    """Float weights as veil takes them: one float64 array per dense layer, shape
    (inputs + 1, outputs), bias in the last row.

    Args:
        source: a model file (:func:`veil.save_model`) or a :class:`veil.SavedModel`;
            any other ``.npz`` holding ``layer_0``, ``layer_1``, ... or state_dict-style
            ``<name>.weight`` / ``<name>.bias`` arrays; a PyTorch ``state_dict`` of
            Linear layers (``model.state_dict()``; ``weight`` is (outputs, inputs)); or a
            list with, per layer, an (inputs + 1, outputs) array or a ``(W, b)`` pair with
            W of shape (inputs, outputs).

    Raises:
        veil.ConfigError: a source veil cannot read (the message says what it lacks).
        veil.InputError: arrays of the wrong shape or type.
    """
    from veil._inference import SavedModel, load_model

    if isinstance(source, SavedModel):
        return [np.array(w, dtype=np.float64) for w in source.weights]
    if isinstance(source, (str, os.PathLike)):
        try:
            with np.load(source, allow_pickle=False) as data:
                files = list(data.files)
                if "activations" in files and "layer_0" in files:
                    return load_model(source).weights
                if "layer_0" in files:
                    count = sum(1 for k in files if k.startswith("layer_"))
                    return [np.array(data[f"layer_{i}"], dtype=np.float64) for i in range(count)]
                return _from_state_dict({k: np.array(data[k]) for k in files})
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read weights from {os.fspath(source)!r}: {e}") from None
    if isinstance(source, dict) or hasattr(source, "keys"):
        return _from_state_dict(dict(source))
    if isinstance(source, (list, tuple)):
        out = []
        for i, layer in enumerate(source):
            if isinstance(layer, (list, tuple)) and len(layer) == 2:
                w = host_array(layer[0], f"layer {i} W")
                b = host_array(layer[1], f"layer {i} b").reshape(-1)
                if w.ndim != 2 or b.shape != (w.shape[1],):
                    raise InputError(f"layer {i}: W {w.shape} and b {b.shape} do not make a "
                                     "dense layer (W is (inputs, outputs), b (outputs,))")
                out.append(np.vstack([w, b[None, :]]))
            else:
                out.append(host_array(layer, f"layer {i}"))
        return out
    raise ConfigError(f"weights must be a model file, an .npz, a state_dict or a list of "
                      f"arrays, got {type(source).__name__}")
