"""CLIP loading: every accepted weight form round-trips; bad input stops with one clear message; nothing is unpickled.

Tiny architectures (ViT width 64, 2 layers, 32 px, patch 8; text width 64, 2 layers, 16 tokens) keep this fast.
"""

from __future__ import annotations

import ast
import copy
import json
import pickle
import re
import time
import warnings
from pathlib import Path

import pytest
import torch

import open_clip
from clims_core.io.checkpoint import load_checkpoint
from clims_core.models.clip import (
    OPENAI_MEAN,
    OPENAI_STD,
    ClipLoadError,
    LoadedClip,
    build_clip,
    check_clip_weights,
    freeze,
    load_clip,
    save_clip_checkpoint,
)

# OpenAI-shaped (64-wide heads, QuickGELU) so one config serves every form, the OpenAI archive included.
TINY = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2},
}
WIDE = copy.deepcopy(TINY) | {"embed_dim": 48}  # same layout, other shapes
RN_TINY = copy.deepcopy(TINY) | {"vision_cfg": {"image_size": 64, "layers": [1, 2, 1, 1], "width": 8,
                                                 "patch_size": None}}
TEXTS = ["a photo of a train.", "a photo of railroad.", "sky"]


@pytest.fixture(autouse=True)
def _offline_and_empty_cache(monkeypatch, tmp_path):
    """No test may reach the network or a real Hugging Face cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)


@pytest.fixture(scope="session")
def registered(tmp_path_factory) -> str:
    """Register the tiny configs as open_clip architectures (open_clip's public add_model_config; test-only)."""
    folder = tmp_path_factory.mktemp("model_configs")
    (folder / "tiny-test.json").write_text(json.dumps(TINY))
    (folder / "tiny-test-wide.json").write_text(json.dumps(WIDE))
    open_clip.add_model_config(folder)
    return "tiny-test"


@pytest.fixture
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_clip(TINY).eval()
    with torch.no_grad():  # fp16-representable weights: open_clip's OpenAI loader casts through fp16
        for param in model.parameters():
            param.copy_(param.half().float())
    return model


def reference(model: torch.nn.Module, mean=OPENAI_MEAN, std=OPENAI_STD) -> LoadedClip:
    return LoadedClip(model=model, tokenizer=open_clip.SimpleTokenizer(context_length=16), image_size=32,
                      mean=tuple(mean), std=tuple(std), model_name="reference", model_cfg=TINY)


def assert_same_outputs(loaded: LoadedClip, expected: LoadedClip, image_size: int = 32) -> None:
    torch.manual_seed(1)
    images = torch.rand(2, 3, 40, 24)
    with torch.no_grad():
        assert torch.allclose(loaded.encode_image(images), expected.encode_image(images), atol=1e-6)
        assert torch.allclose(loaded.encode_text(TEXTS), expected.encode_text(TEXTS), atol=1e-6)
    assert loaded.image_size == image_size and not loaded.model.training


# --- every accepted form ----------------------------------------------------------------------------------------------


def test_our_checkpoint_round_trips_without_registration(tiny, tmp_path):
    path = tmp_path / "clip.pt"
    save_clip_checkpoint(path, tiny, TINY, {"model": "demo-tiny", "lr": 1e-3}, step=5)
    stored = load_checkpoint(path)
    assert stored["model_cfg"] == json.loads(json.dumps(TINY)) and stored["model_name"] == "demo-tiny"
    assert stored["preprocess_cfg"] == {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD)}
    for name in ("demo-tiny", None):
        loaded = load_clip(name, path)
        assert loaded.model_name == "demo-tiny" and loaded.model_cfg == json.loads(json.dumps(TINY))
        assert_same_outputs(loaded, reference(tiny))
    check_clip_weights("demo-tiny", path)
    for call in (load_clip, check_clip_weights):
        with pytest.raises(ClipLoadError, match="clip.pt: is a checkpoint of CLIP 'demo-tiny' but clip.model is 'oth"):
            call("other", path)


@pytest.mark.parametrize("form", ["plain.bin", "plain.pth", "wrapped.pt", "plain.safetensors"])
def test_open_clip_state_dict_files(tiny, tmp_path, registered, form):
    path = tmp_path / form
    state = tiny.state_dict()
    if form.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif form.startswith("wrapped"):  # an open_clip training checkpoint under DDP
        torch.save({"epoch": 3, "name": "run", "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    else:
        torch.save(state, path)
    check_clip_weights(registered, path)
    loaded = load_clip(registered, path)
    assert loaded.model_name == "tiny-test" and loaded.model_cfg["embed_dim"] == 32
    assert_same_outputs(loaded, reference(tiny))


def write_local_dir(folder: Path, model: torch.nn.Module, weights_name="open_clip_model.safetensors") -> None:
    from safetensors.torch import save_file

    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": TINY, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}))
    if weights_name.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / weights_name))
    else:
        torch.save(model.state_dict(), folder / weights_name)


def test_local_dir_matches_open_clip(tiny, tmp_path):
    write_local_dir(tmp_path / "tiny", tiny)
    spec = f"local-dir:{tmp_path / 'tiny'}"
    check_clip_weights(None, spec)
    loaded = load_clip(None, spec)
    assert loaded.mean == (0.5, 0.5, 0.5) and loaded.std == (0.25, 0.25, 0.25) and loaded.model_name == "tiny"
    assert_same_outputs(loaded, reference(tiny, mean=(0.5,) * 3, std=(0.25,) * 3))
    assert_same_outputs(load_clip(spec, None), loaded)  # the schema form may also be given as clip.model
    # open_clip reads the same folder the same way
    theirs = open_clip.create_model(spec).eval()
    assert tuple(theirs.visual.preprocess_cfg["mean"]) == (0.5, 0.5, 0.5)
    assert_same_outputs(loaded, reference(theirs, mean=(0.5,) * 3, std=(0.25,) * 3))
    assert torch.equal(open_clip.get_tokenizer(spec)(TEXTS), loaded.tokenizer(TEXTS))
    # its mean/std survive a fine-tuning checkpoint
    save_clip_checkpoint(tmp_path / "ft.pt", loaded.model, loaded.model_cfg, {"model": "tiny"}, step=1)
    assert load_clip("tiny", tmp_path / "ft.pt").mean == (0.5, 0.5, 0.5)


def test_local_dir_problems(tiny, tmp_path):
    with pytest.raises(ClipLoadError, match="folder .*nowhere not found"):
        load_clip(None, f"local-dir:{tmp_path / 'nowhere'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClipLoadError, match="open_clip_config.json not found"):
        check_clip_weights(None, f"local-dir:{tmp_path / 'empty'}")
    write_local_dir(tmp_path / "two", tiny, weights_name="a.bin")
    torch.save(tiny.state_dict(), tmp_path / "two" / "b.bin")
    with pytest.raises(ClipLoadError, match="several weights files .*a.bin, b.bin"):
        load_clip(None, f"local-dir:{tmp_path / 'two'}")
    (tmp_path / "two" / "b.bin").unlink()
    assert_same_outputs(load_clip(None, f"local-dir:{tmp_path / 'two'}"), reference(tiny, (0.5,) * 3, (0.25,) * 3))
    (tmp_path / "two" / "a.bin").unlink()
    with pytest.raises(ClipLoadError, match="no weights file"):
        check_clip_weights(None, f"local-dir:{tmp_path / 'two'}")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated, but OpenAI ships TorchScript
def test_openai_torchscript_archive(tiny, tmp_path, registered):
    path = tmp_path / "ViT-tiny.pt"
    torch.jit.save(torch.jit.script(tiny), str(path))  # the layout of OpenAI's released ViT-B-16.pt and friends
    check_clip_weights(None, path)
    loaded = load_clip(None, path)
    assert loaded.model_name == "ViT-tiny" and loaded.model_cfg == TINY  # architecture read from the shapes
    assert_same_outputs(loaded, reference(tiny))
    # (open_clip's own load_openai_model refuses this archive: a scripted open_clip model keeps its non-persistent
    # attn_mask buffer in the state dict, which OpenAI's archives do not have; see the torch.save test for the
    # cross-check against open_clip's loader.)
    assert_same_outputs(load_clip(registered, path), loaded)  # a matching name is accepted
    with pytest.raises(ClipLoadError, match="ViT-tiny.pt: holds an OpenAI CLIP .* of clip.model='tiny-test-wide'"):
        load_clip("tiny-test-wide", path)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_openai_torchscript_resnet(tmp_path):
    torch.manual_seed(0)
    model = build_clip(RN_TINY).eval()  # ModifiedResNet with attention pooling, like OpenAI's RN50.pt
    torch.jit.save(torch.jit.script(model), str(tmp_path / "RN-tiny.pt"))
    loaded = load_clip(None, tmp_path / "RN-tiny.pt")
    assert loaded.model_cfg == RN_TINY
    assert_same_outputs(loaded, reference(model), image_size=64)
    with pytest.raises(ClipLoadError, match="RN-tiny.pt: holds an OpenAI CLIP whose shapes .* of clip.model='RN50'"):
        load_clip("RN50", tmp_path / "RN-tiny.pt")


def test_openai_state_dict_saved_with_torch_save(tiny, tmp_path):
    """OpenAI's TorchScript state dict re-saved with torch.save (its meta entries mark it), fp16 as released."""
    state = {k: (v.half() if v.ndim >= 2 else v) for k, v in tiny.state_dict().items()}
    state |= {"input_resolution": torch.tensor(32), "context_length": torch.tensor(16),
              "vocab_size": torch.tensor(49408)}
    torch.save(state, tmp_path / "RN-or-ViT.pt")
    loaded = load_clip(None, tmp_path / "RN-or-ViT.pt")
    assert loaded.model_cfg == TINY and next(loaded.model.parameters()).dtype == torch.float32
    assert_same_outputs(loaded, reference(tiny))
    # open_clip's own OpenAI loader builds the same model from the same file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = open_clip.load_openai_model(str(tmp_path / "RN-or-ViT.pt"), precision="fp32", device="cpu")
    assert_same_outputs(loaded, reference(theirs))


def test_random_init_of_a_named_architecture(registered):
    check_clip_weights("ViT-B/16", None)  # open_clip's spelling is ViT-B-16
    check_clip_weights("RN50", None)
    torch.manual_seed(0)
    loaded = load_clip(registered, None)
    assert loaded.model_cfg == TINY and loaded.mean == OPENAI_MEAN and loaded.std == OPENAI_STD
    assert loaded.encode_text(TEXTS).shape == (3, 32)
    for call in (load_clip, check_clip_weights):
        with pytest.raises(ClipLoadError, match="clip.model = 'ViT-B-17' is not an open_clip architecture .*ViT-B-16"):
            call("ViT-B-17", None)


# --- bad input: one clear message, nothing executed -------------------------------------------------------------------


class Evil:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_bad_files_stop_with_one_message_naming_the_path(tiny, tmp_path, registered):
    good = tmp_path / "good.pt"
    torch.save(tiny.state_dict(), good)
    (tmp_path / "random.pt").write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tiny.state_dict().items()}, str(tmp_path / "full.safetensors"))
    data = (tmp_path / "full.safetensors").read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "weights.npz").write_bytes(b"x")
    cases = {
        "missing.pt": "missing.pt: file not found",
        "random.pt": "random.pt: cannot be read safely",
        "truncated.pt": "truncated.pt: cannot be read safely",
        "truncated.safetensors": "truncated.safetensors: is not a readable safetensors file",
        "weights.npz": "weights.npz: unsupported file type '.npz'",
    }
    for name, message in cases.items():
        for call in (load_clip, check_clip_weights):
            with pytest.raises(ClipLoadError, match=message) as caught:
                call(registered, tmp_path / name)
            assert "Accepted clip.weights" in str(caught.value)


def test_pickled_objects_are_refused_never_run(tmp_path, registered):
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil_raw.pt", "wb") as handle:  # a bare pickle, as a .pt
        pickle.dump({"visual.proj": Evil(marker)}, handle, protocol=2)
    torch.save({"state_dict": {"visual.proj": Evil(marker)}}, tmp_path / "evil_zip.bin")  # inside a torch zip
    ours = {"model": {"w": torch.zeros(1)}, "config": {}, "step": 0, "model_cfg": Evil(marker)}
    torch.save(ours, tmp_path / "evil_ours.pt")
    for name in ("evil_raw.pt", "evil_zip.bin", "evil_ours.pt"):
        for call in (load_clip, check_clip_weights):
            with pytest.raises(ClipLoadError, match=f"{name}: cannot be read safely with torch.load\\(weights_only"):
                call(registered, tmp_path / name)
    assert not marker.exists()
    pickle.loads((tmp_path / "evil_raw.pt").read_bytes())  # control: the payload is live when unpickled
    assert marker.exists()


def test_weights_that_do_not_fit(tiny, tmp_path, registered):
    torch.save(tiny.state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(ClipLoadError,
                       match="tiny.pt: the weights do not fit clip.model='tiny-test-wide': .*shape mismatches"):
        load_clip("tiny-test-wide", tmp_path / "tiny.pt")
    partial = {k: v for k, v in tiny.state_dict().items() if not k.startswith("transformer.")}
    torch.save(partial | {"extra.weight": torch.zeros(2)}, tmp_path / "partial.pt")
    with pytest.raises(ClipLoadError, match="partial.pt: .*missing keys .*transformer.resblocks.*1 unexpected keys"):
        load_clip(registered, tmp_path / "partial.pt")
    torch.save({"model": tiny.state_dict(), "config": {}, "step": 0}, tmp_path / "cam.pt")  # no model_cfg
    with pytest.raises(ClipLoadError, match="cam.pt: is a checkpoint of this project without 'model_cfg'"):
        load_clip(registered, tmp_path / "cam.pt")
    torch.save({"a": 1, "b": "x"}, tmp_path / "notes.pt")
    with pytest.raises(ClipLoadError, match="notes.pt: is not a state dict"):
        load_clip(registered, tmp_path / "notes.pt")
    torch.save(tiny.state_dict(), tmp_path / "unnamed.pt")
    with pytest.raises(ClipLoadError, match="clip.model is not set.*unnamed.pt needs a known open_clip architecture"):
        load_clip(None, tmp_path / "unnamed.pt")


# --- hub tags: cache only when offline, failing at once ---------------------------------------------------------------


def test_offline_hub_tag_fails_at_once():
    start = time.monotonic()
    for call in (load_clip, check_clip_weights):
        with pytest.raises(ClipLoadError, match="cannot be downloaded offline") as caught:
            call("ViT-B-16", "openai")
        assert "local-dir:<folder>" in str(caught.value)
    with pytest.raises(ClipLoadError, match="hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K: .*cannot be downloaded off"):
        load_clip(None, "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    unknown_tag = "'laion9b': is neither an existing file nor a pretrained tag of ViT-B-32 "
    with pytest.raises(ClipLoadError, match=unknown_tag) as caught:
        check_clip_weights("ViT-B-32", "laion9b")
    assert "laion2b_s34b_b79k" in str(caught.value)  # the known tags are listed
    assert time.monotonic() - start < 5


def fake_hub_cache(tmp_path: Path, repo: str, files: dict[str, bytes]) -> Path:
    snapshot = tmp_path / "hf-home" / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    return snapshot


def test_cached_hub_forms_load_offline(tiny, tmp_path):
    source = tmp_path / "src"
    write_local_dir(source, tiny)
    fake_hub_cache(tmp_path, "org/tiny", {n: (source / n).read_bytes() for n in ("open_clip_config.json",
                                                                             "open_clip_model.safetensors")})
    check_clip_weights(None, "hf-hub:org/tiny")
    loaded = load_clip(None, "hf-hub:org/tiny")
    assert loaded.model_name == "tiny" and loaded.mean == (0.5, 0.5, 0.5)
    assert_same_outputs(loaded, reference(tiny, (0.5,) * 3, (0.25,) * 3))
    # a pretrained tag resolves to its cached hub file without touching the network (a junk file here)
    snapshot = fake_hub_cache(tmp_path, "timm/vit_base_patch16_clip_224.openai",
                              {"open_clip_model.safetensors": b"junk"})
    cached = re.escape(str(snapshot / "open_clip_model.safetensors"))
    with pytest.raises(ClipLoadError, match=f"{cached}: is not a readable safetensors"):
        check_clip_weights("ViT-B-16", "openai")


# --- scoring ----------------------------------------------------------------------------------------------------------


def test_gradients_flow_through_a_frozen_clip(tiny, tmp_path):
    save_clip_checkpoint(tmp_path / "c.pt", tiny, TINY, {"model": "tiny"}, step=0)
    loaded = load_clip("tiny", tmp_path / "c.pt").freeze()
    assert not loaded.model.training and all(not p.requires_grad for p in loaded.model.parameters())
    text = loaded.encode_text(["a photo of a train."])
    for size in ((32, 32), (17, 45), (64, 96)):
        images = torch.rand(3, 3, *size, requires_grad=True)
        features = loaded.encode_image(images)
        assert features.shape == (3, 32)
        assert torch.allclose(features.norm(dim=-1), torch.ones(3), atol=1e-5)
        (features @ text.T).sum().backward()
        assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in loaded.model.parameters())
    assert torch.allclose(text.norm(dim=-1), torch.ones(1), atol=1e-5)
    assert freeze(build_clip(TINY)).training is False
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        loaded.encode_image(torch.rand(3, 32, 32))


def test_tokenizer_is_the_offline_bpe_with_the_models_context_length(tiny, tmp_path):
    save_clip_checkpoint(tmp_path / "c.pt", tiny, TINY, {"model": "tiny"}, step=0)
    tokens = load_clip("tiny", tmp_path / "c.pt").tokenizer(TEXTS)
    assert tokens.shape == (3, 16) and tokens.dtype == torch.long and int(tokens[0, 0]) == 49406
    with pytest.raises(ClipLoadError, match="vocab_size 100 is smaller"):
        small = copy.deepcopy(TINY)
        small["text_cfg"]["vocab_size"] = 100
        save_clip_checkpoint(tmp_path / "s.pt", build_clip(small), small, {"model": "small"}, step=0)
        load_clip("small", tmp_path / "s.pt")


def test_build_clip_rejects_bad_configs():
    with pytest.raises(ClipLoadError, match="embed_dim, vision_cfg, text_cfg"):
        build_clip({"embed_dim": 8})
    with pytest.raises(ClipLoadError, match="cannot build an open_clip CLIP"):
        build_clip(TINY | {"no_such_option": 1})


def test_nothing_in_models_calls_torch_load_without_weights_only():
    root = Path(__file__).resolve().parents[2] / "clims_core" / "models"
    for file in root.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("torch.load", "load"):
                flags = {k.arg: ast.unparse(k.value) for k in node.keywords}
                where = f"{file.name}:{node.lineno}"
                assert flags.get("weights_only") == "True", f"{where}: torch.load without weights_only=True"
