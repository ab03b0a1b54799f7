"""pixio_ros.runtime."""
