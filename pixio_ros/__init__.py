"""pixio_ros: monocular depth, point clouds and Pixio features for ROS 2."""

from pixio_ros.errors import PixioRosError

__version__ = '0.1.0'

__all__ = ['PixioRosError', '__version__']
