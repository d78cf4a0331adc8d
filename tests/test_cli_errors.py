"""Bad input gets one ``error:`` line and a non-zero exit; nothing written is lost; files
follow the user's umask; help is discoverable; Ctrl-C says what was kept."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from sutskever30.cli import _plan, main
from sutskever30.core.errors import UsageError

from .test_cli import assert_one_line_error, s30

SMOKE = ["--preset", "smoke", "-q", "--no-publish"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished smoke run of lstm:long_range (it trains two nets through fit)."""
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", "lstm:long_range", *SMOKE, "--out", str(out)]) == 0
    (run_dir,) = (out / "lstm" / "long_range").iterdir()
    return run_dir


def test_no_command_prints_help_and_version():
    proc = s30()
    assert proc.returncode == 0 and "run" in proc.stdout and "report" in proc.stdout
    assert s30("--version").stdout.startswith("s30 ")


def test_run_help_explains_presets_and_shows_each_presets_value():
    out = s30("run", "lstm:long_range", "--help").stdout
    assert "smoke   seconds" in out and "quick   minutes" in out and "full    the paper" in out
    assert "smoke=" in out and "quick=" in out and "full=" in out


@pytest.mark.parametrize("args", [["sample", "--help"], ["bench", "--help"], ["report", "--help"]])
def test_options_have_descriptions(args):
    out = s30(*args).stdout
    assert "--" in out and "default" in out.lower()


def test_out_under_unwritable_or_missing_parent(tmp_path):
    assert_one_line_error(s30("run", "lstm:equivalence", *SMOKE, "--out", "/proc/nope"), 2, "/proc")
    afile = tmp_path / "a_file"
    afile.write_text("keep me")
    assert_one_line_error(
        s30("run", "lstm:equivalence", *SMOKE, "--out", str(afile)), 2, "is a file"
    )
    assert afile.read_text() == "keep me"


def test_report_bad_paths_leave_the_readme_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- results:start -->\nrows\n<!-- results:end -->\n")
    before = readme.read_text()
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "sutskever30", "report", "--results", str(tmp_path / "nope")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert_one_line_error(proc, 2, "nope")
    assert readme.read_text() == before
    (tmp_path / "results").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "sutskever30", "report"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert_one_line_error(proc, 2, "no results.json")
    assert readme.read_text() == before and not (tmp_path / "report").exists()


def test_report_out_unwritable(tmp_path):
    from .test_report import fake_results

    fake_results(tmp_path / "results", "resnet", "degradation", True)
    proc = s30("report", "--results", str(tmp_path / "results"), "--no-readme", "--out", "/proc/x")
    assert_one_line_error(proc, 2, "/proc/x")


def test_meaningless_values_are_refused():
    assert_one_line_error(s30("run", "resnet", "--set", "lr=0"), 2, "lr", "> 0")
    assert_one_line_error(s30("run", "resnet", "--set", "steps=0"), 2, "steps")
    assert_one_line_error(s30("run", "lstm", "--seeds", "0"), 2, "--seeds")
    assert_one_line_error(s30("run", "lstm", "--jobs", "0"), 2, "--jobs")
    assert_one_line_error(s30("run"), 2, "target")


def test_set_applies_to_the_experiments_that_have_the_key(capsys):
    args = argparse.Namespace(
        target="lstm", preset="smoke", overrides=["steps=3"], seeds=None, seed=None, resume=False
    )
    plan = _plan(args)
    cfgs = {exp.name: cfg for _, exp, cfg, _, _ in plan}
    assert cfgs["long_range"].steps == 3
    assert "steps: ignored by equivalence" in capsys.readouterr().err
    args.overrides = ["nope=1"]
    with pytest.raises(UsageError, match="nope"):
        _plan(args)


def test_files_follow_the_umask_and_record_the_version(finished_run):
    mode = os.stat(finished_run / "results.json").st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    ckpt = next((finished_run / "checkpoints").glob("*.pt"))
    assert os.stat(ckpt).st_mode & 0o777 == 0o666 & ~umask
    env = json.loads((finished_run / "config.json").read_text())["env"]
    assert env["sutskever30"] and env["commit"] != ""


def test_resume_folder_with_a_foreign_checkpoint(finished_run, tmp_path):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "results.json").unlink()
    ckpt = next((run_dir / "checkpoints").glob("*.pt"))
    torch.save({"weights": torch.zeros(2)}, ckpt)
    proc = s30("run", "--resume", str(run_dir), "-q", "--no-publish")
    assert_one_line_error(proc, 1, ckpt.name, "not a checkpoint")
    assert_one_line_error(s30("run", "--resume", str(tmp_path)), 2, "not a run folder")
    assert_one_line_error(s30("run", "--resume", str(finished_run)), 2, "finished")


def test_resume_a_run_folder_by_path(finished_run, tmp_path):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "results.json").unlink()
    proc = s30("run", "--resume", str(run_dir), "--no-publish", "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    again = json.loads((run_dir / "results.json").read_text())
    first = json.loads((finished_run / "results.json").read_text())
    assert [c["measured"] for c in again["claims"]] == [c["measured"] for c in first["claims"]]


def test_ctrl_c_says_what_was_kept(tmp_path):
    cmd = ["run", "resnet", "--seed", "0", "--preset", "quick", "--out", str(tmp_path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sutskever30", *cmd, "--no-publish"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("resnet/degradation/*/config.json")):
        time.sleep(0.5)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted") and "--resume" in last and str(tmp_path) in last
    assert "Traceback" not in err


def test_sample_length_is_bounded():
    assert_one_line_error(s30("sample", "char_rnn", "--length", "1000000000"), 2, "--length")


@pytest.mark.parametrize("n", ["0", "1000"])
def test_best_of_n_is_bounded(n):
    assert_one_line_error(s30("sample", "char_rnn", "--n", n), 2, "--n")


def test_char_rnn_says_it_does_not_do_best_of_n():
    assert_one_line_error(s30("sample", "char_rnn", "--n", "4"), 2, "best-of-n")


def test_junk_wav_says_why(tmp_path):
    from sutskever30.core.errors import DataCorruptError
    from sutskever30.data.fsdd import read_wav

    junk = tmp_path / "0_x_0.wav"
    junk.write_text("junk")
    with pytest.raises(DataCorruptError, match=r"0_x_0.wav: EOFError \(truncated or not a WAV"):
        read_wav(junk)


def test_corrupt_jpeg_in_the_cifar_tree_is_one_line(tmp_path):
    from PIL import Image

    from sutskever30.data.cifar10 import CLASSES

    root = tmp_path / "data" / "cifar10-images"
    for split in ("train", "test"):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            Image.new("RGB", (32, 32)).save(root / split / name / "0.png")
    (root / "train" / "cat" / "1.jpg").write_text("not a jpeg")
    env = dict(os.environ, S30_DATA_DIR=str(tmp_path / "data"), S30_CACHE_DIR=str(tmp_path / "c"))
    proc = s30("run", "resnet", *SMOKE, "--out", str(tmp_path / "runs"), env=env)
    assert_one_line_error(proc, 1, "corrupt image", "1.jpg")
