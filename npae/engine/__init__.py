"""The engine: everything an operation needs, and nothing that uses one.

    tensor.py     Tensor (an ndarray with an optional gradient), no_grad
    function.py   Function (forward + hand-written backward) and Context; one Node per use
    backward.py   the reverse-mode walk over the recorded nodes
    dispatch.py   which kernel module serves an array (Numba on the CPU, numba.cuda on a GPU)
    shapes.py     every output-size formula, once; HxW parsing and formatting
    gradcheck.py  npae.gradcheck and npae.adjoint_check
    config.py     process settings (scratch bound, thread waiting, malloc)
    random.py     the global generator (npae.manual_seed)

Nothing here imports from the applications above it (nn, optim, models, data, training, tools).
"""
