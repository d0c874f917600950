"""The untrusted device, as a Python class users can implement.

The enclave asks the device for every product through ocalls and checks every
result it returns, so a Device may be slow, wrong or malicious without breaking
integrity: a wrong result raises veil.VerificationError. Subclass ``Device`` to
run the products somewhere new, to audit the protocol, or (in tests) to attack it.

All matrices are float64 numpy arrays holding exact integers. A layer's weight
matrix M has ``inputs + 1`` rows (the bias is the last row) and ``outputs`` columns.
"""
from __future__ import annotations

import abc
from typing import Dict

import numpy as np


class Device(abc.ABC):
    """Base class of devices written in Python: implement every method.

    Arrays passed in are read-only views valid only during the call: copy what you keep.
    """

    name = "python"

    @abc.abstractmethod
    def upload(self, layer: int, weights: np.ndarray) -> None:
        """Keep ``weights`` (rows x cols) as layer's matrix M."""

    @abc.abstractmethod
    def forward(self, layer: int, a: np.ndarray) -> np.ndarray:
        """Return ``a @ M`` (batch x cols)."""

    @abc.abstractmethod
    def backward(self, layer: int, dz: np.ndarray) -> np.ndarray:
        """Return ``dz @ M.T`` (batch x rows)."""

    @abc.abstractmethod
    def update(self, layer: int, a: np.ndarray, dz: np.ndarray) -> None:
        """Apply ``M -= a.T @ dz``."""

    @abc.abstractmethod
    def scale(self, layer: int) -> None:
        """Apply ``M *= 2`` (learning-rate halving)."""

    @abc.abstractmethod
    def max_abs(self, layer: int) -> float:
        """Return ``max |M|``."""

    @abc.abstractmethod
    def download(self, layer: int) -> np.ndarray:
        """Return M (rows x cols)."""


class NumpyDevice(Device):
    """An honest device in numpy: the reference for users writing their own.

    Adversarial test devices subclass it and change one operation.
    """

    name = "numpy"

    def __init__(self) -> None:
        self.weights: Dict[int, np.ndarray] = {}

    def upload(self, layer: int, weights: np.ndarray) -> None:
        self.weights[layer] = np.array(weights, dtype=np.float64, copy=True)

    def forward(self, layer: int, a: np.ndarray) -> np.ndarray:
        return a @ self.weights[layer]

    def backward(self, layer: int, dz: np.ndarray) -> np.ndarray:
        return dz @ self.weights[layer].T

    def update(self, layer: int, a: np.ndarray, dz: np.ndarray) -> None:
        self.weights[layer] -= a.T @ dz

    def scale(self, layer: int) -> None:
        self.weights[layer] *= 2.0

    def max_abs(self, layer: int) -> float:
        return float(np.max(np.abs(self.weights[layer])))

    def download(self, layer: int) -> np.ndarray:
        return self.weights[layer]
