"""Timing shared by the benchmarks: medians of repeats, contenders timed side by side.

Plain Python with no TensorFlow import, so a benchmark may import it before ``keras_cc``
or ``keras_cc_agents`` has configured TensorFlow. Everything times zero-argument callables. The
optional ``finish`` gets the last result of a timed batch of calls and waits for it (for
example ``lambda loss: float(loss)``), so work queued on an asynchronous device is
counted once per batch, inside the timed interval.

:func:`print_record` prints (and optionally saves) the JSON record a benchmark ends with.

The scripts here run as ``python benchmarks/<name>.py`` from any directory; they put this
folder on ``sys.path`` and ``import _timing``.
"""

import json
import statistics
import time

__all__ = [
    "mean_seconds",
    "median_seconds",
    "rounds",
    "side_by_side",
    "medians",
    "ratio_row",
    "print_record",
]


def _check_count(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; received {name}={value!r}.")


def mean_seconds(fn, inner=1, finish=None, warmup=0):
    """Mean wall-clock seconds of one call of ``fn`` over ``inner`` back-to-back calls.

    ``warmup`` untimed calls (each finished) come first; ``finish(result)`` of the last
    timed call is inside the timed interval.
    """
    _check_count(inner, "inner")
    _check_count(warmup, "warmup", minimum=0)
    for _ in range(warmup):
        result = fn()
        if finish is not None:
            finish(result)
    start = time.perf_counter()
    for _ in range(inner):
        result = fn()
    if finish is not None:
        finish(result)
    return (time.perf_counter() - start) / inner


def median_seconds(fn, repeats, inner=1, finish=None):
    """Median over ``repeats`` of :func:`mean_seconds` of ``fn``: seconds per call."""
    _check_count(repeats, "repeats")
    return statistics.median(mean_seconds(fn, inner, finish) for _ in range(repeats))


def rounds(names, repeats, alternate=True):
    """``(round, name)`` pairs visiting every name once per round, ``repeats`` rounds.

    With ``alternate`` the order is reversed in odd rounds (ABAB..., then BABA...), so no
    contender always runs first; otherwise every round keeps the order of ``names``.
    """
    _check_count(repeats, "repeats")
    names = list(names)
    for round_index in range(repeats):
        reverse = alternate and round_index % 2 == 1
        for name in names[::-1] if reverse else names:
            yield round_index, name


def side_by_side(contenders, repeats, inner=1, finish=None, alternate=True, warmup=0):
    """Seconds per call of every contender, sampled in interleaved rounds.

    ``contenders`` maps names to zero-argument callables. Each of the ``repeats`` rounds
    takes one :func:`mean_seconds` sample (``inner`` calls after ``warmup`` untimed ones)
    of every contender, in the order of :func:`rounds`, so drifting machine load hits all
    of them alike. Returns ``{name: [seconds per call, one per round]}``; :func:`medians`
    reduces it to the reported figures.
    """
    samples = {name: [] for name in contenders}
    for _, name in rounds(contenders, repeats, alternate):
        samples[name].append(mean_seconds(contenders[name], inner, finish, warmup))
    return samples


def medians(samples):
    """``{name: median of its samples}`` for :func:`side_by_side`'s output."""
    return {name: statistics.median(values) for name, values in samples.items()}


def ratio_row(samples, baseline):
    """Median milliseconds of each contender of :func:`side_by_side`'s ``samples`` and its
    ratio to ``baseline``: the median of the per-round ratios, with their range over the
    rounds (the rounds share whatever load the machine had)."""
    row = {f"{name}_ms": 1e3 * seconds for name, seconds in medians(samples).items()}
    for name, values in samples.items():
        if name == baseline:
            continue
        ratios = [a / b for a, b in zip(values, samples[baseline])]
        row[f"{name}/{baseline}"] = statistics.median(ratios)
        row[f"{name}/{baseline}_spread"] = f"{min(ratios):.3g}-{max(ratios):.3g}"
    return row


def print_record(record, json_out=None):
    """Prints ``record`` as indented JSON under a ``JSON:`` line; writes it to ``json_out`` too.

    The file is written atomically (temporary file, then ``os.replace``).
    """
    print("\nJSON:")
    print(json.dumps(record, indent=2))
    if json_out:
        from keras_cc_runs.run_directory import write_json

        write_json(json_out, record)
