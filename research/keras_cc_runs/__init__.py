"""Run directories, atomic files, a launcher and config flags shared by the research code.

One of each mechanism that the trainers, reports and scripts of keras-cc share:

* :mod:`keras_cc_runs.run_directory`: results written atomically (JSON, CSV rows, text,
  figures, whole directories), reads that name a damaged file, the resume rule of a run
  directory, a lock against two runners, and the check of an ``--output_dir``;
* :mod:`keras_cc_runs.launcher`: independent tasks in this process, in local worker
  processes, or as Ray tasks, with one result or one error per task;
* :mod:`keras_cc_runs.cli`: absl flags made from a config dataclass (the help text sits
  beside each field), one-line errors for bad flag values, quiet logs unless
  ``--verbosity`` is given;
* :mod:`keras_cc_runs.extras`: the error that names the pip extra a package needs.

Why this is a package of its own: importing any ``keras_cc.<module>`` first runs
``keras_cc/__init__.py``, which imports Keras (and with it, on the TensorFlow backend,
TensorFlow). A script would then import TensorFlow (seconds) before it can parse its flags
or answer ``--help``. These modules need only the standard library (and absl for
:mod:`~keras_cc_runs.cli`, matplotlib only for the figure passed in, Ray only when a Ray
address is given).

Dependency direction: ``keras_cc_experiments``, ``keras_cc_analysis``, ``keras_cc_agents`` and the
scripts in ``examples/`` import ``keras_cc_runs``; ``keras_cc_runs`` imports none of them.
"""

# The keras-cc release this research code belongs to (research/pyproject.toml).
__version__ = "0.1.0"
