"""The real-time stream: sources, rectification, camera calibration, the pipelined loop and its sinks."""
