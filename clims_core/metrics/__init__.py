"""Metrics: segmentation confusion/mIoU, ranking (AP), each checked against independent implementations in tests."""
