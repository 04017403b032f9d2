"""Fresh Python interpreters for the tests that need one: the scripts as a user runs them,
and probes of what an import does to a new process.

:func:`python` runs this interpreter's executable on the arguments given, with the output
captured as text, and asserts the exit status, quoting the end of the output when it
differs, so that a failing script says why in the test report.
"""

import subprocess
import sys

# The characters of stdout and of stderr quoted when the status is not the expected one.
TAIL = 3000


def python(*arguments, expect=0, timeout=600, env=None, cwd=None):
    """``python *arguments`` in a fresh interpreter: the completed process.

    Args:
      arguments: what follows ``python`` (a script and its flags, ``-c`` and code, ``-m``
        and a module); paths may be ``pathlib.Path``.
      expect: the exit status asserted (None: any).
      timeout: seconds before the interpreter is killed (``subprocess.TimeoutExpired``).
      env: the environment (None: this process's).
      cwd: the working directory (None: this process's).
    """
    done = subprocess.run(
        [sys.executable, *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )
    if expect is not None:
        assert done.returncode == expect, (
            f"exit status {done.returncode}, expected {expect}\n"
            f"--- stdout\n{done.stdout[-TAIL:]}\n--- stderr\n{done.stderr[-TAIL:]}"
        )
    return done
