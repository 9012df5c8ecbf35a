"""Parsing of user sbatch arguments for SlurmArrayWorker (no cluster needed)."""

from __future__ import annotations

import pickle

import pytest

from smgic_pydra.hpc import SbatchArgsError, SlurmArrayWorker
from smgic_pydra.hpc.sbatch_args import split_sbatch_args, time_limit


def test_plain_args_pass_through_token_by_token():
    tokens = split_sbatch_args("--time=01:00:00 -c 4 --mem 8G --comment 'two words' -J my-job")
    assert tokens == ["--time=01:00:00", "-c", "4", "--mem", "8G", "--comment", "two words", "-J", "my-job"]
    assert split_sbatch_args(["-p", "gpu", "--gres=gpu:1"]) == ["-p", "gpu", "--gres=gpu:1"]
    assert split_sbatch_args(None) == [] == split_sbatch_args("")


@pytest.mark.parametrize(
    "args, option",
    [
        ("-e err.txt", "--error/-e"),
        ("-eerr.txt", "--error/-e"),
        ("--error=err.txt", "--error/-e"),
        ("--time=5 -o out.txt", "--output/-o"),
        ("--output out.txt", "--output/-o"),
        ("--array=0-3", "--array/-a"),
        ("--wait", "--wait/-W"),
        ("--requeue", "--requeue"),
    ],
)
def test_worker_owned_options_are_rejected_with_a_clear_message(args, option):
    with pytest.raises(SbatchArgsError) as err:
        SlurmArrayWorker(sbatch_args=args)
    message = str(err.value)
    assert message.startswith(f"sbatch_args: {option} is not allowed")
    assert "\n" not in message


def test_per_task_resources_are_checked_and_named():
    with pytest.raises(SbatchArgsError, match=r"^resources\['register'\]: --error/-e is not allowed"):
        SlurmArrayWorker(resources={"register": "--gres=gpu:1 -e x"})
    with pytest.raises(SbatchArgsError, match="cannot parse"):
        SlurmArrayWorker(sbatch_args="--comment 'unbalanced")


def test_time_limit_is_read_from_any_spelling():
    assert time_limit(["-c", "2"]) is None
    assert time_limit(["--time=1"]) == "1"
    assert time_limit(["--time", "00:10:00"]) == "00:10:00"
    assert time_limit(["-t", "5", "--time=7"]) == "7"  # sbatch takes the last one
    assert time_limit(["-t30"]) == "30"


def test_worker_pickles_without_its_runtime_state():
    worker = SlurmArrayWorker(sbatch_args="-c 1", resources={"gpu_add": "--gres=gpu:1"}, poll_interval=2)
    copy = pickle.loads(pickle.dumps(worker))
    assert copy.sbatch_args == ["-c", "1"]
    assert copy.resources == {"gpu_add": ["--gres=gpu:1"]}
    assert copy.poll_interval == 2.0
    with pytest.raises(ValueError, match="poll_interval must be at least"):
        SlurmArrayWorker(poll_interval=0.1)
