"""ONNX export and the three inference backends: same depth, same validation, same threads."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from lumde_ros.checkpoint import untrained_student
from lumde_ros.errors import ModelLoadError
from lumde_ros.export import export_onnx, read_onnx_checkpoint
from lumde_ros.inference import BACKENDS, Predictor, cached_onnx, load_model

# Backends may differ from PyTorch by float reassociation and OpenVINO's approximate exp.
BACKEND_RTOL = 2e-3


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (240, 320, 3), np.uint8)


def _teacher():
    from lumde_ros.checkpoint import checkpoint_from_net, resolved_arch_config
    from lumde_ros.models import build_depth_net
    torch.manual_seed(4)
    config = resolved_arch_config("teacher")
    return checkpoint_from_net(build_depth_net("teacher", config), "teacher", config, 320, 256,
                               metric=False, provenance={"seed": 4})


@pytest.mark.parametrize("arch, dynamic", [("student", False), ("student", True),
                                           ("teacher", False)])
def test_export_round_trip_every_backend_agrees_with_torch(tmp_path, image, arch, dynamic):
    checkpoint = untrained_student(seed=4) if arch == "student" else _teacher()
    report = export_onnx(checkpoint, tmp_path / "m.onnx", 320, 256, dynamic=dynamic)
    assert report["max_relative_error"] <= report["tolerance"]
    meta, onnx_path = load_model(tmp_path / "m.onnx")
    assert (meta.arch, meta.arch_config, meta.metric) == (arch, checkpoint.arch_config, False)
    assert meta.provenance["seed"] == 4 and meta.provenance["dynamic"] is dynamic
    reference = Predictor(checkpoint, backend="torch").forward(image)
    for backend in ("onnxruntime", "openvino"):
        served = Predictor(meta, backend=backend, onnx_path=onnx_path)
        np.testing.assert_allclose(served.forward(image), reference, rtol=BACKEND_RTOL)
    if dynamic:  # another input size from the same file
        small = Predictor(meta, backend="onnxruntime", onnx_path=onnx_path, input_width=192,
                          input_height=128)
        np.testing.assert_allclose(
            small.forward(image),
            Predictor(checkpoint, input_width=192, input_height=128).forward(image),
            rtol=BACKEND_RTOL)
    else:
        with pytest.raises(ModelLoadError, match="exported for 320x256 only"):
            Predictor(meta, backend="onnxruntime", onnx_path=onnx_path, input_width=192,
                      input_height=128)


def test_pt_checkpoints_are_exported_once_per_content_and_exporter(image, monkeypatch):
    a, b = untrained_student(seed=5), untrained_student(seed=6)
    path_a = cached_onnx(a, 320, 256)
    stamp = path_a.stat().st_mtime_ns
    assert cached_onnx(a, 320, 256) == path_a and path_a.stat().st_mtime_ns == stamp
    assert cached_onnx(b, 320, 256) != path_a
    with monkeypatch.context() as patch:
        patch.setattr(torch, "__version__", "0.0.0")  # another exporter, another graph
        assert cached_onnx(a, 320, 256) != path_a
    for backend in ("onnxruntime", "openvino"):
        np.testing.assert_allclose(Predictor(a, backend=backend).forward(image),
                                   Predictor(a, backend="torch").forward(image),
                                   rtol=BACKEND_RTOL)


def test_auto_times_the_installed_backends_and_keeps_the_fastest():
    p = Predictor(untrained_student(), backend="auto", threads=1)
    assert set(p.timings_ms) == set(BACKENDS)
    assert p.backend == min(p.timings_ms, key=p.timings_ms.get)


def test_threads_reach_every_backend():
    ort = Predictor(untrained_student(), backend="onnxruntime", threads=1)
    assert ort._engine.session.get_session_options().intra_op_num_threads == 1
    ov = Predictor(untrained_student(), backend="openvino", threads=1)
    assert int(ov._engine.compiled.get_property("INFERENCE_NUM_THREADS")) == 1


def test_bad_onnx_files_and_choices_are_refused(tmp_path):
    export_onnx(untrained_student(), tmp_path / "good.onnx", 320, 256)
    data = (tmp_path / "good.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="cut.onnx"):
        load_model(tmp_path / "cut.onnx")
    import onnx
    bare = onnx.load(str(tmp_path / "good.onnx"))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelLoadError, match="no lumde_ros metadata"):
        read_onnx_checkpoint(tmp_path / "bare.onnx")
    meta, path = load_model(tmp_path / "good.onnx")
    with pytest.raises(ModelLoadError, match="cannot run with backend 'torch'"):
        Predictor(meta, backend="torch", onnx_path=path)
    with pytest.raises(ModelLoadError, match="not one of"):
        Predictor(untrained_student(), backend="tensorrt")


def test_a_missing_backend_is_named_and_torch_still_serves():
    code = ("import sys; sys.modules['openvino'] = None; sys.modules['onnxruntime'] = None\n"
            "from lumde_ros.checkpoint import untrained_student\n"
            "from lumde_ros.errors import ModelLoadError\n"
            "from lumde_ros.inference import Predictor\n"
            "print(Predictor(untrained_student(), backend='auto').backend)\n"
            "try:\n    Predictor(untrained_student(), backend='openvino')\n"
            "except ModelLoadError as err:\n    print(err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "torch"
    assert "backend 'openvino' requested but its Python packages are not installed" in lines[1]
    assert "pip install openvino onnx" in lines[1]


def test_onnx_engines_need_the_onnx_package_too():
    code = ("import sys; sys.modules['onnx'] = None\n"
            "from lumde_ros.inference import installed_backends\n"
            "print(installed_backends())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['torch']"


def test_student_graph_upsamples_without_bilinear_resize(tmp_path):
    """OpenVINO's bilinear Interpolate on the one-channel head cost a quarter of the student's
    forward; the graph must keep to nearest-neighbour Resize and the convolution form."""
    import onnx

    export_onnx(untrained_student(seed=4), tmp_path / "m.onnx", 320, 256)
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    modes = [a.s.decode() for n in graph.node if n.op_type == "Resize" for a in n.attribute
             if a.name == "mode"]
    assert modes and set(modes) == {"nearest"}


def test_a_damaged_cache_entry_is_exported_again(image):
    student = untrained_student(seed=7)
    cached = cached_onnx(student, 320, 256)
    cached.write_bytes(cached.read_bytes()[:1000])
    for backend in ("onnxruntime", "openvino"):
        np.testing.assert_allclose(Predictor(student, backend=backend).forward(image),
                                   Predictor(student, backend="torch").forward(image),
                                   rtol=BACKEND_RTOL)


def test_a_foreign_graph_with_copied_metadata_is_refused_by_its_output(tmp_path):
    import onnx
    export_onnx(untrained_student(), tmp_path / "good.onnx", 320, 256)
    halving = torch.nn.Conv2d(3, 1, 3, stride=2, padding=1)  # depth at half the input size
    torch.onnx.export(halving, (torch.zeros(1, 3, 256, 320),), tmp_path / "foreign.onnx",
                      input_names=["image"], output_names=["depth"], dynamo=False)
    foreign = onnx.load(str(tmp_path / "foreign.onnx"))
    foreign.metadata_props.extend(onnx.load(str(tmp_path / "good.onnx")).metadata_props)
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    meta, path = load_model(tmp_path / "foreign.onnx")
    for backend in ("onnxruntime", "openvino"):
        with pytest.raises(ModelLoadError, match="not a 320x256 depth map"):
            Predictor(meta, backend=backend, onnx_path=path)


def test_an_unwritable_cache_still_gives_the_onnx_engines(tmp_path, monkeypatch, image):
    (tmp_path / "a-file").write_text("the cache directory cannot be created under a file")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    student = untrained_student(seed=8)
    assert not cached_onnx(student, 320, 256).is_relative_to(tmp_path)
    np.testing.assert_allclose(Predictor(student, backend="onnxruntime").forward(image),
                               Predictor(student, backend="torch").forward(image),
                               rtol=BACKEND_RTOL)
