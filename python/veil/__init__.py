"""veil: train and run neural networks with a trusted enclave beside an untrusted device.

The device does the matrix products; the enclave keeps the secrets, does the
cheap non-linear work, and checks every product with Freivalds' algorithm.

Example:
    >>> import veil
    >>> model = veil.Sequential([veil.Dense(64, 128), veil.ReLU(), veil.Dense(128, 10)])
    >>> trainer = veil.Trainer(model, mode="verify", device="cpu", lr=2**-2, seed=0)
"""
import logging as _logging

# A library logs, the application decides: silent unless logging is configured.
_logging.getLogger("veil").addHandler(_logging.NullHandler())

from veil._errors import (
    ConfigError,
    DeviceError,
    EnclaveError,
    Error,
    InputError,
    ProtocolError,
    SaturationWarning,
    VerificationError,
)
from veil._model import (Arctan, AvgPool2d, Conv2d, Dense, Flatten, Identity, MaxPool2d, ReLU,
                         Sequential, Sigmoid, Softplus)
from veil._device import Device, NumpyDevice
from veil._enclave import enclave_backend, enclave_info, load_enclave
from veil._trainer import INSECURE_TEST_SEALING_KEY, Trainer, read_sealing_key
from veil._callbacks import Callback, EarlyStopping, History, ModelCheckpoint
# Private and verify-mode inference (docs/design.md §4.1) and the auditing device.
from veil._inference import Inference, RecordingDevice, SavedModel, load_model, save_model
from veil._onnx import export_onnx
from veil._weights import load_weights

__version__ = "0.1.0"

__all__ = [
    "INSECURE_TEST_SEALING_KEY", "Arctan", "AvgPool2d", "Conv2d", "Flatten", "MaxPool2d",
    "ConfigError", "Dense", "Device", "DeviceError", "EnclaveError", "Error",
    "Identity", "InputError", "NumpyDevice", "ProtocolError", "ReLU", "Sequential", "Sigmoid",
    "Softplus", "Trainer", "VerificationError", "enclave_backend", "enclave_info", "load_enclave",
    "__version__",
    "Inference", "RecordingDevice",
    "Callback", "EarlyStopping", "History", "ModelCheckpoint", "SaturationWarning",
    "SavedModel", "export_onnx", "load_model", "load_weights", "read_sealing_key", "save_model",
]
