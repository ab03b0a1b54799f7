"""pixio_ros.training."""
