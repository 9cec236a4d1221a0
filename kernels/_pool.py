"""A per-process pool of large buffers, so a training step does not fault in fresh pages.

A training step allocates the same few-MB activations and gradients every time and frees them
when the step ends. glibc's malloc hands large freed blocks back to the operating system
(unmapped, or trimmed off the top of the heap), so the next step's allocations fault in every
4 KiB page again, zeroed by the kernel: measured on conv-transpose at batch 128, 5,600 page
faults and about 15 ms of system time per 20-27 ms step. Changing malloc's settings for the
whole process would also change them for the program that imported npae; this pool keeps only
npae's own buffers instead.

How a buffer comes back without a free() call: the pool owns each block (a flat ndarray) and
hands out views of it. A NumPy view keeps its memory's owner alive through ``.base``, and so do
the views of views and the arrays Numba returns from it; so a block whose reference count is
back to the pool's own references has no user left, and can be handed out again. The check is
one ``sys.getrefcount`` per candidate block, under a lock.

    buffer = empty((128, 16, 28, 28), np.float32)   # a view of a pooled block (or np.empty)

Small arrays (under ``min_bytes``, 256 KiB) are not pooled: malloc keeps those in the process
already. The pool holds at most ``limit`` bytes (default: a quarter of the machine's memory, at
most 2 GiB; ``NPAE_POOL_MB`` sets it, 0 turns pooling off); past it, free blocks of other sizes
are released first, then a request gets a plain np.empty. ``clear()`` releases every free block.
Contents are uninitialised, as with np.empty.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings

import numpy as np

MIN_BYTES = 1 << 18  # 256 KiB
DEFAULT_LIMIT = 2 << 30  # 2 GiB
_ALIGN = 64  # block sizes are rounded up to a cache line


def _refs(blocks: list, i: int) -> int:
    return sys.getrefcount(blocks[i])


# what _refs reports for a block only the pool's list holds: measured, not assumed, since the
# count of the call's own temporaries differs between Python versions
_FREE_REFS = _refs([np.empty(_ALIGN, np.uint8)], 0)


def _default_limit() -> int:
    text = os.environ.get("NPAE_POOL_MB")
    if text is not None and text.strip():
        try:
            mb = int(text)
        except ValueError:
            mb = -1
        if mb >= 0:
            return mb << 20
        warnings.warn(f"NPAE_POOL_MB={text!r} is not a whole number of MiB (0 turns the "
                      "buffer pool off); using the default", RuntimeWarning, stacklevel=3)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 4 * DEFAULT_LIMIT
    return min(DEFAULT_LIMIT, memory // 4)


class BufferPool:
    """Reusable blocks for large arrays, keyed by size; see the module's docstring."""

    def __init__(self, limit: int | None = None, min_bytes: int = MIN_BYTES):
        self.limit = _default_limit() if limit is None else int(limit)
        self.min_bytes = int(min_bytes)
        self._blocks: dict[int, list] = {}  # block bytes -> blocks, oldest first
        self._held = 0
        self._lock = threading.Lock()
        self.hits = 0  # requests served by a block handed back
        self.misses = 0  # requests that allocated a new block
        self.unpooled = 0  # requests over the limit, served by np.empty

    def empty(self, shape, dtype=np.float32) -> np.ndarray:
        """An uninitialised array of ``shape`` and ``dtype``, from the pool when it is large."""
        dtype = np.dtype(dtype)
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        count = 1
        for d in shape:
            count *= int(d)
        nbytes = count * dtype.itemsize
        if nbytes < self.min_bytes or nbytes > self.limit:
            return np.empty(shape, dtype)
        size = -(-nbytes // _ALIGN) * _ALIGN
        with self._lock:
            blocks = self._blocks.setdefault(size, [])
            for i in range(len(blocks)):
                if _refs(blocks, i) == _FREE_REFS:
                    self.hits += 1
                    return blocks[i][:nbytes].view(dtype).reshape(shape)
            if self._held + size > self.limit:
                self._release(keep=size, need=self._held + size - self.limit)
            if self._held + size > self.limit:
                self.unpooled += 1
                return np.empty(shape, dtype)
            block = np.empty(size, np.uint8)  # malloc's alignment (16 bytes) suits every dtype
            blocks.append(block)
            self._held += size
            self.misses += 1
            return block[:nbytes].view(dtype).reshape(shape)

    def zeros(self, shape, dtype=np.float32) -> np.ndarray:
        """``empty`` filled with zeros."""
        out = self.empty(shape, dtype)
        out.fill(0)
        return out

    def _release(self, keep: int = -1, need: int | None = None) -> int:
        """Drop free blocks (not of size ``keep``) until ``need`` bytes are released (all when
        None); return the bytes released. The caller holds the lock."""
        released = 0
        for size, blocks in list(self._blocks.items()):
            if size == keep:
                continue
            i = 0
            while i < len(blocks):
                if need is not None and released >= need:
                    return released
                if _refs(blocks, i) == _FREE_REFS:
                    del blocks[i]
                    self._held -= size
                    released += size
                else:
                    i += 1
            if not blocks:
                del self._blocks[size]
        return released

    def clear(self) -> int:
        """Release every block no array uses any more; return the bytes released."""
        with self._lock:
            return self._release()

    def stats(self) -> dict:
        """Bytes held and in use, block count, and how requests were served."""
        with self._lock:
            free = sum(size for size, blocks in self._blocks.items()
                       for i in range(len(blocks)) if _refs(blocks, i) == _FREE_REFS)
            count = sum(len(b) for b in self._blocks.values())
        return {"held_bytes": self._held, "in_use_bytes": self._held - free,
                "free_bytes": free, "blocks": count, "limit_bytes": self.limit,
                "hits": self.hits, "misses": self.misses, "unpooled": self.unpooled}


pool = BufferPool()


def empty(shape, dtype=np.float32) -> np.ndarray:
    """``pool.empty``: the CPU kernels allocate their outputs and workspaces through this."""
    return pool.empty(shape, dtype)


def zeros(shape, dtype=np.float32) -> np.ndarray:
    """``pool.zeros``."""
    return pool.zeros(shape, dtype)
