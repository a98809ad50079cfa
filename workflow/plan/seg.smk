# Segmentation networks on pseudo masks: CCT (cct_labeled, cct_weak_<method>: the pixel-labeled train split plus the
# image-level images, the seed paper's Table 1) and DeepLabV2 (deeplab_<method>: train_aug's pseudo masks alone, the
# papers' weakly supervised last stage), evaluated on val, gathered into one table.
# The plan only (what this config makes: tags, paths, input functions); the rules are in rules/seg.smk.

from clims_core.report.seg_runs import seg_run_names

SEG = CFG["seg"]
_no_masks = [m for m in SEG["pseudo_methods"] if m not in PSEUDO_MASKS]
if _no_masks:
    raise WorkflowError(
        f"config key 'seg.pseudo_methods': no refined ({SEG['pseudo_refiner']}) pseudo masks for {_no_masks}; this "
        f"config makes them for {sorted(PSEUDO_MASKS) or 'no method'} (refine.methods with the "
        f"{SEG['pseudo_refiner']} refiner in refine.refiners): add them there or remove them from seg.pseudo_methods")
# run name -> (network, CAM method of its pseudo masks or None), in table order
SEG_RUNS = seg_run_names(SEG["methods"], SEG["pseudo_methods"])
CCT_RUNS = [run for run, (network, _) in SEG_RUNS.items() if network == "cct"]
DEEPLAB_RUNS = [run for run, (network, _) in SEG_RUNS.items() if network == "deeplab"]
# Each network's tag covers what it reads: CCT's section is the seg section as before DeepLab existed (so adding DeepLab
# reran no CCT training), DeepLab's its own subsection and the shared trunk settings.
_SHARED = ("methods", "pseudo_methods", "pseudo_refiner", "eval", "deeplab")
_SEG_SECTIONS = {
    "cct": {"method": "cct", **{k: v for k, v in SEG.items() if k not in _SHARED}},
    "deeplab": {"deeplab": SEG["deeplab"], "init": SEG["init"], "output_stride": SEG["output_stride"]},
}
_SEG_INIT = [CAM_TAGS["cam"]] if SEG["init"] == "cam" else []
_DEEPLAB_WEIGHTS = SEG["deeplab"]["backbone_weights"]  # its own ImageNet trunk (e.g. ResNet-101), else the shared one


def _shared_trunk(network: str) -> bool:
    """Does this network's trunk start from the shared ImageNet weights (cam.backbone_weights or pretrain_trunk's)?"""
    return SEG["init"] == "imagenet" and not (network == "deeplab" and _DEEPLAB_WEIGHTS)


SEG_TAGS = {
    run: tag([_SEG_SECTIONS[network], CAM["backbone"], TRUNK_WEIGHTS_TAG if _shared_trunk(network) else None,
              CFG["seed"], run], DATA_TAG, *_SEG_INIT, *([PSEUDO_MASKS[m]] if m else []))
    for run, (network, m) in SEG_RUNS.items()}
# Without the CRF the eval tag is the one from before seg.eval.crf existed (no eval reran for the new key).
_EVAL_CRF = CFG["refine"]["densecrf"] if SEG["eval"]["crf"] else None
SEG_EVAL_TAG = tag({k: v for k, v in SEG["eval"].items() if k != "crf"} if _EVAL_CRF is None else
                   [SEG["eval"], _EVAL_CRF])


def seg_dir(run: str) -> str:
    return f"{RESULTS}/seg/{run}-{SEG_TAGS[run]}"


SEG_EVAL.update({run: f"{seg_dir(run)}/eval-{SEG_EVAL_TAG}.json" for run in SEG_RUNS})
SEG_EXAMPLES.update({run: f"{seg_dir(run)}/examples-{SEG_EVAL_TAG}" for run in SEG_RUNS})
SEG_TABLE = {"md": f"{RESULTS}/seg/table1.md", "tsv": f"{RESULTS}/seg/table1.tsv"}
ALL_TARGETS.extend([*SEG_EVAL.values(), *SEG_TABLE.values()])

for _run in SEG_RUNS:
    benchmark(f"{'train_deeplab' if _run in DEEPLAB_RUNS else 'train_seg'}_{_run}", SEG_TAGS[_run])


def train_seg_inputs(wildcards) -> dict[str, str]:
    inputs = {"manifest": MANIFEST}
    if SEG["init"] == "cam":
        inputs["init"] = f"{cam_dir('cam')}/model.pt"
    if _shared_trunk(SEG_RUNS[wildcards.run][0]):
        inputs.update(TRUNK_INPUT)
    _, pseudo_method = SEG_RUNS[wildcards.run]
    if pseudo_method:
        inputs["pseudo"] = PSEUDO_MASKS[pseudo_method]
    return inputs


# What both trainings read besides their own section, so e.g. a new eval setting or another CAM method's knobs rerun
# nothing there.
_TRAIN_PARAMS = dict(
    cam={"backbone": CAM["backbone"], "backbone_weights": TRUNK_WEIGHTS},
    seed=CFG["seed"],
    device=CFG["device"],
    precision=CFG["precision"],
    gpus=CFG["gpus"],
    checkpoint_every=CFG["checkpoint_every"],
)


