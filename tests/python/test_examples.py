"""The first programs in examples/ run and reach what they print."""
import os
import re
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python")


def test_train_digits_example():
    run = subprocess.run([sys.executable, os.path.join(EXAMPLES, "train_digits.py")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    accuracy = float(re.search(r"test accuracy (\S+),", run.stdout).group(1))
    private = float(re.search(r"private inference accuracy (\S+)", run.stdout).group(1))
    assert accuracy >= 0.97
    assert private >= 0.96


@pytest.mark.slow
def test_distributed_example():
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'veil[distributed]'")
    run = subprocess.run([sys.executable, os.path.join(EXAMPLES, "train_digits_distributed.py")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    accuracy = float(re.search(r"2 workers: test accuracy (\S+),", run.stdout).group(1))
    assert accuracy >= 0.95
    assert "weights bit-identical to one worker's: True" in run.stdout
