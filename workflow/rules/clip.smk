# CLIP stage: pretrain on a captions corpus (when no weights are given), fine-tune on label text, zero-shot checks.

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


rule pretrain_clip:
    input:
        [DEMO_DIR] if DEMO else [f"{CAPTIONS}/captions.tsv"] if CAPTIONS else [],
    output:
        checkpoint=CLIP_PRETRAINED,
        metrics=f"{RESULTS}/clip/pretrain-{CLIP_PRETRAIN_TAG}/metrics.json",
    params:
        section=CLIP_SECTION["pretrain"],
        captions=CAPTIONS,
        seed=CFG["seed"],
        device=CFG["device"],
        gpus=CFG["gpus"],
        checkpoint_every=CFG["checkpoint_every"],
        work_dir=f"{WORK}/pretrain_clip/{CLIP_PRETRAIN_TAG}",
        code=code("pretrain_clip"),
    threads: 8
    resources:
        gpu=GPUS,
    log:
        f"{LOGS}/pretrain_clip/{CLIP_PRETRAIN_TAG}.log",
    benchmark:
        benchmark("pretrain_clip", CLIP_PRETRAIN_TAG, used=PRETRAIN)
    script:
        "../scripts/pretrain_clip.py"


rule finetune_clip:
    input:
        manifest=MANIFEST,
        clip=made_here(BASE_CLIP),
    output:
        checkpoint=CLIP_FINETUNED,
        metrics=f"{RESULTS}/clip/finetune-{CLIP_FINETUNE_TAG}/metrics.json",
    params:
        section=CLIP_SECTION["finetune_settings"],
        class_names=CLIP_SECTION["class_names"],
        clip=BASE_CLIP,
        seed=CFG["seed"],
        device=CFG["device"],
        gpus=CFG["gpus"],
        checkpoint_every=CFG["checkpoint_every"],
        work_dir=f"{WORK}/finetune_clip/{CLIP_FINETUNE_TAG}",
        code=code("finetune_clip"),
    threads: 8
    resources:
        gpu=GPUS,
    log:
        f"{LOGS}/finetune_clip/{CLIP_FINETUNE_TAG}.log",
    benchmark:
        benchmark("finetune_clip", CLIP_FINETUNE_TAG, used=CLIP_SECTION["finetune"])
    script:
        "../scripts/finetune_clip.py"


rule eval_clip:
    input:
        manifest=MANIFEST,
        clips=made_here(BASE_CLIP, CLIP),
    output:
        json=CLIP_EVAL,
        tsv=report(f"{RESULTS}/clip/eval-{CLIP_EVAL_TAG}/clip_eval.tsv", caption="../report/clip_eval.rst",
                   category="CLIP"),
    params:
        clips={"pretrained": BASE_CLIP, **({"finetuned": CLIP} if CLIP_SECTION["finetune"] else {})},
        prompts=CLIP_SECTION["prompts"],
        class_names=CLIP_SECTION["class_names"],
        device=CFG["device"],
        code=code("eval_clip"),
    threads: 4
    resources:
        gpu=min(GPUS, 1),
    log:
        f"{LOGS}/eval_clip/{CLIP_EVAL_TAG}.log",
    benchmark:
        benchmark("eval_clip", CLIP_EVAL_TAG)
    script:
        "../scripts/eval_clip.py"
