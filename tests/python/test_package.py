"""The installed package: version, backend, enclave info, errors."""
import pytest

import veil
from veil import _native


def test_version_and_backend():
    assert veil.__version__ == _native.version()
    assert veil.enclave_backend() == "virtual"


def test_enclave_reports_itself():
    info = veil.enclave_info()
    assert info["version"] == veil.__version__
    assert info["backend"] == veil.enclave_backend()
    assert "verify-training" in info["features"]
    assert info["max_sessions"] >= 1


def test_error_hierarchy():
    assert issubclass(veil.VerificationError, veil.Error)
    assert issubclass(veil.ConfigError, veil.Error)
    assert issubclass(veil.EnclaveError, veil.Error)
    assert issubclass(veil.InputError, ValueError)


def test_missing_enclave_image_is_an_enclave_error(tmp_path):
    with pytest.raises(veil.EnclaveError, match="loading the enclave image"):
        _native.NativeEnclave(str(tmp_path / "nowhere.so"))
