"""Build script for the pixio_ros ament_python package (the ros2 pkg template's layout)."""

from glob import glob

from setuptools import find_packages, setup

package_name = 'pixio_ros'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(include=[package_name, f'{package_name}.*']),
    # PEP 561: policy code type-checks against pixio_ros.features and the dataset schema.
    package_data={package_name: ['py.typed']},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{package_name}']),
        (f'share/{package_name}', ['package.xml']),
        (f'share/{package_name}/launch', glob('launch/*.launch.py')),
        (f'share/{package_name}/config', glob('config/*')),
    ],
    python_requires='>=3.10',
    # Versions are pinned in constraints.txt (`make setup` installs with -c constraints.txt).
    install_requires=[
        'matplotlib',
        'numpy',
        'opencv-python-headless',
        'pyyaml',
        'safetensors',
        'setuptools',
        'torch',
        'rosbags',
        'tqdm',
    ],
    extras_require={
        # ROS 2 Jazzy from PyPI wheels, for machines without a ROS installation.
        'ros': [
            # package.xml's ROS exec_depends, less launch / launch_ros (no wheels exist).
            'ros-jazzy-rclpy',
            'ros-jazzy-rcl-interfaces',
            'ros-jazzy-builtin-interfaces',
            'ros-jazzy-sensor-msgs',
            'ros-jazzy-std-msgs',
            'ros-jazzy-diagnostic-msgs',
            'ros-jazzy-rosgraph-msgs',
            'ros-jazzy-rmw-fastrtps-cpp',
            'ros-jazzy-ament-index-python',
            'ros-jazzy-lifecycle-msgs',
            'ros-jazzy-rcl-lifecycle',
            'ros-jazzy-geometry-msgs',
        ],
        # The same for ROS 2 Kilted (Fast DDS 3): `make test-kilted` builds .venv-kilted with it. It
        # cannot share a venv with `ros` (both pin ros-rclpy, ros-fastrtps, ... at their versions).
        'ros-kilted': [
            'ros-kilted-rclpy',
            'ros-kilted-rcl-interfaces',
            'ros-kilted-builtin-interfaces',
            'ros-kilted-sensor-msgs',
            'ros-kilted-std-msgs',
            'ros-kilted-diagnostic-msgs',
            'ros-kilted-rosgraph-msgs',
            'ros-kilted-rmw-fastrtps-cpp',
            'ros-kilted-ament-index-python',
            'ros-kilted-rcl-lifecycle',
            'ros-kilted-lifecycle-msgs',
            'ros-kilted-geometry-msgs',
        ],
        'eval': ['open3d-cpu'],
        # ONNX artifacts: `pixio-ros export --format onnx` and the onnxruntime backend (CPU).
        'onnx': ['onnx', 'onnxscript', 'onnxruntime'],
        # The openvino backend (Intel / AMD CPUs, Intel GPU / NPU); reads the .onnx artifacts.
        'openvino': ['openvino'],
        # `pixio-ros quantize`: INT8 post-training quantisation of ONNX artifacts (with `onnx`).
        'quantize': ['nncf', 'onnx', 'onnxruntime'],
        # Public depth datasets: NYUv2's labeled .mat (MATLAB v7.3 = HDF5) and its v5 splits.mat.
        'datasets': ['h5py', 'scipy'],
        # `pixio-ros features` writes Hugging Face `datasets` datasets (Arrow) for policy code.
        'policy': ['datasets', 'pyarrow'],
        'test': [
            'pytest',
            'pytest-cov',
            'pytest-timeout',
            'ruff',
            'mypy',
            'types-pyyaml',
            'hypothesis',
            'cv-bridge',
            'psutil',
        ],
        # Rerun recordings of eval runs (`pixio-ros eval --rerun RUN.rrd`, `demo --rerun`).
        'viz': ['rerun-sdk'],
        # transformers is only the reference implementation the tests compare against.
        'reference': ['transformers'],
    },
    zip_safe=True,
    maintainer='pixio_ros developers',
    maintainer_email='pixio-ros@users.noreply.github.com',
    description='Monocular depth, point clouds and Pixio foundation-model features for ROS 2.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'pixio-ros = pixio_ros.cli:main',
            'pixio_node = pixio_ros.ros.node:main',
            'pixio_lifecycle_node = pixio_ros.ros.lifecycle:main',
            'pixio_policy_node = pixio_ros.ros.policy_node:main',
        ],
    },
)
