"""Shifts and (segmented) inclusive scans along the last axis of a [B, K] tensor.

Scans run by recursive doubling (Hillis and Steele, 1986): ceil(log2 K) vectorized steps,
static shapes throughout, so they compile under XLA for any K.
"""

import tensorflow as tf


def shift(x, offset, fill, reverse=False):
    """``out[..., k] = x[..., k - offset]`` (``k + offset`` if ``reverse``), ``fill`` outside.

    ``offset`` may be a scalar tensor (it is applied through a gather).
    """
    size = tf.shape(x)[-1]
    positions = tf.range(size)
    source = positions + offset if reverse else positions - offset
    inside = (source >= 0) & (source < size)
    taken = tf.gather(x, tf.clip_by_value(source, 0, size - 1), axis=-1)
    return tf.where(inside, taken, tf.cast(fill, x.dtype))


def segmented_scan(x, segments, combine, identity, reverse=False):
    """Inclusive scan of ``combine`` along the last axis within runs of equal ``segments``.

    Args:
      x: [B, K] values.
      segments: [B, K] integer segment ids, constant on contiguous runs (or None: one run).
      combine: associative binary function (``tf.add``, ``tf.maximum``, ``tf.minimum``).
      identity: the identity element of ``combine``.
      reverse: scan from the last position backwards.

    Returns:
      [B, K]: ``out[k] = combine of x[i]`` over the positions i of k's run with i <= k
      (i >= k if ``reverse``).
    """
    size = tf.shape(x)[-1]

    def step(offset, x):
        other = shift(x, offset, identity, reverse)
        if segments is not None:
            same = tf.equal(shift(segments, offset, -1, reverse), segments)
            other = tf.where(same, other, tf.cast(identity, x.dtype))
        return offset * 2, combine(x, other)

    _, x = tf.while_loop(lambda offset, _: offset < size, step, [tf.constant(1), x])
    return x
