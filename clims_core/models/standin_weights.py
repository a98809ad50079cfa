"""Stand-in weight files in the forms users bring, randomly initialised: an OpenAI CLIP TorchScript archive (as
OpenAI's ``ViT-B-16.pt``), an open_clip state dict (``.safetensors``) and torchvision ResNet state dicts (as
``resnet50-0676ba61.pth``). They load through exactly the code that loads real weights (``clip.weights``,
``cam.backbone_weights``), so a rehearsal of `config/voc12.yaml` exercises that code, its speed and its memory with
no download. Their results mean nothing.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch
import torchvision

from clims_core.models.clip import build_clip

OPENAI_CLIP = "ViT-B-16-quickgelu"  # what OpenAI's ViT-B-16.pt is in open_clip's terms (QuickGELU)
OPEN_CLIP = "ViT-B-16"


def _model_cfg(model: str | dict) -> dict:
    if isinstance(model, dict):
        return model
    import open_clip

    cfg = open_clip.get_model_config(model)
    if cfg is None:
        raise ValueError(f"stand-in CLIP: unknown open_clip architecture {model!r}")
    return cfg


def write_openai_clip(path: str | Path, model: str | dict = OPENAI_CLIP, seed: int = 0) -> Path:
    """A TorchScript archive of a random CLIP in fp16, as OpenAI released theirs (the loader reads the architecture
    from the shapes and loads it in fp32, as for the real file)."""
    torch.manual_seed(seed)
    net = build_clip(_model_cfg(model)).eval().half()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated, but it is the form OpenAI ships
        torch.jit.save(torch.jit.script(net), str(path))
    return path


def write_open_clip(path: str | Path, model: str | dict = OPEN_CLIP, seed: int = 0) -> Path:
    """An open_clip state dict of a random CLIP as safetensors (``clip.model`` names its architecture)."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    net = build_clip(_model_cfg(model))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def calibrate_batchnorm(net: torch.nn.Module, batches: int = 4, batch_size: int = 8, size: int = 224) -> None:
    """Set every BatchNorm's running statistics to what its input really has (random images through the network in
    train mode, cumulative averages). A random ResNet keeps torchvision's mean 0 / variance 1, so with BatchNorm
    frozen, as IRNet and CLIMS train on ImageNet weights, nothing normalises its activations: the stand-in's plain
    CAM loss reached 7e21 in its first step. Calibrated, frozen BatchNorm normalises as pretrained statistics do."""
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative moving average over the calibration batches
    net.train()
    with torch.no_grad():
        for _ in range(batches):
            net(torch.randn(batch_size, 3, size, size))
    net.eval()


def write_torchvision_resnet(path: str | Path, depth: int = 50, seed: int = 0) -> Path:
    """torchvision's ResNet state dict (random init, BatchNorm statistics calibrated), the layout of its ImageNet
    release files."""
    builders = {18: torchvision.models.resnet18, 34: torchvision.models.resnet34, 50: torchvision.models.resnet50,
                101: torchvision.models.resnet101}
    if depth not in builders:
        raise ValueError(f"stand-in ResNet: depth {depth} is not one of {sorted(builders)}")
    torch.manual_seed(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = builders[depth](weights=None)
    calibrate_batchnorm(net)
    torch.save(net.state_dict(), path)
    return path


def write_all(folder: str | Path, seed: int = 0) -> dict[str, Path]:
    """Every file `config/voc12.yaml` asks for, under ``folder`` (its ``weights/`` names)."""
    folder = Path(folder)
    return {
        "clip.weights (OpenAI TorchScript)": write_openai_clip(folder / "clip" / "ViT-B-16.pt", seed=seed),
        "clip.weights (open_clip safetensors)": write_open_clip(folder / "clip" / "ViT-B-16.safetensors", seed=seed),
        "cam.backbone_weights": write_torchvision_resnet(folder / "resnet50-imagenet.pth", 50, seed),
        "seg.deeplab.backbone_weights": write_torchvision_resnet(folder / "resnet101-imagenet.pth", 101, seed),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write random stand-in weights in the forms config/voc12.yaml reads.")
    parser.add_argument("--out", type=Path, required=True, help="the weights folder (voc12.yaml: weights/)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for key, path in write_all(args.out, args.seed).items():
        print(f"{key}: {path} ({path.stat().st_size / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
