"""Faults during work lose nothing: kill -9 inside a save, a full disk, a flipped byte, two trainings into one
folder, Ctrl-C in a training run or inside its save. Real processes and real signals where it matters."""

import copy
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import multimodal as mm
import multimodal.checkpoint as ckpt
from multimodal import shipped
from multimodal.checkpoint import CheckpointError
from multimodal.config import load_config
from multimodal.train import TRAINER_STATE, train
from multimodal.warm_start import init_from

from .corpora import image_folder, text_file
from .test_text_cli import tiny_text_model

ROOT = Path(__file__).resolve().parents[2]
# The subprocesses multiply with as many threads as this process: a resumed run's weights equal bit for bit.
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(torch.get_num_threads())}
STEPS, SAVE_EVERY = 8, 2
RUN = ["data.num_workers=0", "training.log_every=2", "data.task=caption", f"training.save_every={SAVE_EVERY}"]


def wait_for(condition, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        assert proc.poll() is None, f"the process ended first (code {proc.returncode})"
        assert time.time() < deadline, "timed out"
        time.sleep(0.01)


def kill_9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def hidden(folder: Path) -> list[str]:
    """What saves leave beside their targets: temporary and moved-aside dirs."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".lock")


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # in the tensor data: the file still parses
    path.write_bytes(bytes(data))


def same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def step_of(last: Path) -> int:
    return torch.load(ckpt.recover(last) / TRAINER_STATE, weights_only=True)["position"]["step"]


# ---------------------------------------------------------------------------------------------------------
# kill -9 while a checkpoint or a shipped model is written

WRITER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import torch
    import multimodal as mm
    import multimodal.checkpoint as checkpoint

    config, target, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    model = mm.build(config)
    rename = os.replace

    def replace(src, dst):  # the second save stops between its two renames: the old checkpoint moved aside
        rename(src, dst)
        if version == 2 and Path(src) == target:
            ready.touch()
            time.sleep(600)

    os.replace = replace
    for version in (1, 2):  # every weight of save N is N
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(version)
        checkpoint.save(model, target)
""")


def version_of(directory: Path) -> int:
    """The save a checkpoint dir holds: every weight equal to one version number, never a mix."""
    values = torch.cat([p.detach().flatten() for p in mm.load(directory).parameters()]).unique()
    assert len(values) == 1, f"weights of several saves: {values.tolist()[:5]}"
    return int(values.item())


@pytest.fixture(scope="module")
def tiny_model(tiny_config_path):
    return mm.build(tiny_config_path)


def test_kill_9_between_the_renames_keeps_the_previous_checkpoint(tiny_config_path, tiny_model, tmp_path):
    target, ready = tmp_path / "run" / "ckpt", tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tiny_config_path), str(target), str(ready)], cwd=ROOT,
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(ready.exists, proc)
    kill_9(proc)
    assert not target.exists() and version_of(target) == 1  # the moved-aside previous one is found
    assert any(".tmp-" in name for name in hidden(target.parent))  # the killed save's partial dir is left

    model = copy.deepcopy(tiny_model)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3)
    ckpt.save(model, target)  # the next save of that name is not disturbed, and tidies up
    assert version_of(target) == 3
    assert hidden(target.parent) == []


def test_a_save_removes_the_temporary_dirs_of_dead_writers_only(tiny_model, tmp_path):
    dead, live = tmp_path / ".ckpt.tmp-0dead000", tmp_path / ".ckpt.tmp-11ve1111"
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"half a file")
    live.mkdir()
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a save under way in another process holds its dir
    try:
        ckpt.save(tiny_model, tmp_path / "ckpt")
        assert not dead.exists() and live.exists()
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    return tiny_text_model(tmp_path_factory.mktemp("faults"), "gpt2",
                           ["heads.classify.labels=[fruit, weather]", "data.task=classify_head"])


SHIPPER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from multimodal.shipped import ship

    checkpoint, root, data, go, ready = map(Path, sys.argv[1:6])
    rename = os.replace

    def replace(src, dst):  # stop between the two renames: the shipped model moved aside, the new one not in
        rename(src, dst)
        if Path(src) == root / "tiny-cls":
            ready.touch()
            time.sleep(600)

    os.replace = replace
    while not go.exists():  # the test ships the first one meanwhile
        time.sleep(0.01)
    ship(checkpoint, "tiny-cls", data, root=root, force=True)
""")


def test_kill_9_while_shipping_keeps_the_shipped_model(classifier, tmp_path):
    root, data = tmp_path / "shipped", text_file(tmp_path / "test.jsonl")
    go, ready = tmp_path / "go", tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", SHIPPER, *map(str, (classifier, root, data, go, ready))],
                            cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = shipped.ship(classifier, "tiny-cls", data, root=root)
    go.touch()
    wait_for(ready.exists, proc)
    kill_9(proc)
    assert shipped.names(root) == ["tiny-cls"]
    folder = shipped.verified_dir("tiny-cls", root)  # every file whole and as recorded
    assert shipped.read_manifest("tiny-cls", root).files == first.files
    assert ckpt.load(folder).classify(["apples are sweet"])[0].label in ("fruit", "weather")

    shipped.ship(classifier, "tiny-cls", data, root=root, force=True)  # the next ship tidies up
    assert sorted(p.name for p in root.iterdir()) == ["tiny-cls"]
    flip_a_byte(root / "tiny-cls" / "model.safetensors")
    with pytest.raises(shipped.ShippedModelError, match="model.safetensors does not match its recorded sha256"):
        shipped.verified_dir("tiny-cls", root)


# ---------------------------------------------------------------------------------------------------------
# A full disk


def full_disk(monkeypatch, owner, name: str, error: BaseException, after: int = 0) -> None:
    """Make writer `owner.name` fail as on a full disk after `after` calls: it raises the error the real writer
    raises there, and the file system has no space left."""
    real, calls = getattr(owner, name), []

    def write(*args, **kwargs):
        calls.append(1)
        if len(calls) > after:
            monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 0))
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, write)


# What each writer raised on a full 1 MB tmpfs (safetensors 0.8, torch 2): only the first two name the cause.
SAFETENSORS_FULL = "Error while serializing: I/O error: No space left on device (os error 28)"
TORCH_FULL = "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"


@pytest.mark.parametrize("writer", ["config.yaml", "model.safetensors"])
def test_a_full_disk_names_the_checkpoint_and_keeps_the_previous(tiny_model, tmp_path, monkeypatch, writer):
    from safetensors import SafetensorError

    target = ckpt.save(tiny_model, tmp_path / "ckpt")
    before = (target / "model.safetensors").read_bytes()
    if writer == "config.yaml":
        full_disk(monkeypatch, Path, "write_text", OSError(errno.ENOSPC, "No space left on device"))
    else:
        full_disk(monkeypatch, ckpt, "save_model", SafetensorError(SAFETENSORS_FULL))
    with pytest.raises(CheckpointError, match=rf"cannot save '{re.escape(str(target))}': the disk is full"):
        ckpt.save(tiny_model, target)
    monkeypatch.undo()
    assert (target / "model.safetensors").read_bytes() == before
    assert isinstance(mm.load(target), mm.MultimodalModel)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary dir left


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of STEPS steps: (its config, its data, its dir)."""
    folder = tmp_path_factory.mktemp("reference")
    data = image_folder(folder / "images", n=8)
    config = load_config(ROOT / "configs/tiny.yaml", RUN + [f"training.max_steps={STEPS}"])
    train(config, folder / "run", train_data=data, progress=False)
    return config, data, folder / "run"


def test_a_full_disk_stops_training_and_resume_continues_exactly(reference, tmp_path, monkeypatch):
    config, data, straight = reference
    out = tmp_path / "run"
    full_disk(monkeypatch, torch, "save", RuntimeError(TORCH_FULL), after=1)  # the second last/ save
    said = rf"(?s)cannot save '{re.escape(str(out / 'last'))}': the disk is full.*continue with --resume"
    with pytest.raises(CheckpointError, match=said):
        train(config, out, train_data=data, progress=False)
    monkeypatch.undo()  # space freed
    assert step_of(out / "last") == SAVE_EVERY and hidden(out) == []
    train(config, out, train_data=data, resume=True, progress=False)
    assert same_weights(out / "last", straight / "last")


# ---------------------------------------------------------------------------------------------------------
# A flipped byte


@pytest.fixture
def saved(tiny_model, tmp_path) -> Path:
    return ckpt.save(tiny_model, tmp_path / "ckpt", extra={TRAINER_STATE: lambda p: torch.save({"step": 1}, p)})


def recorded_and_actual(path: Path) -> tuple[str, str]:
    recorded = json.loads((path.parent / "checkpoint.json").read_text())["sha256"][path.name]
    return recorded, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("reader", ["load", "load_weights", "init_from"])
def test_a_flipped_byte_in_the_weights_is_caught_by_its_hash(saved, tiny_model, reader):
    weights = saved / "model.safetensors"
    flip_a_byte(weights)
    expected, actual = recorded_and_actual(weights)
    read = {"load": lambda: mm.load(saved), "load_weights": lambda: ckpt.load_weights(tiny_model, saved),
            "init_from": lambda: init_from(tiny_model, saved)}[reader]
    with pytest.raises(CheckpointError, match=rf"'{re.escape(str(weights))}'.*expected {expected}.*got {actual}"):
        read()


def test_a_checkpoint_without_hashes_loads_unchecked(saved):
    meta = json.loads((saved / "checkpoint.json").read_text())
    assert set(meta.pop("sha256")) == {"model.safetensors", TRAINER_STATE}
    (saved / "checkpoint.json").write_text(json.dumps(meta))  # as written before hashes were recorded
    flip_a_byte(saved / "model.safetensors")
    assert isinstance(mm.load(saved), mm.MultimodalModel)


def test_a_flipped_byte_in_the_trainer_state_stops_resume(reference, tmp_path):
    config, data, straight = reference
    shutil.copytree(straight / "last", tmp_path / "run" / "last")
    state = tmp_path / "run" / "last" / TRAINER_STATE
    flip_a_byte(state)
    with pytest.raises(CheckpointError, match=rf"'{re.escape(str(state))}'.*expected {recorded_and_actual(state)[0]}"):
        train(config, tmp_path / "run", train_data=data, resume=True, progress=False)


# ---------------------------------------------------------------------------------------------------------
# Two trainings into one folder


HOLDER = ("import fcntl, os, socket, sys, time\n"  # a process that holds a run folder as a training does
          "f = open(sys.argv[1], 'a+')\n"
          "fcntl.flock(f, fcntl.LOCK_EX)\n"
          "f.write(f'{os.getpid()} {socket.gethostname()}')\n"
          "f.flush()\n"
          "print('held', flush=True)\n"
          "time.sleep(600)\n")


def test_a_second_training_into_the_same_folder_is_refused(reference, tmp_path, monkeypatch):
    _, data, _ = reference
    one_step = load_config(ROOT / "configs/tiny.yaml", RUN + ["training.max_steps=1"])
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out / ".lock")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    holder_is = rf"\(pid {holder.pid} on {re.escape(socket.gethostname())}\)"
    said = rf"'{re.escape(str(out))}' is being written by another training {holder_is}"
    with pytest.raises(ValueError, match=said):
        train(one_step, out, train_data=data, progress=False)
    kill_9(holder)  # its lock dies with it; the file naming it stays and must not block

    import multimodal.train as train_module

    held_during_save, real_save_last = [], train_module._save_last

    def save_last(*args, **kwargs):
        with open(out / ".lock") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held_during_save.append(False)
            except BlockingIOError:
                held_during_save.append(True)
        real_save_last(*args, **kwargs)

    monkeypatch.setattr(train_module, "_save_last", save_last)
    train(one_step, out, train_data=data, progress=False)
    assert held_during_save == [True]
    assert (out / ".lock").read_text().split()[0] == str(os.getpid())
    with open(out / ".lock") as probe:  # released at the end
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)


# ---------------------------------------------------------------------------------------------------------
# Ctrl-C


def test_ctrl_c_stops_the_cli_cleanly_and_resume_continues_bitwise(reference, tmp_path):
    _, data, _ = reference
    # Every run through the CLI, in processes alike: bitwise equality needs the same thread count, which earlier
    # tests in this process may have changed.
    env = {**ENV, "OMP_NUM_THREADS": "2"}

    def cli(out: Path, *more: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "multimodal", "train", "configs/tiny.yaml", "--train", str(data),
                                 "--output", str(out), "--max-steps", str(STEPS), *RUN, *more], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                # A Python started with SIGINT ignored (inherited: a test runner in the
                                # background) keeps ignoring it; a user's Ctrl-C reaches a default handler.
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    straight = tmp_path / "straight"
    assert cli(straight).wait(timeout=300) == 0
    out = tmp_path / "run"
    proc = cli(out)
    wait_for((out / "last").exists, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "--resume" in stderr.splitlines()[-1], stderr[-3000:]
    assert step_of(out / "last") < STEPS, "the run ended before Ctrl-C"
    resumed = cli(out, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()[-3000:]
    assert step_of(out / "last") == STEPS
    assert same_weights(out / "last", straight / "last")


def test_ctrl_c_between_the_renames_of_last_keeps_the_previous(reference, tmp_path, monkeypatch):
    config, data, straight = reference
    out = tmp_path / "run"
    rename, saves = os.replace, []

    def replace(src, dst):
        rename(src, dst)
        if Path(src) == out / "last":  # the previous last/ was just moved aside
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        train(config, out, train_data=data, progress=False)
    monkeypatch.undo()
    assert not (out / "last").exists() and step_of(out / "last") == SAVE_EVERY
    train(config, out, train_data=data, resume=True, progress=False)
    assert same_weights(out / "last", straight / "last")
    assert hidden(out) == []
