"""CLIP for CLIMS: load it safely from any accepted weight form, then score images in [0, 1] against text.

Two config values pick the model: ``clip.model`` (an open_clip architecture name such as ``ViT-B-16``, ``RN50`` or
``ViT-B-16-quickgelu``) and ``clip.weights``, one of

* ``null``: random init of ``clip.model`` (tests, from-scratch pretraining);
* a local OpenAI CLIP ``.pt`` (the original TorchScript archive, or its state dict saved with ``torch.save``): the
  architecture is read from the tensor shapes (QuickGELU, as OpenAI trained it), as open_clip's OpenAI loader does;
* an open_clip state dict file, ``.safetensors`` / ``.bin`` / ``.pt`` / ``.pth`` (plain, or wrapped as
  ``{"state_dict": ...}`` with ``module.`` prefixes as open_clip training checkpoints are) for architecture
  ``clip.model``;
* a checkpoint of this project's ``pretrain_clip`` / ``finetune_clip`` (:func:`save_clip_checkpoint`): it carries its
  own ``model_cfg``, so a custom architecture needs no global registration;
* ``local-dir:<folder>``: open_clip's local folder form (``open_clip_config.json`` with ``model_cfg`` and
  ``preprocess_cfg``, plus ``open_clip_model.safetensors`` / ``open_clip_pytorch_model.bin`` / ...);
* a pretrained tag of ``clip.model`` (``openai``, ``laion2b_s34b_b79k``, ...) or ``hf-hub:<org>/<name>``: taken from the
  Hugging Face cache, downloaded only when online. Offline (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``) an uncached
  tag fails at once.

Every file is read with ``torch.load(weights_only=True)``, safetensors, or (OpenAI archives only) ``torch.jit.load``,
which runs no Python code from the file; nothing user-supplied is ever unpickled. open_clip's own loaders are not used
for files because its OpenAI loader falls back to a bare ``torch.load``. Any problem raises :class:`ClipLoadError`
naming the file or config key and the accepted forms.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

# open_clip.constants.OPENAI_DATASET_MEAN / _STD (kept here so importing this module stays cheap).
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
# Weight file names open_clip looks for in a local-dir folder, in its order of preference.
DIR_WEIGHT_NAMES = (
    "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth",
)
HUB_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# Non-parameter entries of OpenAI's TorchScript state dicts (open_clip's OpenAI loader drops them too).
OPENAI_META_KEYS = ("input_resolution", "context_length", "vocab_size")

ACCEPTED_FORMS = (
    "Accepted clip.weights: null (random init of clip.model); a local OpenAI CLIP .pt (TorchScript archive or its "
    "state dict); an open_clip state dict file (.safetensors, .bin, .pt, .pth; plain or {'state_dict': ...}) for "
    "architecture clip.model; a checkpoint written by pretrain_clip/finetune_clip (with 'model', 'config', "
    "'model_cfg'); 'local-dir:<folder>' (open_clip_config.json with model_cfg + open_clip_model.safetensors or "
    "open_clip_pytorch_model.bin); a pretrained tag of clip.model (e.g. 'openai', 'laion2b_s34b_b79k') or "
    "'hf-hub:<org>/<name>', only when online or already in the Hugging Face cache."
)


class ClipLoadError(ValueError):
    """CLIP weights are missing, unreadable, unsafe, or do not fit the named architecture."""


def _fail(subject: Any, problem: str) -> ClipLoadError:
    return ClipLoadError(f"clip.weights {subject}: {problem}\n{ACCEPTED_FORMS}")


# ----------------------------------------------------------------------------------------------------------------------
# The loaded model


@dataclass
class LoadedClip:
    """A CLIP with its tokenizer and its own input normalisation; encoders return L2-normalised embeddings."""

    model: torch.nn.Module
    tokenizer: Callable[[list[str]], torch.Tensor]
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    model_name: str
    model_cfg: dict | None = None
    source: str = ""  # what was loaded, for logs and reports

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the visual tower expects."""
        size = getattr(getattr(self.model, "visual", None), "image_size", None) or self.image_size
        return _pair(size)

    def encode_image(self, images01: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (N x 3 x H x W, any H, W) -> N x D unit vectors; differentiable in the images.

        Resized to the visual input size (bilinear, no antialias, so gradients reach every pixel), then normalised
        with the model's own mean/std."""
        if images01.ndim != 4 or images01.shape[1] != 3:
            raise ValueError(f"encode_image expects N x 3 x H x W images in [0, 1], got shape {tuple(images01.shape)}")
        param = next(self.model.parameters())
        x = images01.to(device=param.device, dtype=param.dtype)
        if tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=False)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return F.normalize(self.model.encode_image((x - mean) / std), dim=-1)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Texts -> N x D unit vectors."""
        if isinstance(texts, str):
            texts = [texts]
        tokens = self.tokenizer(list(texts)).to(self.device)
        return F.normalize(self.model.encode_text(tokens), dim=-1)

    def freeze(self) -> LoadedClip:
        """Freeze the model in place (see :func:`freeze`) and return self."""
        freeze(self.model)
        return self


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """No parameter requires grad and the model is in eval mode; gradients still flow through it to its inputs."""
    for param in model.parameters():
        param.requires_grad_(False)
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------------
# Building and saving


def build_clip(model_cfg: dict) -> torch.nn.Module:
    """An open_clip ``CLIP`` / ``CustomTextCLIP`` / ``CoCa`` from a config dict (embed_dim, vision_cfg, text_cfg, ...).

    Random init; nothing is registered globally and no tower weights are downloaded.
    """
    from open_clip.coca_model import CoCa
    from open_clip.model import CLIP, CustomTextCLIP

    if not isinstance(model_cfg, dict) or any(key not in model_cfg for key in ("embed_dim", "vision_cfg", "text_cfg")):
        keys = sorted(model_cfg) if isinstance(model_cfg, dict) else type(model_cfg).__name__
        raise ClipLoadError(f"model_cfg must be an open_clip model config with embed_dim, vision_cfg, text_cfg; "
                            f"got {keys}")
    cfg = copy.deepcopy(model_cfg)
    vision, text = dict(cfg["vision_cfg"]), dict(cfg["text_cfg"])
    if "timm_model_name" in vision:
        vision["timm_model_pretrained"] = False
    if "hf_model_name" in text:
        text["hf_model_pretrained"] = False
    cfg["vision_cfg"], cfg["text_cfg"] = vision, text
    custom_text = bool(cfg.pop("custom_text", False)) or "hf_model_name" in text
    model_class = (CoCa if "multimodal_cfg" in cfg else CustomTextCLIP) if custom_text else CLIP
    try:
        return model_class(**cfg)
    except Exception as error:  # a bad config dict can fail in many ways inside open_clip
        raise ClipLoadError(f"cannot build an open_clip {model_class.__name__} from model_cfg {model_cfg}: "
                            f"{error.__class__.__name__}: {error}") from None


def save_clip_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    model_cfg: dict,
    config: dict,
    step: int,
    **extra: Any,
) -> None:
    """Write a CLIP checkpoint :func:`load_clip` rebuilds without a registered architecture.

    Layout: :func:`clims_core.io.checkpoint.save_checkpoint`'s plus ``model_cfg`` (open_clip config dict),
    ``model_name`` (``extra["model_name"]``, else ``config["model"]``) and ``preprocess_cfg`` (the mean/std the model
    expects).
    """
    from clims_core.io.checkpoint import save_checkpoint

    net = getattr(model, "_orig_mod", model)  # torch.compile
    net = getattr(net, "module", net)  # DDP
    try:
        plain_cfg = json.loads(json.dumps(model_cfg))
    except (TypeError, ValueError) as error:
        raise ClipLoadError(f"model_cfg must be JSON-serialisable to be stored in {path}: {error}") from None
    model_name = extra.pop("model_name", None) or (config.get("model") if isinstance(config, dict) else None)
    preprocess = extra.pop("preprocess_cfg", None) or _preprocess_of(net)
    state = {key: value.detach().cpu() for key, value in net.state_dict().items()}
    save_checkpoint(path, state, config, step, model_cfg=plain_cfg, model_name=model_name,
                    preprocess_cfg=preprocess, **extra)


def _preprocess_of(net: torch.nn.Module) -> dict[str, list[float]]:
    visual = getattr(net, "visual", net)
    cfg = getattr(visual, "preprocess_cfg", None) or {}
    mean = cfg.get("mean", getattr(visual, "image_mean", None)) or OPENAI_MEAN
    std = cfg.get("std", getattr(visual, "image_std", None)) or OPENAI_STD
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}


# ----------------------------------------------------------------------------------------------------------------------
# Public entry points


def load_clip(model: str | None, weights: str | os.PathLike | None, device: str | torch.device = "cpu") -> LoadedClip:
    """Load CLIP ``model`` with ``weights`` (see the module docstring), in eval mode on ``device`` (``auto``: CUDA if
    there is one).

    Parameters keep ``requires_grad``; call :func:`freeze` (or ``.freeze()``) for the frozen scorer of CLIMS.
    """
    name, weights = _normalise(model, weights)
    if weights is None:
        cfg = _named_cfg(name)
        loaded = dict(net=build_clip(cfg), cfg=cfg, preprocess={}, name=name, source=f"random init of {name}")
    elif weights.startswith(LOCAL_DIR):
        loaded = _load_folder(name, weights, *_local_dir(weights))
    elif weights.startswith(HF_HUB):
        files = _hub_files(weights, download=True)
        assert files is not None  # download=True returns files or raises
        loaded = _load_folder(name, weights, *files)
    elif _is_path(weights):
        loaded = _load_file(name, Path(weights).expanduser())
    else:
        loaded = _load_tag(name, weights)

    net, cfg, preprocess = loaded["net"], loaded["cfg"], loaded["preprocess"]
    mean = _triple(preprocess.get("mean", OPENAI_MEAN), "mean", loaded["source"])
    std = _triple(preprocess.get("std", OPENAI_STD), "std", loaded["source"])
    size = _pair(getattr(net.visual, "image_size", None) or cfg["vision_cfg"].get("image_size", 224))
    from open_clip.model import set_model_preprocess_cfg

    set_model_preprocess_cfg(net, {**preprocess, "size": size, "mean": mean, "std": std})
    tokenizer = _make_tokenizer(cfg, loaded["name"], loaded.get("tokenizer_dir"), loaded["source"])
    net = net.to(_device(device)).eval()
    return LoadedClip(model=net, tokenizer=tokenizer, image_size=size[0], mean=mean, std=std,
                      model_name=loaded["name"], model_cfg=cfg, source=loaded["source"])


def clip_from_config(model_cfg: dict, model_name: str, device: str | torch.device = "cpu") -> LoadedClip:
    """A randomly initialised CLIP of a custom architecture (e.g. the demo world's tiny ViT), ready to train."""
    net = build_clip(model_cfg)
    size = _pair(getattr(net.visual, "image_size", None) or model_cfg["vision_cfg"].get("image_size", 224))
    tokenizer = _make_tokenizer(model_cfg, None, None, f"random init of {model_name}")
    return LoadedClip(model=net.to(_device(device)), tokenizer=tokenizer, image_size=size[0], mean=OPENAI_MEAN,
                      std=OPENAI_STD, model_name=model_name, model_cfg=copy.deepcopy(model_cfg),
                      source=f"random init of {model_name}")


def check_clip_weights(model: str | None, weights: str | os.PathLike | None) -> None:
    """Cheap pre-flight for config validation: the architecture is known, the file or folder exists and reads as an
    accepted form (headers only), a hub tag is cached or we are online. Raises :class:`ClipLoadError`."""
    name, weights = _normalise(model, weights)
    if weights is None:
        _named_cfg(name)
    elif weights.startswith(LOCAL_DIR):
        _, _, weights_file = _local_dir(weights)
        _read_weights(weights_file, lazy=True)
    elif weights.startswith(HF_HUB):
        files = _hub_files(weights, download=False)
        if files is not None:
            _read_weights(files[2], lazy=True)
    elif _is_path(weights):
        path = Path(weights).expanduser()
        found = _read_weights(path, lazy=True)
        if found.kind == "ours":
            _check_stored_name(name, found, path)
        elif found.kind == "state_dict":
            _named_cfg(name, path)
    else:
        _, _, cached = _tag_file(name, weights, download=False)
        if cached is not None:
            _read_weights(cached, lazy=True)


def hub_offline() -> bool:
    """True when the environment forbids Hugging Face downloads (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    return any(os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
               for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


# ----------------------------------------------------------------------------------------------------------------------
# Names and forms


def _normalise(model: str | None, weights: str | os.PathLike | None) -> tuple[str | None, str | None]:
    name = str(model).strip() if model is not None else None
    name = name or None
    if weights is not None:
        weights = os.fspath(weights).strip()
        if not weights:
            raise _fail("''", "is an empty string; write null for a random init of clip.model")
    if name and name.startswith((LOCAL_DIR, HF_HUB)):  # the schema form given as the model: it names the weights too
        if weights is not None and weights != name:
            raise ClipLoadError(f"clip.model {name!r} already names its weights; clip.weights {weights!r} conflicts "
                                f"(put the local-dir:/hf-hub: form in clip.weights only)\n{ACCEPTED_FORMS}")
        weights, name = name, None
    if name:
        name = name.replace("/", "-")  # open_clip's spelling: ViT-B/16 -> ViT-B-16
    return name, weights


def _is_path(weights: str) -> bool:
    return ("/" in weights or "\\" in weights or weights.lower().endswith(WEIGHT_SUFFIXES)
            or weights.startswith("~") or Path(weights).exists())


def _named_cfg(name: str | None, subject: Any = None) -> dict:
    import open_clip

    cfg = open_clip.get_model_config(name) if name else None
    if cfg is None:
        close = difflib.get_close_matches(name or "", open_clip.list_models(), n=5)
        why = "is not set" if not name else f"= {name!r} is not an open_clip architecture"
        hint = f" (close matches: {', '.join(close)})" if close else " (see open_clip.list_models())"
        needs = f"clip.weights {subject}" if subject is not None else "a random init (clip.weights null)"
        raise ClipLoadError(f"clip.model {why}{hint}; {needs} needs a known open_clip architecture.\n{ACCEPTED_FORMS}")
    return copy.deepcopy(cfg)


def _device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _pair(size: Any) -> tuple[int, int]:
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[-1])
    return int(size), int(size)


def _triple(values: Any, what: str, source: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in values)
    if len(values) != 3:
        raise ClipLoadError(f"{source}: preprocessing {what} must have 3 values, got {values}")
    return values  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------------------------------
# Reading weight files


@dataclass
class _Weights:
    kind: str  # "openai" | "ours" | "state_dict"
    state_dict: dict[str, torch.Tensor] | None  # None when read lazily
    payload: dict[str, Any]  # our checkpoint's other entries


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{error.__class__.__name__}: {text[:300]}"


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    has_constants = any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in names)
    return has_constants and any("/code/" in n for n in names)


def _read_weights(path: Path, lazy: bool = False) -> _Weights:
    """Read and classify one weights file safely; ``lazy`` reads headers only (memory-mapped, no JIT load)."""
    if not path.exists():
        raise _fail(path, "file not found")
    if path.is_dir():
        raise _fail(path, f"is a folder; an open_clip folder is written 'local-dir:{path}'")
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise _fail(path, f"unsupported file type {path.suffix!r} (expected one of {', '.join(WEIGHT_SUFFIXES)})")
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors import safe_open
            from safetensors.torch import load_file

            if lazy:
                with safe_open(str(path), framework="pt") as handle:
                    list(handle.keys())
                return _Weights("state_dict", None, {})
            return _classify(path, load_file(str(path), device="cpu"))
        except ClipLoadError:
            raise
        except Exception as error:
            raise _fail(path, f"is not a readable safetensors file ({_short(error)})") from None
    if _is_torchscript(path):
        return _Weights("openai", None if lazy else _read_torchscript(path), {})
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as error:  # unpickling refused, corrupt or truncated archive, random bytes ...
        raise _fail(path, f"cannot be read safely with torch.load(weights_only=True) ({_short(error)}); only "
                          "tensors, numbers, strings, lists and dicts are accepted, nothing is unpickled") from None
    return _classify(path, payload)


def _read_torchscript(path: Path) -> dict[str, torch.Tensor]:
    """State dict of an OpenAI TorchScript archive (TorchScript runs no Python code from the file)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated (FutureWarning) but OpenAI ships archives
            module = torch.jit.load(str(path), map_location="cpu")
        return {key: value.detach() for key, value in module.state_dict().items()}
    except Exception as error:
        raise _fail(path, f"looks like a TorchScript archive but cannot be loaded ({_short(error)})") from None


def _classify(path: Path, payload: Any) -> _Weights:
    if not isinstance(payload, dict):
        raise _fail(path, f"holds a {type(payload).__name__}, not a state dict or checkpoint dict")
    extra: dict[str, Any] = {}
    if "model_cfg" in payload:  # ours (save_clip_checkpoint)
        state, extra = payload.get("model"), {k: v for k, v in payload.items() if k != "model"}
        cfg = payload["model_cfg"]
        if not isinstance(cfg, dict) or any(key not in cfg for key in ("embed_dim", "vision_cfg", "text_cfg")):
            raise _fail(path, "has a 'model_cfg' that is not an open_clip model config "
                              "(embed_dim, vision_cfg, text_cfg)")
        kind = "ours"
    elif isinstance(payload.get("state_dict"), dict):  # open_clip training checkpoint
        state, kind = payload["state_dict"], "state_dict"
    elif "model" in payload and "config" in payload:
        raise _fail(path, "is a checkpoint of this project without 'model_cfg', so not a CLIP checkpoint written by "
                          "save_clip_checkpoint (pretrain_clip / finetune_clip)")
    else:
        state, kind = payload, "state_dict"
    if not isinstance(state, dict) or not state:
        raise _fail(path, "holds no state dict (an empty or missing 'model' / 'state_dict')")
    odd = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if odd:
        top = sorted(map(str, payload))[:10]
        raise _fail(path, f"is not a state dict: entries {odd[:5]} are not tensors (top-level keys: {top})")
    if all(str(key).startswith("module.") for key in state):  # DDP
        state = {key[len("module."):]: value for key, value in state.items()}
    if kind == "state_dict" and any(key in state for key in OPENAI_META_KEYS):
        kind = "openai"  # the state dict of OpenAI's TorchScript model
    return _Weights(kind, state, extra)


# ----------------------------------------------------------------------------------------------------------------------
# Building from each form


def _load_file(name: str | None, path: Path) -> dict[str, Any]:
    found = _read_weights(path)
    assert found.state_dict is not None
    if found.kind == "openai":
        cfg = _openai_model_cfg(found.state_dict, path)
        _check_same_arch(name, cfg, path)
        net = build_clip(cfg)
        _load_state(net, found.state_dict, path, "the OpenAI architecture read from its shapes")
        return dict(net=net, cfg=cfg, preprocess={}, name=name or path.stem, source=f"OpenAI CLIP {path}")
    if found.kind == "ours":
        stored = _check_stored_name(name, found, path)
        cfg = found.payload["model_cfg"]
        net = build_clip(cfg)
        _load_state(net, found.state_dict, path, "its own model_cfg")
        preprocess = found.payload.get("preprocess_cfg") or {}
        return dict(net=net, cfg=cfg, preprocess=dict(preprocess), name=name or stored or path.stem,
                    source=f"CLIP checkpoint {path} (step {found.payload.get('step')})")
    cfg = _named_cfg(name, path)
    net = build_clip(cfg)
    _load_state(net, found.state_dict, path, f"clip.model={name!r}")
    return dict(net=net, cfg=cfg, preprocess={}, name=name, source=f"open_clip state dict {path}")


def _check_stored_name(name: str | None, found: _Weights, path: Path) -> str | None:
    stored = found.payload.get("model_name")
    if name and stored and name != str(stored).replace("/", "-"):
        raise _fail(path, f"is a checkpoint of CLIP {stored!r} but clip.model is {name!r}")
    return stored


def _load_folder(name: str | None, weights: str, cfg_json: dict, folder: Path | None, weights_file: Path) -> dict:
    cfg = cfg_json["model_cfg"]
    found = _read_weights(weights_file)
    if found.kind == "ours":
        raise _fail(weights, f"{weights_file} is a project checkpoint; point clip.weights at it directly")
    assert found.state_dict is not None
    net = build_clip(cfg)
    _load_state(net, found.state_dict, weights_file, f"the model_cfg of {weights}")
    return dict(net=net, cfg=cfg, preprocess=dict(cfg_json.get("preprocess_cfg") or {}),
                name=name or weights.split(":", 1)[1].rstrip("/").split("/")[-1], source=weights,
                tokenizer_dir=folder)


def _local_dir(weights: str) -> tuple[dict, Path, Path]:
    folder = Path(weights[len(LOCAL_DIR):]).expanduser()
    if not weights[len(LOCAL_DIR):]:
        raise _fail(repr(weights), "names no folder after 'local-dir:'")
    if not folder.is_dir():
        raise _fail(weights, f"folder {folder} not found")
    cfg_json = _read_config_json(folder / "open_clip_config.json", weights)
    candidates = [folder / n for n in DIR_WEIGHT_NAMES if (folder / n).is_file()]
    if not candidates:
        others = sorted(p for ext in ("*.safetensors", "*.bin", "*.pth") for p in folder.glob(ext))
        if not others:
            raise _fail(weights, f"no weights file (*.safetensors, *.bin, *.pth) in {folder}")
        if len(others) > 1:
            raise _fail(weights, f"several weights files in {folder} ({', '.join(p.name for p in others)}) and none "
                                 f"of the standard names ({', '.join(DIR_WEIGHT_NAMES[:3])}, ...); keep one")
        candidates = others
    return cfg_json, folder, candidates[0]


def _read_config_json(path: Path, subject: str) -> dict:
    if not path.is_file():
        raise _fail(subject, f"{path} not found (an open_clip folder holds open_clip_config.json + weights)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise _fail(subject, f"{path} is not valid JSON ({_short(error)})") from None
    cfg = data.get("model_cfg") if isinstance(data, dict) else None
    if not isinstance(cfg, dict) or any(key not in cfg for key in ("embed_dim", "vision_cfg", "text_cfg")):
        raise _fail(subject, f"{path} has no open_clip 'model_cfg' (with embed_dim, vision_cfg, text_cfg)")
    return data


# --- hub: cache first, download only when online ----------------------------------------------------------------------


def _hf_cache_dir() -> str:
    """The Hugging Face hub cache, read from the environment now (huggingface_hub reads it once, at import)."""
    env = os.environ
    if env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE"):
        return os.path.expanduser(env.get("HF_HUB_CACHE") or env["HUGGINGFACE_HUB_CACHE"])
    cache = env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    home = env.get("HF_HOME") or os.path.join(cache, "huggingface")
    return os.path.join(os.path.expanduser(home), "hub")


def _hub_cached(repo: str, filename: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, filename, cache_dir=_hf_cache_dir())
    except Exception:  # an invalid repo id, an unreadable cache: treat as not cached
        return None
    return Path(found) if isinstance(found, str) and os.path.isfile(found) else None


def _hub_download(repo: str, filename: str, subject: str) -> Path:
    from open_clip.pretrained import download_pretrained_from_hf

    try:
        return Path(download_pretrained_from_hf(repo, filename=filename, cache_dir=_hf_cache_dir()))
    except Exception as error:
        raise _fail(subject, f"could not be downloaded from the Hugging Face hub ({_short(error)})") from None


def _offline(subject: str, what: str) -> ClipLoadError:
    return _fail(subject, f"{what} not in the Hugging Face cache ({_hf_cache_dir()}) and cannot be downloaded offline "
                          "(HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set). Fetch it where there is internet and point "
                          "clip.weights at the local file or folder")


def _hub_files(weights: str, download: bool) -> tuple[dict, None, Path] | None:
    """Config and weights of ``hf-hub:<org>/<name>``; None when not cached but downloadable (``download=False``)."""
    repo = weights[len(HF_HUB):].strip("/")
    if not repo or repo.count("/") != 1:
        raise _fail(repr(weights), "expected 'hf-hub:<org>/<name>'")
    config = _hub_cached(repo, "open_clip_config.json")
    files = [found for name in HUB_WEIGHT_NAMES if (found := _hub_cached(repo, name)) is not None]
    if config is None or not files:
        if hub_offline():
            raise _offline(weights, "its open_clip_config.json and weights are")
        if not download:
            return None
        config = config or _hub_download(repo, "open_clip_config.json", weights)
        files = files or [_hub_download(repo, HUB_WEIGHT_NAMES[-1], weights)]  # tries the .safetensors first
    return _read_config_json(config, weights), None, files[0]


def _tag_file(name: str | None, tag: str, download: bool) -> tuple[dict, dict, Path | None]:
    """Model config, pretrained config and local file of pretrained tag ``tag`` of architecture ``name``."""
    from open_clip.pretrained import download_pretrained_from_url, get_pretrained_cfg, list_pretrained_tags_by_model

    cfg = _named_cfg(name, repr(tag))
    tag_cfg = get_pretrained_cfg(name, tag)
    if not tag_cfg:
        tags = list_pretrained_tags_by_model(name)
        raise _fail(repr(tag), f"is neither an existing file nor a pretrained tag of {name} "
                               f"(tags: {', '.join(tags) if tags else 'none'})")
    if tag_cfg.get("quick_gelu"):
        cfg["quick_gelu"] = True  # open_clip 3.x only warns on this mismatch; OpenAI weights need QuickGELU
    subject = f"{tag!r} (pretrained tag of {name})"
    if tag_cfg.get("file"):
        return cfg, tag_cfg, Path(tag_cfg["file"])
    hub, url = tag_cfg.get("hf_hub", ""), tag_cfg.get("url", "")
    repo, filename = os.path.split(hub) if hub else ("", "")
    filename = filename or "open_clip_pytorch_model.bin"
    # open_clip prefers a safetensors twin of the file when the repo has one
    if filename == "open_clip_pytorch_model.bin":
        names = ["open_clip_model.safetensors", filename]
    elif filename.endswith((".bin", ".pth")):
        names = [filename[:-4] + ".safetensors", filename]
    else:
        names = [filename]
    for candidate in names if hub else []:
        if (found := _hub_cached(repo, candidate)) is not None:
            return cfg, tag_cfg, found
    if url and (legacy := Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)).is_file():
        return cfg, tag_cfg, legacy
    if hub_offline():
        raise _offline(subject, "its weights are")
    if not download:
        return cfg, tag_cfg, None
    if hub:
        return cfg, tag_cfg, _hub_download(repo, filename, subject)
    try:
        return cfg, tag_cfg, Path(download_pretrained_from_url(url))
    except Exception as error:
        raise _fail(subject, f"could not be downloaded from {url} ({_short(error)})") from None


def _load_tag(name: str | None, tag: str) -> dict[str, Any]:
    cfg, tag_cfg, path = _tag_file(name, tag, download=True)
    assert path is not None
    found = _read_weights(path)
    assert found.state_dict is not None
    if found.kind == "openai":  # OpenAI's own archive, from the url
        cfg = _openai_model_cfg(found.state_dict, path)
        _check_same_arch(name, cfg, path)
    net = build_clip(cfg)
    _load_state(net, found.state_dict, path, f"clip.model={name!r}")
    preprocess = {key: tag_cfg[key] for key in ("mean", "std") if key in tag_cfg}
    return dict(net=net, cfg=cfg, preprocess=preprocess, name=name, source=f"{name} pretrained {tag!r} ({path})")


# --- state dicts ------------------------------------------------------------------------------------------------------


def _openai_model_cfg(state: dict[str, torch.Tensor], path: Path) -> dict:
    """The open_clip config of an OpenAI-layout state dict, read from its shapes (as open_clip's
    ``build_model_from_openai_state_dict`` does: QuickGELU, 64-wide heads)."""
    try:
        if "visual.proj" in state:
            width = state["visual.conv1.weight"].shape[0]
            patch = state["visual.conv1.weight"].shape[-1]
            grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
            layers = len([k for k in state if k.startswith("visual.") and k.endswith(".attn.in_proj_weight")])
            vision = {"image_size": patch * grid, "layers": layers, "width": width, "patch_size": patch}
        else:
            layers = [len({k.split(".")[2] for k in state if k.startswith(f"visual.layer{b}.")}) for b in (1, 2, 3, 4)]
            out = round((state["visual.attnpool.positional_embedding"].shape[0] - 1) ** 0.5)
            vision = {"image_size": out * 32, "layers": layers, "width": state["visual.layer1.0.conv1.weight"].shape[0],
                      "patch_size": None}
        text_width = state["ln_final.weight"].shape[0]
        text = {
            "context_length": state["positional_embedding"].shape[0],
            "vocab_size": state["token_embedding.weight"].shape[0],
            "width": text_width,
            "heads": max(1, text_width // 64),
            "layers": len({k.split(".")[2] for k in state if k.startswith("transformer.resblocks.")}),
        }
        embed_dim = state["text_projection"].shape[1]
        cfg = {"embed_dim": embed_dim, "quick_gelu": True, "vision_cfg": vision, "text_cfg": text}
    except (KeyError, IndexError) as error:
        raise _fail(path, f"is not an OpenAI CLIP (no {error} tensor of the OpenAI layout)") from None
    return json.loads(json.dumps(cfg, default=int))


def _arch_summary(cfg: dict) -> dict:
    vision, text = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    layers = vision.get("layers")
    return {
        "embed_dim": cfg.get("embed_dim"),
        "vision": (list(layers) if isinstance(layers, (list, tuple)) else layers, vision.get("width"),
                   vision.get("patch_size") if not isinstance(layers, (list, tuple)) else None,
                   vision.get("image_size")),
        "text": (text.get("width"), text.get("layers"), text.get("context_length"), text.get("vocab_size")),
    }


def _check_same_arch(name: str | None, cfg: dict, path: Path) -> None:
    import open_clip

    named = open_clip.get_model_config(name) if name else None
    if named is not None and _arch_summary(named) != _arch_summary(cfg):
        raise _fail(path, f"holds an OpenAI CLIP whose shapes ({_arch_summary(cfg)}) are not those of "
                          f"clip.model={name!r} ({_arch_summary(named)}); set clip.model to match the file")


def _load_state(net: torch.nn.Module, state: dict[str, torch.Tensor], path: Path | str, what: str) -> None:
    """Load ``state`` strictly after open_clip's usual conversions; a misfit names the keys and shapes."""
    from open_clip.convert import convert_state_dict
    from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed, resize_text_pos_embed

    expected = net.state_dict()
    non_persistent = {name for name, _ in net.named_buffers()} - set(expected)
    state = {k: v for k, v in state.items() if k not in OPENAI_META_KEYS and k not in non_persistent}
    state = convert_state_dict(net, state)
    if "positional_embedding" in state and not hasattr(net, "positional_embedding"):
        state = convert_to_custom_text_state_dict(state)
    for key in ("logit_scale", "logit_bias"):
        target = getattr(net, key, None)
        if key in state and isinstance(target, torch.Tensor) and state[key].ndim != target.ndim:
            state[key] = state[key].reshape(target.shape)
    if "logit_bias" not in state and "logit_bias" in expected and "logit_scale" in state:
        state["logit_bias"] = torch.zeros_like(state["logit_scale"])
    if "text.transformer.embeddings.position_ids" not in expected:  # dropped by transformers >= 4.31
        state.pop("text.transformer.embeddings.position_ids", None)
    try:
        resize_pos_embed(state, net)
        resize_text_pos_embed(state, net)
    except Exception:  # odd shapes: reported below as a shape mismatch
        pass
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:4])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:4])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:3])})")
        raise _fail(path, f"the weights do not fit {what}: {', '.join(parts)}")
    net.load_state_dict(state, strict=True)


# --- tokenizer --------------------------------------------------------------------------------------------------------


def _make_tokenizer(
    cfg: dict, name: str | None, folder: Path | None, source: str
) -> Callable[[list[str]], torch.Tensor]:
    """The tokenizer open_clip's ``get_tokenizer`` would pick, built from the config dict (works offline for the
    built-in BPE tokenizer, whose vocabulary ships inside the open_clip wheel)."""
    from open_clip.tokenizer import DEFAULT_CONTEXT_LENGTH, HFTokenizer, SigLipTokenizer, SimpleTokenizer

    text = cfg.get("text_cfg", {})
    context_length = text.get("context_length", DEFAULT_CONTEXT_LENGTH)
    kwargs = dict(text.get("tokenizer_kwargs") or {})
    try:
        if text.get("hf_tokenizer_name"):
            return HFTokenizer(str(folder) if folder is not None else text["hf_tokenizer_name"],
                               context_length=context_length, tokenizer_mode=text.get("tokenizer_mode"), **kwargs)
        if name and "siglip" in name.lower():
            variant = "gemma" if "siglip2" in name.lower() else "mc4" if "i18n" in name.lower() else "c4-en"
            return SigLipTokenizer(variant, context_length=context_length)
        tokenizer = SimpleTokenizer(context_length=context_length, **kwargs)
    except Exception as error:
        raise ClipLoadError(f"{source}: cannot build the tokenizer ({_short(error)}); HF tokenizers need the "
                            "Hugging Face cache or internet") from None
    vocab = text.get("vocab_size", tokenizer.vocab_size)
    if vocab < tokenizer.vocab_size:
        raise ClipLoadError(f"{source}: text vocab_size {vocab} is smaller than the BPE tokenizer's "
                            f"{tokenizer.vocab_size}")
    return tokenizer
