"""Model registry: a backbone that gives features and a classifier head (``train.methods.heads``) on top.

ImageNet weights come through torchvision's weights API (downloaded once into
the torch hub cache); offline, pass ``--pretrained PATH`` to a local copy of the
same state dict, or ``--pretrained none``.
"""
from pathlib import Path

import torch
import torchvision.models as tvm
from torch import nn

from shards.errors import UsageError

from .methods.heads import make_head
from .rundir.checkpoint import torch_load


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_features: int, num_classes: int, head: str = "linear"):
        super().__init__()
        self.backbone = backbone
        self.num_features = num_features
        self.head = make_head(head, num_features, num_classes)

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


class WeightsUnavailable(UsageError):
    pass


def _imagenet_state(name: str, weights) -> dict:
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as e:  # URLError, socket errors, hash mismatch: all mean "not available here"
        raise WeightsUnavailable(
            f"could not load the ImageNet weights of {name} ({type(e).__name__}: {e}). Either run once with "
            f"internet to fill the torch hub cache, or pass --pretrained PATH to a local state dict "
            f"({weights.url.rsplit('/', 1)[-1]}), or --pretrained none to train from scratch") from e


def _file_state(path: str) -> dict:
    if not Path(path).is_file():
        raise WeightsUnavailable(f"--pretrained {path}: no such file; give a state dict saved with torch.save, "
                                 f"'imagenet' or 'none'")
    state = torch_load(Path(path), "give --pretrained a state dict saved with torch.save, 'imagenet' or 'none'")
    return state.get("model", state) if isinstance(state, dict) else state


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


def build_model(name: str, num_classes: int, pretrained: str = "none", head: str = "linear",
                channels: int = 3) -> Classifier:
    if name == "tiny":
        if pretrained not in ("none", ""):
            raise WeightsUnavailable("the tiny model has no pretrained weights; use --pretrained none")
        tiny = TinyCNN(channels=channels)
        return Classifier(tiny, tiny.out_features, num_classes, head)
    if name not in TORCHVISION:
        raise ValueError(f"unknown model {name!r}; one of {', '.join(MODELS)}")
    ctor, weights, head_attr = TORCHVISION[name]
    net = ctor(weights=None)
    if pretrained == "imagenet":
        net.load_state_dict(_imagenet_state(name, weights))
    elif pretrained not in ("none", ""):
        missing, _ = net.load_state_dict(_file_state(pretrained), strict=False)
        if [k for k in missing if not k.startswith(head_attr)]:
            raise WeightsUnavailable(f"--pretrained {pretrained}: not a {name} state dict (missing {missing[:3]})")
    if channels == 1:
        grey_input(net)
    num_features = getattr(net, head_attr).in_features
    setattr(net, head_attr, nn.Identity())
    return Classifier(net, num_features, num_classes, head)
