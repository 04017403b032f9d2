"""A per-row method on the flagged rows of a batch only, a block of rows at a time.

Inside a compiled graph a method computes every row of its inputs, whichever rows need it:
one wide row would make the whole batch pay for a method of O(K^2) work. :func:`on_rows`
gathers the flagged rows into blocks of a static size and runs the method on one block per
loop step, so its cost follows the number of flagged rows (none: no step), and its
temporaries are those of one block.
"""

# Rows per block: large enough that a batch whose rows all need the method takes few loop
# steps, small enough that one row in a batch costs little.
BLOCK_ROWS = 64


def on_rows(xp, method, flagged, inputs, empty, block_rows=BLOCK_ROWS):
    """``method`` on the rows flagged in [B] bool ``flagged``, ``block_rows`` at a time.

    Args:
      xp: an array namespace (:mod:`keras_cc.core.namespace`).
      method: ``(*row_inputs) -> tuple of [R, ...] outputs`` for any number of rows R.
      flagged: [B] bool.
      inputs: [B, ...] arrays, gathered by row for ``method``.
      empty: [B, ...] arrays, one per output of ``method``: the outputs of the rows not
        flagged; a scalar (0-d) entry instead starts the sum of that output over the
        blocks (e.g. sequential steps).
      block_rows: rows per block, or None for one block of the whole batch, whatever its
        size.

    Returns:
      A list of [B, ...] outputs: ``method``'s on the flagged rows (and possibly on some
      others: a block that is not full is completed with unflagged rows, whose outputs are
      the method's on their own inputs; a static batch of at most ``block_rows`` rows is
      one block, as is any batch when ``block_rows`` is None: the method runs on it as it
      stands when any row is flagged),
      ``empty``'s elsewhere; the scalar outputs summed.
    """
    rows = xp.size(flagged, 0)
    if block_rows is None or (isinstance(rows, int) and rows <= block_rows):
        # One block holds the batch: the method on it as it stands, with no gather, scatter
        # or loop (fewer kernels to compile), and not at all when no row is flagged.
        def whole_batch():
            results = method(*inputs)
            return [x + r if len(x.shape) == 0 else r for x, r in zip(empty, results)]

        return list(xp.cond(xp.any(flagged), whole_batch, lambda: list(empty)))
    order = xp.argsort(xp.where(flagged, 0, 1))  # the flagged rows first
    count = xp.sum(xp.cast(flagged, "int32"))
    steps = (count + block_rows - 1) // block_rows
    slots = xp.arange(block_rows)

    def step(i, *outputs):
        index = xp.take(order, xp.minimum(i * block_rows + slots, rows - 1))
        results = method(*[xp.take(x, index) for x in inputs])
        # A clamped index repeats a row; its updates are equal, so any of them may win.
        return [i + 1] + [
            x + r if len(x.shape) == 0 else xp.scatter_rows(x, index, r)
            for x, r in zip(outputs, results)
        ]

    start = xp.convert_to_tensor(0, dtype="int32")
    final = xp.while_loop(lambda i, *unused: i < steps, step, [start, *empty])
    return list(final[1:])
