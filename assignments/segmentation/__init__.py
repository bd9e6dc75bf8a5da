"""The segmentation practical: its course data (``data``)."""
