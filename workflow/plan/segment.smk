# The segment and voc_submission targets: this config's segmentation runs applied to the user's own images
# (segment.images: masks, overlays, index under results/segment/) and to the VOC 2012 test split (submission.test_root:
# the evaluation server's layout, archived, under results/submission/). Each is off while its key is null.
# The plan only (what this config makes: tags, paths, input functions); the rules are in rules/segment.smk.

from clims_core.config import resolve
from clims_core.data.image_list import image_paths

SEGMENT = CFG["segment"]
if SEGMENT["images"] is not None:
    _segment_run = SEGMENT["run"] or (list(SEG_RUNS)[-1] if SEG_RUNS else None)
    if _segment_run not in SEG_RUNS:
        raise WorkflowError(f"config key 'segment.run': {_segment_run!r} is not a segmentation run of this config "
                            f"(runs: {list(SEG_RUNS)}; seg.methods and seg.pseudo_methods make them)")
    try:
        _SEGMENT_IMAGES = [str(p) for p in image_paths(resolve(Path.cwd(), SEGMENT["images"]))]
    except ValueError as error:
        raise WorkflowError(str(error)) from None
    SEGMENT_DIR = f"{RESULTS}/segment/{_segment_run}-{tag([SEGMENT, SEG['eval'], _EVAL_CRF], SEG_TAGS[_segment_run])}"
    ALL_TARGETS.append(SEGMENT_DIR)

# The voc_submission target: each submitted run's masks of the test split in the VOC server's layout, archived.
SUBMISSION = CFG["submission"]
if SUBMISSION["test_root"] is not None:
    _submit_runs = SUBMISSION["runs"] or list(SEG_RUNS)
    _unknown = [run for run in _submit_runs if run not in SEG_RUNS]
    if _unknown:
        raise WorkflowError(f"config key 'submission.runs': {_unknown} are not segmentation runs of this config "
                            f"(runs: {list(SEG_RUNS)})")
    SUBMISSION_TAG = tag([SUBMISSION, SEG["eval"], _EVAL_CRF])
    SUBMISSIONS = {run: f"{RESULTS}/submission/{run}-{SEG_TAGS[run]}-{SUBMISSION_TAG}" for run in _submit_runs}
    ALL_TARGETS.extend(f"{folder}.tar.gz" for folder in SUBMISSIONS.values())
