"""The array namespaces the backend-neutral math of :mod:`keras_cc.core` is written against.

Each function of ``keras_cc.core`` takes an array namespace ``xp`` as its first argument and
calls only the primitives below, named as in ``keras.ops`` (NumPy's names). Two namespaces
exist:

* ``keras_cc.ops.namespace.TENSORFLOW``: TensorFlow itself, whatever Keras backend is
  active. The TensorFlow Probability distribution and :mod:`keras_cc.ops` use it, so they
  stay graph- and XLA-compilable with TensorFlow's own control flow. It lives with the
  TensorFlow code: this module imports no framework at module level, so the core loads
  none until a namespace is built.
* :func:`keras_namespace`: ``keras.ops`` on the active Keras 3 backend (TensorFlow, JAX or
  PyTorch). The Keras losses and metrics use it on JAX and PyTorch.

Dtypes are named by strings (``"float32"``, ``"float64"``, ``"bool"``). JAX computes in 32
bits unless ``jax_enable_x64`` is set; the float64 parts of the math (the series' scale and
the certified closed form) run inside :meth:`float64_scope`, which enables 64-bit types for
the code traced inside it only. Under ``torch.compile`` (a Keras model compiled with
``jit_compile=True`` on PyTorch) the loops run eagerly (:meth:`eager`); on JAX the whole
computation is one compiled function (:meth:`jit`) even when called outside a trace.
"""

import contextlib
import math
import types


def _keras_matvec(matrix, vector):
    import keras

    return keras.ops.squeeze(keras.ops.matmul(matrix, keras.ops.expand_dims(vector, -1)), -1)


def _keras_top_k(x, k):
    """The k largest values of each row and their int32 indices."""
    import keras

    values, indices = keras.ops.top_k(x, k)
    return values, keras.ops.cast(indices, "int32")


def _keras_xlogy(x, y):
    """x log y, 0 where x = 0 (TensorFlow's ``xlogy``; ``keras.ops`` has none)."""
    import keras

    ops = keras.ops
    zero = ops.equal(x, 0)
    return ops.where(zero, 0.0, x * ops.log(ops.where(zero, 1.0, y)))


def _keras_lgamma(x):
    """log Gamma of a Python number: the Keras namespace meets it only with static sizes."""
    return math.lgamma(float(x))


def _keras_while_loop(cond, body, loop_vars):
    import keras

    return list(keras.ops.while_loop(cond, lambda *state: tuple(body(*state)), tuple(loop_vars)))


def _torch_eager(function):
    """``function`` run eagerly inside ``torch.compile``: its loops stop on values, which
    TorchDynamo would otherwise recompile for again and again."""
    import torch

    return torch.compiler.disable(function)


def _jax_jit(function):
    """``jax.jit(function)``: outside a trace, JAX would otherwise compile each loop and
    branch of every call anew; inside one, it is inlined."""
    import jax

    return jax.jit(function)


def _jax_float64_scope():
    import jax

    return jax.enable_x64(True)


def _torch_float64_preserving():
    """PyTorch's own ``prod``, ``ceil``, ``maximum``, ``minimum``, ``divide_no_nan`` and
    ``matvec``: Keras 3.15's PyTorch backend returns float32 from these for float64 inputs,
    which would silently take the float64 parts of the math (the certified closed form, the
    series' scale) down to float32."""
    import torch

    def like(x, y):
        return torch.as_tensor(y, dtype=x.dtype, device=x.device)

    def divide_no_nan(x, y):
        y = like(x, y)
        zero = y == 0
        return torch.where(zero, torch.zeros_like(x), x / torch.where(zero, torch.ones_like(y), y))

    return {
        "prod": lambda x, axis=None: torch.prod(x) if axis is None else torch.prod(x, dim=axis),
        "ceil": torch.ceil,
        "maximum": lambda x, y: torch.maximum(x, like(x, y)),
        "minimum": lambda x, y: torch.minimum(x, like(x, y)),
        "divide_no_nan": divide_no_nan,
        "matvec": lambda matrix, vector: torch.matmul(matrix, vector.unsqueeze(-1)).squeeze(-1),
    }


def _jax_float64_preserving():
    """``jax.numpy``'s ``ceil`` and ``arctanh``: Keras 3.15's JAX backend returns float32
    from these for float64 inputs."""
    import jax.numpy as jnp

    return {"ceil": jnp.ceil, "arctanh": jnp.arctanh}


# Built once per backend. A dictionary rather than functools.cache: TorchDynamo warns on
# every cached function it traces through.
_KERAS_NAMESPACES = {}


def keras_namespace(backend):
    """``keras.ops`` on ``backend`` (``keras.backend.backend()``) as an array namespace.

    Sizes are static on every Keras backend but TensorFlow's graphs, where
    ``keras_cc.ops.namespace.TENSORFLOW`` serves instead.
    """
    if backend not in _KERAS_NAMESPACES:
        _KERAS_NAMESPACES[backend] = _keras_namespace(backend)
    return _KERAS_NAMESPACES[backend]


def _keras_namespace(backend):
    import keras

    ops = keras.ops
    namespace = types.SimpleNamespace(
        name=backend,
        cast=ops.cast,
        convert_to_tensor=ops.convert_to_tensor,
        dtype=lambda x: keras.backend.standardize_dtype(x.dtype),
        size=lambda x, axis: x.shape[axis],
        exp=ops.exp,
        log=ops.log,
        log1p=ops.log1p,
        expm1=ops.expm1,
        sqrt=ops.sqrt,
        ceil=ops.ceil,
        abs=ops.abs,
        square=ops.square,
        arctanh=ops.arctanh,
        maximum=ops.maximum,
        minimum=ops.minimum,
        divide_no_nan=ops.divide_no_nan,
        xlogy=_keras_xlogy,
        lgamma=_keras_lgamma,
        sum=ops.sum,
        max=ops.max,
        min=ops.min,
        prod=ops.prod,
        logsumexp=lambda x, axis=None: ops.logsumexp(x, axis=axis),
        all=ops.all,
        any=ops.any,
        isfinite=ops.isfinite,
        logical_and=ops.logical_and,
        logical_or=ops.logical_or,
        logical_not=ops.logical_not,
        where=ops.where,
        ones_like=ops.ones_like,
        zeros_like=ops.zeros_like,
        eye=lambda n, dtype: ops.eye(n, dtype=dtype),
        reshape=ops.reshape,
        concatenate=lambda xs, axis: ops.concatenate(xs, axis=axis),
        top_k=_keras_top_k,
        take=lambda x, indices: ops.take(x, indices, axis=0),
        scatter_rows=lambda x, rows, updates: ops.scatter_update(x, rows[:, None], updates),
        argsort=lambda x: ops.cast(ops.argsort(x), "int32"),
        arange=lambda n: ops.arange(n, dtype="int32"),
        equal=ops.equal,
        matvec=_keras_matvec,
        while_loop=_keras_while_loop,
        cond=ops.cond,
        custom_gradient=ops.custom_gradient,
        stop_gradient=ops.stop_gradient,
        float64_scope=_jax_float64_scope if backend == "jax" else contextlib.nullcontext,
        eager=_torch_eager if backend == "torch" else (lambda function: function),
        jit=_jax_jit if backend == "jax" else (lambda function: function),
    )
    if backend == "torch":
        vars(namespace).update(_torch_float64_preserving())
    elif backend == "jax":
        vars(namespace).update(_jax_float64_preserving())
    return namespace
