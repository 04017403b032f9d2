"""Independent tasks in this process, in local worker processes, or as Ray tasks.

The ablation grid's cells and the DQN experts' games are independent tasks: a function
of picklable arguments that writes its own results and returns a small summary.
:func:`launch` runs a list of :class:`Task` one of three ways and yields one
:class:`Outcome` per task as each finishes:

* in this process, one after another (``max_parallel=1``, ``processes=False``);
* in a pool of ``max_parallel`` spawned worker processes (``concurrent.futures``; spawned,
  not forked, because TensorFlow's threads do not survive a fork); a worker exits as soon
  as its parent is gone, however the parent ended (even ``kill -9``);
* as Ray tasks on the cluster at ``ray_address`` (``"local"`` starts a local Ray), each
  asking for ``num_cpus`` and ``num_gpus``; nothing here schedules across machines.

Task functions must be importable module-level functions for processes and Ray. With
``catch=True`` an exception in a task becomes that task's :attr:`Outcome.error` and the
other tasks go on; with ``catch=False`` it stops the launch and is raised here.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from keras_cc_runs import extras

__all__ = ["Outcome", "Task", "launch"]


@dataclasses.dataclass(frozen=True)
class Task:
    """One independent unit of work: ``function(*args)``.

    Attributes:
      key: names the task in outcomes and messages (e.g. a game or a cell id).
      function: a module-level function (pickled by reference for processes and Ray).
      args: picklable arguments.
    """

    key: str
    function: Callable[..., Any]
    args: tuple = ()


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one task gave: its return value, or the error that ended it.

    Attributes:
      key: the task's key.
      result: the function's return value (None after an error).
      error: ``"<ExceptionType>: <message>"`` when the task raised (with ``catch=True``).
    """

    key: str
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _initialized_call(
    initializer: Callable[..., Any] | None,
    initargs: tuple,
    function: Callable[..., Any],
    args: tuple,
) -> Any:
    """Runs `initializer(*initargs)` then `function(*args)` (a Ray task's body)."""
    if initializer is not None:
        initializer(*initargs)
    return function(*args)


def _in_this_process(tasks, catch, on_start) -> Iterator[Outcome]:
    for task in tasks:
        if on_start is not None:
            on_start(task)
        try:
            result = task.function(*task.args)
        except Exception as error:  # one failed task must not stop the others
            if not catch:
                raise
            yield Outcome(task.key, error=_describe(error))
            continue
        yield Outcome(task.key, result)


def _exit_with_parent() -> None:
    """Waits, on a daemon thread, for the parent process to end, then ends this one: a
    worker whose launcher was killed must not go on computing and writing."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)  # no cleanup to run: the launcher that wanted the result is gone

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _worker_initializer(initializer: Callable[..., Any] | None, *initargs: Any) -> None:
    """A pool worker's start: :func:`_exit_with_parent`, then the caller's initializer."""
    _exit_with_parent()
    if initializer is not None:
        initializer(*initargs)


def _in_processes(tasks, max_parallel, initializer, initargs, catch) -> Iterator[Outcome]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=max_parallel,
        mp_context=context,
        initializer=_worker_initializer,
        initargs=(initializer, *initargs),
    ) as pool:
        futures = {pool.submit(task.function, *task.args): task.key for task in tasks}
        try:
            for future in concurrent.futures.as_completed(futures):
                key = futures[future]
                try:
                    result = future.result()
                except Exception as error:  # the task raised, or its process died
                    if not catch:
                        raise
                    yield Outcome(key, error=_describe(error))
                    continue
                yield Outcome(key, result)
        except BaseException:  # an interrupt: stop the running tasks, not only the queued
            _stop_workers(pool)
            raise


def _stop_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancels the queued tasks and ends the worker processes at once (a worker's task has
    its own checkpoints; waiting for it would hold the interrupted launcher for minutes)."""
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    # Before Python 3.14 the executor has no public way to end its workers. They are ended
    # before the shutdown: workers that die after shutdown(wait=False) can make the
    # executor's thread try to replace them and hang (CPython gh-132969); before it, their
    # deaths mark the pool broken, which its thread handles and then exits.
    processes = list((pool._processes or {}).values())
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)
    pool.shutdown(wait=False, cancel_futures=True)


def _on_ray(
    tasks, ray_address, num_cpus, num_gpus, env_vars, log_to_driver, initializer, initargs, catch
) -> Iterator[Outcome]:
    try:
        import ray
    except ImportError as error:
        raise ImportError(
            f"Running tasks on Ray needs Ray: {extras.install_command('cluster')} in a clone "
            "of keras-cc."
        ) from error
    started_here = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"log_to_driver": log_to_driver}
        if env_vars:
            options["runtime_env"] = {"env_vars": dict(env_vars)}
        if ray_address == "local":
            ray.init(
                num_cpus=os.cpu_count(),
                include_dashboard=False,
                configure_logging=False,
                **options,
            )
        else:
            ray.init(address=ray_address, **options)
        started_here = True
    try:
        remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0)(_initialized_call)
        pending = {
            remote.remote(initializer, initargs, task.function, task.args): task.key
            for task in tasks
        }
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for reference in ready:
                key = pending.pop(reference)
                try:
                    result = ray.get(reference)
                except Exception as error:  # the task raised, or its worker died
                    if not catch:
                        raise
                    yield Outcome(key, error=_describe(error))
                    continue
                yield Outcome(key, result)
    finally:
        if started_here:
            ray.shutdown()


def launch(
    tasks: Sequence[Task],
    *,
    max_parallel: int = 1,
    processes: bool = False,
    ray_address: str | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    env_vars: Mapping[str, str] | None = None,
    ray_log_to_driver: bool = False,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple = (),
    catch: bool = True,
    on_start: Callable[[Task], None] | None = None,
) -> Iterator[Outcome]:
    """Runs `tasks`; yields an :class:`Outcome` for each as it finishes.

    Args:
      tasks: the tasks; their keys must be distinct.
      max_parallel: local tasks at a time (worker processes when > 1).
      processes: with ``max_parallel=1``, still run each task in a spawned process
        (keeps TensorFlow out of this process); ignored on Ray.
      ray_address: run the tasks on Ray at this address; ``"local"`` starts a local Ray
        with every CPU. None or '': local.
      num_cpus, num_gpus: what each Ray task asks for.
      env_vars: environment of the Ray workers (e.g. ``TF_USE_LEGACY_KERAS``); spawned
        local processes inherit this process's environment.
      ray_log_to_driver: show the Ray workers' output here.
      initializer: called with `initargs` in each worker process or Ray task before its
        function (e.g. to limit threads); not called for tasks in this process.
      catch: an exception in a task becomes its outcome's `error` (True) or stops the
        launch and is raised (False).
      on_start: called with each task as it starts, for tasks in this process only.

    Raises:
      ValueError: `max_parallel` < 1, or two tasks share a key.
      ImportError: `ray_address` is given and Ray is not installed.
    """
    if not isinstance(max_parallel, int) or max_parallel < 1:
        raise ValueError(f"max_parallel must be an integer >= 1, got {max_parallel!r}.")
    keys = [task.key for task in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError(f"task keys must be distinct, got {keys}.")
    if not tasks:
        return iter(())
    if ray_address:
        return _on_ray(
            tasks,
            ray_address,
            num_cpus,
            num_gpus,
            env_vars,
            ray_log_to_driver,
            initializer,
            initargs,
            catch,
        )
    if max_parallel > 1 or processes:
        return _in_processes(tasks, max_parallel, initializer, initargs, catch)
    return _in_this_process(tasks, catch, on_start)
