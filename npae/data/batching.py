"""Mini-batches of one array or of a tuple of aligned arrays, reproducibly shuffled."""

import numpy as np


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches ``batches`` yields for ``n`` samples: ceil(n / batch_size), or
    floor(n / batch_size) with ``drop_last``.

    >>> num_batches(10, 4), num_batches(10, 4, drop_last=True)
    (3, 2)
    """
    if n < 0:
        raise ValueError(f"num_batches: n must be >= 0, got {n}")
    _check_batch_size("num_batches", batch_size)
    return n // batch_size if drop_last else -(-n // batch_size)


def batches(x, batch_size: int, shuffle: bool = False, seed=None, drop_last: bool = False,
            epoch: int = 0):
    """Iterate over ``x`` in batches of ``batch_size`` samples (along axis 0).

    ``x`` is an array, or a tuple of arrays of equal length (say images and labels): then each
    batch is a tuple, its parts sliced by the same indices. The last batch is shorter when
    batch_size does not divide the length, unless ``drop_last`` drops it.

    With ``shuffle``, the order is ``np.random.default_rng([seed, epoch]).permutation(n)``: the
    same seed and epoch give the same batches, and each epoch a different order. ``seed=None``
    draws fresh entropy (not reproducible). Inputs are checked here, at the call, not at the
    first ``next``.

    >>> [b.tolist() for b in batches(np.arange(5), 2)]
    [[0, 1], [2, 3], [4]]
    >>> [(a.tolist(), b.tolist()) for a, b in batches((np.arange(4), np.arange(4) * 10), 3)]
    [([0, 1, 2], [0, 10, 20]), ([3], [30])]
    """
    _check_batch_size("batches", batch_size)
    is_tuple = isinstance(x, tuple)
    parts = tuple(np.asarray(a) for a in x) if is_tuple else (np.asarray(x),)
    if not parts:
        raise ValueError("batches: got an empty tuple of arrays")
    if any(a.ndim == 0 for a in parts):
        raise ValueError("batches: expected arrays with a sample axis, got a 0-d array")
    lengths = [len(a) for a in parts]
    if len(set(lengths)) != 1:
        shapes = [a.shape for a in parts]
        raise ValueError(f"batches: arrays must have the same length, got shapes {shapes}")
    n = lengths[0]
    order = None
    if shuffle:
        rng = np.random.default_rng() if seed is None else np.random.default_rng([seed, epoch])
        order = rng.permutation(n)
    count = num_batches(n, batch_size, drop_last)
    return _batch_iter(parts, is_tuple, order, batch_size, count)


def _batch_iter(parts, is_tuple, order, batch_size, count):
    for i in range(count):
        start = i * batch_size
        if order is None:
            index = slice(start, start + batch_size)  # a view: no copy of the data per epoch
        else:
            index = order[start:start + batch_size]
        batch = tuple(a[index] for a in parts)
        yield batch if is_tuple else batch[0]


def _check_batch_size(who: str, batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"{who}: batch_size must be an int, got {batch_size!r}")
    if batch_size <= 0:
        raise ValueError(f"{who}: batch_size must be > 0, got {batch_size}")
