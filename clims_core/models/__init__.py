"""Networks: the frozen CLIP that scores masked images against text (:mod:`clims_core.models.clip`), CAM and segmentation nets."""
