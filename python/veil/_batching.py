"""Mini-batch order and learning-rate schedule shared by every trainer.

The verifiable trainer and the float64 reference both take their batches and their
learning rate from these two functions, so a comparison between them sees exactly the same
samples in the same order with the same step size.

Epochs are numbered from zero: epoch ``e`` is the ``(e + 1)``-th pass over the data, and it
starts after ``e`` epochs have completed.
"""

from __future__ import annotations

import numbers
from typing import List, Sequence

import numpy as np

__all__ = ["epoch_batches", "lr_exponent_at"]


def _non_negative_int(name: str, value: object) -> int:
    # bool is an Integral too, but True as a seed or epoch is always a caller's mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def epoch_batches(n_samples: int, batch_size: int, seed: int, epoch: int) -> List[np.ndarray]:
    """Returns the mini-batches of one epoch as arrays of sample indices.

    The indices are a permutation of ``range(n_samples)`` drawn from
    ``np.random.default_rng([seed, epoch])``, cut in order into chunks of ``batch_size``;
    the last chunk is smaller when ``batch_size`` does not divide ``n_samples``. The result
    depends only on the four arguments.

    Args:
        n_samples: Number of training samples.
        batch_size: Samples per batch, at least 1.
        seed: Non-negative run seed.
        epoch: Zero-based epoch index.

    Returns:
        The batches, each an int64 array; together they hold every index exactly once.

    Raises:
        ValueError: If an argument is negative, not an integer, or ``batch_size`` is zero.
    """
    n = _non_negative_int("n_samples", n_samples)
    size = _non_negative_int("batch_size", batch_size)
    if size == 0:
        raise ValueError("batch_size must be at least 1, got 0")
    key = [_non_negative_int("seed", seed), _non_negative_int("epoch", epoch)]
    rng = np.random.default_rng(key)
    # Cast because permutation's integer type follows the platform's C long (int32 on Windows).
    order = rng.permutation(n).astype(np.int64)
    return [order[start:start + size] for start in range(0, n, size)]


def lr_exponent_at(epoch: int, base_exp: int, halve_at: Sequence[int]) -> int:
    """Returns k such that the learning rate during ``epoch`` is 2^-k.

    The exponent starts at ``base_exp`` and grows by one at the start of each epoch listed
    in ``halve_at`` (each halving of the learning rate).

    Args:
        epoch: Zero-based epoch index.
        base_exp: Exponent of the first epoch.
        halve_at: Zero-based epochs at whose start the learning rate halves; no duplicates.

    Returns:
        ``base_exp`` plus the number of entries of ``halve_at`` that are ``<= epoch``.

    Raises:
        ValueError: If ``epoch`` or an entry of ``halve_at`` is negative or not an integer,
            ``base_exp`` is not an integer, or ``halve_at`` repeats an epoch.
    """
    e = _non_negative_int("epoch", epoch)
    if isinstance(base_exp, bool) or not isinstance(base_exp, numbers.Integral):
        raise ValueError(f"base_exp must be an integer, got {base_exp!r}")
    points = [_non_negative_int("halve_at entry", h) for h in halve_at]
    if len(set(points)) != len(points):
        raise ValueError(f"halve_at repeats an epoch: {list(halve_at)!r}")
    return int(base_exp) + sum(1 for h in points if h <= e)
