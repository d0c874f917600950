import numpy as np
import pytest


def _cuda_reason():
    try:
        from veil import _cuda
    except Exception as e:  # pragma: no cover - import of the package itself failed
        return f"veil._cuda failed to import: {e}"
    return None if _cuda.available() else f"no CUDA GPU: {_cuda.unavailable_reason()}"


def pytest_collection_modifyitems(config, items):
    reason = _cuda_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def digits():
    from veil.datasets import load_dataset

    return load_dataset("digits", seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


_REPORT = []


@pytest.fixture
def report():
    """Lines a test wants in the run's closing summary (shown without -s too)."""
    return _REPORT.append


def pytest_terminal_summary(terminalreporter):
    if _REPORT:
        terminalreporter.section("veil")
        for line in _REPORT:
            terminalreporter.write_line(line)
