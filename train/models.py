"""Model registry: a backbone that gives features and a classifier head (``train.methods.heads``) on top.

Our names (``MODELS``) are torchvision's constructors and a tiny CNN; every other
``--model`` is a timm name. ImageNet weights come through torchvision's weights
API or timm's hub (downloaded once into the torch hub / Hugging Face cache);
offline, pass ``--pretrained PATH`` (``train.weights``), or ``--pretrained none``.
"""
from pathlib import Path

import torch
import torchvision.models as tvm
from torch import nn

from shards.errors import UsageError
from shards.loader import normalisation

from .methods.heads import make_head
from .weights import WeightsUnavailable, load_backbone, match_state


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_features: int, num_classes: int, head: str = "linear",
                 head_scale: float | None = None):
        super().__init__()
        self.backbone = backbone
        self.num_features = num_features
        self.head = make_head(head, num_features, num_classes, head_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class TinyCNN(nn.Module):
    """A few conv layers and global pooling: for tests and CPU demos."""

    def __init__(self, width: int = 32, channels: int = 3):
        super().__init__()
        layers, c_in = [], channels
        for c_out in (width // 2, width, width * 2):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = c_in

    def forward(self, x):
        return self.features(x)


# name -> (constructor, ImageNet weights, attribute of the torchvision head)
TORCHVISION = {
    "resnet18": (tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1, "fc"),
    "resnet34": (tvm.resnet34, tvm.ResNet34_Weights.IMAGENET1K_V1, "fc"),
    "resnet50": (tvm.resnet50, tvm.ResNet50_Weights.IMAGENET1K_V1, "fc"),
    "densenet121": (tvm.densenet121, tvm.DenseNet121_Weights.IMAGENET1K_V1, "classifier"),
}
MODELS = (*TORCHVISION, "tiny")


def _imagenet_state(name: str, weights) -> dict:
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as e:  # URLError, socket errors, hash mismatch: all mean "not available here"
        raise WeightsUnavailable(
            f"could not load the ImageNet weights of {name} ({type(e).__name__}: {e}). Either run once with "
            f"internet to fill the torch hub cache, or pass --pretrained PATH to a local state dict "
            f"({weights.url.rsplit('/', 1)[-1]}), or --pretrained none to train from scratch") from e


def grey_input(net: nn.Module) -> nn.Module:
    """One input channel instead of RGB: the first convolution's weights summed over R, G and B, so that a
    grey image gives what the RGB network gives for that image repeated in each channel."""
    parent, attr, conv = next((m, a, c) for m in net.modules() for a, c in m.named_children()
                              if isinstance(c, nn.Conv2d))
    grey = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                     conv.groups, conv.bias is not None)
    with torch.no_grad():
        grey.weight.copy_(conv.weight.sum(1, keepdim=True))
        if conv.bias is not None:
            grey.bias.copy_(conv.bias)
    setattr(parent, attr, grey)
    return net


def timm_name(name: str) -> str | None:
    """The timm model ``--model`` names (``timm/NAME`` for one whose name is also ours), or None."""
    import timm

    bare = name.removeprefix("timm/")
    if (name.startswith("timm/") or name not in MODELS) and timm.is_model(bare):
        return bare
    return None


def check_model_name(name: str) -> None:
    if name not in MODELS and timm_name(name) is None:
        raise UsageError(f"--model {name!r}: neither one of {', '.join(MODELS)} nor a timm model; "
                         f"`python -m train models {name.split('.')[0][:12]}` lists the names")


def _timm_backbone(name: str, pretrained: str, channels: int, drop_path: float) -> nn.Module:
    import timm

    extra = {"drop_path_rate": drop_path} if drop_path else {}
    try:
        return timm.create_model(timm_name(name), pretrained=pretrained == "imagenet", num_classes=0,
                                 in_chans=channels, **extra)
    except (OSError, RuntimeError, ValueError) as e:  # offline hub download, no pretrained tag
        if pretrained != "imagenet":
            raise
        raise WeightsUnavailable(
            f"could not load the pretrained weights of {name} ({type(e).__name__}: {str(e).splitlines()[0][:160]})"
            f". Either run once with internet to fill the Hugging Face cache, or pass --pretrained PATH to a local "
            f"state dict or Hugging Face cache dir, or --pretrained none to train from scratch") from e


def build_model(name: str, num_classes: int, pretrained: str = "none", head: str = "linear",
                channels: int = 3, drop_path: float = 0.0, head_scale: float | None = None) -> Classifier:
    """Our names build as they always have (torchvision's constructors, our tiny CNN); any other timm name
    through timm with no classifier (``num_classes=0``) and ``in_chans=channels``. ``pretrained``: none,
    imagenet (torchvision's or timm's hub weights) or a local file / Hugging Face cache dir
    (``train.weights.load_backbone``: the file's head dropped)."""
    if name == "tiny":
        if pretrained not in ("none", ""):
            raise WeightsUnavailable("the tiny model has no pretrained weights; use --pretrained none")
        if drop_path:
            raise UsageError(f"--drop-path {drop_path}: the tiny model has no stochastic depth; use --drop-path 0")
        tiny = TinyCNN(channels=channels)
        return Classifier(tiny, tiny.out_features, num_classes, head, head_scale)
    check_model_name(name)
    if timm_name(name) is not None:
        net = _timm_backbone(name, pretrained, channels, drop_path)
        num_features = net.num_features
    else:
        if drop_path:
            raise UsageError(f"--drop-path {drop_path}: the torchvision {name} has no stochastic depth; use a timm "
                             f"model (e.g. --model timm/{name}) or --drop-path 0")
        ctor, weights, head_attr = TORCHVISION[name]
        net = ctor(weights=None)
        num_features = getattr(net, head_attr).in_features
        setattr(net, head_attr, nn.Identity())
        if channels == 1:
            grey_input(net)
        if pretrained == "imagenet":
            net.load_state_dict(_fitted(net, _imagenet_state(name, weights)), strict=False)
    if pretrained not in ("none", "", "imagenet"):
        load_backbone(net, pretrained, name)
    return Classifier(net, num_features, num_classes, head, head_scale)


def _fitted(net: nn.Module, state: dict) -> dict:
    """torchvision's ImageNet state dict for ``net`` (its head gone; an RGB first convolution summed to grey)."""
    found, _, fresh = match_state(net, state)
    assert not fresh, fresh  # the same architecture: every tensor is there
    return found


# torchxrayvision's input: grey scaled to [-1024, 1024], i.e. (x / 255 - 0.5) / (1 / 2048)
XRV_MEAN_STD = (0.5, 1 / 2048)


def input_spec(name: str, channels: int, scaling: str = "auto") -> dict:
    """How the model wants its input, recorded in config.json and used by the loaders, predict and export:
    {scaling, mean, std (per channel, 0-1 scale), input_size, interpolation}. Ours: ImageNet's mean / std
    (``shards.loader.normalisation``); a timm model: its pretrained config's (averaged over RGB for one channel);
    ``xrv``: torchxrayvision's [-1024, 1024]."""
    mean, std = normalisation(channels)
    size, interpolation = None, "bilinear"
    timm_model = timm_name(name) if name != "tiny" else None
    if timm_model is not None:
        import timm

        cfg = timm.get_pretrained_cfg(timm_model)
        if cfg is not None:
            mean, std = tuple(cfg.mean), tuple(cfg.std)
            if channels == 1:
                mean, std = (sum(mean) / len(mean),), (sum(std) / len(std),)
            size, interpolation = cfg.input_size[-1], cfg.interpolation
    if scaling == "xrv":
        mean, std = (XRV_MEAN_STD[0],) * channels, (XRV_MEAN_STD[1],) * channels
    return {"scaling": "xrv" if scaling == "xrv" else "timm" if timm_model else "imagenet", "mean": list(mean),
            "std": list(std), "input_size": size, "interpolation": interpolation}


def weights_cached(name: str) -> bool:
    """Are the ImageNet / hub weights of ``name`` in the local torch hub or Hugging Face cache already?"""
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    if name in TORCHVISION:
        return (hub / TORCHVISION[name][1].url.rsplit("/", 1)[-1]).is_file()
    import timm
    from huggingface_hub.constants import HF_HUB_CACHE

    cfg = timm.get_pretrained_cfg(timm_name(name) or name)
    if cfg is None:
        return False
    if cfg.hf_hub_id and any((Path(HF_HUB_CACHE) / f"models--{cfg.hf_hub_id.replace('/', '--')}").glob(
            "snapshots/*/*")):
        return True
    return bool(cfg.url) and (hub / cfg.url.rsplit("/", 1)[-1]).is_file()


def list_backbones(contains: str = "") -> list[tuple[str, str, bool]]:
    """(name, source, weights cached) of our backbones and timm's pretrained ones whose name contains
    ``contains``: timm's tagged names (convnext_small.fb_in22k_ft_in1k), each with its own weights."""
    import timm

    ours = [(n, "torchvision", weights_cached(n)) for n in TORCHVISION if contains in n]
    ours += [("tiny", "ours (tests, demos)", False)] if contains in "tiny" else []
    theirs = [(n, "timm", weights_cached(n)) for n in timm.list_models(f"*{contains}*", pretrained=True)]
    return ours + theirs
