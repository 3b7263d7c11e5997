"""save_fit / load_fit under interruption: the previous fit survives every step.

Each step of a save (writing the new fit, each rename, each removal) is interrupted
in turn by a KeyboardInterrupt from a monkeypatched step, before and after the step
runs, for netCDF and zarr.  Two kinds of interruption:

* Ctrl-C: the exception unwinds through ``save_fit`` (its clean-up runs);
* a kill: the folder is copied as it is at that moment, before any clean-up, and
  the copy is checked (what SIGKILL would leave on disk).

Afterwards the path loads a complete fit (the old one, or the new one once it was
moved in), and the next save leaves no leftovers.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import bayesrec.inference.io as io
from bayesrec.data.simulate import simulate_ratings
from bayesrec.errors import InputError
from bayesrec.inference import fit, load_fit, save_fit
from bayesrec.models import build_model

STEPS = ("_write", "_replace", "_remove")
FORMATS = ("fit.nc", "fit.zarr")


@pytest.fixture(scope="module")
def fits():
    ratings, _ = simulate_ratings(30, 20, 300, seed=0)
    base = fit(build_model("pmf", ratings, n_factors=2), "map", maxiter=30, random_seed=0,
               progressbar=False)
    old, new = base.copy(), base.copy()
    old.attrs["marker"], new.attrs["marker"] = "old", "new"
    return old, new


class Interrupt(KeyboardInterrupt):
    pass


def _count_steps(monkeypatch, fits, folder: Path, name: str) -> int:
    """How many step calls an overwrite makes (with no interruption)."""
    old, new = fits
    save_fit(old, folder / name)
    calls = []
    for step in STEPS:
        real = getattr(io, step)
        monkeypatch.setattr(io, step, lambda *a, _real=real, **k: (calls.append(1), _real(*a, **k))[1])
    save_fit(new, folder / name)
    monkeypatch.undo()
    return len(calls)


def _interrupt_at(monkeypatch, k: int, after: bool, on_hit=None):
    """Patch every step so that the k-th call (0-based) raises, before or after running."""
    counter = {"n": 0}
    for step in STEPS:
        real = getattr(io, step)

        def wrapped(*args, _real=real, **kwargs):
            i = counter["n"]
            counter["n"] += 1
            if i == k and not after:
                if on_hit:
                    on_hit()
                raise Interrupt
            out = _real(*args, **kwargs)
            if i == k and after:
                if on_hit:
                    on_hit()
                raise Interrupt
            return out

        monkeypatch.setattr(io, step, wrapped)


def _marker(path: Path) -> str:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_fit(path).attrs["marker"]


# zarr's run (a folder store: two renames, more steps to interrupt) is the longer one
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.agreement) if "zarr" in n
                                  else n for n in FORMATS])
def test_an_interrupt_at_every_step_keeps_a_complete_fit(fits, tmp_path, monkeypatch, name):
    old, new = fits
    (tmp_path / "count").mkdir()
    n_steps = _count_steps(monkeypatch, fits, tmp_path / "count", name)
    assert n_steps >= (2 if name.endswith(".nc") else 4)
    for k in range(n_steps):
        for after in (False, True):
            live, killed = tmp_path / f"live-{k}-{after}", tmp_path / f"killed-{k}-{after}"
            live.mkdir()
            path = save_fit(old, live / name)
            _interrupt_at(monkeypatch, k, after,
                          on_hit=lambda live=live, killed=killed: shutil.copytree(live, killed))
            with pytest.raises(Interrupt):
                save_fit(new, path)
            monkeypatch.undo()
            where = (name, k, after)
            # Ctrl-C: save_fit's own clean-up ran; the path holds a complete fit
            assert path.exists(), (*where, os.listdir(live))
            assert _marker(path) in ("old", "new"), where
            # a kill: what was on disk at that moment still gives a complete fit
            on_disk = killed / name
            assert _marker(on_disk) in ("old", "new"), (*where, os.listdir(killed))
            if not on_disk.exists():  # killed between the renames: the old store is aside
                with pytest.warns(UserWarning, match="a save to it was interrupted"):
                    assert load_fit(on_disk).attrs["marker"] == "old"
            # either way, the next save cleans up whatever was left
            for folder in (live, killed):
                save_fit(new, folder / name)
                assert os.listdir(folder) == [name], (*where, os.listdir(folder))


def test_leftovers_of_a_killed_save_are_cleaned_on_the_next_save(fits, tmp_path):
    old, new = fits
    path = save_fit(old, tmp_path / "fit.zarr")
    # a dead process's work folder, and a superseded store next to the live one
    (tmp_path / ".fit.zarr.saving-999999999-abcd").mkdir()
    shutil.copytree(path, io.previous_copy(path))
    save_fit(new, path)
    assert os.listdir(tmp_path) == ["fit.zarr"]


def test_save_refuses_folders_and_existing_files_without_overwrite(fits, tmp_path):
    old, new = fits
    (tmp_path / "adir").mkdir()
    with pytest.raises(InputError, match="it is a folder; give a file name inside it"):
        save_fit(old, tmp_path / "adir")
    notzarr = tmp_path / "mine.zarr"
    notzarr.mkdir()
    (notzarr / "notes.txt").write_text("precious")
    with pytest.raises(InputError, match="a folder that is not a zarr store"):
        save_fit(old, notzarr)
    assert (notzarr / "notes.txt").read_text() == "precious"
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(InputError, match="it is a file"):
        save_fit(old, tmp_path / "file.zarr")
    with pytest.raises(InputError, match="does not exist; create it first"):
        save_fit(old, tmp_path / "missing" / "fit.nc")
    for name in FORMATS:
        path = save_fit(old, tmp_path / name)
        with pytest.raises(InputError, match="exists; pass overwrite=True"):
            save_fit(new, path, overwrite=False)
        assert _marker(path) == "old"
        save_fit(new, path)  # the default replaces, as before
        assert _marker(path) == "new"


_SAVER = """
import sys
from bayesrec.inference import load_fit, save_fit
fit = load_fit(sys.argv[1])
print("ready", flush=True)
while True:
    save_fit(fit, sys.argv[2])
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_real_signals_during_saves_keep_a_fit(fits, tmp_path, name, signal_name):
    """A process saving over the same path again and again, stopped by a real signal at
    varied moments: the path (or its aside copy) always loads, and the next save leaves
    nothing else behind."""
    import signal
    import subprocess
    import sys
    import time

    old, _new = fits
    source = save_fit(old, tmp_path / "source.nc")
    for trial, delay in enumerate((0.05, 0.2, 0.45, 0.8, 1.3, 2.1)):
        folder = tmp_path / f"{signal_name}-{trial}"
        folder.mkdir()
        path = save_fit(old, folder / name)
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(source), str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(getattr(signal, signal_name))
        proc.wait(timeout=60)
        assert _marker(path) == "old", (trial, os.listdir(folder))
        save_fit(old, path)
        assert os.listdir(folder) == [name], (trial, os.listdir(folder))
