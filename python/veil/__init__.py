"""veil: train and run neural networks with a trusted enclave beside an untrusted device.

The device does the matrix products; the enclave keeps the secrets, does the
cheap non-linear work, and checks every product with Freivalds' algorithm.

Example:
    >>> import veil
    >>> model = veil.Sequential([veil.Dense(64, 128), veil.ReLU(), veil.Dense(128, 10)])
    >>> trainer = veil.Trainer(model, mode="verify", device="cpu", lr=2**-2, seed=0)
"""
from veil._errors import (
    ConfigError,
    DeviceError,
    EnclaveError,
    Error,
    InputError,
    ProtocolError,
    VerificationError,
)
from veil._model import Arctan, Dense, Identity, ReLU, Sequential, Sigmoid, Softplus
from veil._device import Device, NumpyDevice
from veil._enclave import enclave_backend, enclave_info
from veil._trainer import INSECURE_TEST_SEALING_KEY, Trainer
# Private and verify-mode inference (DESIGN.md 4.1) and the auditing device.
from veil._inference import Inference, RecordingDevice

__version__ = "0.1.0"

__all__ = [
    "INSECURE_TEST_SEALING_KEY", "Arctan", "ConfigError", "Dense", "Device", "DeviceError", "EnclaveError", "Error",
    "Identity", "InputError", "NumpyDevice", "ProtocolError", "ReLU", "Sequential", "Sigmoid",
    "Softplus", "Trainer", "VerificationError", "enclave_backend", "enclave_info", "__version__",
    "Inference", "RecordingDevice",
]
