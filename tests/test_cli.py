import subprocess
import sys

import pytest

from sutskever30.cli import main


def s30(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "sutskever30", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def assert_one_line_error(proc, code, *needles):
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_unknown_paper():
    assert_one_line_error(s30("run", "nope"), 2, "unknown paper 'nope'", "resnet")


def test_unknown_experiment():
    assert_one_line_error(s30("run", "resnet:nope"), 2, "degradation")


def test_unknown_key_lists_valid_keys():
    assert_one_line_error(s30("run", "resnet", "--set", "nope=1"), 2, "nope", "batch_size")


def test_bad_value_names_type():
    assert_one_line_error(s30("run", "resnet", "--set", "steps=many"), 2, "steps", "int")


def test_bad_depth_is_rejected():
    assert_one_line_error(s30("run", "resnet", "--set", "depths=21"), 2, "6n+2")


def test_bad_preset_and_device():
    assert_one_line_error(s30("run", "resnet", "--preset", "huge"), 2, "huge")
    assert_one_line_error(s30("run", "resnet", "--device", "tpu"), 2, "tpu")


def test_missing_data_dir(tmp_path):
    import os

    env = dict(os.environ, S30_DATA_DIR=str(tmp_path / "empty"))
    proc = s30("run", "resnet", "--preset", "smoke", "--out", str(tmp_path / "runs"), env=env)
    assert_one_line_error(proc, 1, "cifar10", str(tmp_path / "empty"), "s30 data fetch cifar10")


def test_list_and_help(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "resnet" in out and "initialization_scale" in out
    with pytest.raises(SystemExit):
        main(["run", "resnet", "--help"])
    assert "depths (tuple[int, ...]): smoke=(8, 14)  quick=(20, 56)" in capsys.readouterr().out


def test_data_list_and_verify(capsys):
    assert main(["data", "list"]) == 0
    assert "cifar10" in capsys.readouterr().out
    assert main(["data", "fetch", "nope"]) == 2
