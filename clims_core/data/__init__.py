"""Datasets: the VOC-layout reader, the manifest, and the demo world generator."""
