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
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck

from clims_core.models.backbone import imagenet_normalize
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


def smooth_images(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """ImageNet-normalised random images with a photo's smoothness (coarse and medium blobs, no pixel noise): the
    input the calibrated statistics are for."""
    coarse = F.interpolate(torch.rand(count, 3, 8, 8, generator=generator), size=size, mode="bilinear")
    medium = F.interpolate(torch.rand(count, 3, 32, 32, generator=generator), size=size, mode="bilinear")
    return imagenet_normalize((0.7 * coarse + 0.3 * medium).clamp(0, 1))


def calibrate_batchnorm(net: torch.nn.Module, residual_scale: float = 0.2, batches: int = 4, batch_size: int = 8,
                        size: int = 224, seed: int = 0) -> None:
    """Make a random ResNet behave as pretrained weights do under the paper's recipe (BatchNorm frozen, lr 0.1).

    torchvision's random init keeps every BatchNorm at mean 0 / variance 1, so frozen, nothing normalises: on the
    rehearsal's images the plain CAM's first loss was 42 and its second step 1e36 (make_cams then refused the
    non-finite maps). Here every BatchNorm's running statistics are set to what its input has on photo-like images
    (train-mode passes, cumulative averages), and each residual branch's last BatchNorm is scaled by
    ``residual_scale`` so the blocks start near identity: the stand-in trunk then trains at lr 0.1 (head 1.0)
    without diverging."""
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative moving average over the calibration batches
    generator = torch.Generator().manual_seed(seed)
    net.train()
    with torch.no_grad():
        for _ in range(batches):
            net(smooth_images(batch_size, size, generator))
        for module in net.modules():
            last = getattr(module, "bn3", None) if isinstance(module, Bottleneck) else (
                getattr(module, "bn2", None) if isinstance(module, BasicBlock) else None)
            if last is not None:
                last.weight.mul_(residual_scale)
                last.bias.mul_(residual_scale)
    net.eval()


def write_torchvision_resnet(path: str | Path, depth: int = 50, seed: int = 0) -> Path:
    """torchvision's ResNet state dict (random init, calibrated: :func:`calibrate_batchnorm`), the layout of its
    ImageNet release files."""
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
