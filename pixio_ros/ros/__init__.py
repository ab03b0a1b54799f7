"""pixio_ros.ros."""
