"""pixio_ros.evaluation."""
