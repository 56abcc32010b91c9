"""What a run prints when its output is a log (CI, `make certify > log`): progress at intervals, and nothing
of TensorFlow's C++ start-up; and how many workers `certify` uses."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness import cli, tf_policy
from harness.pipeline.run import PlainProgress

STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796195666.628614   13929 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1796195666.629081   13929 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
]
# What a user may act on stays, whatever the level: a warning from Python, a line of another format.
KEPT = ["<string>:1: UserWarning: something the user did", "Traceback (most recent call last):"]


def test_certify_uses_one_worker_per_core_by_default():
    assert cli.build_parser().parse_args(["certify"]).workers == len(os.sched_getaffinity(0))
    assert cli.build_parser().parse_args(["certify", "-j", "1"]).workers == 1


def test_progress_for_a_log_is_a_line_per_interval_and_one_at_the_end():
    now = [0.0]
    lines: list[str] = []
    with PlainProgress(lines.append, interval_s=30, clock=lambda: now[0]) as progress:
        task = progress.add_task("certifying in 2 workers", total=100)
        for _ in range(10):
            now[0] += 10  # a variant every 10 s: a line every third
            progress.update(task, description="Conv2D[...]")
            progress.advance(task)
        now[0] += 1
    assert lines == [
        "certifying in 2 workers: 3/100 (3%) in 30 s, about 970 s left",
        "certifying in 2 workers: 6/100 (6%) in 60 s, about 940 s left",
        "certifying in 2 workers: 9/100 (9%) in 90 s, about 910 s left",
        "certifying in 2 workers: 10/100 (10%) in 101 s, about 909 s left",
    ]


def test_startup_lines_below_the_level_are_noise(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    assert all(tf_policy.startup_noise(line) for line in STARTUP)
    assert not any(tf_policy.startup_noise(line) for line in KEPT)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # the caller asked for everything
    assert not any(tf_policy.startup_noise(line) for line in STARTUP)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    assert tf_policy.startup_noise(STARTUP[1])
    assert not tf_policy.startup_noise(STARTUP[1].replace("I0000", "W0000", 1))


IMPORT_BOTH = (
    "from harness.pipeline import reference\n"
    "reference.keras_module('keras3')\n"
    "reference.keras_module('tf_keras')\n"
    "import sys\n"
    "print('still here', file=sys.stderr)\n"
)


@pytest.mark.slow
@pytest.mark.parametrize("level", [None, "0"])
def test_keras_starts_without_tensorflows_startup_lines(level):
    """TensorFlow 2.21 writes its start-up lines whatever TF_CPP_MIN_LOG_LEVEL says; the harness drops them
    (the policy sets the level to 3) unless the caller asked for them."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    done = subprocess.run([sys.executable, "-c", IMPORT_BOTH], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    if level is None:
        assert done.stderr == "still here\n"
    else:
        assert "oneDNN custom operations are on" in done.stderr and done.stderr.endswith("still here\n")
