"""Backends benchmark: every backend x precision side by side, with and without the DPT head.

Run (after `make setup`, with .venv/pixio_env.sh sourced, from the repository root):

    python benchmarks/backends.py [--size vitb16] [--inputs 240x320,480x640] [--runs 8] \
        [--node-seconds 20] [--node-input 240x320] [--artifacts DIR] [--json results.json]

Smoke run (a minute or two on two cores):

    python benchmarks/backends.py --size tiny --inputs 64x96,96x128 --runs 3 --node-seconds 3

INT8 (with the ``quantize`` extra; ``--int8-frames 0`` leaves it out): each ONNX artifact is also
quantised with `pixio-ros quantize`'s own code, calibrated on ``--int8-frames`` frames of a
synthetic sample bag at the input size (the scene `make demo` uses) and gated on held-out frames
of it; the INT8 artifact runs as ``openvino int8`` and ``onnxruntime int8`` beside the others,
and in the node. Every row also gets the gate's measures against the eager fp32 network on the
timed frame: depth AbsRel and the smallest patch-feature cosine.

One run, everything measured side by side: for each input size, a random-init network of
``--size`` with the DPT depth head and with no head (features only) is exported once as
TorchScript (the torch backend) and as ONNX (onnxruntime, openvino, tensorrt). Then, for every
backend x precision this machine runs (fp32 everywhere; bf16 only where the CPU has native bf16,
or every bf16 with ``--emulated-bf16``; fp16 and TensorRT on CUDA), the Engines are called in
interleaved rounds on the same frame at the input size, in a worker thread as the node's, and
medians are printed: latency, frames/s, the ratio to torch fp32, and the largest difference from
the eager fp32 network (depth in metres, features as a share of their range). The DPT head's
share of the time (1 - no-head / depth-head latency) shows how it grows with the input size.

Last, the node itself runs on each backend (``pixio_node`` processes, one after the other, with
the depth-head artifact at ``--node-input``), fed by a 640x480 rgb8 camera with CameraInfo at 30
Hz with depth, points, features and embedding subscribed (as benchmarks/node.py); its output rate
is its throughput. The ONNX backend that ``backend: auto`` picks is run as ``auto``. The
benchmark uses the checkout's code when run with ``PYTHONPATH=.`` (node processes included).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import sys
import tempfile
import threading
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import rclpy
import torch
from bench_rig import SEED, Camera, arrival_rate, random_init_artifact, use_private_dds
from rclpy.context import Context

from pixio_ros.commands.args import parse_hxw
from pixio_ros.model import build_network
from pixio_ros.model.artifact_format import RandomInitWarning
from pixio_ros.ros.node_process import NodeProcess
from pixio_ros.runtime.backends import backend_available, choose_backend
from pixio_ros.runtime.backends.parity import abs_rel, compare_int8, compare_outputs, cosines
from pixio_ros.runtime.engine import Engine, EngineError
from pixio_ros.runtime.precision import cpu_precision
from pixio_ros.units import MS_PER_S

HEADS = ('depth', 'none')
NODE_WARMUP_S = 3.0
NODE_READY_TIMEOUT_S = 900.0
NODE_OUTPUTS = ('depth', 'points', 'features', 'embedding')
CAMERA_HZ = 30.0


@dataclass(frozen=True)
class Combo:
    """One way of running an artifact: backend, precision, device."""

    backend: str
    precision: str
    device: str = 'cpu'

    @property
    def fmt(self) -> str:
        """The artifact it runs: TorchScript for torch, the INT8 ONNX at int8, else the ONNX."""
        if self.precision == 'int8':
            return 'int8'
        return 'torchscript' if self.backend == 'torch' else 'onnx'

    @property
    def label(self) -> str:
        """``backend precision``."""
        return f'{self.backend} {self.precision}'


@dataclass
class Row:
    """One combination's figures at one input size and head."""

    combo: str
    input_size: str
    head: str
    p50_ms: float = float('nan')
    fps: float = float('nan')
    ratio_to_torch_fp32: float = float('nan')
    depth_max_abs_m: float | None = None
    features_max_abs_of_range: float | None = None
    depth_abs_rel_vs_fp32: float | None = None
    features_cos_min: float | None = None
    within_tolerance: bool | None = None
    start_up: str = ''
    error: str = ''
    latencies_ms: list[float] = field(default_factory=list)


def openvino_has(capability: str) -> bool:
    import openvino

    return capability in openvino.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')


def combinations(emulated_bf16: bool, int8: bool) -> tuple[list[Combo], list[str]]:
    """The combinations this machine runs, and why the others are left out."""
    combos = [Combo('torch', 'fp32')]
    left_out = []
    native = cpu_precision().native_bf16
    if native or emulated_bf16:
        combos.append(Combo('torch', 'bf16'))
    else:
        left_out.append(f'bf16 (this CPU has {cpu_precision().describe()}; --emulated-bf16)')
    if backend_available('onnxruntime'):
        combos.append(Combo('onnxruntime', 'fp32'))
    else:
        left_out.append("onnxruntime (pip install 'pixio_ros[onnx]')")
    if backend_available('openvino'):
        combos.append(Combo('openvino', 'fp32'))
        if openvino_has('BF16'):
            combos.append(Combo('openvino', 'bf16'))
    else:
        left_out.append("openvino (pip install 'pixio_ros[openvino]')")
    if torch.cuda.is_available():
        combos += [Combo('torch', 'fp32', 'cuda'), Combo('torch', 'fp16', 'cuda')]
        if backend_available('tensorrt'):
            combos += [Combo('tensorrt', 'fp16', 'cuda'), Combo('tensorrt', 'fp32', 'cuda')]
        else:
            left_out.append('tensorrt (onnxruntime-gpu with TensorRT not installed)')
    else:
        left_out.append('tensorrt and CUDA (no NVIDIA GPU)')
    if int8:
        combos += [
            Combo(name, 'int8') for name in ('openvino', 'onnxruntime') if backend_available(name)
        ]
        if torch.cuda.is_available() and backend_available('tensorrt'):
            combos.append(Combo('tensorrt', 'int8', 'cuda'))
    return combos, left_out


def scene_frame(input_size) -> np.ndarray:
    """The timed and scored frame: the synthetic scene (another seed than INT8 calibration's).

    Speed does not depend on the content, but INT8 accuracy does: uniform noise lies outside any
    camera's activation ranges, so every row is scored on a scene the calibration never saw.
    """
    from pixio_ros.data import SampleBagSpec, render_frame

    spec = SampleBagSpec(frames=30, height=input_size[0], width=input_size[1], seed=1)
    return render_frame(spec, 7)[0]


def eager_outputs(size: str, head: str, image: np.ndarray) -> dict[str, torch.Tensor]:
    """The eager fp32 network's outputs on one frame (the reference of the differences)."""
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        net = build_network(size, head)
    with torch.inference_mode():
        return net(torch.from_numpy(image)[None])


def differences(engine: Engine, reference: dict[str, torch.Tensor], image: np.ndarray, row: Row):
    """Largest difference from eager on `image` (depth in metres, features of their range)."""
    prediction = engine.infer(image)
    candidate = {}
    for name in reference:
        array = torch.from_numpy(getattr(prediction, name))
        if name in ('depth', 'confidence'):
            array = array[None]
        elif name in ('points', 'features'):
            array = array.permute(2, 0, 1)
        candidate[name] = array[None]
    if engine.metadata.quantization is not None:
        results = compare_int8(reference, candidate, engine.metadata.quantization)
    else:
        results = compare_outputs(
            reference, candidate, engine.backend_info.precision, engine.metadata.max_depth
        )
    row.within_tolerance = all(result.ok for result in results.values())
    if 'depth' in reference:
        row.depth_abs_rel_vs_fp32 = abs_rel(reference['depth'], candidate['depth'])
    row.features_cos_min = float(cosines(reference['features'], candidate['features']).min())
    if 'depth' in results:
        row.depth_max_abs_m = results['depth'].max_abs
    features = reference['features']
    spread = float(features.max() - features.min())
    delta = (candidate['features'] - reference['features']).abs().max()
    row.features_max_abs_of_range = float(delta) / spread


def timed_rounds(engines: dict[str, Engine], image: np.ndarray, runs: int) -> dict[str, list]:
    """Interleaved rounds of one Engine.infer each, in a worker thread; latencies in ms."""
    latencies: dict[str, list[float]] = {label: [] for label in engines}

    def loop() -> None:
        for engine in engines.values():  # the first calls at a size are slow
            engine.infer(image)
        for _ in range(runs):
            for label, engine in engines.items():
                latencies[label].append(engine.infer(image).inference_ms)

    worker = threading.Thread(target=loop)
    worker.start()
    worker.join()
    return latencies


def measure_config(
    combos: list[Combo], artifacts: dict[str, Path], size: str, head: str, input_size, runs: int
) -> list[Row]:
    """Every combination on one (input size, head): latency, ratio, difference from eager."""
    shown = f'{input_size[0]}x{input_size[1]}'
    image = scene_frame(input_size)
    reference = eager_outputs(size, head, image)
    engines: dict[str, Engine] = {}
    rows: dict[str, Row] = {}
    for combo in combos:
        row = rows[combo.label] = Row(combo.label, shown, head)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', RandomInitWarning)
                engine = Engine(
                    artifacts[combo.fmt],
                    device=combo.device,
                    precision=combo.precision,
                    backend=combo.backend,
                    warmup_runs=1,
                )
        except EngineError as err:
            row.error = str(err)
            continue
        row.start_up = engine.backend_info.parity_summary()
        differences(engine, reference, image, row)
        engines[combo.label] = engine
    for label, values in timed_rounds(engines, image, runs).items():
        rows[label].latencies_ms = values
        rows[label].p50_ms = float(np.median(values))
        rows[label].fps = MS_PER_S / rows[label].p50_ms
    base = rows.get('torch fp32')
    for row in rows.values():
        if base is not None and base.p50_ms == base.p50_ms:
            row.ratio_to_torch_fp32 = base.p50_ms / row.p50_ms
    engines.clear()
    gc.collect()
    return list(rows.values())


def print_rows(size: str, rows: list[Row]) -> None:
    print(
        '\n| model | input | backend precision | p50 ms | frames/s | vs torch fp32 | '
        'depth max diff (m) | features max diff (of range) | depth AbsRel vs fp32 | '
        'features cos min | within tolerance |'
    )
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for row in rows:
        if row.error:
            print(f'| {size} {row.head} | {row.input_size} | {row.combo} | refused: {row.error} |')
            continue
        depth = f'{row.depth_max_abs_m:.2g}' if row.depth_max_abs_m is not None else '-'
        rel = f'{row.depth_abs_rel_vs_fp32:.2g}' if row.depth_abs_rel_vs_fp32 is not None else '-'
        print(
            f'| {size} {row.head} | {row.input_size} | {row.combo} | {row.p50_ms:.1f} | '
            f'{row.fps:.2f} | {row.ratio_to_torch_fp32:.2f}x | {depth} | '
            f'{row.features_max_abs_of_range:.2%} | {rel} | {row.features_cos_min:.4f} | '
            f'{"yes" if row.within_tolerance else "NO"} |'
        )


def print_dpt_share(rows: list[Row]) -> None:
    """How much of each combination's time the DPT head takes, per input size."""
    table: dict[tuple[str, str], dict[str, float]] = {}
    for row in rows:
        if not row.error:
            table.setdefault((row.combo, row.input_size), {})[row.head] = row.p50_ms
    print('\n| backend precision | input | with DPT head ms | no head ms | DPT share |')
    print('|---|---|---|---|---|')
    for (combo, shown), heads in table.items():
        if {'depth', 'none'} <= set(heads):
            share = 1.0 - heads['none'] / heads['depth']
            print(
                f'| {combo} | {shown} | {heads["depth"]:.1f} | {heads["none"]:.1f} | {share:.0%} |'
            )


@dataclass
class NodeRow:
    """The node's throughput on one backend."""

    label: str
    fps: float = float('nan')
    ratio_to_torch_fp32: float = float('nan')
    age_p50_ms: float = float('nan')
    inference_p50_ms: float = float('nan')
    error: str = ''


def node_combos(combos: list[Combo]) -> list[tuple[str, Combo]]:
    """(label, combination) of the node runs: the ONNX backend auto picks runs as `auto`."""
    if not any(combo.fmt == 'onnx' for combo in combos):
        return [(combo.label, combo) for combo in combos]
    picks = {device: choose_backend('onnx', device)[0] for device in {c.device for c in combos}}
    runs = []
    for combo in combos:
        if combo.fmt == 'onnx' and picks.get(combo.device) == combo.backend:
            auto = Combo('auto', combo.precision, combo.device)
            runs.append((f'auto ({combo.backend}) {combo.precision}', auto))
        else:
            runs.append((combo.label, combo))
    return runs


def measure_nodes(
    runs: list[tuple[str, Combo]], artifacts: dict[str, Path], seconds: float, directory: Path
) -> list[NodeRow]:
    """Each backend's node in turn, fed by the 30 Hz camera with every output subscribed."""
    rows = []
    context = Context()
    rclpy.init(context=context)
    camera = Camera(context, NODE_OUTPUTS, CAMERA_HZ)
    try:
        for label, combo in runs:
            row = NodeRow(label)
            rows.append(row)
            parameters = {
                'model_path': str(artifacts[combo.fmt]),
                'device': combo.device,
                'backend': combo.backend,
                'precision': combo.precision,
                'warmup_runs': 2,
            }
            log = directory / f'node_{combo.backend}_{combo.precision}.log'
            with NodeProcess(log, parameters=parameters) as process:
                try:
                    camera.wait_for_node(
                        lambda: process.running, NODE_READY_TIMEOUT_S, process.tail
                    )
                except RuntimeError as err:
                    row.error = str(err).splitlines()[-1]
                    continue
                camera.stream(NODE_WARMUP_S)
                arrivals = camera.stream(seconds)
                row.fps = arrival_rate(arrivals)
                row.age_p50_ms = float(np.median([age for _, age, _ in arrivals] or [np.nan]))
                with camera.lock:
                    row.inference_p50_ms = float(camera.diagnostics.get('inference ms p50', 'nan'))
            camera.wait_for_no_node()
    finally:
        camera.close()
        rclpy.shutdown(context=context)
    base = next((row for row in rows if row.label == 'torch fp32'), None)
    for row in rows:
        if base is not None and base.fps > 0:
            row.ratio_to_torch_fp32 = row.fps / base.fps
    return rows


def print_nodes(size: str, shown: str, rows: list[NodeRow]) -> None:
    print(
        f'\nnode, {size} depth head at {shown}, camera 640x480 rgb8 at '
        f'{CAMERA_HZ:.0f} Hz, outputs {", ".join(NODE_OUTPUTS)}'
    )
    print('| backend precision | node frames/s | vs torch fp32 | inference p50 ms | age p50 ms |')
    print('|---|---|---|---|---|')
    for row in rows:
        if row.error:
            print(f'| {row.label} | failed: {row.error} |')
            continue
        print(
            f'| {row.label} | {row.fps:.2f} | {row.ratio_to_torch_fp32:.2f}x | '
            f'{row.inference_p50_ms:.1f} | {row.age_p50_ms:.0f} |'
        )


def make_artifacts(directory: Path, args, combos: list[Combo], head: str, input_size):
    """The artifacts ``combos`` read at one (head, input size): TorchScript, ONNX, INT8 ONNX."""
    formats = {combo.fmt for combo in combos}
    artifacts = {
        fmt: random_init_artifact(directory, args.size, head, input_size, fmt)
        for fmt in formats - {'int8'}
    }
    if 'int8' in formats:
        onnx = artifacts.get('onnx') or random_init_artifact(
            directory, args.size, head, input_size, 'onnx'
        )
        artifacts['int8'], gate = int8_artifact(directory, onnx, input_size, args.int8_frames)
        print(f'INT8 {args.size} {head} {input_size[0]}x{input_size[1]}: gate {gate}', flush=True)
    return artifacts


def int8_artifact(directory: Path, source: Path, input_size, frames: int) -> tuple[Path, str]:
    """`pixio-ros quantize`'s INT8 artifact of ``source``, calibrated on the synthetic scene."""
    from pixio_ros.data import SampleBagSpec, write_sample_bag
    from pixio_ros.quantization import QuantizeRequest, quantize_artifact

    held_out = 16
    bag = directory / f'scene_{input_size[0]}x{input_size[1]}'
    if not bag.exists():
        spec = SampleBagSpec(frames=frames + held_out, height=input_size[0], width=input_size[1])
        write_sample_bag(bag, spec)
    output = source.with_suffix('.int8.onnx')
    if not output.exists():
        request = QuantizeRequest(
            artifact=source,
            output=output,
            calibrate=(bag,),
            frames=frames,
            validate_frames=held_out,
        )
        quantize_artifact(request)
    from pixio_ros.model.artifact_format import read_metadata

    record = read_metadata(output).quantization
    return output, record.summary() if record is not None else ''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', default='vitb16', help='model size (default vitb16)')
    parser.add_argument('--inputs', default='240x320,480x640', help='input sizes, HxW,HxW')
    parser.add_argument('--runs', type=int, default=8, help='timed rounds (medians)')
    parser.add_argument('--node-seconds', type=float, default=20.0, help='0 skips the node')
    parser.add_argument('--node-input', type=parse_hxw, help='default: the first of --inputs')
    parser.add_argument('--artifacts', type=Path, help='folder to keep / reuse the exports in')
    parser.add_argument('--emulated-bf16', action='store_true', help='bf16 on CPUs without it')
    parser.add_argument('--json', type=Path, help='also write every figure here')
    parser.add_argument(
        '--int8-frames', type=int, default=32, help='INT8 calibration frames (0: no INT8 rows)'
    )
    args = parser.parse_args()
    use_private_dds()
    inputs = [parse_hxw(text) for text in args.inputs.split(',')]
    node_input = args.node_input or inputs[0]
    int8 = args.int8_frames > 0 and importlib.util.find_spec('nncf') is not None
    combos, left_out = combinations(args.emulated_bf16, int8)
    if not int8:
        left_out.append("int8 (--int8-frames 0, or pip install 'pixio_ros[quantize]')")
    cpu = cpu_precision()
    print(
        f'{args.size}, random-init weights (speed does not depend on them); CPU {cpu.model}, '
        f'{cpu.describe()}; torch {torch.__version__}, {torch.get_num_threads()} threads'
    )
    print(f'combinations: {", ".join(c.label + " " + c.device for c in combos)}')
    if left_out:
        print(f'left out: {"; ".join(left_out)}')
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.artifacts or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        rows: list[Row] = []
        for input_size in inputs:
            for head in HEADS:
                artifacts = make_artifacts(directory, args, combos, head, input_size)
                config_rows = measure_config(
                    combos, artifacts, args.size, head, input_size, args.runs
                )
                print_rows(args.size, config_rows)
                rows += config_rows
        print_dpt_share(rows)
        node_rows: list[NodeRow] = []
        if args.node_seconds > 0:
            artifacts = make_artifacts(directory, args, combos, 'depth', node_input)
            node_rows = measure_nodes(node_combos(combos), artifacts, args.node_seconds, Path(tmp))
            print_nodes(args.size, f'{node_input[0]}x{node_input[1]}', node_rows)
    if args.json:
        document = {
            'size': args.size,
            'cpu': {'model': cpu.model, 'bf16_flags': list(cpu.bf16_flags)},
            'left_out': left_out,
            'engine': [asdict(row) for row in rows],
            'node': [asdict(row) for row in node_rows],
        }
        args.json.write_text(json.dumps(document, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
