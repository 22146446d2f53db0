"""The two networks (coarse localiser and fine segmenter) and their shipped weights.

Weights are safetensors files: loading them never executes pickled code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from monai.networks.nets import UNet
from safetensors.torch import load_file, save_file

from nvc_mri.config import load_config
from nvc_mri.errors import InputError
from nvc_mri.labels import LABEL_NAMES

N_CLASSES = len(LABEL_NAMES)
WEIGHTS_FILE = "nvc_unet.safetensors"


def shipped_weights_path() -> Path:
    """Path of the weights shipped inside the package (``nvc_mri/segment/weights/``)."""
    return Path(str(resources.files("nvc_mri.segment").joinpath("weights", WEIGHTS_FILE)))


def build_network(stage: dict[str, Any]) -> UNet:
    """A MONAI 3D UNet from one stage of ``configs/model.yaml`` (``fine`` or ``coarse``)."""
    return UNet(spatial_dims=3, in_channels=1, out_channels=N_CLASSES, channels=tuple(stage["channels"]),
                strides=tuple(stage["strides"]), num_res_units=int(stage["num_res_units"]))


@dataclass
class Networks:
    """The coarse and fine networks with the config they were built from."""

    coarse: UNet
    fine: UNet
    config: dict[str, Any]
    sha256: str | None = None
    weights_file: str | None = None

    def to(self, device: torch.device) -> Networks:
        self.coarse.to(device).eval()
        self.fine.to(device).eval()
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Both networks' tensors in one flat dict (``coarse.*``, ``fine.*``)."""
        out = {f"coarse.{k}": v for k, v in self.coarse.state_dict().items()}
        out.update({f"fine.{k}": v for k, v in self.fine.state_dict().items()})
        return out

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, net in (("coarse", self.coarse), ("fine", self.fine)):
            prefix = name + "."
            net.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


def new_networks(config: dict[str, Any] | None = None) -> Networks:
    """Untrained networks built from ``config`` (default: the shipped ``model.yaml``)."""
    config = config or load_config("model.yaml")
    return Networks(build_network(config["coarse"]), build_network(config["fine"]), config)


def save_weights(networks: Networks, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write both networks to one safetensors file (contiguous float32 tensors)."""
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in networks.state_dict().items()}
    save_file(tensors, str(path), metadata=metadata or {})


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_networks(weights: str | Path | None = None, config: dict[str, Any] | None = None) -> Networks:
    """Networks with weights from a safetensors file (default: the shipped weights).

    Raises
    ------
    InputError
        When the file does not exist, is not safetensors, or holds tensors of other networks.
    """
    path = Path(weights) if weights else shipped_weights_path()
    if not path.is_file():
        raise InputError(path, "model weights not found")
    networks = new_networks(config)
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error type for a damaged or foreign file
        raise InputError(path, f"not a safetensors weights file ({str(exc).splitlines()[0]})") from None
    expected = set(networks.state_dict())
    if set(tensors) != expected:
        missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise InputError(path, f"weights are not of the nvc-mri U-Nets ({len(missing)} tensors missing, e.g. "
                               f"{missing[:1]}; {len(unexpected)} unexpected, e.g. {unexpected[:1]})")
    try:
        networks.load_state_dict(tensors)
    except RuntimeError as exc:  # same names, other shapes: another network size in model.yaml
        raise InputError(path, f"weights do not fit the configured U-Nets ({str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else exc})") from None
    networks.sha256 = file_sha256(path)
    networks.weights_file = path.name
    return networks
