"""CLIMS: Cross Language Image Matching for weakly supervised semantic segmentation, as a small library.

Each workflow stage is one function in :mod:`clims_core.stages`; everything else here serves them.
"""

__version__ = "0.1.0"
