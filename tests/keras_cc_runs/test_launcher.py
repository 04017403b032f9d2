"""The launcher: tasks in this process and in spawned worker processes (Ray needs a cluster)."""

import os

import pytest

from keras_cc_runs import launcher


def square_and_pid(x):
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x * x, os.getpid()


def test_in_this_process_in_order_with_errors_caught():
    started = []
    tasks = [launcher.Task(str(x), square_and_pid, (x,)) for x in (2, -1, 3)]
    outcomes = list(launcher.launch(tasks, on_start=lambda task: started.append(task.key)))
    assert started == ["2", "-1", "3"]
    assert [o.key for o in outcomes] == ["2", "-1", "3"]
    assert outcomes[0].result == (4, os.getpid()) and outcomes[2].ok
    assert not outcomes[1].ok and outcomes[1].error == "ValueError: negative: -1"


def test_errors_stop_the_launch_without_catch():
    tasks = [launcher.Task("bad", square_and_pid, (-1,))]
    with pytest.raises(ValueError, match="negative"):
        list(launcher.launch(tasks, catch=False))


def test_worker_processes():
    tasks = [launcher.Task(str(x), square_and_pid, (x,)) for x in (1, 2, -3)]
    outcomes = {o.key: o for o in launcher.launch(tasks, max_parallel=2)}
    assert outcomes["2"].result[0] == 4 and outcomes["2"].result[1] != os.getpid()
    assert outcomes["-3"].error == "ValueError: negative: -3"


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_parallel"):
        launcher.launch([], max_parallel=0)
    task = launcher.Task("a", square_and_pid, (1,))
    with pytest.raises(ValueError, match="distinct"):
        launcher.launch([task, task])
    assert list(launcher.launch([])) == []
