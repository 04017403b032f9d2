"""keras_cc_runs imports neither TensorFlow nor keras_cc nor keras_cc_agents."""

import subprocess
import sys


def test_keras_cc_runs_stays_light():
    probe = (
        "import sys\n"
        "from keras_cc_runs import cli, launcher, run_directory\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'keras_cc', 'keras_cc_agents', 'numpy',\n"
        "                      'ray') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
