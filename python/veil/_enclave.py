"""The process-wide enclave and the functions that describe it."""
from __future__ import annotations

import threading
from typing import Optional

from veil import _native

_lock = threading.Lock()
_enclave: Optional["_native.NativeEnclave"] = None


def default_enclave() -> "_native.NativeEnclave":
    """The enclave image installed with the package, loaded once per process."""
    global _enclave
    with _lock:
        if _enclave is None:
            _enclave = _native.NativeEnclave()
        return _enclave


def load_enclave(image_path: str = "", debug: bool = False) -> "_native.NativeEnclave":
    """Load an enclave image of your own (pass it as ``enclave=`` to a Trainer or
    Inference); most programs use the one loaded for them.

    Args:
        image_path: the image; "" for the one installed with the package.
        debug: load it as a debug enclave. On SGX the host can read a debug
            enclave's memory, so this is for development only, and the image
            must have been built with ``-DVEIL_ENCLAVE_DEBUG=ON``.

    Raises:
        veil.EnclaveError: the image cannot be loaded (or is a release image
            and ``debug`` was asked for).
    """
    return _native.NativeEnclave(image_path, debug)


def enclave_backend() -> str:
    """"virtual" (the project's own enclave runtime) or "openenclave" (the SDK)."""
    return _native.backend()


def enclave_info() -> dict:
    """Version, backend and features as the loaded enclave reports them."""
    return default_enclave().info()
