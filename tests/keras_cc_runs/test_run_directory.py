"""Atomic files, reads that name damaged files, the run rule, the lock, --output_dir checks."""

import json
import os
import subprocess
import sys

import pytest

from keras_cc_runs import run_directory as rd


def test_writes_are_atomic_and_leave_no_temporaries(tmp_path):
    path = str(tmp_path / "sub" / "a.json")
    rd.write_json(path, {"b": 1, "a": [1, 2]})
    assert open(path).read() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    rd.write_json(path, {"x": float("nan")}, indent=1, strict=True)
    assert json.load(open(path)) == {"x": None}
    rd.write_text(str(tmp_path / "t.md"), "é\n")
    assert open(tmp_path / "t.md", encoding="utf-8").read() == "é\n"
    assert not [n for n in os.listdir(tmp_path / "sub") if n.startswith(rd.TEMPORARY_PREFIX)]
    mode = os.stat(path).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_failed_write_keeps_the_old_content(tmp_path):
    path = str(tmp_path / "a.csv")
    rd.write_csv(path, ["x", "y"], [{"x": 1, "y": 2}])
    with pytest.raises(KeyError):
        rd.write_csv(path, ["x", "y"], [{"x": 1}])
    assert rd.read_csv(path) == [{"x": "1", "y": "2"}]
    assert os.listdir(tmp_path) == ["a.csv"]


def test_reads_name_the_damaged_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"game": "Po')
    with pytest.raises(rd.DamagedFileError, match="config.json is damaged"):
        rd.read_json(str(path))
    path.write_text("")
    with pytest.raises(rd.DamagedFileError, match="empty"):
        rd.read_json(str(path))
    assert rd.read_json(str(tmp_path / "missing.json"), default=None) is None
    with pytest.raises(FileNotFoundError):
        rd.read_json(str(tmp_path / "missing.json"))
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n3\n")
    with pytest.raises(rd.DamagedFileError, match="line 3"):
        rd.read_csv(str(rows))
    assert rd.read_csv(str(tmp_path / "none.csv")) == []


def test_figure_is_written_atomically(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure()
    rd.write_figure(figure, str(tmp_path / "f.png"))
    plt.close(figure)
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_replace_directory_and_stale_temporaries(tmp_path):
    target, staged = tmp_path / "out", tmp_path / "staged"
    target.mkdir()
    (target / "old").write_text("1")
    staged.mkdir()
    (staged / "new").write_text("2")
    rd.replace_directory(str(staged), str(target))
    assert os.listdir(target) == ["new"] and not staged.exists()
    (target / ".tmp-x").write_text("")
    assert rd.remove_stale_temporaries(str(target)) == 1


def test_run_rule_resumes_refuses_and_overwrites(tmp_path):
    run = str(tmp_path / "run")
    kwargs = dict(finished=lambda: None, differences=lambda previous: [])
    assert rd.prepare_run_directory(run, {"a": 1}, overwrite=False, **kwargs) is False
    assert rd.prepare_run_directory(run, {"a": 1}, overwrite=False, **kwargs) is True
    with pytest.raises(rd.RunDirectoryError, match="finished run"):
        rd.prepare_run_directory(
            run, {"a": 1}, overwrite=False, finished=lambda: "result.json", differences=None
        )

    def differences(previous):
        return rd.differing_settings(previous, {"a": 2}, ["a"])

    with pytest.raises(rd.RunDirectoryError, match="a: 1 there, 2 here"):
        rd.prepare_run_directory(
            run, {"a": 2}, overwrite=False, finished=lambda: None, differences=differences
        )
    assert rd.prepare_run_directory(run, {"a": 2}, overwrite=True, **kwargs) is False
    with open(os.path.join(run, "config.json"), "w") as f:
        f.write("{")
    with pytest.raises(rd.DamagedFileError, match="config.json"):
        rd.prepare_run_directory(run, {"a": 2}, overwrite=False, **kwargs)


def test_a_second_runner_is_refused(tmp_path):
    pytest.importorskip("fcntl")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from keras_cc_runs.run_directory import DirectoryLock\n"
            f"with DirectoryLock({str(tmp_path)!r}):\n"
            "    print('locked', flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(rd.RunDirectoryError, match=f"in use by process {holder.pid}"):
            with rd.DirectoryLock(str(tmp_path)):
                pass
    finally:
        holder.communicate("\n")
    with rd.DirectoryLock(str(tmp_path)):  # released when its holder ended
        pass


def test_output_dir_checks_name_the_flag(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ValueError, match=r"--output_dir='.*file' is a file"):
        rd.check_output_dir(str(a_file))
    with pytest.raises(ValueError, match="--out=.*: .* is a file"):
        rd.check_output_dir(str(a_file / "below"), flag="--out")
    with pytest.raises(ValueError, match="--output_dir is empty"):
        rd.check_output_dir("")
    assert rd.check_output_dir(str(tmp_path / "new" / "run")) == str(tmp_path / "new" / "run")
    assert not (tmp_path / "new").exists()
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ValueError, match="cannot write in"):
            rd.check_output_dir(str(locked / "run"))
