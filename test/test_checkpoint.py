import dataclasses
import os
import pickle

import pytest
import torch

from lumde_ros.checkpoint import (FORMAT, Checkpoint, load_checkpoint, resolved_arch_config,
                                  save_checkpoint, untrained_student)
from lumde_ros.errors import ModelLoadError


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    original = untrained_student(seed=3)
    loaded = load_checkpoint(save_checkpoint(original, tmp_path / "m.pt"))
    assert loaded.arch == "student" and loaded.metric is False
    assert loaded.arch_config == original.arch_config
    assert loaded.provenance["seed"] == 3
    for name, tensor in original.state_dict.items():
        assert torch.equal(tensor, loaded.state_dict[name])


def test_seeds_give_different_weights():
    a, b = untrained_student(seed=0).state_dict, untrained_student(seed=1).state_dict
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_config_records_every_constructor_argument():
    config = resolved_arch_config("student", {"expand": 2})
    assert config["expand"] == 2 and config["enc_channels"] == [16, 24, 32, 64, 96]


def test_save_is_atomic_and_leaves_no_temporary(tmp_path):
    path = save_checkpoint(untrained_student(), tmp_path / "sub" / "m.pt")
    save_checkpoint(untrained_student(seed=2), path)
    assert sorted(os.listdir(path.parent)) == ["m.pt"]


def _write(path, payload):
    torch.save(payload, path)
    return path


@pytest.mark.parametrize("mutate, match", [
    (lambda p: p.update(format="other"), "not a lumde_ros checkpoint"),
    (lambda p: p.update(format_version=99), "format 99"),
    (lambda p: p.pop("arch_config"), "arch_config"),
    (lambda p: p.update(arch="resnet9000"), "unknown architecture"),
    (lambda p: p.update(input_width=0), "input size"),
    (lambda p: p.update(depth_scale=-1.0), "depth_scale"),
    (lambda p: p["state_dict"].pop(next(iter(p["state_dict"]))), "do not fit"),
])
def test_bad_checkpoints_are_refused_with_reason(tmp_path, mutate, match):
    save_checkpoint(untrained_student(), tmp_path / "good.pt")
    payload = torch.load(tmp_path / "good.pt", weights_only=True)
    mutate(payload)
    path = _write(tmp_path / "bad.pt", payload)
    with pytest.raises(ModelLoadError, match=match):
        load_checkpoint(path).build()


def test_nan_weights_are_refused(tmp_path):
    ckpt = untrained_student()
    name = next(k for k, v in ckpt.state_dict.items() if v.is_floating_point())
    ckpt.state_dict[name].fill_(float("nan"))
    with pytest.raises(ModelLoadError, match="NaN"):
        load_checkpoint(save_checkpoint(ckpt, tmp_path / "nan.pt"))


def test_truncated_missing_and_foreign_files_are_refused(tmp_path):
    good = save_checkpoint(untrained_student(), tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.pt").write_text("hello")
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("cut.pt", "text.pt", "missing.pt", "empty.pt"):
        with pytest.raises(ModelLoadError, match=name) as refused:
            load_checkpoint(tmp_path / name)
        assert "\n" not in str(refused.value)
    with pytest.raises(ModelLoadError, match="empty file"):
        load_checkpoint(tmp_path / "empty.pt")


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_never_executed(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": FORMAT, "x": _Payload()}, f)
    with pytest.raises(ModelLoadError, match="Python objects") as refused:
        load_checkpoint(path)
    assert "pickled code ran" not in capsys.readouterr().out
    assert "weights_only" not in str(refused.value)  # torch's advice to run it is not passed on


def test_describe_names_scale_and_origin():
    text = untrained_student().describe()
    assert "relative scale" in text and "untrained" in text
    assert not untrained_student().trained
    assert isinstance(untrained_student(), Checkpoint)
    assert untrained_student().scale_source == "relative"
    metric = dataclasses.replace(untrained_student(), metric=True)
    assert metric.scale_source == "odometry" and "metric (odometry)" in metric.describe()
    floor = dataclasses.replace(metric, provenance={"scale": {"source": "camera_height"}})
    assert floor.scale_source == "camera_height" and "metric (camera height)" in floor.describe()
