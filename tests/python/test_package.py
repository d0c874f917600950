"""The installed package: version, backend, enclave info, round trip, errors."""
import numpy as np
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


def test_round_trip_through_the_enclave():
    session = _native.NativeSession(veil._enclave.default_enclave())
    values = np.array([0.1, -2.5, 0.5 / 256, 1.5 / 256, 1e300], dtype=np.float64)
    out, saturated = session.fixed_point_round_trip(values, 8)
    # Round half to even at 2^-8: 0.5/256 -> 0, 1.5/256 -> 2/256; 1e300 saturates.
    np.testing.assert_array_equal(out[:4], [round(0.1 * 256) / 256, -2.5, 0.0, 2 / 256])
    assert out[4] == 2.0**52 / 256
    assert saturated == 1
    assert "round trip" in veil.round_trip_demo()


def test_round_trip_rejects_bad_input_and_session_survives():
    session = _native.NativeSession(veil._enclave.default_enclave())
    with pytest.raises(veil.InputError, match=r"input\[1\] is NaN"):
        session.fixed_point_round_trip(np.array([1.0, np.nan]), 8)
    with pytest.raises(veil.InputError, match="frac_bits=60"):
        session.fixed_point_round_trip(np.array([1.0]), 60)
    out, _ = session.fixed_point_round_trip(np.array([1.25]), 2)
    assert out[0] == 1.25


def test_error_hierarchy():
    assert issubclass(veil.VerificationError, veil.Error)
    assert issubclass(veil.ConfigError, veil.Error)
    assert issubclass(veil.EnclaveError, veil.Error)
    assert issubclass(veil.InputError, ValueError)


def test_missing_enclave_image_is_an_enclave_error(tmp_path):
    with pytest.raises(veil.EnclaveError, match="loading the enclave image"):
        _native.NativeEnclave(str(tmp_path / "nowhere.so"))
