"""Loading weights: ``load_generator`` (one entry point for registry names, i2s files and
official checkpoints), ``load_vgg16`` and ``load_lpips``.

* a registry name (``i2s models list``) is downloaded on first use into ``$I2S_HOME/downloads``
  (verified), converted once to ``$I2S_HOME/models/<name>.safetensors`` and reused afterwards;
* an i2s ``.safetensors`` file is loaded directly;
* any other supported checkpoint (StyleGAN v1/StyleGAN2 TF ``.pkl``, StyleGAN2-ADA ``.pkl``,
  rosinality ``.pt``) is converted once with the restricted unpickler and cached as
  ``$I2S_HOME/converted/<sha256 prefix>-<name>.safetensors``; a cached file that does not load,
  or whose metadata records another source SHA-256, is rebuilt from the source once.
``I2S_HOME`` defaults to ``~/.cache/i2s``.

VGG-16 (torchvision's ``vgg16-397923af.pth``) is looked for at ``--vgg-weights`` /
``$I2S_VGG16``, then in the download cache, then in torch's hub cache. LPIPS-VGG needs it too,
plus the ``lpips`` project's calibration file (registry ``lpips-vgg``), looked for at the path
given, ``$I2S_LPIPS``, then in the download cache (``i2s models download lpips-vgg``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

from i2s.errors import I2SError
from i2s.get3d.tets import load_tet_grid
from i2s.media.files import sha256_file, write_text_atomic
from i2s.models.lpips import LPIPS, LPIPS_CHANNELS, lin_keys
from i2s.models.vgg16 import VGG16Features
from i2s.resources import i2s_home, package_path
from i2s.weights.convert import convert_file
from i2s.weights.download import cached_ok, download, offline, verify_file
from i2s.weights.generator_file import (
    is_safetensors,
    load_generator_file,
    read_generator_metadata,
)
from i2s.weights.registry import REGISTRY, ModelEntry, get_entry

log = logging.getLogger(__name__)


def converted_path(src: Path, sha256: str, overrides: dict | None = None) -> Path:
    """Where the conversion of ``src`` is cached (keyed by its SHA-256 and the settings given
    for it)."""
    tag = ""
    if overrides:
        text = json.dumps(overrides, sort_keys=True, default=str)
        tag = "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return i2s_home() / "converted" / f"{sha256[:16]}{tag}-{src.stem}.safetensors"


def packaged_path(entry: ModelEntry) -> Path:
    """A model file shipped inside the package (``i2s/data/``)."""
    return package_path("data", entry.filename)


def download_path(entry: ModelEntry) -> Path:
    """Where a registry file is downloaded to: ``$I2S_HOME/downloads/<file name>``."""
    return i2s_home() / "downloads" / entry.filename


def download_aliases(entry: ModelEntry) -> tuple[Path, ...]:
    """Other paths in the download folder that are taken as ``entry``'s file: its ``aliases``
    (names earlier versions of i2s used) and the server's own file name, where no other entry
    downloads a file of that name."""
    names = list(entry.aliases)
    for url in entry.urls:
        base = url.rsplit("/", 1)[-1]
        others = [e for e in REGISTRY.values() if e.name != entry.name and (
            e.filename == base or any(u.rsplit("/", 1)[-1] == base for u in e.urls))]
        if base and "?" not in base and base != entry.filename and not others:
            names.append(base)
    return tuple(download_path(entry).with_name(n) for n in dict.fromkeys(names))


def model_path(entry: ModelEntry) -> Path:
    if entry.packaged:
        return packaged_path(entry)
    return i2s_home() / "models" / f"{entry.name}.safetensors"


def fetch(name: str, quiet: bool = False) -> Path:
    """Download (or reuse) a registry file; for generators also convert it. Returns the file
    that is used at run time (the safetensors for generators)."""
    entry = get_entry(name)
    if entry.packaged:
        p = packaged_path(entry)
        if not p.is_file():
            raise I2SError(f"the '{name}' model is missing from this installation ({p}); "
                           "reinstall i2s, or make it with 'i2s train-demo'")
        return p
    if entry.kind == "generator" and model_path(entry).is_file() and \
            cached_ok(model_path(entry)):
        return model_path(entry)
    src = download(list(entry.urls), download_path(entry), entry.size, entry.sha256, quiet,
                   aliases=download_aliases(entry))
    if entry.kind != "generator":
        return src
    dst = model_path(entry)
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        convert_file(src, dst, dict(entry.config) or None)
    except I2SError as e:
        # A file that downloads completely but does not convert is not used again.
        src.unlink(missing_ok=True)
        src.with_name(src.name + ".sha256").unlink(missing_ok=True)
        raise I2SError(f"{entry.name}: downloaded file is not a usable checkpoint ({e})") \
            from None
    write_text_atomic(dst.with_name(dst.name + ".sha256"), sha256_file(dst) + "\n")
    return dst


def load_generator(model: str | os.PathLike, device: str | torch.device = "cpu",
                   config: dict | None = None) -> torch.nn.Module:
    """Load a generator by registry name, from an i2s file, or from a supported checkpoint.

    ``config``: settings an official checkpoint does not store, for converting it (GET3D:
    ``tet_res``, ``dmtet_scale``, ``image_resolution``, ``deformation_multiplier``; registry
    entries bring their own). Returns the generator in eval mode, frozen, with ``G.sha256``
    the digest of its weights and config (its identity: the same weights converted again are
    the same model), ``G.file_sha256`` that of the safetensors file it was loaded from and
    ``G.source`` the name or path given.
    """
    G = _load_generator(model, device, config or None)
    G.source = str(model)
    if getattr(G, "architecture", "") == "get3d":
        _use_official_tet_grid(G)
    return G


def _use_official_tet_grid(G) -> None:
    """GET3D models with a ``tet_res`` GET3D released a grid for make their meshes on that
    grid (fetched from the registry when a mesh is first needed): the official meshes."""
    name = f"get3d-tets-{G.cfg.tet_res}"
    if name in REGISTRY:
        scale = G.cfg.dmtet_scale
        G.set_tet_grid_loader(lambda: load_tet_grid(fetch(name), scale))


def _load_generator(model: str | os.PathLike, device: str | torch.device,
                    config: dict | None) -> torch.nn.Module:
    if isinstance(model, str) and model in REGISTRY:
        if config:
            raise I2SError(f"'{model}': a registry model brings its own settings")
        entry = REGISTRY[model]
        if entry.kind != "generator":
            raise I2SError(f"'{model}' is not a generator")
        G = load_generator_file(fetch(model), device)
        if entry.sha256 and not (G.file_sha256 or "").startswith(entry.sha256):
            raise I2SError(f"'{model}': file {fetch(model)} does not have the registered "
                           f"SHA-256 ({entry.sha256[:12]}...); reinstall i2s")
        return G
    p = Path(model)
    if not p.is_file():
        raise I2SError(f"model not found: {p} is neither a file nor a registry name "
                       "(see 'i2s models list')")
    if p.suffix == ".safetensors" or is_safetensors(p):
        if config:
            raise I2SError(f"{p}: an i2s file carries its own settings")
        return load_generator_file(p, device)
    return _load_converted(p, device, config)


def _load_converted(src: Path, device: str | torch.device,
                    config: dict | None = None) -> torch.nn.Module:
    """The cached conversion of checkpoint ``src`` (``$I2S_HOME/converted/``), converting it
    first when absent. A cached file that does not load (corrupt, truncated) or was converted
    from another source (its metadata records the source's SHA-256) is rebuilt from the
    source once, with a warning; the rebuilt file must then load and match."""
    digest = sha256_file(src)
    cached = converted_path(src, digest, config)
    if cached.is_file():
        try:
            recorded = read_generator_metadata(cached).get("source_sha256")
            if recorded == digest:
                return load_generator_file(cached, device)
            problem = (f"it was converted from another file (source SHA-256 "
                       f"{str(recorded)[:12]}..., not {digest[:12]}...)")
        except I2SError as e:
            problem = f"it does not load ({e})"
        log.warning("the cached conversion %s of %s is not usable: %s; converting %s again",
                    cached, src, problem, src.name)
    else:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise I2SError(f"cannot create the cache folder {cached.parent}: "
                           f"{e.strerror or e}") from None
    convert_file(src, cached, config)
    G = load_generator_file(cached, device)
    if read_generator_metadata(cached).get("source_sha256") != digest:
        raise I2SError(f"{cached}: the conversion of {src} does not record its SHA-256 "
                       "(the source changed while it was converted?)")
    return G


def default_vgg16_paths() -> list[Path]:
    """Where VGG-16's weights are looked for when no path is given, in order: the download
    cache (``i2s models download vgg16``), then torch's hub cache."""
    entry = get_entry("vgg16")
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    return [download_path(entry), torch_home / "hub" / "checkpoints" / entry.filename]


def _download_on_first_use(name: str, what: str, instead: str) -> Path:
    """``fetch(name)`` (verified, with a progress bar) for weights that are needed now and
    found nowhere; one I2SError line naming the file, where to put it and ``instead`` when
    offline (``I2S_OFFLINE``) or the download fails."""
    entry = get_entry(name)
    if offline():
        raise I2SError(f"{what} weights not found and i2s is offline "
                       f"(I2S_OFFLINE is set): download {entry.urls[0]} to "
                       f"{download_path(entry)}, {instead}")
    try:
        return fetch(name)
    except I2SError as e:
        raise I2SError(f"{e}; {instead}") from None


WITHOUT_VGG = "use --loss mse to embed without the perceptual loss"


def find_vgg16_weights(path: str | os.PathLike | None = None, download: bool = False,
                       instead: str = WITHOUT_VGG) -> Path:
    """The VGG-16 weights file to use: ``path``, else ``$I2S_VGG16``, else the default paths,
    else (with ``download``) torchvision's file downloaded into the cache on first use.
    ``instead``: how the calling command does without them, ending a not-found message."""
    entry = get_entry("vgg16")
    url = entry.urls[0]
    if path is None:
        path = os.environ.get("I2S_VGG16") or None
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise I2SError(f"VGG-16 weights not found at {p}; download {url} or {instead}")
        return p
    for p in default_vgg16_paths():
        if p.is_file():
            return p
    if download:
        return _download_on_first_use("vgg16", "VGG-16",
                                      f"pass --vgg-weights PATH, or {instead}")
    raise I2SError(f"VGG-16 weights not found; run 'i2s models download vgg16' (or download "
                   f"{url}, {entry.approx_mb} MB, to {default_vgg16_paths()[0]}) or pass "
                   f"--vgg-weights PATH, or {instead}")


def _torch_load_problem(e: Exception, what: str = "VGG-16 weights") -> str:
    """One line for a failed ``torch.load(weights_only=True)``. torch's own text runs to many
    lines and advises ``weights_only=False``, which would run code from the file: i2s never
    passes that advice on."""
    text = str(e)
    reason = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text \
        else text
    reason = " ".join(reason.split()).split(" Check the documentation")[0]
    if "Unsupported global" in reason:
        name = reason.split("Unsupported global:", 1)[1].split(" was not")[0].strip()
        return (f"not a plain state dict: it holds objects other than tensors ({name}), and "
                "i2s never runs code stored in a file")
    return f"cannot read {what} ({type(e).__name__}: {reason[:160]})"


def _read_state_dict(p: Path, what: str) -> dict:
    """A plain state dict from a torch file (``weights_only=True``, mapped to the CPU: the
    published LPIPS file holds CUDA storages); one-line I2SError naming ``what`` otherwise."""
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or foreign files
        raise I2SError(f"{p}: {_torch_load_problem(e, f'{what} weights')}") from None
    if not isinstance(state, dict):
        raise I2SError(f"{p}: not a {what} state dict ({type(state).__name__})")
    return state


def load_vgg16(path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
               download: bool = False, instead: str = WITHOUT_VGG) -> VGG16Features:
    """Load torchvision's VGG-16 checkpoint into :class:`VGG16Features` (eval, frozen);
    ``download``: fetch it on first use when it is nowhere; ``instead``: see
    :func:`find_vgg16_weights`."""
    p = find_vgg16_weights(path, download, instead)
    state = _read_state_dict(p, "VGG-16")
    unexpected = [k for k in state if not k.startswith(("features.", "classifier."))]
    if unexpected:
        raise I2SError(f"{p}: unexpected keys for torchvision VGG-16: {unexpected[:3]}")
    model = VGG16Features()
    feats = {k.removeprefix("features."): v for k, v in state.items()
             if k.startswith("features.")}
    try:
        model.features.load_state_dict(feats, strict=True)
    except RuntimeError as e:
        raise I2SError(f"{p}: not torchvision's VGG-16 layout "
                       f"({str(e).splitlines()[0]})") from None
    return model.eval().requires_grad_(False).to(device)


def find_lpips_weights(path: str | os.PathLike | None = None, download: bool = False) -> Path:
    """The LPIPS-VGG calibration file: ``path``, else ``$I2S_LPIPS``, else the download cache,
    else (with ``download``) the ``lpips`` project's file downloaded on first use."""
    entry = get_entry("lpips-vgg")
    if path is None:
        path = os.environ.get("I2S_LPIPS") or None
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise I2SError(f"LPIPS weights not found at {p}; download {entry.urls[0]}")
        return p
    p = download_path(entry)
    if p.is_file():
        try:  # 7 KB: checked against the registry's size and SHA-256 on every use
            verify_file(p, entry.size, entry.sha256)
        except I2SError as e:
            raise I2SError(f"{e}; delete it and run 'i2s models download lpips-vgg'") from None
        return p
    if download:
        return _download_on_first_use(
            "lpips-vgg", "LPIPS", "pass --lpips-weights PATH, or use another --loss")
    raise I2SError(f"LPIPS weights not found; run 'i2s models download lpips-vgg' (or download "
                   f"{entry.urls[0]} to {p})")


def read_lpips_lin(path: str | os.PathLike) -> list[torch.Tensor]:
    """The five [1, C, 1, 1] calibration weights of an ``lpips`` VGG file (``linK.model.1.weight``),
    checked: a plain state dict (read with ``weights_only=True``), those keys only at the
    right shapes, finite and non-negative."""
    p = Path(path)
    state = _read_state_dict(p, "LPIPS")
    keys = lin_keys()
    missing = [k for k in keys if k not in state]
    extra = [k for k in state if k not in keys]
    if missing or extra:
        raise I2SError(f"{p}: not an LPIPS-VGG weight file (missing keys {missing[:3]}, "
                       f"unexpected keys {[str(k) for k in extra[:3]]})")
    out = []
    for k, c in zip(keys, LPIPS_CHANNELS, strict=True):
        w = state[k]
        if not isinstance(w, torch.Tensor) or not w.is_floating_point():
            raise I2SError(f"{p}: {k} is not a floating-point tensor")
        if tuple(w.shape) != (1, c, 1, 1):
            raise I2SError(f"{p}: {k} has shape {tuple(w.shape)}, expected (1, {c}, 1, 1)")
        if not torch.isfinite(w).all():
            raise I2SError(f"{p}: {k} holds non-finite values")
        if (w < 0).any():
            raise I2SError(f"{p}: {k} holds negative weights (LPIPS weights are non-negative)")
        out.append(w.float())
    return out


def load_lpips(path: str | os.PathLike | None = None,
               vgg_path: str | os.PathLike | None = None,
               device: str | torch.device = "cpu") -> LPIPS:
    """LPIPS-VGG (eval, frozen) from the calibration file (``path``, see
    :func:`find_lpips_weights`) and torchvision's VGG-16 (``vgg_path``, see
    :func:`find_vgg16_weights`)."""
    lin = read_lpips_lin(find_lpips_weights(path))
    vgg = load_vgg16(vgg_path)
    return LPIPS(vgg, lin).eval().to(device)
