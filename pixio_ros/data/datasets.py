"""The public depth datasets by name: one entry point for `train-head` and `eval --dataset`.

Each reader gives `RGBDSample`s, the interface the bag reader also feeds to training and
evaluation, plus what it knows about the data (split, counts, depth range, the evaluation
protocol the Pixio paper scores it with).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pixio_ros.data.errors import DataError
from pixio_ros.data.samples import RGBDSample

__all__ = [
    'DATASETS',
    'INDOOR_DEPTH_RANGE',
    'KITTI_DEPTH_RANGE',
    'NYU_DEPTH_RANGE',
    'DATASET_NAMES',
    'Dataset',
    'DatasetInfo',
    'get_dataset_info',
    'open_dataset',
]

NYU_DEPTH_RANGE: Final = (1e-3, 10.0)
"""Valid NYUv2 ground truth, metres (min, max): the range its evaluation protocol scores."""
KITTI_DEPTH_RANGE: Final = (1e-3, 80.0)
"""Valid KITTI ground truth, metres (min, max): the range its evaluation protocol scores."""
INDOOR_DEPTH_RANGE: Final = NYU_DEPTH_RANGE
"""Indoor RGB-D recordings without a protocol of their own (TUM, a folder) use NYUv2's range."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is and the defaults that follow from it.

    Attributes:
        name: the `--dataset` name.
        title: for reports.
        min_depth: lower bound of valid depth, metres.
        max_depth: upper bound of valid depth, metres: the head's range and the evaluated range.
        protocol: evaluation protocol name (`pixio_ros.evaluation.protocol`) used by default.
        path_help: what PATH is, for messages.
    """

    name: str
    title: str
    min_depth: float
    max_depth: float
    protocol: str | None
    path_help: str


DATASETS: Final = {
    info.name: info
    for info in (
        DatasetInfo(
            'nyuv2',
            'NYU Depth V2',
            *NYU_DEPTH_RANGE,
            'nyuv2',
            'nyu_depth_v2_labeled.mat (with splits.mat beside it), or a file list of '
            '"RGB DEPTH" lines (the sync / official_splits layout)',
        ),
        DatasetInfo(
            'kitti',
            'KITTI (Eigen split)',
            *KITTI_DEPTH_RANGE,
            'kitti',
            'a file list of "RGB DEPTH [FOCAL]" lines (raw images, annotated depth)',
        ),
        DatasetInfo(
            'tum',
            'TUM RGB-D',
            *INDOOR_DEPTH_RANGE,
            None,
            'a sequence folder (rgbd_dataset_freiburgN_...) with rgb.txt and depth.txt',
        ),
        DatasetInfo(
            'folder',
            'folder (rgb/, depth/, intrinsics.yaml)',
            *INDOOR_DEPTH_RANGE,
            None,
            'a folder with rgb/, depth/ and intrinsics.yaml',
        ),
    )
}
DATASET_NAMES: Final = tuple(DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
    """The dataset called ``name``.

    Raises:
        DataError: an unknown name (the known ones are listed).
    """
    try:
        return DATASETS[name]
    except KeyError as err:
        raise DataError(
            f'unknown dataset {name!r}; expected one of {", ".join(DATASET_NAMES)}.'
        ) from err


@dataclass
class Dataset:
    """A dataset opened for reading: its samples and what was read.

    Attributes:
        info: which dataset.
        path: the PATH given.
        samples: lazy (public datasets) or decoded (folder) samples, in order.
        details: split, counts and roots, JSON-friendly (for metrics.json and messages).
    """

    info: DatasetInfo
    path: Path
    samples: list[RGBDSample]
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description: name, path, frames, and the reader's details."""
        return {
            'name': self.info.name,
            'title': self.info.title,
            'path': str(self.path),
            'frames': len(self.samples),
            **self.details,
        }


def open_dataset(
    name: str,
    path: Path,
    *,
    split: str | None = None,
    data_root: Path | None = None,
    depth_root: Path | None = None,
    max_difference_s: float | None = None,
) -> Dataset:
    """Open ``path`` as dataset ``name``; samples are lazy except for the folder layout.

    Args:
        name: nyuv2, kitti, tum or folder.
        path: see `DatasetInfo.path_help`.
        split: the labeled NYUv2 .mat's split (train, test, all; default test).
        data_root: folder the colour paths of a file list are relative to (default: the list's).
        depth_root: folder the depth paths of a file list are relative to (default: data_root).
        max_difference_s: TUM colour / depth association window (default 0.02 s).

    Raises:
        DataError: an unknown name, an option the dataset does not take, or unreadable data.
    """
    info = get_dataset_info(name)
    path = Path(path)
    _refuse_unused(info, path, split=split, data_root=data_root, depth_root=depth_root)
    details: dict[str, Any] = {}
    if info.name == 'nyuv2':
        from pixio_ros.data.nyu import load_nyu

        chosen = split or 'test'
        samples = load_nyu(path, split=chosen, data_root=data_root, depth_root=depth_root)
        if path.suffix.lower() == '.mat':
            details['split'] = chosen
        else:
            details['file_list'] = str(path)
    elif info.name == 'kitti':
        from pixio_ros.data.kitti import load_kitti

        samples, without_depth = load_kitti(path, data_root=data_root, depth_root=depth_root)
        details['file_list'] = str(path)
        details['listed_without_ground_truth'] = without_depth
    elif info.name == 'tum':
        from pixio_ros.data.tum import TUM_MAX_DIFFERENCE_S, load_tum

        window = TUM_MAX_DIFFERENCE_S if max_difference_s is None else max_difference_s
        samples, counts = load_tum(path, max_difference_s=window)
        details.update(counts)
        details['association_window_s'] = window
    else:
        from pixio_ros.data.folder import load_folder

        samples = load_folder(path)
    for key, root in (('data_root', data_root), ('depth_root', depth_root)):
        if root is not None:
            details[key] = str(root)
    camera = samples[0].camera
    if camera is not None:
        details['camera'] = {
            'width': camera.width,
            'height': camera.height,
            'fx': camera.fx,
            'fy': camera.fy,
            'cx': camera.cx,
            'cy': camera.cy,
            'distortion_model': camera.distortion_model,
            'd': list(camera.d),
        }
    return Dataset(info, path, samples, details)


def _refuse_unused(
    info: DatasetInfo,
    path: Path,
    *,
    split: str | None,
    data_root: Path | None,
    depth_root: Path | None,
) -> None:
    """Options that would be silently ignored for this dataset are refused instead."""
    lists = info.name == 'kitti' or (info.name == 'nyuv2' and path.suffix.lower() != '.mat')
    problems = []
    if split is not None and not (info.name == 'nyuv2' and path.suffix.lower() == '.mat'):
        problems.append('--split chooses the split of the labeled NYUv2 .mat only')
    if not lists and (data_root is not None or depth_root is not None):
        problems.append('--data-root / --depth-root apply to file lists (kitti, nyuv2 lists)')
    if problems:
        raise DataError(
            f'--dataset {info.name} {path}: {"; ".join(problems)}. PATH is {info.path_help}.'
        )
