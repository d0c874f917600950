"""The installed package: version, backend, enclave info, errors."""
import subprocess
import sys

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


def test_the_core_package_runs_without_ray_and_workers_name_the_extra():
    # In a process where `import ray` fails, as where the [distributed] extra is not installed.
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import veil\n"
        "model = veil.Sequential([veil.Dense(4, 2)])\n"
        "veil.Trainer(model, device='cpu').train_step([[0.0] * 4], [1])\n"
        "try:\n"
        "    veil.Trainer(model, device='cpu', workers=2)\n"
        "except veil.ConfigError as e:\n"
        "    print(e)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Ray is not installed" in run.stdout and "veil[distributed]" in run.stdout
