"""pixio_ros.data."""
