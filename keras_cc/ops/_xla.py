"""XLA and AutoGraph: whether code is being traced into a function that XLA compiles as a
whole, and the mark that keeps AutoGraph from converting graph-ready functions."""

import tensorflow as tf

# TensorFlow has no public API for this; these are the internals tf.function's
# jit_compile=True sets (checked against TensorFlow 2.20 and 2.21).
from tensorflow.python.framework import ops as tf_framework_ops
from tensorflow.python.ops import control_flow_util


def in_xla_context():
    """True while tracing a function that XLA compiles as a whole (``jit_compile=True``).

    Under XLA, asserts and host callbacks are unavailable and loops must have static
    shapes, so callers choose their checks and their XLA clusters by it.
    """
    if tf.executing_eagerly():
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf_framework_ops.get_default_graph())


def plain_python(function):
    """``function`` run as written inside a user's ``tf.function``, which AutoGraph
    converts (Keras' own train, test and predict steps already skip it): its loops and
    branches are TensorFlow ops already, and AutoGraph's conversion of the CC loss's call
    graph took about 5.6 s of such a function's first call (2 CPU cores)."""
    return tf.autograph.experimental.do_not_convert(function)
