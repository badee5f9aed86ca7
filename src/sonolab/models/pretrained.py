"""Foreign weights into sonolab's spectrogram transformers: the one place where checkpoints made for
images (ImageNet ViT / DeiT in timm's key names) or by the reference audio repos (AST's official
``audioset_10_10_0.4593.pth`` and its kin) are adapted to a one-channel spectrogram model.

What adapting means, step by step (each a tested function):

* **key names**: AST's official files come from ``nn.DataParallel(ASTModel)``: ``module.v.<timm ViT
  key>`` and ``module.mlp_head.{0,1}``; timm files use the ViT keys directly. Both are mapped to
  :class:`~sonolab.models.ast.AudioSpectrogramTransformer`'s ``vit.<key>`` / ``head.{0,1}``; the
  image heads (``head``, ``head_dist``) are dropped. HTS-AT's released checkpoints are Lightning
  files (``state_dict`` with ``sed_model.<key>``) over Microsoft's Swin layout: the Swin keys go to
  :class:`~sonolab.models.htsat.HtsAt`'s timm encoder through timm's own converter, ``tscam_conv``
  to its token-semantic head, ``bn0`` to the front-end's BatchNorm; the fixed STFT / mel matrices
  and the unused ``head`` are dropped. ImageNet Swin files (either layout) take the same path.
* **one input channel**: an RGB patch embedding becomes a grey one by summing the colour weights
  (AST: a grey image replicated on three channels then gives the same embedding) or averaging them
  (HTS-AT's choice, which keeps the activation scale of one channel).
* **window size**: Swin's relative-position tables are resized to the model's window (timm).
* **position embeddings** to the spectrogram's patch grid, axis by axis: cut the centre rows /
  columns when the target is smaller (AST keeps the centre frequency rows of ImageNet's 24 x 24
  grid), interpolate (timm's ``resample_abs_pos_embed``) when it is larger.
* **classifier**: kept only when its shape matches the model's (same classes); otherwise left to
  the model's fresh head.

* **PANNs**: the official CNN checkpoints (``Cnn14_mAP=0.431.pth``, ``Cnn6_mAP=0.343.pth``,
  ``Cnn14_DecisionLevelAtt_mAP=0.425.pth`` ...) hold ``{"model": state}`` with PANNs' module names:
  ``conv_block<n>`` -> ``blocks.<n-1>``, ``fc_audioset`` / ``att_block.cla`` -> ``head``,
  ``att_block.att`` -> ``attention`` (1 x 1 convolutions -> linear layers), ``bn0`` to the
  front-end; the fixed STFT / mel matrices and ``att_block.bn_att`` (defined, never used in PANNs'
  forward) are dropped.

Files are read with ``torch.load(weights_only=True)`` or as ``.safetensors``: a foreign file never
runs code on load.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from timm.layers import resample_abs_pos_embed
from torch import nn

from ..utils.errors import DataFormatError

log = logging.getLogger(__name__)

IMAGE_HEADS = ("head.", "head_dist.")
# The fbank statistics AST's AudioSet models were trained with (YuanGongND/ast egs/audioset/run.sh
# lines 55-56: dataset_mean=-4.2677393, dataset_std=4.5689974)
AST_AUDIOSET_STATISTICS = {"mean": -4.2677393, "std": 4.5689974}


def _read_weights(path: Path) -> object:
    """The content of a ``.safetensors`` file (timm's format for hub weights) or a PyTorch file
    loaded with ``weights_only=True``; an unreadable file is an error naming it."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to read means "not a weights file we can read"
        expected = (
            "a safetensors file"
            if path.suffix == ".safetensors"
            else "a PyTorch weights file loadable with weights_only=True (or a .safetensors file)"
        )
        raise DataFormatError(
            path, expected, found=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
        ) from None


def load_foreign_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file (a bare state dict, or one under ``state_dict`` /
    ``model``; ``.safetensors`` or a PyTorch file), loaded without unpickling code; an unreadable
    file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "a checkpoint file (model.pretrained)", found="no such file")
    content = _read_weights(path)
    for key in ("state_dict", "model"):
        if isinstance(content, dict) and isinstance(content.get(key), dict):
            content = content[key]
    if not isinstance(content, dict) or not all(
        isinstance(v, torch.Tensor) for v in content.values()
    ):
        raise DataFormatError(
            path, "a dict of tensors (a state dict)", found=type(content).__name__
        )
    return content


def ast_key_map(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """AST-official (``module.v.*``, ``module.mlp_head.*``) or timm ViT keys -> sonolab AST keys."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("mlp_head."):
            out["head." + key.removeprefix("mlp_head.")] = value
            continue
        key = key.removeprefix("v.")
        if key.startswith(IMAGE_HEADS):
            continue  # the image classifier (and DeiT's distillation head): no audio meaning
        out["vit." + key] = value
    return out


def to_one_channel(weight: torch.Tensor, mode: str = "sum") -> torch.Tensor:
    """``(out, C, kh, kw)`` patch-embedding weights -> ``(out, 1, kh, kw)`` by summing (AST) or
    averaging (HTS-AT) the input channels; one-channel weights are returned as they are."""
    if weight.shape[1] == 1:
        return weight
    if mode not in ("sum", "mean"):
        raise ValueError(f"channel reduction must be 'sum' or 'mean', found {mode!r}")
    return weight.sum(dim=1, keepdim=True) if mode == "sum" else weight.mean(dim=1, keepdim=True)


def adapt_position_embedding(
    pos_embed: torch.Tensor,
    old_grid: tuple[int, int],
    new_grid: tuple[int, int],
    prefix_tokens: int,
) -> torch.Tensor:
    """``(1, prefix + H*W, D)`` position embeddings on ``old_grid`` (H, W) -> ``new_grid``: per axis
    the centre is cut when the new size is smaller, and timm's interpolation (bilinear, as AST)
    stretches it when larger. The prefix tokens (class, distillation) keep theirs."""
    if tuple(old_grid) == tuple(new_grid):
        return pos_embed
    prefix, grid = pos_embed[:, :prefix_tokens], pos_embed[:, prefix_tokens:]
    dim = grid.shape[-1]
    if grid.shape[1] != old_grid[0] * old_grid[1]:
        raise ValueError(
            f"{grid.shape[1]} position embeddings do not fill a {old_grid[0]} x {old_grid[1]} grid"
        )
    image = grid.reshape(1, old_grid[0], old_grid[1], dim)
    for axis in (1, 2):  # frequency (rows), then time (columns)
        old, new = image.shape[axis], new_grid[axis - 1]
        if new <= old:
            start = old // 2 - new // 2
            image = image.narrow(axis, start, new)
        else:
            size = [image.shape[1], image.shape[2]]
            size[axis - 1] = new
            image = resample_abs_pos_embed(
                image.reshape(1, -1, dim),
                size,
                [image.shape[1], image.shape[2]],
                num_prefix_tokens=0,
                interpolation="bilinear",
                antialias=False,
            ).reshape(1, size[0], size[1], dim)
    return torch.cat([prefix, image.reshape(1, -1, dim)], dim=1)


def _square_grid(tokens: int) -> tuple[int, int]:
    side = int(round(tokens**0.5))
    if side * side != tokens:
        raise ValueError(
            f"{tokens} position embeddings are not a square image grid; give the source grid"
        )
    return side, side


def load_into_ast(
    model: nn.Module,
    path: str | Path,
    source_grid: tuple[int, int] | None = None,
    channel_mode: str = "sum",
) -> dict[str, list[str]]:
    """Load an ImageNet ViT / DeiT (timm keys) or an official AST checkpoint into ``model`` (an
    :class:`~sonolab.models.ast.AudioSpectrogramTransformer`), adapting channels, position
    embeddings and head. ``source_grid``: the checkpoint's patch grid (default: square for image
    weights, AST's 12 x 101 for AST files). Returns the keys left at their initial values
    (``missing``), those of the file that had no place (``unexpected``), the file's audio head
    (``head``: tensors by the head's own keys, empty when it has none) and, for an official AST
    file, the fbank ``statistics`` its model was trained with; anything missing beyond the head is
    an error."""
    state = load_foreign_state(path)
    official_ast = any(k.removeprefix("module.").startswith(("v.", "mlp_head.")) for k in state)
    state = ast_key_map(state)
    head = {k[len("head.") :]: v for k, v in state.items() if k.startswith("head.")}
    if "vit.patch_embed.proj.weight" in state:
        state["vit.patch_embed.proj.weight"] = to_one_channel(
            state["vit.patch_embed.proj.weight"], channel_mode
        )
    prefix = model.vit.num_prefix_tokens
    if "vit.pos_embed" in state:
        pos = state["vit.pos_embed"]
        if "vit.dist_token" not in state and "vit.cls_token" in state and prefix == 2:
            # a plain ViT (one class token): its class token and position start the distillation
            # token too
            state["vit.dist_token"] = state["vit.cls_token"].clone()
            pos = torch.cat([pos[:, :1], pos], dim=1)
        tokens = pos.shape[1] - prefix
        grid = source_grid or (
            (12, 101) if official_ast and tokens == 1212 else _square_grid(tokens)
        )
        state["vit.pos_embed"] = adapt_position_embedding(pos, grid, model.grid, prefix)
    own = model.state_dict()
    for key in [
        k
        for k in state
        if k.startswith("head.") and (k not in own or own[k].shape != state[k].shape)
    ]:
        del state[key]  # another class set: the model's fresh head stays
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("head.")]
    if missing:
        raise DataFormatError(
            path,
            "weights for every encoder parameter of the model",
            found=f"{len(missing)} missing, e.g. {missing[:3]}",
        )
    log.info(
        "loaded %s: %d tensors, head %s, %d unexpected",
        path,
        len(state) - len(result.unexpected_keys),
        "kept" if not result.missing_keys else "new",
        len(result.unexpected_keys),
    )
    return {
        "missing": list(result.missing_keys),
        "unexpected": list(result.unexpected_keys),
        "head": head,
        "statistics": dict(AST_AUDIOSET_STATISTICS) if official_ast else {},
    }


HTSAT_FRONTEND = ("bn0.",)  # HTS-AT's BatchNorm over mel bins: sonolab's front-end owns it
HTSAT_DROPPED = (
    "spectrogram_extractor.",
    "logmel_extractor.",
    "head.",
)  # fixed STFT / mel buffers; unused head


def htsat_key_map(
    state: dict[str, torch.Tensor], swin: nn.Module
) -> dict[str, dict[str, torch.Tensor]]:
    """An official HTS-AT checkpoint (Lightning's ``state_dict`` with ``sed_model.`` keys, or the
    bare model) or ImageNet Swin weights (Microsoft's or timm's key names) -> ``{"swin", "head",
    "frontend"}`` state dicts for :class:`~sonolab.models.htsat.HtsAt`'s encoder, its token-semantic
    head and the front-end's BatchNorm. Stage downsampling and relative-position tables follow
    timm's own converter (``checkpoint_filter_fn``: Microsoft's layout merges patches at the end of
    a stage, timm's at the start)."""
    from timm.models.swin_transformer import checkpoint_filter_fn

    encoder, head, frontend = {}, {}, {}
    for key, value in state.items():
        key = key.removeprefix("module.").removeprefix("sed_model.")
        if key.startswith("tscam_conv."):
            head[key.removeprefix("tscam_conv.")] = value
        elif key.startswith(HTSAT_FRONTEND):
            frontend[key.removeprefix("bn0.")] = value
        elif not key.startswith(HTSAT_DROPPED):
            encoder[key] = value
    if (
        "patch_embed.proj.weight" in encoder
    ):  # HTS-AT averages an RGB patch embedding into one channel
        encoder["patch_embed.proj.weight"] = to_one_channel(
            encoder["patch_embed.proj.weight"], "mean"
        )
    return {"swin": checkpoint_filter_fn(encoder, swin), "head": head, "frontend": frontend}


def load_into_htsat(model: nn.Module, path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """Load an official HTS-AT checkpoint or ImageNet Swin weights into ``model`` (an
    :class:`~sonolab.models.htsat.HtsAt`): the encoder now; the file's token-semantic head
    (``head``, kept when the classes match) and mel BatchNorm (``frontend``, taken by the task's
    front-end) are returned. A window size other than the file's has its relative-position tables
    resized; any encoder weight missing from the file is an error."""
    mapped = htsat_key_map(load_foreign_state(path), model.swin)
    result = model.swin.load_state_dict(mapped["swin"], strict=False)
    missing = [
        k for k in result.missing_keys if not k.endswith(("relative_position_index", "attn_mask"))
    ]
    if missing:
        raise DataFormatError(
            path,
            "weights for every encoder parameter of the model (HTS-AT or Swin keys)",
            found=f"{len(missing)} missing, e.g. {missing[:3]}",
        )
    log.info(
        "loaded %s: %d encoder tensors, head %s, mel BatchNorm %s, %d unexpected",
        path,
        len(mapped["swin"]) - len(result.unexpected_keys),
        "present" if mapped["head"] else "absent",
        "present" if mapped["frontend"] else "absent",
        len(result.unexpected_keys),
    )
    return {"head": mapped["head"], "frontend": mapped["frontend"]}


PANNS_DROPPED = ("spectrogram_extractor.", "logmel_extractor.", "att_block.bn_att.")
PANNS_RENAMED = {
    "fc_audioset.": "head.",
    "att_block.cla.": "head.",
    "att_block.att.": "attention.",
}


def panns_key_map(state: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """An official PANNs CNN state dict -> ``{"encoder", "head", "frontend"}`` state dicts for
    :class:`~sonolab.models.cnn.LogMelCnn`: its blocks and ``fc1``, its classifier (and attention
    layer) by the model's keys, and ``bn0`` for the front-end's BatchNorm."""
    encoder, head, frontend = {}, {}, {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith(PANNS_DROPPED):
            continue
        if key.startswith("bn0."):
            frontend[key.removeprefix("bn0.")] = value
            continue
        if key.startswith("conv_block"):
            number, rest = key.removeprefix("conv_block").split(".", 1)
            encoder[f"blocks.{int(number) - 1}.{rest}"] = value
            continue
        for old, new in PANNS_RENAMED.items():
            if key.startswith(old):
                if value.dim() == 3:  # a 1 x 1 Conv1d (AttBlock) is a linear layer on each frame
                    value = value.squeeze(-1)
                head[new + key.removeprefix(old)] = value
                break
        else:
            encoder[key] = value
    return {"encoder": encoder, "head": head, "frontend": frontend}


def load_into_cnn(model: nn.Module, path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """Load an official PANNs CNN checkpoint into ``model`` (a
    :class:`~sonolab.models.cnn.LogMelCnn` of the same shape): the blocks and ``fc1`` now; the
    file's classifier (``head``, by the model's keys, kept when the classes match) and ``bn0``
    (``frontend``, taken by the task's front-end) are returned. A block or layer the file lacks,
    or one of another shape, is an error naming the file."""
    mapped = panns_key_map(load_foreign_state(path))
    own = model.state_dict()
    wrong = [
        f"{k} {tuple(v.shape)} (model {tuple(own[k].shape)})"
        for k, v in mapped["encoder"].items()
        if k in own and own[k].shape != v.shape
    ]
    if wrong:
        raise DataFormatError(
            path, "PANNs weights of the model's shape (channels, kernel_size)", found=wrong[0]
        )
    result = model.load_state_dict(mapped["encoder"], strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(("head.", "attention."))]
    if missing or result.unexpected_keys:
        found = (
            f"{len(missing)} missing, e.g. {missing[:3]}"
            if missing
            else f"{len(result.unexpected_keys)} unknown, e.g. {result.unexpected_keys[:3]}"
        )
        raise DataFormatError(path, "a PANNs CNN checkpoint of the model's depth", found=found)
    log.info(
        "loaded %s: %d encoder tensors, classifier %s, mel BatchNorm %s",
        path,
        len(mapped["encoder"]),
        "present" if mapped["head"] else "absent",
        "present" if mapped["frontend"] else "absent",
    )
    return {"head": mapped["head"], "frontend": mapped["frontend"]}
