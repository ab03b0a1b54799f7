"""pixio_ros.model."""
