# CLIP stage: pretrain on a captions corpus (when no weights are given), fine-tune on label text, zero-shot checks.
# The plan only (what this config makes: tags, paths, input functions); the rules are in rules/clip.smk.

CLIP_SECTION = CFG["clip"]
PRETRAIN = CLIP_SECTION["weights"] is None
CLIP_PRETRAIN_TAG = tag([CLIP_SECTION["pretrain"], CFG["seed"]], DEMO_TAG if DEMO else str(CAPTIONS))
CLIP_PRETRAINED = f"{RESULTS}/clip/pretrain-{CLIP_PRETRAIN_TAG}/clip.pt"
# The CLIP everything downstream starts from: (model, weights) as load_clip takes them.
BASE_CLIP = (None, CLIP_PRETRAINED) if PRETRAIN else (CLIP_SECTION["model"], CLIP_SECTION["weights"])
BASE_CLIP_TAG = CLIP_PRETRAIN_TAG if PRETRAIN else tag([CLIP_SECTION["model"], CLIP_SECTION["weights"]])
CLIP_FINETUNE_TAG = tag([CLIP_SECTION["finetune_settings"], CLIP_SECTION["class_names"], CFG["seed"]], BASE_CLIP_TAG,
                        DATA_TAG)
CLIP_FINETUNED = f"{RESULTS}/clip/finetune-{CLIP_FINETUNE_TAG}/clip.pt"
# The CLIP that CLIMS trains with.
CLIP = (None, CLIP_FINETUNED) if CLIP_SECTION["finetune"] else BASE_CLIP
CLIP_TAG = CLIP_FINETUNE_TAG if CLIP_SECTION["finetune"] else BASE_CLIP_TAG
CLIP_EVAL_TAG = tag([CLIP_SECTION["prompts"], CLIP_SECTION["class_names"]], BASE_CLIP_TAG, CLIP_TAG, DATA_TAG)
CLIP_EVAL = f"{RESULTS}/clip/eval-{CLIP_EVAL_TAG}/clip_eval.json"

ALL_TARGETS.append(CLIP_EVAL)


def made_here(*clips: tuple[str | None, str | None]) -> list[str]:
    """The weight files among these (model, weights) pairs that this workflow writes (inputs to wait for)."""
    return sorted({weights for _, weights in clips if weights in (CLIP_PRETRAINED, CLIP_FINETUNED)})


# Benchmark files, registered for the summary's timings.
PRETRAIN_CLIP_BENCHMARK = benchmark("pretrain_clip", CLIP_PRETRAIN_TAG, used=PRETRAIN)
FINETUNE_CLIP_BENCHMARK = benchmark("finetune_clip", CLIP_FINETUNE_TAG, used=CLIP_SECTION["finetune"])
EVAL_CLIP_BENCHMARK = benchmark("eval_clip", CLIP_EVAL_TAG)
