"""keras_cc_runs imports neither TensorFlow nor keras_cc nor keras_cc_agents."""

from interpreters import python


def test_keras_cc_runs_stays_light():
    probe = (
        "import sys\n"
        "from keras_cc_runs import cli, extras, launcher, rendered, run_directory\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'keras_cc', 'keras_cc_agents', 'numpy',\n"
        "                      'ray') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = python("-c", probe, timeout=60)
    assert done.stdout.strip() == "[]"
