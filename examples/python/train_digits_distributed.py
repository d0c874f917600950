"""Data-parallel verified training: one model on two Ray workers, each with its own
enclave and device, and the same weights, bit for bit, as one worker.

    pip install '.[distributed]'
    python examples/python/train_digits_distributed.py
    RAY_ADDRESS=HEAD:6379 python examples/python/train_digits_distributed.py   # a cluster

Each worker checks every product of its half of each batch; the devices all-reduce the
exact update through Ray; the enclaves swap their fingerprint updates sealed under a key
derived from the run key (docs/design.md §4.6).
"""
import secrets
import tempfile

import numpy as np

import veil
from veil.datasets import load_dataset

data = load_dataset("digits", seed=0)


def model():
    return veil.Sequential([veil.Dense(64, 128), veil.ReLU(), veil.Dense(128, 10)])


run_key = secrets.token_bytes(32)  # every worker's enclave derives the run's secrets from it
with tempfile.TemporaryDirectory() as checkpoints:
    run = veil.Trainer(model(), device="cpu", lr=2**-2, seed=0, batch_size=64, workers=2,
                       run_key=run_key)
    run.fit(data.X_train, data.y_train, epochs=10, verbose=2, checkpoint_dir=checkpoints,
            sealing_key=veil.INSECURE_TEST_SEALING_KEY)  # one sealed checkpoint for the run
    result = run.evaluate(data.X_test, data.y_test)
    print(f"2 workers: test accuracy {result['accuracy']:.4f}, "
          f"{run.checks_passed} checks passed on each worker")

lone = veil.Trainer(model(), device="cpu", lr=2**-2, seed=0, batch_size=64)
lone.fit(data.X_train, data.y_train, epochs=10, verbose=0)
same = all(np.array_equal(a, b) for a, b in zip(run.export_weights(), lone.export_weights()))
print(f"weights bit-identical to one worker's: {same}")
