"""One RGB-D frame, the interface every reader feeds to training and evaluation; shared file IO.

Bags, folders and the public datasets all produce `RGBDSample`s. A sample is a colour image,
its aligned ground-truth depth in metres (NaN where invalid: the convention of
`runtime.image_codec.decode_depth` and of the training losses) and the colour camera's model
(`PinholeCamera`, distortion included). Bags and folders hold their frames in memory; the public
datasets are tens of GB, so their samples are lazy: a sample keeps a loader, decodes its files
when `rgb` or `depth` is read and keeps only the last few decoded frames (`LAZY_CACHE_FRAMES`),
so memory stays bounded however long the file list.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from pixio_ros.data.errors import DataError
from pixio_ros.runtime.camera import CameraError, PinholeCamera

__all__ = [
    'LAZY_CACHE_FRAMES',
    'FileListEntry',
    'FrameLoader',
    'RGBDSample',
    'match_depth_size',
    'read_color',
    'read_depth_png',
    'read_file_list',
    'resolve_listed',
]

FrameLoader = Callable[[], tuple[np.ndarray, np.ndarray]]
"""Returns ``(rgb (H, W, 3) uint8, depth (H, W) float32 metres with NaN = invalid)``."""
LAZY_CACHE_FRAMES: Final = 4
"""Decoded lazy frames kept: one training example reads a sample's image and depth separately."""
_DECODED: OrderedDict[RGBDSample, tuple[np.ndarray, np.ndarray]] = OrderedDict()


class RGBDSample:
    """One colour image with aligned metric depth and its camera.

    ``RGBDSample(rgb, depth, camera, source, index)`` holds decoded arrays;
    `RGBDSample.lazy` decodes files on access. Either way the attributes are read-only.

    Attributes:
        rgb: (H, W, 3) uint8 RGB.
        depth: (H, W) float32 metres, NaN where the sensor has no valid value.
        camera: The camera model of ``rgb`` (its size), or None when unknown.
        source: Bag, folder, file list or .mat it came from (for messages).
        index: Position within its source.
        name: The frame's own name (file, .mat index) for messages; '' for bag frames.
        stamp_ns: Capture time in nanoseconds where the source records one, else None.
    """

    __slots__ = ('_camera', '_depth', '_index', '_loader', '_name', '_rgb', '_source', '_stamp')

    def __init__(
        self,
        rgb: np.ndarray,
        depth: np.ndarray,
        camera: PinholeCamera | None,
        source: str,
        index: int,
        *,
        name: str = '',
        stamp_ns: int | None = None,
    ) -> None:
        self._rgb: np.ndarray | None = rgb
        self._depth: np.ndarray | None = depth
        self._loader: FrameLoader | None = None
        self._camera = camera
        self._source = str(source)
        self._index = int(index)
        self._name = name
        self._stamp = stamp_ns
        self._check_camera(rgb)

    @classmethod
    def lazy(
        cls,
        loader: FrameLoader,
        camera: PinholeCamera | None,
        source: str,
        index: int,
        *,
        name: str,
        stamp_ns: int | None = None,
    ) -> RGBDSample:
        """A sample whose arrays come from ``loader`` when first read (checked then)."""
        sample = cls.__new__(cls)
        sample._rgb = sample._depth = None
        sample._loader = loader
        sample._camera = camera
        sample._source = str(source)
        sample._index = int(index)
        sample._name = name
        sample._stamp = stamp_ns
        return sample

    def __repr__(self) -> str:
        kind = 'lazy' if self._loader is not None else 'decoded'
        return f'RGBDSample({self.label}, {kind})'

    @property
    def camera(self) -> PinholeCamera | None:
        """The colour camera (see the class doc)."""
        return self._camera

    @property
    def source(self) -> str:
        """Where the frame came from."""
        return self._source

    @property
    def index(self) -> int:
        """Position within the source."""
        return self._index

    @property
    def name(self) -> str:
        """The frame's own name ('' for bag frames)."""
        return self._name

    @property
    def stamp_ns(self) -> int | None:
        """Capture time, nanoseconds, where known."""
        return self._stamp

    @property
    def label(self) -> str:
        """'SOURCE frame INDEX (NAME)' for messages."""
        named = f' ({self._name})' if self._name else ''
        return f'{self._source} frame {self._index}{named}'

    @property
    def rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        return self.frame()[0]

    @property
    def depth(self) -> np.ndarray:
        """(H, W) float32 metres, NaN where invalid."""
        return self.frame()[1]

    @property
    def fingerprint(self) -> str:
        """What identifies this frame in a training run's data fingerprint (no pixels read)."""
        if self._rgb is not None:
            return f'{self._source}\0{self._index}\0{self._rgb.shape}'
        return f'{self._source}\0{self._index}\0{self._name}'

    def frame(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rgb, depth)``, decoded now for a lazy sample (cached for the next few reads).

        Raises:
            DataError: a lazy sample's files are unreadable or disagree with its camera.
        """
        if self._rgb is not None and self._depth is not None:
            return self._rgb, self._depth
        cached = _DECODED.get(self)
        if cached is not None:
            _DECODED.move_to_end(self)
            return cached
        assert self._loader is not None
        rgb, depth = self._loader()
        if rgb.ndim != 3 or rgb.shape[2] != 3 or depth.shape != rgb.shape[:2]:
            raise DataError(
                f'{self.label}: colour {rgb.shape} and depth {depth.shape} do not form one '
                '(H, W, 3) image with its (H, W) depth.'
            )
        self._check_camera(rgb)
        decoded = (rgb, depth)
        _DECODED[self] = decoded
        while len(_DECODED) > LAZY_CACHE_FRAMES:
            _DECODED.popitem(last=False)
        return decoded

    def cropped(self, top: int, bottom: int, left: int, right: int) -> RGBDSample:
        """The sample cut to rows ``top:bottom`` and columns ``left:right``; camera follows.

        Raises:
            DataError: the window does not fit the camera's image.
        """
        camera = self._camera
        if camera is not None:
            try:
                camera = camera.cropped(left, top, right - left, bottom - top)
            except CameraError as err:
                raise DataError(f'{self.label}: {err}.') from err

        def load() -> tuple[np.ndarray, np.ndarray]:
            rgb, depth = self.frame()
            if bottom > rgb.shape[0] or right > rgb.shape[1]:
                raise DataError(
                    f'{self.label}: crop rows {top}:{bottom}, columns {left}:{right} leaves the '
                    f'{rgb.shape[1]}x{rgb.shape[0]} image.'
                )
            window = (slice(top, bottom), slice(left, right))
            return np.ascontiguousarray(rgb[window]), np.ascontiguousarray(depth[window])

        crop = f'[{top}:{bottom}, {left}:{right}]'
        name = f'{self._name}{crop}' if self._name else crop
        if self._loader is None:
            rgb, depth = load()
            return RGBDSample(
                rgb, depth, camera, self._source, self._index, name=name, stamp_ns=self._stamp
            )
        return RGBDSample.lazy(
            load, camera, self._source, self._index, name=name, stamp_ns=self._stamp
        )

    def _check_camera(self, rgb: np.ndarray) -> None:
        camera = self._camera
        height, width = rgb.shape[:2]
        if camera is not None and (camera.width, camera.height) != (width, height):
            named = f' ({self._name})' if self._name else ''
            raise DataError(
                f'frame {self._index} of {self._source}{named} is {width}x{height} but its camera '
                f'is {camera.width}x{camera.height}; match the camera to the image first '
                '(PinholeCamera.matched_to).'
            )


def match_depth_size(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Depth resized (nearest, never mixing valid and invalid) to the colour image's size."""
    if depth.shape == (height, width):
        return depth
    return cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)


def read_color(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an 8-bit PNG / JPEG.

    Raises:
        DataError: missing or undecodable file (named).
    """
    if not path.is_file():
        raise DataError(f'colour image {path} does not exist.')
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DataError(f'colour image {path} cannot be decoded (not a PNG or JPEG?).')
    return np.ascontiguousarray(bgr[:, :, ::-1])


def read_depth_png(path: Path, *, units_per_metre: float, what: str) -> np.ndarray:
    """(H, W) float32 metres of a 16-bit single-channel depth PNG; 0 -> NaN (no measurement).

    Args:
        path: the PNG.
        units_per_metre: the dataset's scale (1000: millimetres; KITTI 256; TUM 5000).
        what: the dataset, for the error message.

    Raises:
        DataError: missing, undecodable, or not a 16-bit single-channel PNG (named).
    """
    if not path.is_file():
        raise DataError(f'depth image {path} does not exist.')
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DataError(f'depth image {path} cannot be decoded (not a PNG?).')
    if raw.dtype != np.uint16 or raw.ndim != 2:
        channels = 1 if raw.ndim == 2 else raw.shape[2]
        bits = raw.dtype.itemsize * 8
        raise DataError(
            f'depth image {path} is {bits}-bit with {channels} channel(s); {what} depth must be '
            f'a 16-bit single-channel PNG ({units_per_metre:g} per metre, 0 = no depth).'
        )
    depth = raw.astype(np.float32) / np.float32(units_per_metre)
    depth[raw == 0] = np.nan
    return depth


@dataclass(frozen=True)
class FileListEntry:
    """One line of a file list: colour and depth paths (resolved) and the line number.

    Attributes:
        rgb: The colour image.
        depth: The ground truth, or None where the list says 'None' (no ground truth).
        line: 1-based line in the list, for messages.
        columns: The raw columns (the third is a focal length in BTS-style lists).
    """

    rgb: Path
    depth: Path | None
    line: int
    columns: tuple[str, ...]


def resolve_listed(root: Path, text: str) -> Path:
    """A path written in a file list: absolute if it exists as such, else under ``root``.

    BTS-style lists write '/scene/rgb_00001.jpg' meaning relative to the data folder; a list
    with truly absolute paths works too.
    """
    path = Path(text)
    if path.is_absolute() and path.exists():
        return path
    return root / text.lstrip('/')


def read_file_list(
    path: Path,
    *,
    data_root: Path | None,
    depth_root: Path | None = None,
    depth_subfolders: tuple[str, ...] = (),
    dataset: str,
) -> tuple[list[FileListEntry], int]:
    """Parse an 'RGB DEPTH [FOCAL]' list (BTS / ZoeDepth / the Pixio paper's splits).

    Every named file must exist, so a wrong root fails before any training starts.

    Args:
        path: the list; blank lines and lines starting with '#' are skipped.
        data_root: folder the colour paths are relative to (default: the list's folder).
        depth_root: folder the depth paths are relative to (default: ``data_root``).
        depth_subfolders: also looked for under ``depth_root / sub`` (KITTI's annotated depth
            comes split into train/ and val/).
        dataset: the dataset's name, for messages.

    Returns:
        (entries with ground truth, number of entries whose depth is 'None').

    Raises:
        DataError: a missing list, a malformed line, or a named file that does not exist
            (the message names the file, the list line and the roots).
    """
    if not path.is_file():
        raise DataError(f'{dataset} file list {path} does not exist.')
    rgb_root = data_root if data_root is not None else path.parent
    gt_root = depth_root if depth_root is not None else rgb_root
    entries: list[FileListEntry] = []
    without_depth = 0
    for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), start=1):
        columns = tuple(line.split())
        if not columns or columns[0].startswith('#'):
            continue
        if len(columns) < 2:
            raise DataError(
                f'{path}:{number}: expected "RGB DEPTH [FOCAL]" (two paths separated by a '
                f'space), got {line.strip()!r}.'
            )
        rgb = resolve_listed(rgb_root, columns[0])
        if not rgb.is_file():
            raise DataError(
                f'{path}:{number}: colour image {rgb} does not exist (colour paths are '
                f'relative to {rgb_root}; pass --data-root).'
            )
        if columns[1] == 'None':
            without_depth += 1
            continue
        depth = _find_depth(gt_root, columns[1], depth_subfolders)
        if depth is None:
            looked = ', '.join(
                str(resolve_listed(root, columns[1]))
                for root in (gt_root, *(gt_root / sub for sub in depth_subfolders))
            )
            raise DataError(
                f'{path}:{number}: depth image {columns[1]} does not exist (looked for '
                f'{looked}; pass --depth-root).'
            )
        entries.append(FileListEntry(rgb, depth, number, columns))
    if not entries:
        raise DataError(f'{dataset} file list {path} names no colour/depth pair.')
    return entries, without_depth


def _find_depth(root: Path, text: str, subfolders: tuple[str, ...]) -> Path | None:
    for folder in (root, *(root / sub for sub in subfolders)):
        candidate = resolve_listed(folder, text)
        if candidate.is_file():
            return candidate
    return None
