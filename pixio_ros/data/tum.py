"""TUM RGB-D sequences: rgb.txt / depth.txt, timestamp association, 5000-per-metre depth PNGs.

A sequence folder (``rgbd_dataset_freiburg1_xyz/``) holds ``rgb.txt`` and ``depth.txt``
("TIMESTAMP FILENAME" lines after '#' comments), ``rgb/*.png`` (8-bit colour) and
``depth/*.png`` (16-bit, 5000 units per metre, 0 = no depth; already registered to the colour
camera). Colour and depth are captured apart, so each colour frame is paired with the depth
frame closest in time, one-to-one, within ``max_difference_s`` (0.02 s, as the benchmark's
associate.py does).

The camera is the one the dataset documents for its sensor (the folder name says
freiburg1/2/3): the colour intrinsics with their plumb_bob distortion (k1 k2 p1 p2 k3; freiburg3
images are already undistorted, so its coefficients are zero).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from pixio_ros.data.errors import DataError
from pixio_ros.data.samples import RGBDSample, read_color, read_depth_png
from pixio_ros.data.stamps import pair_stamps
from pixio_ros.runtime.camera import PinholeCamera
from pixio_ros.units import NS_PER_S

__all__ = [
    'TUM_CAMERAS',
    'TUM_DEPTH_SCALE',
    'TUM_MAX_DIFFERENCE_S',
    'load_tum',
    'read_tum_list',
    'tum_camera_for',
]

TUM_DEPTH_SCALE: Final = 5000.0
TUM_MAX_DIFFERENCE_S: Final = 0.02
TUM_WIDTH: Final = 640
TUM_HEIGHT: Final = 480


def _tum_camera(fx: float, fy: float, cx: float, cy: float, d: tuple[float, ...]) -> PinholeCamera:
    return PinholeCamera.from_k(
        TUM_WIDTH,
        TUM_HEIGHT,
        [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
        d=d,
        distortion_model='plumb_bob',
    )


TUM_CAMERAS: Final = {
    'freiburg1': _tum_camera(
        517.3, 516.5, 318.6, 255.3, (0.2624, -0.9531, -0.0054, 0.0026, 1.1633)
    ),
    'freiburg2': _tum_camera(
        520.9, 521.0, 325.1, 249.7, (0.2312, -0.7849, -0.0033, -0.0001, 0.9172)
    ),
    'freiburg3': _tum_camera(535.4, 539.2, 320.1, 247.6, (0.0, 0.0, 0.0, 0.0, 0.0)),
}
"""The documented colour cameras (TUM RGB-D 'File Formats' / camera calibration page)."""
_SENSOR = re.compile(r'(?:freiburg|fr)([123])', re.IGNORECASE)
DATASET: Final = 'TUM RGB-D'


def tum_camera_for(sequence: Path) -> PinholeCamera:
    """The camera of a sequence, from its folder name (rgbd_dataset_freiburgN_...).

    Raises:
        DataError: the name says no freiburg sensor.
    """
    match = _SENSOR.search(sequence.resolve().name)
    if match is None:
        raise DataError(
            f'cannot tell the TUM sensor from the folder name {sequence.resolve().name!r}: keep '
            'the name of the download (rgbd_dataset_freiburg1_xyz, ...freiburg2_..., '
            '...freiburg3_...), which selects the documented intrinsics.'
        )
    return TUM_CAMERAS[f'freiburg{match.group(1)}']


def read_tum_list(path: Path) -> list[tuple[int, str]]:
    """(timestamp ns, file name) of each line of rgb.txt / depth.txt, in file order.

    Timestamps are parsed as decimals, so the nanoseconds are exact.

    Raises:
        DataError: a missing file or a malformed line (named with its number).
    """
    if not path.is_file():
        raise DataError(f'{path} does not exist; a TUM RGB-D sequence has rgb.txt and depth.txt.')
    rows = []
    for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith('#'):
            continue
        columns = text.split()
        try:
            if len(columns) != 2:
                raise InvalidOperation
            stamp = int(Decimal(columns[0]) * NS_PER_S)
        except InvalidOperation as err:
            raise DataError(
                f'{path}:{number}: expected "TIMESTAMP FILENAME", got {text!r}.'
            ) from err
        rows.append((stamp, columns[1]))
    if not rows:
        raise DataError(f'{path} lists no frame.')
    return rows


def load_tum(
    sequence: Path, *, max_difference_s: float = TUM_MAX_DIFFERENCE_S
) -> tuple[list[RGBDSample], dict[str, int]]:
    """Lazy samples of the associated colour / depth frames, in colour timestamp order.

    Returns:
        (samples, counts: colour and depth frames listed, associated pairs).

    Raises:
        DataError: missing lists, a malformed line, an unknown sensor, no association, or a
            listed file that does not exist (named).
    """
    if not sequence.is_dir():
        raise DataError(f'TUM sequence {sequence} is not a folder.')
    camera = tum_camera_for(sequence)
    colour = read_tum_list(sequence / 'rgb.txt')
    depth = read_tum_list(sequence / 'depth.txt')
    pairing = pair_stamps(
        [stamp for stamp, _ in colour],
        [stamp for stamp, _ in depth],
        round(max_difference_s * NS_PER_S),
    )
    if not pairing.pairs:
        raise DataError(
            f'no colour frame of {sequence / "rgb.txt"} has a depth frame in '
            f'{sequence / "depth.txt"} within {max_difference_s:g} s.'
        )
    samples = []
    for position, (i, j) in enumerate(pairing.pairs):
        stamp, rgb_name = colour[i]
        rgb_path, depth_path = sequence / rgb_name, sequence / depth[j][1]
        for listed, file in (
            (sequence / 'rgb.txt', rgb_path),
            (sequence / 'depth.txt', depth_path),
        ):
            if not file.is_file():
                raise DataError(f'{listed} names {file}, which does not exist.')

        def load(rgb_path: Path = rgb_path, depth_path: Path = depth_path) -> Any:
            rgb = read_color(rgb_path)
            metres = read_depth_png(depth_path, units_per_metre=TUM_DEPTH_SCALE, what=DATASET)
            if metres.shape != rgb.shape[:2]:
                raise DataError(
                    f'depth image {depth_path} is {metres.shape[1]}x{metres.shape[0]} but its '
                    f'colour image {rgb_path} is {rgb.shape[1]}x{rgb.shape[0]}.'
                )
            return rgb, metres

        samples.append(
            RGBDSample.lazy(load, camera, str(sequence), position, name=rgb_name, stamp_ns=stamp)
        )
    counts = {
        'colour_frames': len(colour),
        'depth_frames': len(depth),
        'associated': len(pairing.pairs),
    }
    return samples, counts
