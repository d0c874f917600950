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


def enclave_backend() -> str:
    """"virtual" (the project's own enclave runtime) or "openenclave" (the SDK)."""
    return _native.backend()


def enclave_info() -> dict:
    """Version, backend and features as the loaded enclave reports them."""
    return default_enclave().info()
