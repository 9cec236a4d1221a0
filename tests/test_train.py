"""Training, checkpoints and the CLI, on small synthetic data (the real MNIST run is in
test_data.py and the demo)."""

import json
import os
import re

import numpy as np
import pytest

import npae
from npae import cli, models
from npae.training import checkpoint
from npae.training import loop as T
from npae.training.checkpoint import CheckpointError
from npae.training.loop import TrainSettings


def _synthetic(n_train=192, n_eval=64, seed=0):
    rng = np.random.default_rng(seed)

    def images(n):  # k/256 values, like MNIST
        return (rng.integers(0, 256, size=(n, 1, 28, 28)) / 256).astype(np.float32)

    return T.Data(images(n_train), images(n_eval), images(n_eval))


def _params(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


def _same_params(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def _history_without_timing(metrics):
    return [{k: v for k, v in h.items() if k not in ("train_seconds", "images_per_s")}
            for h in metrics["epochs"]]


def test_train_writes_metrics_and_a_checkpoint(tmp_path):
    data = _synthetic()
    settings = TrainSettings("linear", epochs=2, batch_size=64)
    metrics, model = T.train(settings, tmp_path, data=data, progress=False)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["test_loss"] == pytest.approx(metrics["test_loss"])
    assert np.isfinite(written["test_loss"])
    assert [h["epoch"] for h in written["epochs"]] == [1, 2]
    for h in written["epochs"]:
        assert {"train_loss", "val_loss", "images_per_s"} <= h.keys()
    assert written["settings"]["model"] == "linear"
    assert written["parameters"] == model.num_parameters() == 784 * 32 + 32 + 32 * 784 + 784
    meta, params, _ = checkpoint.load(tmp_path / "checkpoint.npz")
    assert meta["epochs_done"] == 2
    _same_params(params, _params(model))


@pytest.mark.parametrize("name, noise", [("linear", 0.3), ("vae", 0.0)])
def test_resume_continues_bit_for_bit(tmp_path, name, noise):
    data = _synthetic()
    straight, model_a = T.train(TrainSettings(name, epochs=3, batch_size=64, noise=noise),
                                tmp_path / "a", data=data, progress=False)
    T.train(TrainSettings(name, epochs=1, batch_size=64, noise=noise), tmp_path / "b", data=data,
            progress=False)
    resumed, model_b = T.train(TrainSettings(name, epochs=3, batch_size=64, noise=noise),
                               tmp_path / "b", resume=True, data=data, progress=False)
    _same_params(_params(model_a), _params(model_b))
    assert _history_without_timing(straight) == _history_without_timing(resumed)
    assert straight["test_loss"] == resumed["test_loss"]


def test_interrupted_run_keeps_the_last_good_checkpoint_and_resumes_exactly(tmp_path,
                                                                             monkeypatch):
    data = _synthetic()
    settings = TrainSettings("linear", epochs=2, batch_size=64)
    _, straight = T.train(settings, tmp_path / "straight", data=data, progress=False)

    calls = {"n": 0}
    real_step = T.Adam.step

    def step_then_interrupt(self):
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 2 (3 steps per epoch), mid-way
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(T.Adam, "step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        T.train(settings, tmp_path / "cut", data=data, progress=False)
    monkeypatch.setattr(T.Adam, "step", real_step)
    meta, _, _ = checkpoint.load(tmp_path / "cut" / "checkpoint.npz")
    assert meta["epochs_done"] == 1
    assert not [p for p in (tmp_path / "cut").iterdir() if ".tmp" in p.name]
    _, resumed = T.train(settings, tmp_path / "cut", resume=True, data=data, progress=False)
    _same_params(_params(straight), _params(resumed))


def test_a_crash_while_writing_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    data = _synthetic()
    T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, data=data, progress=False)
    before = (tmp_path / "checkpoint.npz").read_bytes()

    def half_written(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.np, "savez", half_written)
    with pytest.raises(OSError, match="disk full"):
        T.train(TrainSettings("linear", epochs=2, batch_size=64), tmp_path, resume=True, data=data,
                progress=False)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "metrics.json"]


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    data = _synthetic()
    T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, data=data, progress=False)
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        T.load_model(path)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        T.train(TrainSettings("linear", epochs=2, batch_size=64), tmp_path, resume=True, data=data,
                progress=False)


def test_checkpoint_into_the_wrong_model_is_refused(tmp_path):
    data = _synthetic()
    T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, data=data, progress=False)
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(CheckpointError, match="'linear' model, not 'vae'"):
        checkpoint.restore(path, models.create("vae"), expect_model="vae")
    with pytest.raises(CheckpointError, match="does not fit"):
        checkpoint.restore(path, models.create("vae"))
    with pytest.raises(T.TrainingError, match="'linear' model"):
        T.train(TrainSettings("vae", epochs=2, batch_size=64), tmp_path, resume=True, data=data,
                progress=False)


def test_resume_refuses_changed_settings(tmp_path):
    data = _synthetic()
    T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, data=data, progress=False)
    with pytest.raises(T.TrainingError, match="lr: 0.001 in the checkpoint, 0.01 now"):
        T.train(TrainSettings("linear", epochs=2, batch_size=64, lr=0.01), tmp_path, resume=True,
                data=data, progress=False)


def test_a_nan_loss_stops_training_naming_epoch_and_step(tmp_path):
    data = _synthetic()
    data.train[64 * 2 + 5] = np.nan  # lands in some batch of epoch 1
    with pytest.raises(T.TrainingError, match=r"epoch 1, step \d+ of 3"):
        T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, data=data,
                progress=False)


def test_a_non_finite_validation_loss_stops_before_saving(tmp_path):
    data = _synthetic()
    data.val[3] = np.nan  # a finite training loss, then a NaN validation loss
    with pytest.raises(T.TrainingError, match="validation loss became nan after epoch 1"):
        T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, data=data,
                progress=False)
    assert not (tmp_path / "checkpoint.npz").exists()


def test_evaluate_is_deterministic_for_a_seed(tmp_path):
    data = _synthetic()
    _, model = T.train(TrainSettings("vae", epochs=1, batch_size=64), tmp_path, data=data,
                       progress=False)
    a = T.evaluate(model, data.test, seed=3)
    assert a == T.evaluate(model, data.test, seed=3)
    assert a != T.evaluate(model, data.test, seed=4)  # the VAE samples its code


def test_bad_settings_are_rejected():
    for bad in (dict(model="nope"), dict(model="linear", epochs=0),
                dict(model="linear", batch_size=0), dict(model="linear", lr=0),
                dict(model="linear", lr=float("inf")), dict(model="linear", noise=-1),
                dict(model="linear", noise=float("nan")), dict(model="linear", seed=-1)):
        with pytest.raises(ValueError):
            TrainSettings(**bad).check()


def test_cli_train_then_eval(tmp_path, monkeypatch, capsys):
    data = _synthetic()
    monkeypatch.setattr(T.Data, "mnist", classmethod(lambda cls, progress=True: data))
    out = tmp_path / "run"
    assert cli.main(["train", "denoise", "--epochs", "1", "--batch-size", "64",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["noise"] == 0.5  # denoise's default
    assert f"test loss {metrics['test_loss']:.5f}" in printed
    for figure in ("reconstructions.png", "loss.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["eval", str(out / "checkpoint.npz")]) == 0
    assert f"test loss {metrics['test_loss']:.5f}" in capsys.readouterr().out


def test_cli_reports_errors_without_a_traceback(tmp_path, capsys):
    missing = tmp_path / "nothing.npz"
    assert cli.main(["eval", str(missing)]) == 1
    assert f"npae: error: no checkpoint at {missing}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "not-a-model"])


def test_demo_trains_every_model_and_writes_the_report(tmp_path, monkeypatch, capsys):
    data = _synthetic(n_train=128, n_eval=256)
    monkeypatch.setattr(T.Data, "mnist", classmethod(lambda cls, progress=True: data))
    assert cli.main(["demo", "--out", str(tmp_path)]) == 0
    report = tmp_path / "report.md"
    assert f"report: {report}" in capsys.readouterr().out
    text = report.read_text()
    for name in models.names():
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert f"| `{name}` | {metrics['parameters']:,} | {metrics['test_loss']:.4f} |" in text
        assert f"({name}/reconstructions.png)" in text
        assert (tmp_path / name / "reconstructions.png").exists()
    for figure in ("checkerboard.png", "vae/samples.png", "vae/vae_reconstructions.png"):
        assert (tmp_path / figure).read_bytes()[:4] == b"\x89PNG"
    for name in ("conv-transpose", "conv-strided", "conv-upsample"):
        assert f"| `{name}` | " in text.split("## Checkerboard")[1]


def test_a_fresh_run_does_not_clobber_an_earlier_checkpoint(tmp_path):
    data = _synthetic()
    T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, data=data, progress=False)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    with pytest.raises(T.TrainingError, match="--resume"):
        T.train(TrainSettings("linear", epochs=1, batch_size=64, seed=1), tmp_path, data=data,
                progress=False)
    assert (tmp_path / "checkpoint.npz").read_bytes() == before
    T.train(TrainSettings("linear", epochs=1, batch_size=64, seed=1), tmp_path, data=data,
            progress=False, overwrite=True)
    assert checkpoint.load(tmp_path)[0]["settings"]["seed"] == 1


def test_force_says_it_replaces_the_earlier_run_and_resume_says_it_resumes(tmp_path):
    data = _synthetic()
    settings = TrainSettings("linear", epochs=1, batch_size=64)
    said = []
    T.train(settings, tmp_path, data=data, progress=False, log=said.append)
    assert not any("replacing" in line or "resuming" in line for line in said)

    said.clear()
    T.train(settings, tmp_path, data=data, progress=False, log=said.append, overwrite=True)
    assert f"npae: replacing the earlier run in {tmp_path}" in said
    assert not any("resuming" in line for line in said)

    said.clear()
    T.train(TrainSettings("linear", epochs=2, batch_size=64), tmp_path, data=data,
            progress=False, log=said.append, resume=True)
    assert any(line.startswith("npae: resuming linear from ") for line in said)
    assert not any("replacing" in line for line in said)


def test_resume_needs_at_least_the_epochs_done_and_keeps_counting_wall_time(tmp_path):
    data = _synthetic()
    first, _ = T.train(TrainSettings("linear", epochs=2, batch_size=64), tmp_path, data=data,
                       progress=False)
    with pytest.raises(T.TrainingError, match="already trained 2 epochs"):
        T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, resume=True, data=data,
                progress=False)
    again, _ = T.train(TrainSettings("linear", epochs=2, batch_size=64), tmp_path, resume=True,
                       data=data, progress=False)
    assert again["wall_time_s"] >= again["train_seconds"]
    assert again["test_loss"] == first["test_loss"]


def test_scalar_parameter_optimizer_state_survives_a_checkpoint(tmp_path):
    from npae import nn
    from npae.optim import Adam

    class Scalar(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(np.array(0.5, np.float32))

    def run(steps, model, opt):
        for _ in range(steps):
            opt.zero_grad()
            (model.a * model.a).backward()
            opt.step()

    straight = Scalar()
    opt = Adam(straight.parameters(), lr=0.1)
    run(3, straight, opt)
    first = Scalar()
    opt1 = Adam(first.parameters(), lr=0.1)
    run(1, first, opt1)
    checkpoint.save(tmp_path / "c.npz", first, opt1, {"model": "scalar"})
    second = Scalar()
    opt2 = Adam(second.parameters(), lr=0.1)
    checkpoint.restore(tmp_path / "c.npz", second, opt2)
    assert opt2.state[0]["step"] == 1 and isinstance(opt2.state[0]["exp_avg"], np.ndarray)
    run(2, second, opt2)
    assert second.a.data == straight.a.data


def test_eval_takes_a_run_folder_and_rejects_files_that_are_not_checkpoints(tmp_path, capsys,
                                                                           monkeypatch):
    data = _synthetic()
    monkeypatch.setattr(T.Data, "mnist", classmethod(lambda cls, progress=True: data))
    T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path / "run", data=data,
            progress=False)
    assert cli.main(["eval", str(tmp_path / "run")]) == 0
    assert "test loss" in capsys.readouterr().out
    garbage = tmp_path / "g.npz"
    garbage.write_text("garbage\n")
    assert cli.main(["eval", str(garbage)]) == 1
    err = capsys.readouterr().err
    assert "not an npae checkpoint (not an .npz archive)" in err
    assert "pickle" not in err


def test_ctrl_c_in_train_says_how_to_resume(tmp_path, monkeypatch, capsys):
    data = _synthetic()
    monkeypatch.setattr(T.Data, "mnist", classmethod(lambda cls, progress=True: data))
    calls = {"n": 0}
    real_step = T.Adam.step

    def step_then_interrupt(self):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(T.Adam, "step", step_then_interrupt)
    out = tmp_path / "run"
    args = ["train", "linear", "--epochs", "2", "--batch-size", "64", "--out", str(out)]
    assert cli.main(args) == 130
    assert f"--out {out} --resume" in capsys.readouterr().err
    calls["n"] = 4  # the very next step is interrupted: no epoch has finished
    assert cli.main(["train", "linear", "--epochs", "2", "--batch-size", "64", "--out",
                     str(tmp_path / "none")]) == 130
    assert "nothing was saved" in capsys.readouterr().err


# --- the run folder: one run at a time, writable up front, no stale temporaries -----------------

HOLD = """
import sys, time
from pathlib import Path
from npae.training.runfolder import claim
with claim(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_run_into_a_busy_folder_is_refused_naming_the_holder(tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(T.TrainingError, match=rf"{tmp_path} is in use by another training "
                                                  rf"run \(process {holder.pid} on "):
            T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path,
                    data=_synthetic(), progress=False)
        assert not (tmp_path / "checkpoint.npz").exists()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    # the kernel dropped the lock with the process (killed, not exited): the folder is free
    T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, data=_synthetic(),
            progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "metrics.json"]


def test_an_unwritable_out_fails_at_once_in_one_line_before_any_data_is_loaded(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")

    class NoData:  # train must not get as far as reading data
        def __getattr__(self, name):
            raise AssertionError("data was touched before the folder was checked")

    for out in (a_file, a_file / "under"):
        with pytest.raises(T.TrainingError, match=rf"cannot write the run folder {out}: .*; "
                                                  r"choose another --out"):
            T.train(TrainSettings("linear", epochs=1, batch_size=64), out, data=NoData(),
                    progress=False)


def test_temporary_files_of_killed_runs_are_removed_at_the_next_start(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".checkpoint.npz.{dead_pid}.0badc0de.tmp"
    stale.write_bytes(b"PK\x03\x04 half a checkpoint")
    alive = tmp_path / f".checkpoint.npz.{os.getppid()}.feedf00d.tmp"  # a live process's
    alive.write_bytes(b"still being written")
    T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, data=_synthetic(),
            progress=False)
    assert not stale.exists()
    assert alive.exists()


def test_the_refusal_to_clobber_names_both_resume_and_force(tmp_path):
    T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, data=_synthetic(),
            progress=False)
    with pytest.raises(T.TrainingError, match="continue it with --resume, replace it with "
                                              "--force, or train into another --out folder"):
        T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, data=_synthetic(),
                progress=False)


# --- checkpoints are checked before they are inflated -------------------------------------------

def _rewrite(path, meta=None, extra=None):
    """The checkpoint at ``path`` again, with ``meta`` changed and ``extra`` members added."""
    import zipfile

    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if meta is not None:
        old = json.loads(str(arrays["meta"]))
        arrays["meta"] = np.array(json.dumps(meta(old)))
    np.savez(path, **arrays)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, payload in (extra or {}).items():
            archive.writestr(name, payload)


def _trained(tmp_path):
    T.train(TrainSettings("linear", epochs=1, batch_size=64), tmp_path, data=_synthetic(),
            progress=False)
    return tmp_path / "checkpoint.npz"


def test_a_member_npae_does_not_write_is_refused_without_inflating_it(tmp_path, monkeypatch):
    path = _trained(tmp_path)
    # 64 MB of zeros deflate to about 64 kB: the case was 3 GiB in a 3.7 MB file
    _rewrite(path, extra={"extra.bin": bytes(64 * 2**20)})
    assert path.stat().st_size < 8 * 2**20
    monkeypatch.setattr(checkpoint, "_read", lambda *a: pytest.fail("inflated a member"))
    for load in (T.load_model, checkpoint.load, checkpoint.read_meta):
        with pytest.raises(CheckpointError, match=r"member 'extra.bin' \(67,108,864 bytes\) "
                                                  r"that npae does not write"):
            load(path)


def test_a_header_that_disagrees_with_the_declared_size_is_refused(tmp_path):
    import io

    path = _trained(tmp_path)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": (10**11,)})
    _rewrite(path, extra={"param/huge.npy": buffer.getvalue() + bytes(16)})
    with pytest.raises(CheckpointError, match=r"param/huge.npy says it holds a float32 array of "
                                              r"shape \(100000000000,\) \(400,000,000,\d+ bytes\)"):
        checkpoint.load(path)


def test_arrays_larger_than_the_machine_is_are_refused_before_reading(tmp_path, monkeypatch):
    path = _trained(tmp_path)
    from npae.engine import config

    monkeypatch.setattr(config, "memory_bytes", lambda: 10_000)
    with pytest.raises(CheckpointError, match=r"its arrays would need .* KiB, more than this "
                                              r"machine's 9.8 KiB of memory; refusing to read it"):
        checkpoint.load(path)


def test_parameters_of_the_wrong_shape_are_refused_before_reading(tmp_path, monkeypatch):
    path = _trained(tmp_path)
    model = models.create("linear")
    model.decoder[0].weight = npae.nn.Parameter(np.zeros((784, 31), np.float32))
    read = checkpoint._read

    def only_the_metadata(archive, info):
        assert info.filename == "meta.npy", f"inflated {info.filename}"
        return read(archive, info)

    monkeypatch.setattr(checkpoint, "_read", only_the_metadata)
    says = r"does not fit this model: param/decoder.0.weight has shape \(784, 32\), the model"
    with pytest.raises(CheckpointError, match=says + r" needs \(784, 31\)"):
        checkpoint.restore(path, model)


@pytest.mark.parametrize("change, says", [
    (lambda m: {k: v for k, v in m.items() if k != "settings"}, "lacks 'settings'"),
    (lambda m: dict(m, epochs_done="2"), "'epochs_done' should be a int, got str '2'"),
    (lambda m: dict(m, history=None), "'history' should be a list, got NoneType"),
    (lambda m: dict(m, optimizer={"name": "Adam"}), "lacks optimizer 'hyper'"),
    (lambda m: dict(m, settings=dict(m["settings"], seed=-3)), "settings are not valid"),
    (lambda m: dict(m, settings=dict(m["settings"], colour=1)), "settings are not valid"),
])
def test_metadata_missing_a_key_or_of_the_wrong_type_is_one_clear_error(tmp_path, change, says):
    path = _trained(tmp_path)
    _rewrite(path, meta=change)
    with pytest.raises(CheckpointError, match=re.escape(says)):
        T.load_model(path)
    with pytest.raises(CheckpointError, match=re.escape(says)):
        T.train(TrainSettings("linear", epochs=2, batch_size=64), tmp_path, resume=True,
                data=_synthetic(), progress=False)


def test_a_broken_generator_state_is_one_clear_error(tmp_path):
    path = _trained(tmp_path)
    _rewrite(path, meta=lambda m: dict(m, rng_state={"bit_generator": "seed"}))
    with pytest.raises(CheckpointError, match="random generator state is not valid"):
        T.train(TrainSettings("linear", epochs=2, batch_size=64), tmp_path, resume=True,
                data=_synthetic(), progress=False)


def test_a_checkpoint_with_nan_parameters_warns_when_loaded(tmp_path):
    path = _trained(tmp_path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["param/encoder.1.bias"][3] = np.nan
    np.savez(path, **arrays)
    with pytest.warns(RuntimeWarning, match=r"encoder.1.bias hold NaN or infinite values"):
        T.load_model(path)


def test_evaluating_no_images_says_so():
    with pytest.raises(ValueError, match=r"evaluate: no images to score \(an empty split\)"):
        T.evaluate(models.create("linear"), np.zeros((0, 1, 28, 28), np.float32))


# --- the command line: resume as the hint says, one line per error, defaults shown ---------------

def _cli_data(monkeypatch):
    data = _synthetic()
    monkeypatch.setattr(T.Data, "mnist", classmethod(lambda cls, progress=True: data))
    return data


def test_resume_takes_the_checkpoints_settings_so_the_interrupt_hint_works(tmp_path, monkeypatch,
                                                                           capsys):
    # the case: `--seed 5 --batch-size 256`, then the printed hint without them
    _cli_data(monkeypatch)
    out = tmp_path / "D"
    assert cli.main(["train", "linear", "--epochs", "1", "--seed", "5", "--batch-size", "96",
                     "--out", str(out)]) == 0
    assert cli.main(["train", "linear", "--epochs", "2", "--out", str(out), "--resume"]) == 0
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert (settings["seed"], settings["batch_size"], settings["epochs"]) == (5, 96, 2)
    capsys.readouterr()
    # an explicit different value is still refused
    assert cli.main(["train", "linear", "--epochs", "3", "--seed", "6", "--out", str(out),
                     "--resume"]) == 1
    assert "seed: 5 in the checkpoint, 6 now" in capsys.readouterr().err
    # without --epochs, resume aims at the epochs the checkpoint was trained for: nothing to do
    assert cli.main(["train", "linear", "--out", str(out), "--resume"]) == 0


def test_resume_and_force_together_are_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "linear", "--out", str(tmp_path), "--resume", "--force"])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_train_prints_the_test_loss_once(tmp_path, monkeypatch, capsys):
    _cli_data(monkeypatch)
    assert cli.main(["train", "linear", "--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    both = capsys.readouterr()
    assert (both.out + both.err).count("test loss") == 1


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_out_that_cannot_be_a_folder_is_one_line_before_mnist_loads(tmp_path, monkeypatch,
                                                                       capsys, where):
    monkeypatch.setattr(T.Data, "mnist", classmethod(
        lambda cls, progress=True: pytest.fail("MNIST loaded before --out was checked")))
    a_file = tmp_path / "taken"
    a_file.write_text("")
    out = a_file if where == "a file" else a_file / "run"
    assert cli.main(["train", "linear", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"npae: error: cannot write the run folder {out}") and \
        err.count("\n") == 1


def test_train_help_shows_every_default():
    text = cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for default in ("(default: 2)", "(default: 128)", "(default: 0.001)", "(default: 0)",
                    "(default: runs/MODEL)", "(default: 0.5 for denoise, else 0)"):
        assert default in " ".join(text.split()), default
