"""Image and disparity I/O, datasets and synthetic scenes."""
