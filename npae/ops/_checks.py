"""Small helpers the ops use to check their inputs at entry."""


from npae.engine.dispatch import as_array


def array_of(x):
    """The ndarray behind a Tensor, or x itself as an array (never a tuple of tensors: a layer
    that returns several values must be unpacked first)."""
    if hasattr(x, "requires_grad"):
        return x.data
    if isinstance(x, (tuple, list)) and any(hasattr(v, "requires_grad") for v in x):
        raise TypeError(
            f"got a {type(x).__name__} of {len(x)} values where a tensor goes (a layer that "
            f"returns several values, such as MaxPool2d(return_indices=True), must be unpacked "
            f"first: y, idx = pool(x))")
    return as_array(x)


def same_float_dtype(op: str, **named) -> None:
    """Raise TypeError unless all named inputs (None skipped) share one float dtype."""
    dtypes = {name: array_of(v).dtype for name, v in named.items() if v is not None}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name} is {dt}" for name, dt in dtypes.items())
        raise TypeError(f"{op}: inputs must share one dtype, but {listed}")


def check_groups(op: str, groups) -> None:
    if groups != 1:
        raise ValueError(f"{op}: groups={groups} is not implemented; npae supports groups=1")


def check_channels(op: str, input_shape, weight_shape) -> None:
    """No empty channel axis: a convolution over zero channels is almost surely a bug."""
    if len(input_shape) == 4 and len(weight_shape) == 4 and (
        min(input_shape[1], weight_shape[0], weight_shape[1]) == 0
    ):
        raise ValueError(
            f"{op}: zero channels (input shape {tuple(input_shape)}, weight shape "
            f"{tuple(weight_shape)})"
        )


def check_reduction(op: str, reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def check_same_shape(op: str, input_shape, target_shape) -> None:
    if tuple(input_shape) != tuple(target_shape):
        raise ValueError(
            f"{op}: target shape {tuple(target_shape)} differs from input shape "
            f"{tuple(input_shape)}; they must match"
        )
