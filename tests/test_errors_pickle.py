"""Every exception class of smgic_pydra survives pickling (pydra workers send errors between processes)."""

import importlib
import inspect
import pickle
import pkgutil

import pytest

import smgic_pydra

from smgic_pydra.io.errors import InputError  # noqa: E402

ARGS = {"InputError": ("/data/x.nii.gz", "empty file"), "NoPairsError": ("/data", "no pair"),
        "MissingToolError": ("deepbet", "pip install deepbet"),
        "InputErrors": ([InputError("/data/a.nii.gz", "no mask"), InputError("/data/b.nii.gz", "no mask")],),
        "LockedError": ("/out/reports/locks/sub-01.lock", "pid 7 on node1 since 2026-12-03T10:00:00+0000")}
"""Constructor arguments of the classes that take more than a message."""


def project_exceptions() -> list[type]:
    found = {}
    for info in pkgutil.walk_packages(smgic_pydra.__path__, "smgic_pydra."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("smgic_pydra."):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


def test_every_project_exception_is_found():
    names = {cls.__name__ for cls in project_exceptions()}
    assert {"InputError", "MissingToolError", "NoPairsError", "TrainingError", "CohortRunError"} <= names


@pytest.mark.parametrize("cls", project_exceptions(), ids=lambda c: c.__name__)
def test_exception_round_trips_through_pickle(cls):
    err = cls(*ARGS.get(cls.__name__, ("one-line message",)))
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == str(err) and repr(vars(back)) == repr(vars(err))
