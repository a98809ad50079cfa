# Trunk stage: pretrain the ResNet trunk on the captions corpus when no ImageNet weights are given
# (cam.backbone_weights null, cam.pretrain_trunk.enabled), the stand-in for ImageNet as pretrain_clip is for CLIP's
# internet data. TRUNK_WEIGHTS is what every consumer of cam.backbone_weights reads (train_cam, train_irn with an
# imagenet trunk, train_seg with seg.init imagenet); TRUNK_WEIGHTS_TAG is what their tags hash for it.
# The plan only (what this config makes: tags, paths, input functions); the rules are in rules/trunk.smk.
from clims_core.config import pretrains_trunk

_PRETRAIN_TRUNK = CFG["cam"]["pretrain_trunk"]
PRETRAIN_TRUNK = pretrains_trunk(CFG)
_TRUNK_WORDS = [*CFG["data"]["classes"], *CFG["data"]["stuff_classes"]]
# Only what pretraining reads: the trunk's depth and width (it always trains BatchNorm at torchvision's strides), the
# vocabulary and how captions write it.
_TRUNK_PARAMS = {
    "backbone": {key: CFG["cam"]["backbone"][key] for key in ("depth", "width")},
    "classes": CFG["data"]["classes"],
    "stuff_classes": CFG["data"]["stuff_classes"],
    "class_names": {word: name for word, name in CFG["clip"]["class_names"].items() if word in _TRUNK_WORDS},
}
TRUNK_PRETRAIN_TAG = tag([{k: v for k, v in _PRETRAIN_TRUNK.items() if k != "enabled"}, _TRUNK_PARAMS, CFG["seed"]],
                         DEMO_TAG if DEMO else str(CAPTIONS))
TRUNK_PRETRAINED = f"{RESULTS}/trunk/pretrain-{TRUNK_PRETRAIN_TAG}/resnet.pth"
TRUNK_METRICS = f"{RESULTS}/trunk/pretrain-{TRUNK_PRETRAIN_TAG}/metrics.json"
TRUNK_WEIGHTS = TRUNK_PRETRAINED if PRETRAIN_TRUNK else CFG["cam"]["backbone_weights"]
# A config's own weight path is tagged as given (so configs with weights keep their folders); ours by its tag.
TRUNK_WEIGHTS_TAG = f"pretrain_trunk-{TRUNK_PRETRAIN_TAG}" if PRETRAIN_TRUNK else CFG["cam"]["backbone_weights"]
# The input a consumer waits for (none when the weights are the user's file or there are none).
TRUNK_INPUT = {"trunk": TRUNK_PRETRAINED} if PRETRAIN_TRUNK else {}


# Benchmark files, registered for the summary's timings.
PRETRAIN_TRUNK_BENCHMARK = benchmark("pretrain_trunk", TRUNK_PRETRAIN_TAG, used=PRETRAIN_TRUNK)
