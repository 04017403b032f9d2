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


WORKER_MODULE = """
import os, pathlib, time

def sleep_and_record(directory, index):
    pathlib.Path(directory, f"worker{index}.pid").write_text(str(os.getpid()))
    time.sleep(120)
"""

LAUNCHER_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import sleeper
from keras_cc_runs import launcher
if __name__ == "__main__":
    tasks = [launcher.Task(str(i), sleeper.sleep_and_record, (sys.argv[1], i)) for i in range(2)]
    list(launcher.launch(tasks, max_parallel=2, catch=False))
"""


def _running(pid):
    """True while process ``pid`` exists and is not a zombie (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process states from /proc")
@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGINT"])
def test_workers_exit_when_the_launcher_is_killed_or_interrupted(tmp_path, signal_name):
    """Killed, the launcher's workers see it gone; interrupted (SIGINT to the launcher
    alone), it ends them and exits at once instead of waiting for their tasks."""
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "sleeper.py").write_text(WORKER_MODULE)
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER_SCRIPT)
    # A shell starts background jobs with SIGINT ignored, and an ignored signal stays
    # ignored across exec: the launcher gets SIGINT's default disposition back, so that
    # this test does not depend on how pytest itself was started.
    parent = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("worker*.pid"))) < 2:
            assert time.monotonic() < deadline, "the workers did not start"
            assert parent.poll() is None, "the launcher ended early"
            time.sleep(0.2)
        workers = [int(path.read_text()) for path in tmp_path.glob("worker*.pid")]
        assert all(_running(pid) for pid in workers)
        parent.send_signal(getattr(signal, signal_name))
        parent.wait(timeout=30)  # the tasks sleep for 120 s
        deadline = time.monotonic() + 30
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_running(pid) for pid in workers)
    finally:
        if parent.poll() is None:
            parent.kill()
