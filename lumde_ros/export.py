"""ONNX export of any depth network the project makes, with the checkpoint's metadata in the
graph, verified against PyTorch before it counts as done.

The graph takes RGB in [0, 1] as `image` (1, 3, H, W) and returns `depth` (1, 1, H, W) in
network units; multiply by the metadata's depth_scale for metres (1.0 for metric models).
A model trained with the floor prior also takes `floor_prior` (1, 2, H, W): what
geometry.floor_prior gives for the camera's pose over the floor, zeros where that is unknown.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from lumde_ros.checkpoint import FORMAT, FORMAT_VERSION, Checkpoint
from lumde_ros.errors import ModelLoadError
from lumde_ros.files import atomic_path
from lumde_ros.geometry import FLOOR_PRIOR_CHANNELS
from lumde_ros.models import MetricDepth, fuse_for_inference, input_size

METADATA_KEY = FORMAT
OPSET = 17
PRIOR_INPUT = "floor_prior"
# Largest |onnx - torch| / torch depth accepted by the export check.
VERIFY_RTOL = 1e-4


def checkpoint_digest(checkpoint: Checkpoint) -> str:
    """Content hash of a checkpoint's architecture and weights (not its path or provenance)."""
    digest = hashlib.sha256(json.dumps([checkpoint.arch, checkpoint.arch_config],
                                       sort_keys=True).encode())
    for name in sorted(checkpoint.state_dict):
        digest.update(name.encode())
        digest.update(checkpoint.state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def graph_digest(checkpoint: Checkpoint) -> str:
    """Key of the graph an export of `checkpoint` produces: its content, plus the code that
    turns it into a graph (the model definitions, this exporter, torch's version), so a cached
    export is redone when either changes."""
    digest = hashlib.sha256(checkpoint_digest(checkpoint).encode())
    digest.update(torch.__version__.encode())
    package = Path(__file__).parent
    for source in sorted((package / "models").glob("*.py")) + [Path(__file__)]:
        digest.update(source.read_bytes())
    return digest.hexdigest()


def metadata(checkpoint: Checkpoint, dynamic: bool) -> dict[str, object]:
    """What an .onnx file records about the model it holds (all but the weights)."""
    return {"format_version": FORMAT_VERSION, "arch": checkpoint.arch,
            "arch_config": checkpoint.arch_config, "input_width": checkpoint.input_width,
            "input_height": checkpoint.input_height, "metric": checkpoint.metric,
            "depth_scale": checkpoint.depth_scale, "provenance": checkpoint.provenance,
            "dynamic": dynamic}


def takes_floor_prior(checkpoint: Checkpoint) -> bool:
    """Whether the model's input includes the floor prior (arch_config `floor_prior`)."""
    return bool(checkpoint.arch_config.get("floor_prior"))


def export_onnx(checkpoint: Checkpoint, out: str | Path, width: int, height: int,
                dynamic: bool = False, probes: int = 3) -> dict[str, object]:
    """Write `out` atomically and check it with ONNX Runtime against PyTorch on `probes`
    random images (and, when dynamic, at a second size). Returns what was checked."""
    import onnx

    out = Path(out)
    model = MetricDepth(fuse_for_inference(checkpoint.build()), 1.0).eval()
    inputs = ["image", PRIOR_INPUT] if takes_floor_prior(checkpoint) else ["image"]
    dummies = tuple(torch.rand(1, c, height, width) for c in input_channels(inputs))
    axes = {name: {2: "height", 3: "width"} for name in [*inputs, "depth"]}
    with atomic_path(out, suffix=".onnx") as tmp, input_size(width, height):
        torch.onnx.export(model, dummies, tmp, input_names=inputs, output_names=["depth"],
                          opset_version=OPSET, dynamo=False,
                          dynamic_axes=axes if dynamic else None)
        graph = onnx.load(tmp)
        info = metadata(checkpoint, dynamic)
        info.update(input_width=width, input_height=height)
        entry = graph.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(info)
        onnx.save(graph, tmp)
        sizes = [(width, height)] + ([(width + 64, height + 32)] if dynamic else [])
        worst = verify(model, tmp, inputs, sizes, probes)
    return {"onnx": str(out), "input": f"{width}x{height}", "dynamic": dynamic,
            "opset": OPSET, "verified_inputs": probes * len(sizes),
            "max_relative_error": worst, "tolerance": VERIFY_RTOL}


def input_channels(inputs: list[str]) -> list[int]:
    """Channels of each named graph input."""
    return [FLOOR_PRIOR_CHANNELS if name == PRIOR_INPUT else 3 for name in inputs]


def verify(model: torch.nn.Module, path: Path, inputs: list[str], sizes: list[tuple[int, int]],
           probes: int) -> float:
    """Largest relative depth difference between ONNX Runtime and PyTorch on random inputs;
    raises when it exceeds VERIFY_RTOL."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for width, height in sizes:
        for _ in range(probes):
            x = [rng.random((1, c, height, width), dtype=np.float32)
                 for c in input_channels(inputs)]
            with torch.no_grad():
                expected = model(*map(torch.from_numpy, x)).numpy()
            got = session.run(["depth"], dict(zip(inputs, x)))[0]
            worst = max(worst, float(np.max(np.abs(got - expected) / np.abs(expected))))
    if not worst <= VERIFY_RTOL:
        raise ModelLoadError(f"exported graph disagrees with PyTorch: relative error {worst:.2e} "
                             f"> {VERIFY_RTOL:.0e}; not writing {path.name}")
    return worst


def read_onnx_checkpoint(path: str | Path) -> Checkpoint:
    """The metadata of an .onnx file written by `lumde export`, as a Checkpoint without
    weights (the weights stay in the graph)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model {path} does not exist or is not a file")
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # onnx raises DecodeError and others for corrupt files
        raise ModelLoadError(f"{path} is not a readable ONNX model (corrupt or truncated): "
                             f"{type(err).__name__}: {err}") from err
    props = {p.key: p.value for p in graph.metadata_props}
    if METADATA_KEY not in props:
        raise ModelLoadError(f"{path} has no lumde_ros metadata; export models with "
                             "`lumde export` so their input size and scale are known")
    try:
        info = json.loads(props[METADATA_KEY])
        return Checkpoint(arch=info["arch"], arch_config=info["arch_config"],
                          input_width=int(info["input_width"]),
                          input_height=int(info["input_height"]), metric=bool(info["metric"]),
                          depth_scale=float(info["depth_scale"]), state_dict={},
                          provenance=dict(info["provenance"], dynamic=info["dynamic"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ModelLoadError(f"{path} has malformed lumde_ros metadata: {err}") from err
