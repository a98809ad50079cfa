"""Config validation: schema (types, enums, unknown keys, defaults) then cross-key checks, before any job runs.

Every problem is reported as one line that names the key and the expected form, e.g.
``config key 'data.on_error': expected one of ['strict', 'skip'], got 'maybe'``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

# Package data (pyproject.toml), so a non-editable install validates configs too.
SCHEMA_PATH = Path(__file__).resolve().parent / "config.schema.yaml"


class ConfigError(ValueError):
    """A config value is wrong; the message is one line naming the key."""


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _with_defaults(validator_class: type) -> type:
    """A validator that fills each property's default before validating it (nested sections get theirs too)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def properties(validator: Any, props: dict, instance: Any, schema: dict) -> Iterator:
        if isinstance(instance, dict):
            for name, subschema in props.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


_FillingValidator = _with_defaults(jsonschema.Draft202012Validator)


def _key(path: Any) -> str:
    return ".".join(str(part) for part in path) or "<root>"


def _describe(error: jsonschema.ValidationError) -> str:
    """Turn a jsonschema error into one line naming the key and the expected form."""
    key = _key(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    hint = f" ({schema['description']})" if "description" in schema else ""
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        prefix = f"{key}." if error.absolute_path else ""
        return f"config key '{prefix}{unknown[0]}' is unknown; allowed keys here: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"config key '{key}': expected one of {error.validator_value}, got {error.instance!r}"
    if error.validator == "type":
        return f"config key '{key}': expected {error.validator_value}, got {error.instance!r}{hint}"
    return f"config key '{key}': {error.message}{hint}"


def validate_schema(config: dict, schema: dict | None = None) -> dict:
    """Validate against the JSON schema and return a copy with every default filled in."""
    filled = copy.deepcopy(config) if config else {}
    validator = _FillingValidator(schema if schema is not None else load_schema())
    errors = sorted(validator.iter_errors(filled), key=lambda e: (len(e.absolute_path), _key(e.absolute_path)))
    if errors:
        raise ConfigError(_describe(errors[0]))
    return filled


def _check_dataset(config: dict, base: Path) -> None:
    data, demo = config["data"], config["demo_world"]
    if demo["enabled"]:
        if data["root"] is not None:
            raise ConfigError("config key 'data.root': expected null when demo_world.enabled is true (the demo world is the dataset)")
        from clims_core.data.demo_world import DemoWorldSettings

        try:
            DemoWorldSettings(**demo_world_arguments(config))
        except ValueError as error:
            raise ConfigError(f"config key 'demo_world': {error}") from None
        return
    if data["root"] is None:
        raise ConfigError("config key 'data.root': expected the path of a VOC-layout dataset folder (or demo_world.enabled: true)")
    root = resolve(base, data["root"])
    if not root.is_dir():
        raise ConfigError(f"config key 'data.root': dataset folder {root} does not exist (expected a VOC-layout folder with JPEGImages/, Annotations/, ImageSets/)")
    for split, relative in data["splits"].items():
        if not (root / relative).is_file():
            raise ConfigError(f"config key 'data.splits.{split}': list file {root / relative} does not exist (expected one image id per line)")
    if data["captions"] is not None and not (resolve(base, data["captions"]) / "captions.tsv").is_file():
        raise ConfigError(f"config key 'data.captions': {resolve(base, data['captions'])}/captions.tsv does not exist (expected images/<id>.jpg + captions.tsv)")


def _check_confounders(config: dict, base: Path) -> None:
    classes, stuff = config["data"]["classes"], config["data"]["stuff_classes"]
    for name, stuff_name in config["eval"]["confounders"].items():
        if name not in classes:
            raise ConfigError(f"config key 'eval.confounders.{name}': class {name!r} is not in data.classes {classes}")
        if stuff_name not in stuff:
            raise ConfigError(f"config key 'eval.confounders.{name}': stuff {stuff_name!r} is not in data.stuff_classes {stuff}")


def _check_clip(config: dict, base: Path) -> None:
    clip = config["clip"]
    if clip["weights"] is None:
        if not config["demo_world"]["enabled"] and config["data"]["captions"] is None:
            raise ConfigError("config key 'clip.weights': null means pretraining CLIP on a captions corpus, but "
                              "data.captions is null (give CLIP weights or a captions corpus folder)")
    else:
        from clims_core.models.clip import ClipLoadError, check_clip_weights

        weights = clip["weights"]
        if not weights.startswith(("local-dir:", "hf-hub:")) and ("/" in weights or weights.startswith(("~", "."))):
            weights = str(resolve(base, weights))  # a file path, relative to the folder Snakemake runs in
        try:
            check_clip_weights(clip["model"], weights)
        except ClipLoadError as error:
            raise ConfigError("config key 'clip.weights': " + " ".join(str(error).removeprefix("clip.weights ").split("\n"))) from None
    templates = [("clip.finetune_settings.template", clip["finetune_settings"]["template"], {"names": "cat"}),
                 ("clip.prompts.object", clip["prompts"]["object"], {"name": "cat", "article": "a"}),
                 ("clip.prompts.stuff", clip["prompts"]["stuff"], {"name": "sky", "article": "a"})]
    for key, template, fields in templates:
        try:
            template.format(**fields)
        except (KeyError, IndexError, ValueError) as error:
            raise ConfigError(f"config key '{key}': template {template!r} may use only {{{'}, {'.join(fields)}}} ({error})") from None


def _check_cam(config: dict, base: Path) -> None:
    cam = config["cam"]
    if "clims" in cam["methods"] and "cam" not in cam["methods"]:
        raise ConfigError("config key 'cam.methods': clims starts from the cam checkpoint, so 'cam' must be listed too")
    weights = cam["backbone_weights"]
    # Any width loads a state dict of its own width (train_cam's loader checks every key's shape when it runs);
    # planning only checks that the file is there.
    if weights is not None and not resolve(base, weights).is_file():
        raise ConfigError(f"config key 'cam.backbone_weights': {resolve(base, weights)} does not exist (expected a "
                          f"torchvision resnet{cam['backbone']['depth']} ImageNet state dict .pth)")
    if pretrains_trunk(config) and not config["demo_world"]["enabled"] and config["data"]["captions"] is None:
        raise ConfigError("config key 'cam.pretrain_trunk.enabled': pretraining the trunk needs a captions corpus, "
                          "but data.captions is null (give cam.backbone_weights, a captions corpus folder, or "
                          "enabled: false)")
    low, high = cam["pretrain_trunk"]["scale"]
    if low > high:
        raise ConfigError(f"config key 'cam.pretrain_trunk.scale': expected [low, high] with low <= high, "
                          f"got {[low, high]}")
    low, high = cam["train"]["resize_long"]
    if low > high:
        raise ConfigError(f"config key 'cam.train.resize_long': expected [low, high] with low <= high, got {[low, high]}")


def _check_clims(config: dict, base: Path) -> None:
    """CLIMS's own prompt templates and class-name renames (null keys take the preset's, checked by its tests)."""
    clims, classes = config["cam"]["clims"], config["data"]["classes"]
    for key in ("object_prompt", "background_prompt"):
        template = clims[key]
        if template is None:
            continue
        try:
            template.format(name="cat", article="a")
        except (KeyError, IndexError, ValueError) as error:
            raise ConfigError(f"config key 'cam.clims.{key}': template {template!r} may use only {{name}}, "
                              f"{{article}} ({error})") from None
    absent = sorted(set(clims["class_names"] or {}) - set(classes))
    if absent:
        raise ConfigError(f"config key 'cam.clims.class_names': {absent} not in data.classes {classes} (a rename "
                          "applies only to a class the dataset has)")


def _check_report(config: dict, base: Path) -> None:
    report, classes, methods = config["report"], config["data"]["classes"], config["cam"]["methods"]
    unknown = [name for name in report["figure_classes"] or [] if name not in classes]
    if unknown:
        raise ConfigError(f"config key 'report.figure_classes': {unknown} not in data.classes {classes}")
    if report["figure_baseline"] is not None and report["figure_baseline"] not in methods:
        raise ConfigError(f"config key 'report.figure_baseline': {report['figure_baseline']!r} is not in cam.methods {methods}")


def _check_refine(config: dict, base: Path) -> None:
    refine = config["refine"]
    absent = [m for m in refine["methods"] if m not in config["cam"]["methods"]]
    if absent:
        raise ConfigError(f"config key 'refine.methods': {absent} not in cam.methods {config['cam']['methods']} "
                          f"(only trained CAM methods can be refined)")
    if refine["irn"]["trunk"] == "imagenet" and not has_trunk_weights(config):
        raise ConfigError("config key 'refine.irn.trunk': imagenet needs cam.backbone_weights (ImageNet weights for "
                          "the frozen trunk) or cam.pretrain_trunk.enabled; without them use trunk: cam (the CAM "
                          "network's trunk)")
    low, high = refine["irn"]["scale_range"]
    if low > high:
        raise ConfigError(f"config key 'refine.irn.scale_range': expected [low, high] with low <= high, got {[low, high]}")
    fg, bg = refine["ir_label"]["fg_thres"], refine["ir_label"]["bg_thres"]
    if "auto" not in (fg, bg) and bg > fg:
        raise ConfigError(f"config key 'refine.ir_label.bg_thres': expected <= fg_thres ({fg}), got {bg}")


def _check_seg(config: dict, base: Path) -> None:
    seg, cam = config["seg"], config["cam"]
    if seg["init"] == "imagenet" and not has_trunk_weights(config):
        raise ConfigError("config key 'seg.init': imagenet needs cam.backbone_weights (the ImageNet ResNet) or "
                          "cam.pretrain_trunk.enabled; use cam (the plain CAM network's trunk) or random when there are "
                          "no ImageNet weights")
    if seg["init"] == "cam" and "cam" not in cam["methods"]:
        raise ConfigError("config key 'seg.init': cam takes the plain cam network's trunk, so 'cam' must be in "
                          "cam.methods")
    if seg["init"] == "cam" and seg["output_stride"] == 16 and list(cam["backbone"]["strides"][2:]) == [1, 1]:
        raise ConfigError("config key 'seg.output_stride': 16 is coarser than the CAM trunk's output stride 8 "
                          "(cam.backbone.strides); use 8")
    for key, section in (("seg.train", seg["train"]), ("seg.deeplab.train", seg["deeplab"]["train"])):
        low, high = section["scale_range"]
        if low > high:
            raise ConfigError(f"config key '{key}.scale_range': expected [low, high] with low <= high, got {[low, high]}")
    deeplab = seg["deeplab"]
    depth, weights = deeplab["backbone_depth"], deeplab["backbone_weights"]
    if weights is not None and not resolve(base, weights).is_file():
        raise ConfigError(f"config key 'seg.deeplab.backbone_weights': {resolve(base, weights)} does not exist "
                          f"(expected a torchvision resnet{depth or cam['backbone']['depth']} ImageNet state dict .pth)")
    if weights is not None and seg["init"] != "imagenet":
        raise ConfigError(f"config key 'seg.deeplab.backbone_weights': ImageNet weights are read with seg.init "
                          f"imagenet only (seg.init is {seg['init']}); set it to null or seg.init to imagenet")
    if depth not in (None, cam["backbone"]["depth"]) and weights is None:
        raise ConfigError(f"config key 'seg.deeplab.backbone_depth': resnet{depth} is not cam.backbone's "
                          f"resnet{cam['backbone']['depth']}, so it needs its own weights: set "
                          f"seg.deeplab.backbone_weights to a torchvision resnet{depth} ImageNet state dict .pth")
    if seg["pseudo_methods"] and seg["pseudo_refiner"] == "crf" and config["refine"]["crf"]["split"] != "train_aug":
        raise ConfigError("config key 'seg.pseudo_refiner': crf masks are pseudo masks only when they cover train_aug; "
                          "set refine.crf.split: train_aug")
    unrefined = [m for m in seg["pseudo_methods"] if m not in config["cam"]["methods"]]
    if unrefined:
        raise ConfigError(f"config key 'seg.pseudo_methods': {unrefined} are not in cam.methods {cam['methods']}, "
                          "so they have no CAMs to make pseudo masks from")


def _check_segment(config: dict, base: Path) -> None:
    images = config["segment"]["images"]
    if images is not None and not resolve(base, images).exists():
        raise ConfigError(f"config key 'segment.images': {resolve(base, images)} does not exist (expected a folder of "
                          "images or a text file with one image path per line)")


def _check_submission(config: dict, base: Path) -> None:
    submission = config["submission"]
    if submission["test_root"] is None:
        return
    root = resolve(base, submission["test_root"])
    if not (root / submission["test_list"]).is_file():
        raise ConfigError(f"config key 'submission.test_root': {root / submission['test_list']} does not exist "
                          f"(expected the VOC 2012 test download's VOC2012 folder with submission.test_list in it)")


def _check_precision(config: dict, base: Path) -> None:
    if config["precision"] == "bf16" and config["device"] == "cpu":
        raise ConfigError("config key 'precision': bf16 autocast runs on CUDA only, and device is cpu "
                          "(expected auto or fp32)")


# Cross-key checks run in order after the schema; later stages append theirs.
CHECKS: list[Callable[[dict, Path], None]] = [_check_precision, _check_dataset, _check_confounders, _check_clip,
                                              _check_cam, _check_clims, _check_report, _check_refine, _check_seg,
                                              _check_segment, _check_submission]


def validate_config(config: dict, base_dir: str | Path = ".", schema: dict | None = None) -> dict:
    """Schema + cross-key checks; returns the filled config or raises :class:`ConfigError` (one line)."""
    filled = validate_schema(config, schema)
    # An overlay config cannot delete a key of the base config (Snakemake merges mappings): null drops a pair.
    filled["eval"]["confounders"] = {name: stuff for name, stuff in filled["eval"]["confounders"].items() if stuff is not None}
    for check in CHECKS:
        check(filled, Path(base_dir))
    return filled


def pretrains_trunk(config: dict) -> bool:
    """Whether ``pretrain_trunk`` runs (a validated config): no ``cam.backbone_weights`` and
    ``cam.pretrain_trunk.enabled``; its weights then take the place of ``cam.backbone_weights``."""
    return config["cam"]["backbone_weights"] is None and bool(config["cam"]["pretrain_trunk"]["enabled"])


def has_trunk_weights(config: dict) -> bool:
    """Whether the trunk starts from weights (``cam.backbone_weights`` or ``pretrain_trunk``'s), which the
    ``imagenet`` choices of ``refine.irn.trunk`` and ``seg.init`` need."""
    return config["cam"]["backbone_weights"] is not None or pretrains_trunk(config)


def merge_config(into: dict, extra: dict) -> dict:
    """Merge ``extra`` into ``into`` key by key, as Snakemake merges several ``--configfile`` files: mappings merge
    recursively, any other value (lists included) replaces. Returns ``into``."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge_config(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def resolve(base: Path, path: str) -> Path:
    """A config path, relative to the folder Snakemake runs in unless absolute."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else Path(base) / candidate


# The family-of-worlds keys (issue 15): left out of the generator's arguments at their schema defaults, so the demo
# world's arguments, and the tag of its folder, stay what they were before these keys existed.
WORLD_AXIS_KEYS = ("partners", "part_scale", "home_stuff", "stuff_hue_shift", "stuff_brightness")


def demo_world_arguments(config: dict) -> dict[str, Any]:
    """Keyword arguments of ``DemoWorldSettings`` from a validated config."""
    defaults = load_schema()["properties"]["demo_world"]["properties"]
    section = {
        key: value
        for key, value in config["demo_world"].items()
        if key != "enabled" and not (key in WORLD_AXIS_KEYS and value == defaults[key].get("default"))
    }
    return {**section, "classes": tuple(config["data"]["classes"]), "stuff_classes": tuple(config["data"]["stuff_classes"])}


def schema_markdown(schema: dict | None = None) -> str:
    """The config keys as a Markdown table (key | type | default | meaning), for the README."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]

    def walk(node: dict, prefix: str) -> None:
        for name, sub in node.get("properties", {}).items():
            key = f"{prefix}{name}"
            kind = sub.get("type", "")
            kind = " or ".join(kind) if isinstance(kind, list) else kind
            if "enum" in sub:
                kind = " / ".join(str(v) for v in sub["enum"])
            if kind == "object" and "properties" in sub:
                walk(sub, f"{key}.")
                continue
            default = sub.get("default", "")
            default = "" if default == "" else f"`{canonical(default)}`"
            meaning = sub.get("description", "").replace("|", "\\|")
            rows.append(f"| `{key}` | {kind} | {default} | {meaning} |")

    walk(schema if schema is not None else load_schema(), "")
    return "\n".join(rows)


def canonical(value: Any) -> str:
    """A compact YAML-like rendering of a default value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list) and len(value) > 6:
        return "[" + ", ".join(map(str, value[:3])) + f", ... ({len(value)})]"
    return str(value).replace("'", "")


if __name__ == "__main__":
    print(schema_markdown())
