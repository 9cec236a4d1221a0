"""What happens to images between the cache and the network: scaling to floats, and noise."""

import numpy as np


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) -> float32 (N, 1, H, W) holding k / 256, the network's input.

    Dividing by 256 (not 255) gives back exactly the floats MNIST was published with, and a power
    of two keeps the division exact.

    >>> to_float(np.array([[[0, 128, 255]]], dtype=np.uint8))
    array([[[[0.        , 0.5       , 0.99609375]]]], dtype=float32)
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise TypeError(f"to_float: expected uint8 images shaped (N, H, W), got {images.dtype} "
                        f"shaped {images.shape}")
    x = images.astype(np.float32)
    x *= np.float32(1 / 256)
    n, h, w = images.shape
    return x.reshape(n, 1, h, w)  # add the channel axis the convolutions expect


def add_noise(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """The denoising autoencoder's corruption: ``clip(x + factor * N(0, 1), 0, 1)``.

    ``x`` is float images in [0, 1] (float32 from ``to_float``, or float64); the result has the
    same shape and dtype and is a new array. The noise is ``rng.standard_normal(x.shape)`` (drawn
    in float64), so the same rng state gives the same result. ``factor`` 0 returns a copy of x
    and draws nothing.

    >>> y = add_noise(np.full((2, 3), 0.5, np.float32), 0.2, np.random.default_rng(0))
    >>> y.dtype, y.shape, bool(((y >= 0) & (y <= 1)).all())
    (dtype('float32'), (2, 3), True)
    """
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"add_noise: expected float32 or float64 images in [0, 1], got "
                        f"{x.dtype} (convert uint8 images with to_float first)")
    if not factor >= 0:  # written this way round so that NaN fails too
        raise ValueError(f"add_noise: factor must be >= 0, got {factor}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"add_noise: rng must be a numpy Generator (np.random.default_rng(seed)),"
                        f" got {type(rng).__name__}")
    if factor == 0:
        return x.copy()
    noisy = rng.standard_normal(x.shape)
    # in place on the float64 buffer: the same numbers as the formula, one temporary fewer
    noisy *= factor
    noisy += x
    np.clip(noisy, 0, 1, out=noisy)
    return noisy.astype(x.dtype)
