"""Reverse-mode sweeps over long recurrences with checkpoints (memory O(sqrt(T)) states).

A recurrence ``state_{t+1} = step(t, state_t)`` runs forward once, keeping every
``block``-th state. The adjoint then walks the blocks from the last to the first: each block
is recomputed from its checkpoint into a buffer of ``block`` states and swept backwards with
``adjoint_t = backward(t, state_t, adjoint_{t+1})`` (Griewank and Walther, "Evaluating
Derivatives", 2nd ed., ch. 12). Buffers have static sizes, so this compiles under XLA, and
no loop tape is stored: the gradient of a gradient never has to differentiate a loop.
"""

import math

import tensorflow as tf


def block_size(max_states):
    """Checkpoint spacing that balances checkpoints against the block buffer."""
    return max(1, math.ceil(math.sqrt(max_states)))


def sweep_forward(advance, done, state, extra, max_states, block):
    """Runs ``state, extra = advance(t, state, extra)`` until ``done`` or ``max_states``.

    Only ``state`` (a list of tensors) is checkpointed; ``extra`` holds accumulators the
    backward sweep does not need.

    Returns:
      ``(last, state, extra, checkpoints)``: the index of the last state, the last state,
      the accumulators and the checkpoints for :func:`sweep_backward`.
    """
    num_checkpoints = max(1, math.ceil(max_states / block))
    checkpoints = [
        tf.TensorArray(s.dtype, size=num_checkpoints, element_shape=s.shape) for s in state
    ]

    def one_block(b, t, state, extra, checkpoints):
        checkpoints = [c.write(b, s) for c, s in zip(checkpoints, state)]
        stop = tf.minimum((b + 1) * block, max_states - 1)

        def more(t, state, extra):
            return tf.logical_and(t < stop, tf.logical_not(done(t, state, extra)))

        def advance_one(t, state, extra):
            state, extra = advance(t, state, extra)
            return t + 1, state, extra

        t, state, extra = tf.while_loop(more, advance_one, [t, state, extra])
        return b + 1, t, state, extra, checkpoints

    def next_block(b, t, *_):
        return tf.logical_and(tf.equal(t, b * block), b < num_checkpoints)

    _, last, state, extra, checkpoints = tf.while_loop(
        next_block, one_block, [tf.constant(0), tf.constant(0), state, extra, checkpoints]
    )
    return last, state, extra, checkpoints


def sweep_backward(step, backward, checkpoints, last, block, adjoint):
    """Runs ``adjoint = backward(t, state_t, adjoint)`` for t = last, ..., 0.

    Args:
      step: ``step(t, state) -> state`` (list of tensors), the forward recurrence.
      backward: ``backward(t, state, adjoint) -> adjoint`` (lists of tensors).
      checkpoints: from :func:`sweep_forward`: states 0, block, 2 block, ... up to ``last``.
      last: scalar int32 tensor, index of the last state.
      block: static checkpoint spacing.
      adjoint: list of tensors, the adjoint after state ``last``.
    """
    num_blocks = last // block + 1

    def do_block(b, adjoint):
        first = b * block
        final = tf.minimum(first + block - 1, last)
        state = [c.read(b) for c in checkpoints]
        buffers = [tf.TensorArray(s.dtype, size=block, element_shape=s.shape) for s in state]

        def replay(t, state, buffers):
            buffers = [buf.write(t - first, s) for buf, s in zip(buffers, state)]
            return t + 1, step(t, state), buffers

        _, _, buffers = tf.while_loop(lambda t, *_: t <= final, replay, [first, state, buffers])

        def reverse(t, adjoint):
            state_t = [buf.read(t - first) for buf in buffers]
            return t - 1, backward(t, state_t, adjoint)

        _, adjoint = tf.while_loop(lambda t, _: t >= first, reverse, [final, adjoint])
        return b - 1, adjoint

    _, adjoint = tf.while_loop(lambda b, _: b >= 0, do_block, [num_blocks - 1, adjoint])
    return adjoint
