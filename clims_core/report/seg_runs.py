"""The segmentation runs' names: which network each trains and on which pseudo masks, and how tables write it.

``cct_labeled`` (CCT, pixel-labeled images plus consistency), ``cct_weak_<method>`` (CCT plus a CAM method's pseudo
masks) and ``deeplab_<method>`` (DeepLabV2 on a CAM method's pseudo masks alone, no pixel labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clims_core.report.names import method_name

LABELED_RUN = "cct_labeled"
NETWORK_PREFIXES = {"cct": "cct_weak_", "deeplab": "deeplab_"}
NETWORK_NAMES = {"cct": "CCT", "deeplab": "DeepLabV2"}


def seg_run_names(networks: Sequence[str], pseudo_methods: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """Run name -> (network, CAM method of its pseudo masks or None), in table order: CCT's runs, then DeepLab's."""
    runs: dict[str, tuple[str, str | None]] = {}
    for network in networks:
        if network == "cct":
            runs[LABELED_RUN] = ("cct", None)
        runs.update({f"{NETWORK_PREFIXES[network]}{m}": (network, m) for m in pseudo_methods})
    return runs


def parse_seg_run(run: str) -> tuple[str, str | None]:
    """``cct_weak_clims`` -> ("cct", "clims"); ``cct_labeled`` -> ("cct", None); unknown names -> (run, None)."""
    if run == LABELED_RUN:
        return "cct", None
    for network, prefix in NETWORK_PREFIXES.items():
        if run.startswith(prefix):
            return network, run.removeprefix(prefix)
    return run, None


def network_label(network: str, pseudo_method: str | None) -> str:
    """How a run of ``network`` on ``pseudo_method``'s masks (None: CCT without pseudo masks) is written."""
    if network == "deeplab":
        return f"DeepLabV2 on {method_name(pseudo_method)} pseudo masks alone"
    if pseudo_method is None:
        return "CCT (no pseudo masks)"
    return f"{NETWORK_NAMES.get(network, network)} + {method_name(pseudo_method)} pseudo masks"


def seg_run_label(run: str) -> str:
    """How a run is written in Table 1 and the report (unknown names as they are)."""
    network, pseudo_method = parse_seg_run(run)
    return network_label(network, pseudo_method) if network in NETWORK_NAMES else run


def seg_run_order(run: str, method_order: Sequence[str]) -> tuple[int, int, int, str]:
    """Sort key in table order: CCT before DeepLab, the labeled-only run first, then CAM methods in ``method_order``."""
    network, pseudo_method = parse_seg_run(run)
    networks = list(NETWORK_PREFIXES)
    method = method_order.index(pseudo_method) if pseudo_method in method_order else len(method_order)
    return (networks.index(network) if network in networks else len(networks), pseudo_method is not None, method, run)


@dataclass(frozen=True)
class PublishedRow:
    """A figure the papers report on PASCAL VOC 2012, shown beside a run's rows, never compared with them."""

    method: str
    pixel_level: str
    image_level: str
    val_miou: float
    note: str


PUBLISHED_ROWS: tuple[PublishedRow, ...] = (
    PublishedRow("CCT", "1.5K", "9.1K", 73.2, "CLIMS supplementary A.2, Table 1 (VOC 2012 val)"),
    PublishedRow("CCT + CLIMS", "1.5K", "9.1K", 76.9, "CLIMS supplementary A.2, Table 1 (VOC 2012 val; 75.8 on test)"),
    PublishedRow("DeepLabV2 + CLIMS", "0", "10.6K", 69.3,
                 "CLIMS (CVPR 2022), ResNet-101 from ImageNet (VOC 2012 val; 68.7 on test)"),
    PublishedRow("DeepLabV2 + CLIMS, COCO-pretrained", "0", "10.6K", 70.4,
                 "CLIMS (CVPR 2022), ResNet-101 pretrained on COCO (VOC 2012 val; 70.0 on test)"),
)
