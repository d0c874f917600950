"""Private and verify-mode inference (docs/design.md §4.1) from Python, and a recording device."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from veil import _native
from veil import _codes
from veil._device import Device, NumpyDevice
from veil._enclave import default_enclave
from veil._errors import ConfigError, InputError, ProtocolError
from veil._model import ACTIVATIONS, Sequential, _Activation
from veil._trainer import (
    MAX_BATCH,
    Trainer,
    _as_labels,
    _as_matrix,
    _EnclaveSession,
    resolve_threads,
    resolve_device,
    score,
)
from veil._weights import host_array, load_weights

_MODES = _codes.INFERENCE_MODE
_LOSSES = _codes.LOSS

Weights = List[np.ndarray]


# -- the model file -------------------------------------------------------------------------------

_MODEL_FORMAT = "veil-model-1"


@dataclass(frozen=True, eq=False)
class SavedModel:
    """A trained model as :func:`save_model` writes it and :func:`load_model` reads it.

    Attributes:
        weights: one float64 array per layer, shape (inputs + 1, outputs), bias last.
        activations: one activation name per layer ("relu", ..., "identity").
        loss: "cross_entropy" or "mse".
        mean, scale: the standardization its inputs get first, ``(x - mean) / scale``
            per feature, or None.
        classes: the name of each class id, or None (the ids are the names).
        info: what training recorded (dataset, seed, test_fraction, label_column, ...).
        model: a CNN's :class:`veil.Sequential` (its geometry, docs/design.md §4.4), or
            None for a dense model.
    """

    weights: Weights
    activations: List[str]
    loss: str
    mean: Optional[np.ndarray] = None
    scale: Optional[np.ndarray] = None
    classes: Optional[List[str]] = None
    info: Dict[str, object] = field(default_factory=dict)
    model: Optional[Sequential] = None

    @property
    def input_size(self) -> int:
        if self.model is not None:
            return self.model.input_size
        return int(self.weights[0].shape[0] - 1)

    def preprocess(self, X) -> np.ndarray:
        """The inputs as the network takes them: standardized when the model was."""
        X = _as_matrix(X, self.input_size, "X", None if self.model is None
                       else self.model.input_shape)
        if self.mean is None:
            return X
        return (X - self.mean) / self.scale


def save_model(path: Union[str, os.PathLike], source, *, activations: Optional[Sequence] = None,
               loss: Optional[str] = None, mean=None, scale=None,
               classes: Optional[Sequence] = None, info: Optional[dict] = None) -> str:
    """Write the one file a trained model lives in, for prediction: ``veil predict
    --model FILE``, ``veil.Inference(FILE)`` and :func:`load_model` read it.

    It is a NumPy ``.npz`` archive, stored uncompressed (float64 arrays ``layer_0``,
    ``layer_1``, ... of shape (inputs + 1, outputs) with the bias in the last row;
    string arrays ``activations`` and ``loss`` and the same as int32 codes of the EDL,
    ``activation_codes`` and ``loss_code``, for C++ (``veil::load_model``);
    ``format`` = "veil-model-1"; optional ``mean`` and ``scale`` (the input
    standardization), ``classes`` and ``info`` (JSON text); for a CNN, int32
    ``layer_geometry`` (one row per layer: kind, channels, height, width, kernel, stride,
    padding, pool, pool_size, as veil_layer_spec_t) and ``input_shape``), all
    little-endian and written atomically. It is not a training checkpoint: for that see
    :meth:`veil.Trainer.save_checkpoint`.

    Args:
        path: the file to write (its name is kept as given).
        source: a :class:`veil.Trainer` (its weights are exported, checked against the
            enclave's fingerprints first), a :class:`SavedModel`, or a list of weight
            arrays with ``activations`` and ``loss``.
        mean, scale: per-feature standardization the model's inputs need,
            ``(x - mean) / scale``; predict applies it to raw inputs.
        classes: class names, one per output.
        info: JSON-serializable notes (``veil train`` records its dataset and split).

    Returns:
        The path written.
    """
    import json

    model = None  # a CNN's geometry
    if isinstance(source, Trainer):
        weights = source.export_weights()
        names = [a for _i, _o, a in source.model.layer_specs()]
        loss = source.loss if loss is None else loss
        model = source.model if source.model.is_convolutional else None
    elif isinstance(source, SavedModel):
        weights, names, model = source.weights, source.activations, source.model
        loss = source.loss if loss is None else loss
        mean = source.mean if mean is None else mean
        scale = source.scale if scale is None else scale
        classes = source.classes if classes is None else classes
        info = dict(source.info) if info is None else info
    elif isinstance(source, (list, tuple)):
        if activations is None:
            raise ConfigError("a list of weight arrays needs activations=[...], one per layer")
        weights, names = list(source), list(activations)
    else:
        raise ConfigError(f"source must be a veil.Trainer, a veil.SavedModel or a list of "
                          f"arrays, got {type(source).__name__}")
    names = [_activation_name(a) for a in names]
    loss = "cross_entropy" if loss is None else loss
    if loss not in _LOSSES:
        raise ConfigError(f"loss={loss!r}: use 'cross_entropy' or 'mse'")
    weights = Inference._check_weights(weights, names, chained=model is None)
    # Little-endian everywhere: the C++ reader (host/src/model_file.cc) reads only that.
    arrays = {f"layer_{i}": np.ascontiguousarray(w, dtype="<f8") for i, w in enumerate(weights)}
    features, outputs = weights[0].shape[0] - 1, weights[-1].shape[1]
    if model is not None:
        features = model.input_size
        arrays["layer_geometry"] = np.asarray(
            [tuple(spec[3:]) + (0,) * (12 - len(spec)) for spec in model.wire_specs()],
            dtype="<i4")
        arrays["input_shape"] = np.asarray(model.input_shape, dtype="<i4")
    if (mean is None) != (scale is None):
        raise ConfigError("mean and scale go together")
    if mean is not None:
        arrays["mean"] = np.asarray(mean, dtype="<f8").reshape(-1)
        arrays["scale"] = np.asarray(scale, dtype="<f8").reshape(-1)
        for key in ("mean", "scale"):
            if arrays[key].shape != (features,) or not np.all(np.isfinite(arrays[key])):
                raise InputError(f"{key} must hold {features} finite values, one per input")
        if np.any(arrays["scale"] <= 0):
            raise InputError("scale must be positive")
    if classes is not None:
        if len(classes) != outputs:
            raise InputError(f"{len(classes)} class names for {outputs} outputs")
        arrays["classes"] = np.asarray([str(c) for c in classes], dtype=str)
    path = os.fspath(path)
    staging = path + ".staging"
    with open(staging, "wb") as f:
        # np.savez stores the arrays uncompressed, which C++ reads without zlib.
        np.savez(f, format=np.asarray(_MODEL_FORMAT), activations=np.asarray(names, dtype=str),
                 activation_codes=_activation_codes(names), loss=np.asarray(loss, dtype=str),
                 loss_code=np.asarray(_LOSSES[loss], dtype="<i4"),
                 info=np.asarray(json.dumps(info or {})), **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staging, path)
    return path


def load_model(path: Union[str, os.PathLike]) -> SavedModel:
    """Read a model file written by :func:`save_model` (or an older ``weights.npz``).

    Raises:
        veil.ConfigError: the file is missing, unreadable, truncated or not a veil model;
            the message names the file.
    """
    import json
    import zipfile
    import zlib

    shown = os.fspath(path)
    if os.path.isdir(path):
        what = ("a training checkpoint (veil.Trainer.resume reads it)"
                if os.path.exists(os.path.join(path, "state.sealed")) else "a directory")
        raise ConfigError(f"{shown!r} is {what}, not a model file; `veil train --out DIR` "
                          "writes the model to DIR/model.npz, veil.save_model writes one")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("activations", "loss", "layer_0") if k not in data.files]
            if missing:
                raise ConfigError(f"{shown!r} is not a veil model file: it lacks "
                                  f"{', '.join(missing)}")
            fmt = str(data["format"]) if "format" in data.files else _MODEL_FORMAT
            if fmt != _MODEL_FORMAT:
                raise ConfigError(f"{shown!r}: unknown model format {fmt!r}")
            count = sum(1 for k in data.files if k.startswith("layer_") and k[6:].isdigit())
            weights = [np.array(data[f"layer_{i}"], dtype=np.float64) for i in range(count)]
            activations = [str(a) for a in data["activations"]]
            model = None
            if "layer_geometry" in data.files:  # a CNN
                model = _cnn_of(weights, activations, data["layer_geometry"],
                                data["input_shape"])
            loss = str(data["loss"])
            # C++ reads the codes, Python the names: they must tell the same model.
            if "activation_codes" in data.files and not (
                    np.array_equal(data["activation_codes"], _activation_codes(activations))
                    and "loss_code" in data.files and loss in _LOSSES
                    and np.array_equal(data["loss_code"], _LOSSES[loss])):
                raise ConfigError(f"{shown!r}: its activation and loss codes disagree with its "
                                  f"activations {activations} and loss {loss!r}; the file was "
                                  "altered")
            mean = np.array(data["mean"]) if "mean" in data.files else None
            scale = np.array(data["scale"]) if "scale" in data.files else None
            classes = [str(c) for c in data["classes"]] if "classes" in data.files else None
            info = json.loads(str(data["info"])) if "info" in data.files else {}
    except ConfigError:
        raise
    except FileNotFoundError:
        raise ConfigError(f"cannot read model file {shown!r}: no such file (`veil train --out "
                          "DIR` writes DIR/model.npz)") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise ConfigError(f"cannot read model file {shown!r}: it is damaged or not a veil "
                          f"model ({type(e).__name__}: {e})") from None
    return SavedModel(weights, activations, loss, mean, scale, classes, info, model)


def _cnn_of(weights, activations, geometry, input_shape) -> Sequential:
    """The Sequential a model file's layer_geometry describes (ConfigError if it cannot)."""
    from veil._model import from_wire

    geometry = np.asarray(geometry)
    if geometry.shape != (len(weights), 9):
        raise ConfigError(f"layer_geometry has shape {geometry.shape}, not ({len(weights)}, 9)")
    specs = [(w.shape[0] - 1, w.shape[1], ACTIVATIONS[a].code) + tuple(int(v) for v in g)
             for w, a, g in zip(weights, activations, geometry)]
    model = from_wire(specs, tuple(int(v) for v in np.asarray(input_shape)))
    if model.wire_specs() != [spec if spec[3] else spec[:3] for spec in specs]:
        raise ConfigError("layer_geometry does not describe the layers' weights")
    return model

def _activation_codes(names: Sequence[str]) -> np.ndarray:
    """The codes of veil_activation_t (edl/veil.edl) that the model file keeps for C++."""
    return np.asarray([_codes.ACTIVATION.get(n, -1) for n in names], dtype="<i4")


def _activation_name(a) -> str:
    if isinstance(a, str) and a in ACTIVATIONS:
        return a
    if isinstance(a, _Activation):
        return a.name
    if isinstance(a, type) and issubclass(a, _Activation):
        return a.name
    raise ConfigError(f"unknown activation {a!r}: use one of {', '.join(ACTIVATIONS)}")


# -- the recording device -------------------------------------------------------------------------

class Record(NamedTuple):
    """One operation a RecordingDevice was asked for, with copies of its array arguments."""

    operation: str
    layer: int
    arrays: Tuple[np.ndarray, ...]


class RecordingDevice(Device):
    """A device that keeps a copy of every array it is given: for audits and tests.

    It delegates every operation to ``inner`` (an honest :class:`veil.NumpyDevice` when
    None) and records the arguments first, so a user can check what the untrusted side
    saw. With ``veil.Inference(mode="private")`` the uploads are the quantized weights
    (the device may see them) and every forward input is one 24-bit limb of
    X~ = X_q + R mod p_b: uniform, independent of the data.

    Args:
        inner: the device doing the work.
    """

    def __init__(self, inner: Optional[Device] = None) -> None:
        self.inner = NumpyDevice() if inner is None else inner
        if not isinstance(self.inner, Device):
            raise ConfigError(f"inner must be a veil.Device, got {type(self.inner).__name__}")
        self.name = f"recording-{self.inner.name}"
        self.records: List[Record] = []

    def _keep(self, operation: str, layer: int, *arrays: np.ndarray) -> None:
        self.records.append(Record(operation, int(layer),
                                   tuple(np.array(a, dtype=np.float64, copy=True) for a in arrays)))

    def received(self, operation: Optional[str] = None,
                 layer: Optional[int] = None) -> List[np.ndarray]:
        """Every array given to the device, in order, optionally only those of one
        operation ("upload", "forward", "backward", "update") or one layer."""
        return [a for r in self.records
                if (operation is None or r.operation == operation)
                and (layer is None or r.layer == layer) for a in r.arrays]

    def clear(self) -> None:
        """Forget what was recorded."""
        self.records.clear()

    def upload(self, layer: int, weights: np.ndarray) -> None:
        self._keep("upload", layer, weights)
        self.inner.upload(layer, weights)

    def forward(self, layer: int, a: np.ndarray) -> np.ndarray:
        self._keep("forward", layer, a)
        return self.inner.forward(layer, a)

    def backward(self, layer: int, dz: np.ndarray) -> np.ndarray:
        self._keep("backward", layer, dz)
        return self.inner.backward(layer, dz)

    def update(self, layer: int, a: np.ndarray, dz: np.ndarray) -> None:
        self._keep("update", layer, a, dz)
        self.inner.update(layer, a, dz)

    def scale(self, layer: int) -> None:
        self._keep("scale", layer)
        self.inner.scale(layer)

    def max_abs(self, layer: int) -> float:
        return self.inner.max_abs(layer)

    def download(self, layer: int) -> np.ndarray:
        return self.inner.download(layer)


# -- inference ------------------------------------------------------------------------------------

class Inference(_EnclaveSession):
    """Runs a trained model with every device product checked, privately or not.

    ``mode="private"`` (docs/design.md §4.1): the device sees only X~ = X_q + R mod p_b, R
    uniform and fresh per batch; the enclave precomputes U = R·W_q mod p_b for each
    future batch (a *slot*) and seals it (AES-256-GCM) for the host to keep in
    :attr:`sealed`. Each batch consumes the next slot; a reused, out-of-order or
    missing slot is refused (:class:`veil.ProtocolError`, the session stays usable), an
    altered one ends the session (:class:`veil.VerificationError`).
    ``mode="verify"``: the device sees the quantized activations X_q; no precompute.
    Both modes run the same integer arithmetic, so their predictions are bit-identical.

    The model is quantized as W_q = round(W·2^frac_weights) (bias row included; the
    input's bias column is 2^frac_act), activations at 2^-frac_act; docs/arithmetic.md
    section 9 bounds the difference to float inference.

    Args:
        source: a :class:`veil.Trainer` (its checked weights are exported), a model
            file (:func:`veil.save_model`; ``veil train --out DIR`` writes
            ``DIR/model.npz``) or the :class:`veil.SavedModel` read from one, whose input
            standardization predict then applies to raw inputs, or a list of float
            arrays, one per layer, of shape (inputs + 1, outputs) with the bias in the
            last row (what ``Trainer.export_weights()`` returns) or ``(W, b)`` pairs, or a
            PyTorch ``state_dict`` of Linear layers (:func:`veil.load_weights`); these
            need ``activations``, or ``model``.
        mode: "private" or "verify".
        device: "auto", "cpu", "cuda" or a :class:`veil.Device` instance; the session
            gets its own device (do not share one Device object between sessions).
        frac_weights: fractional bits f_w of the quantized weights.
        activations: with a list source, one activation per layer: a name ("relu",
            "sigmoid", "arctan", "softplus", "identity") or a veil activation.
        model: with a list source, the :class:`veil.Sequential` the weights belong to,
            which gives the activations and a CNN's geometry (docs/design.md §4.4).
        loss: with a list source, "cross_entropy" (predict_proba returns the softmax; the last
            activation must be identity) or "mse" (predict_proba returns the last activation).
        batch_size: rows per enclave call in verify mode, and the default batch size of
            :meth:`precompute`.
        frac_act, act_clip: fixed-point format of inputs and activations (default: the
            trainer's when the source is a Trainer, else 8 and 64.0).
        head_layers, head_lr: private fine-tuning (use ``veil.Trainer(mode="private")``,
            which sets them): the last ``head_layers`` layers train inside the enclave.
        threads: threads the enclave's passes run on ("auto": the cores available, at
            most 16; None: 1); the predictions are bit-identical for any count.

    Raises:
        veil.ConfigError: a layer outside the exactness budget (the message names the
            layer and the knob), a bad mode, activation or loss.
        veil.InputError: weights of the wrong shape or not finite.
    """

    def __init__(self, source, mode: str = "private", device: Union[str, Device] = "auto",
                 frac_weights: int = 10, *, activations: Optional[Sequence] = None,
                 loss: Optional[str] = None, batch_size: int = 64,
                 frac_act: Optional[int] = None, act_clip: Optional[float] = None,
                 enclave=None, model: Optional[Sequential] = None, head_layers: int = 0,
                 head_lr: float = 0.1, threads: Optional[int] = None) -> None:
        if mode not in _MODES:
            raise ConfigError(f"mode={mode!r}: use 'private' or 'verify'")
        # A model file's input standardization, applied by predict to raw inputs.
        self._standardize: Optional[Tuple[np.ndarray, np.ndarray]] = None
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
        if isinstance(source, Trainer):
            weights = source.export_weights()
            model = source.model
            names = [a for _i, _o, a in source.model.layer_specs()]
            loss = source.loss if loss is None else loss
            frac_act = source.config["frac_act"] if frac_act is None else frac_act
            act_clip = source.config["act_clip"] if act_clip is None else act_clip
        elif isinstance(source, (str, os.PathLike, SavedModel)):
            saved = load_model(source) if not isinstance(source, SavedModel) else source
            weights, names, model = saved.weights, saved.activations, saved.model
            loss = saved.loss if loss is None else loss
            if saved.mean is not None:
                self._standardize = (saved.mean, saved.scale)
        elif isinstance(source, (list, tuple, dict)) or hasattr(source, "keys"):
            if model is not None:
                if not isinstance(model, Sequential):
                    raise ConfigError(
                        f"model must be a veil.Sequential, got {type(model).__name__}")
                activations = [a for _i, _o, a in model.layer_specs()]
            if activations is None:
                raise ConfigError("a list of weight arrays or a state_dict needs "
                                  "activations=[...], one per layer")
            weights = load_weights(source)
            names = [_activation_name(a) for a in activations]
        else:
            raise ConfigError(
                f"source must be a veil.Trainer, a model file path, a veil.SavedModel or a list "
                f"of arrays, got "
                f"{type(source).__name__}")
        loss = "cross_entropy" if loss is None else loss
        if loss not in _LOSSES:
            raise ConfigError(f"loss={loss!r}: use 'cross_entropy' or 'mse'")
        names = [_activation_name(a) for a in names]
        convolutional = model is not None and model.is_convolutional
        weights = self._check_weights(weights, names, chained=not convolutional)
        layers = [(w.shape[0] - 1, w.shape[1], ACTIVATIONS[a].code) for w, a in zip(weights, names)]
        self.input_shape = None
        if convolutional:
            layers = model.wire_specs()
            self.input_shape = model.input_shape
        self.mode = mode
        self.loss = loss
        self.activations = names
        self.layer_sizes = [(spec[0], spec[1]) for spec in layers]
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not (
                1 <= batch_size <= MAX_BATCH):
            raise ConfigError(f"batch_size must be an int in [1, {MAX_BATCH}], got {batch_size!r}")
        self.batch_size = batch_size
        self.config = dict(mode=_MODES[mode], loss=_LOSSES[loss],
                           frac_act=int(8 if frac_act is None else frac_act),
                           frac_weights=int(frac_weights),
                           act_clip=float(64.0 if act_clip is None else act_clip),
                           head_layers=int(head_layers), head_lr=float(head_lr))
        self.threads = resolve_threads(threads)
        self._device, self.device_name, self.python_device = resolve_device(device)
        self._enclave = enclave if enclave is not None else default_enclave()
        self._start_session(_native.NativeInference(self._enclave, self._device, layers,
                                                    self.config, weights))
        #: The host's store of sealed slots: slot number -> the blobs of every layer.
        #: The enclave authenticates them; altering this is what a malicious host does.
        self.sealed: Dict[int, bytes] = {}
        self._slot_rows: Optional[int] = None

    @staticmethod
    def _check_weights(weights, names, chained: bool = True) -> Weights:
        if len(weights) == 0:
            raise ConfigError("the model has no layers")
        if len(names) != len(weights):
            raise ConfigError(f"{len(names)} activations for {len(weights)} layers")
        out = []
        for i, w in enumerate(weights):
            arr = host_array(w, f"layer {i}")
            if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
                raise InputError(f"layer {i}: weights must have shape (inputs + 1, outputs), bias "
                                 f"last; got {arr.shape}")
            if chained and out and out[-1].shape[1] != arr.shape[0] - 1:
                raise InputError(f"layer {i} takes {arr.shape[0] - 1} inputs but layer {i - 1} "
                                 f"gives {out[-1].shape[1]} outputs")
            out.append(np.ascontiguousarray(arr, dtype=np.float64))
        return out

    # -- introspection -----------------------------------------------------------------------
    @property
    def input_size(self) -> int:
        if self.input_shape is not None:
            return int(np.prod(self.input_shape))
        return self.layer_sizes[0][0]

    @property
    def output_size(self) -> int:
        return self.layer_sizes[-1][1]

    @property
    def slots_left(self) -> int:
        """Precomputed slots not used yet (each masks one batch)."""
        return len(self.sealed)

    @property
    def sealed_bytes(self) -> int:
        """Bytes of sealed slots the host keeps now."""
        return sum(len(b) for b in self.sealed.values())

    @property
    def checks_passed(self) -> int:
        """Freivalds checks passed in this session."""
        return int(self._native.status()["checks_passed"])

    def status(self) -> dict:
        """The enclave's view: batches, next_slot, slots_sealed, checks_passed, saturated, aborted."""
        return self._native.status()

    def stats(self) -> dict:
        """The session's counters, threads among them (Trainer.stats)."""
        return self._native.stats()


    # -- private mode: slots -----------------------------------------------------------------
    def precompute(self, batches: int, batch_size: Optional[int] = None, verbose: int = 1) -> int:
        """Seal the unblinding factors U of ``batches`` future batches (offline work,
        O(batch_size·n·m) per layer and batch inside the enclave).

        Args:
            batches: slots to add; each masks one batch of up to ``batch_size`` rows.
            batch_size: rows per slot (default: the session's ``batch_size``). Slots of
                one session share one size while unused ones remain.
            verbose: show a progress bar (on a terminal) with the bytes stored.

        Returns:
            The bytes of sealed slots the host keeps now (all unused slots).
        """
        if self.mode != "private":
            raise ConfigError("precompute is for mode='private'; verify-mode inference needs no "
                              "precomputation")
        if not isinstance(batches, int) or isinstance(batches, bool) or batches < 0:
            raise ConfigError(f"batches must be a non-negative int, got {batches!r}")
        rows = self.batch_size if batch_size is None else batch_size
        if not isinstance(rows, int) or isinstance(rows, bool) or not 1 <= rows <= MAX_BATCH:
            raise ConfigError(f"batch_size must be an int in [1, {MAX_BATCH}], got {rows!r}")
        if self.sealed and self._slot_rows != rows:
            raise ConfigError(
                f"batch_size={rows}: the {len(self.sealed)} unused slots of this session are "
                f"sealed for batches of {self._slot_rows}; use that size or use them up first")
        self._slot_rows = rows
        self.batch_size = rows
        progress = None
        if verbose:
            from tqdm.auto import tqdm

            progress = tqdm(total=batches, desc="precompute", unit="slot", disable=None)
        try:
            for _ in range(batches):
                slot = int(self._native.status()["slots_sealed"])
                self.sealed[slot] = self._call(self._native.precompute, rows)
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(stored=f"{self.sealed_bytes / 2**20:.1f} MiB")
        finally:
            if progress is not None:
                progress.close()
        return self.sealed_bytes

    def _forget_spent_slots(self) -> None:
        # The enclave decides which slots are spent; the host only follows.
        st = self._native.status()
        if st["aborted"]:
            self.sealed.clear()
            return
        for slot in [s for s in self.sealed if s < st["next_slot"]]:
            del self.sealed[slot]

    # -- inference ---------------------------------------------------------------------------
    def predict(self, X) -> np.ndarray:
        """The predicted class of each row: an int array, the argmax of
        :meth:`predict_proba`, which it runs (same slots, same errors)."""
        return np.argmax(self.predict_proba(X), axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (softmax for cross-entropy models, the last activation for
        MSE models), every product checked. Private mode uses one slot per batch of
        ``batch_size`` rows.

        Raises:
            veil.ProtocolError: not enough precomputed slots (the message says how many
                are needed and left), or a reused, out-of-order or missing slot.
            veil.VerificationError: a device product failed its check, or a sealed slot
                was altered; the session is over.
            veil.InputError: bad shape or non-finite values; the session stays usable.
        """
        X = _as_matrix(X, self.input_size, "X", self.input_shape)
        if self._standardize is not None:
            X = (X - self._standardize[0]) / self._standardize[1]
        n = X.shape[0]
        if n == 0:
            return np.empty((0, self.output_size))
        if self.mode == "verify":
            return np.concatenate([self._call(self._native.predict, X[i:i + self.batch_size])
                                   for i in range(0, n, self.batch_size)], axis=0)
        rows = self._slot_rows or self.batch_size
        needed = -(-n // rows)
        if needed > self.slots_left and self._native.status()["aborted"]:
            raise ProtocolError("predict: the session was aborted by an earlier integrity "
                                "failure; no further results leave it (open a new Inference)")
        if needed > self.slots_left:
            raise ProtocolError(
                f"predict needs {needed} precomputed slots ({n} rows in batches of {rows}) but "
                f"{self.slots_left} are left; call precompute(batches={needed - self.slots_left}) "
                "first")
        parts = []
        for i in range(0, n, rows):
            blob = self.sealed[min(self.sealed)]
            try:
                parts.append(self._call(self._native.predict, X[i:i + rows], blob))
            finally:
                self._forget_spent_slots()
        return np.concatenate(parts, axis=0)

    def evaluate(self, X, y) -> Dict[str, float]:
        """Loss and accuracy of the predictions on (X, y)."""
        probs = self.predict_proba(X)
        labels = _as_labels(y, probs.shape[0], self.output_size, "y")
        return score(probs, labels, self.loss)

    def __repr__(self) -> str:
        widths = [self.layer_sizes[0][0]] + [o for _i, o in self.layer_sizes]
        return (f"veil.Inference(mode={self.mode!r}, layers={'-'.join(map(str, widths))}, "
                f"device={self.device_name!r}, slots_left={self.slots_left})")


def float_forward(weights: Sequence[np.ndarray], activations: Sequence[str], loss: str,
                  X, model: Optional[Sequential] = None) -> np.ndarray:
    """Float64 inference of the same model in numpy: the reference private and verify
    predictions are compared against (docs/arithmetic.md section 9). A CNN needs its
    ``model`` (the geometry)."""
    from veil._conv import shapes
    from veil._reference import FloatMLP

    return FloatMLP([np.asarray(w, dtype=np.float64) for w in weights], list(activations),
                    loss, shapes=None if model is None else shapes(model.wire_specs())
                    ).predict_proba(np.asarray(X, dtype=np.float64))
