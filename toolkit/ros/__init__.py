"""ROS 2 input and output: bags as a source and a sink, message conversion, camera_info geometry, a thin node.

Bags are read and written with ``rosbags`` (pure Python, no ROS installation); the live
node needs ``rclpy`` from a ROS 2 installation and does nothing but subscribe and publish
around the same conversion code. Both are imported lazily, so the rest of the toolkit
works without them.
"""

from __future__ import annotations

import functools

from toolkit.errors import DependencyError

INSTALL_HINT = "pip install 'stereo-trt[ros]' (or pip install rosbags)"


def require_rosbags():
    """Import ``rosbags`` or say how to install it.

    Raises:
        DependencyError: rosbags is not installed.
    """
    try:
        import rosbags.rosbag2  # noqa: F401
        import rosbags.typesys  # noqa: F401
    except ImportError:
        raise DependencyError(f"reading and writing ROS 2 bags needs rosbags, which is not installed: {INSTALL_HINT}") from None
    import rosbags

    return rosbags


@functools.lru_cache(maxsize=None)
def typestore():
    """The standard ROS 2 message definitions (Humble's; sensor_msgs, stereo_msgs and
    std_msgs are the same in every ROS 2 release this toolkit writes for)."""
    require_rosbags()
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)
