"""INT8 post-training quantisation of ONNX artifacts, calibrated on recordings and gated in metres.

`quantize_artifact` is `pixio-ros quantize`: frames sampled evenly from the user's recordings
through the node's own decode and resize (`frames`), NNCF's transformer-aware quantisation with
measured layer groups left float (`scope`), and an accuracy gate against the fp32 source on
held-out frames (`gate`) that refuses to write an artifact beyond its tolerances.
"""

from pixio_ros.quantization.errors import QuantizationError
from pixio_ros.quantization.frames import BagFrames, DatasetFrames, Frames, evenly, read_frames
from pixio_ros.quantization.gate import GateResult, score_outputs
from pixio_ros.quantization.quantize import (
    DEFAULT_FRAMES,
    DEFAULT_IMAGE_TOPIC,
    DEFAULT_MAX_ABS_REL,
    DEFAULT_MIN_FEATURE_COS,
    DEFAULT_VALIDATE_FRAMES,
    GateRefusedError,
    QuantizeRequest,
    QuantizeResult,
    quantize_artifact,
)
from pixio_ros.quantization.scope import DEFAULT_KEEP_FLOAT, FLOAT_GROUPS, float_nodes

__all__ = [
    'DEFAULT_FRAMES',
    'DEFAULT_IMAGE_TOPIC',
    'DEFAULT_KEEP_FLOAT',
    'DEFAULT_MAX_ABS_REL',
    'DEFAULT_MIN_FEATURE_COS',
    'DEFAULT_VALIDATE_FRAMES',
    'FLOAT_GROUPS',
    'BagFrames',
    'DatasetFrames',
    'Frames',
    'GateRefusedError',
    'GateResult',
    'QuantizationError',
    'QuantizeRequest',
    'QuantizeResult',
    'evenly',
    'float_nodes',
    'quantize_artifact',
    'read_frames',
    'score_outputs',
]
