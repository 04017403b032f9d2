"""Shifts and (segmented) inclusive scans along the last axis of a [B, K] tensor.

Scans run by recursive doubling (Hillis and Steele, 1986): ceil(log2 K) vectorized steps
in a loop (a small graph, quick to compile). Shifts are slices of a padded copy. Shapes
stay static, so everything compiles under XLA.
"""

import tensorflow as tf


def shift(x, offset, fill, reverse=False):
    """``out[..., k] = x[..., k - offset]`` (``k + offset`` if ``reverse``), ``fill`` outside.

    ``offset`` is a Python int or a scalar int32 tensor in [0, K].
    """
    if isinstance(offset, int):
        if offset == 0:
            return x
        pad = tf.fill(tf.concat([tf.shape(x)[:-1], [offset]], 0), tf.cast(fill, x.dtype))
        if reverse:
            return tf.concat([x[..., offset:], pad], axis=-1)
        return tf.concat([pad, x[..., :-offset]], axis=-1)
    pad = tf.fill(tf.shape(x), tf.cast(fill, x.dtype))
    size = tf.shape(x)[-1]
    begin = tf.zeros_like(tf.shape(x)[:-1])
    if reverse:
        both = tf.concat([x, pad], axis=-1)
        begin = tf.concat([begin, [offset]], 0)
    else:
        both = tf.concat([pad, x], axis=-1)
        begin = tf.concat([begin, [size - offset]], 0)
    return tf.slice(both, begin, tf.shape(x))


def segmented_scan(x, segments, combine, identity, reverse=False):
    """Inclusive scan of ``combine`` along the last axis within runs of equal ``segments``.

    Args:
      x: [B, K] values.
      segments: [B, K] integer segment ids, constant on contiguous runs, or their
        :class:`Segments` (masks computed once), or None (one run).
      combine: associative binary function (``tf.add``, ``tf.maximum``, ``tf.minimum``).
      identity: the identity element of ``combine``.
      reverse: scan from the last position backwards.

    Returns:
      [B, K]: ``out[k] = combine of x[i]`` over the positions i of k's run with i <= k
      (i >= k if ``reverse``).
    """

    if isinstance(segments, Segments):
        masks = segments.masks(reverse)
    elif segments is None:
        masks = None
    else:
        masks = Segments(segments).masks(reverse)

    def step(index, offset, x):
        other = shift(x, offset, identity, reverse)
        if masks is not None:
            other = tf.where(masks[index], other, tf.cast(identity, x.dtype))
        return combine(x, other)

    stacked = masks

    def body(index, offset, x):
        other = shift(x, offset, identity, reverse)
        if stacked is not None:
            other = tf.where(stacked[index], other, tf.cast(identity, x.dtype))
        return index + 1, offset * 2, combine(x, other)

    _, _, x = tf.while_loop(
        lambda index, offset, _: offset < tf.shape(x)[-1],
        body,
        [tf.constant(0), tf.constant(1), x],
    )
    return x


def _offsets(size):
    offset = 1
    while offset < size:
        yield offset
        offset *= 2


class Segments:
    """The masks of a segmented scan (which positions a doubling step may combine)."""

    def __init__(self, segments):
        size = segments.shape[-1]
        if size is None:
            raise ValueError("Segmented scans need a static last axis.")
        self._masks = {
            reverse: tf.stack(
                [
                    tf.equal(shift(segments, offset, -1, reverse), segments)
                    for offset in _offsets(size)
                ]
            )
            for reverse in (False, True)
        }

    def masks(self, reverse):
        """[ceil(log2 K), B, K] booleans: step j may combine positions 2**j apart."""
        return self._masks[reverse]
