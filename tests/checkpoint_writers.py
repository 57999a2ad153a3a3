"""Write small checkpoints in the official formats, without NVIDIA's or rosinality's code.

Stand-in modules are registered under NVIDIA's module paths only while pickling, so that the
pickle stream names exactly the globals a real checkpoint names (``torch_utils.persistence.
_reconstruct_persistent_obj``, ``dnnlib.util.EasyDict``, ``dnnlib.tflib.network.Network``).
Weights come from an i2s generator through the inverse of each format's name mapping.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import pickle
import pickletools
import struct
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

MALICIOUS_SRC = "open({path!r}, 'w').write('pwned')"


def _placeholder(*args, **kwargs):
    raise RuntimeError("stand-in only: never called while writing")


@contextlib.contextmanager
def nvidia_module_names():
    """Register stand-ins for NVIDIA's modules (only names; nothing of theirs is used)."""
    persistence = types.ModuleType("torch_utils.persistence")
    fn = types.FunctionType(_placeholder.__code__, {}, "_reconstruct_persistent_obj")
    fn.__module__, fn.__qualname__ = "torch_utils.persistence", "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = fn
    util = types.ModuleType("dnnlib.util")
    easy = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    util.EasyDict = easy
    network = types.ModuleType("dnnlib.tflib.network")

    class Network:
        def __init__(self, state):
            self._state = state

        def __getstate__(self):
            return self._state

    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    network.Network = Network
    mods = {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
            "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util,
            "dnnlib.tflib": types.ModuleType("dnnlib.tflib"), "dnnlib.tflib.network": network}
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        yield types.SimpleNamespace(reconstruct=fn, EasyDict=easy, Network=Network)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


class _Persistent:
    """Pickles as NVIDIA's persistence objects do: (_reconstruct_persistent_obj, (meta,))."""

    def __init__(self, fn, meta):
        self._fn, self._meta = fn, meta

    def __reduce__(self):
        return (self._fn, (self._meta,))


def _persistent_tree(module: torch.nn.Module, names, class_name: str, init_kwargs, src: str):
    children = OrderedDict((n, _persistent_tree(m, names, type(m).__name__, {}, src))
                           for n, m in module.named_children())
    state = {
        "training": False,
        "_parameters": OrderedDict((n, torch.nn.Parameter(p.detach().clone(),
                                                          requires_grad=False))
                                   for n, p in module.named_parameters(recurse=False)),
        "_buffers": OrderedDict((n, b.detach().clone())
                                for n, b in module.named_buffers(recurse=False)),
        "_non_persistent_buffers_set": set(),
        "_modules": children,
        "_init_args": (),
        "_init_kwargs": names.EasyDict(init_kwargs),
    }
    meta = {"type": "class", "version": 6, "module_src": src, "class_name": class_name,
            "state": state}
    return _Persistent(names.reconstruct, meta)


def ada_init_kwargs(G, flat: bool = False) -> dict:
    """``G_ema``'s constructor arguments as stylegan2-ada-pytorch's train.py passes them
    (``mapping_kwargs`` and ``synthesis_kwargs`` nested); ``flat``: as the StyleGAN3
    repository's StyleGAN2 takes them (synthesis arguments at the top level)."""
    cfg = G.cfg
    synthesis = {"channel_base": cfg.channel_base, "channel_max": cfg.channel_max,
                 "num_fp16_res": 0, "conv_clamp": cfg.conv_clamp}
    kwargs = {"z_dim": cfg.z_dim, "c_dim": 0, "w_dim": cfg.w_dim,
              "img_resolution": cfg.resolution, "img_channels": cfg.img_channels,
              "mapping_kwargs": {"num_layers": cfg.mapping_layers}}
    if flat:
        return {**kwargs, **synthesis, "fused_modconv_default": "inference_only"}
    return {**kwargs, "synthesis_kwargs": synthesis}


def _module(class_name: str, **tensors: torch.Tensor) -> torch.nn.Module:
    """An empty module of a class named ``class_name``; ``tensors``: its parameters, or
    buffers when the name is ``p``, ``Hz_*`` or ends with ``_filter`` (as NVIDIA's)."""
    m = type(class_name, (torch.nn.Module,), {})()
    for name, t in tensors.items():
        if name == "p" or name.startswith("Hz_") or name.endswith("_filter"):
            m.register_buffer(name, t)
        else:
            m.register_parameter(name, torch.nn.Parameter(t, requires_grad=False))
    return m


def nvidia_discriminator(resolution: int, channels: int = 4, seed: int = 0
                         ) -> tuple[torch.nn.Module, dict]:
    """(module, constructor arguments) in the names of stylegan2-ada-pytorch's resnet
    ``Discriminator`` (``b{res}`` blocks with fromrgb/conv0/conv1/skip, the ``b4`` epilogue
    with mbstd/conv/fc/out), at tiny sizes: only its layout in a snapshot matters."""
    gen = torch.Generator().manual_seed(seed)
    c = channels
    fir = torch.full((4, 4), 1 / 16)

    def rnd(*shape):
        return torch.randn(shape, generator=gen)

    D = _module("Discriminator")
    r = resolution
    while r > 4:
        block = _module("DiscriminatorBlock")
        if r == resolution:
            block.fromrgb = _module("Conv2dLayer", weight=rnd(c, 3, 1, 1), bias=rnd(c))
        block.conv0 = _module("Conv2dLayer", weight=rnd(c, c, 3, 3), bias=rnd(c),
                              resample_filter=fir.clone())
        block.conv1 = _module("Conv2dLayer", weight=rnd(c, c, 3, 3), bias=rnd(c),
                              resample_filter=fir.clone())
        block.skip = _module("Conv2dLayer", weight=rnd(c, c, 1, 1), resample_filter=fir.clone())
        setattr(D, f"b{r}", block)
        r //= 2
    b4 = _module("DiscriminatorEpilogue")
    b4.mbstd = _module("MinibatchStdLayer")
    b4.conv = _module("Conv2dLayer", weight=rnd(c, c + 1, 3, 3), bias=rnd(c))
    b4.fc = _module("FullyConnectedLayer", weight=rnd(c, c * 16), bias=rnd(c))
    b4.out = _module("FullyConnectedLayer", weight=rnd(1, c), bias=rnd(1))
    D.b4 = b4
    kwargs = {"c_dim": 0, "img_resolution": resolution, "img_channels": 3,
              "architecture": "resnet", "channel_base": 16384, "channel_max": 512,
              "num_fp16_res": 4, "conv_clamp": 256, "cmap_dim": None, "block_kwargs": {},
              "mapping_kwargs": {}, "epilogue_kwargs": {"mbstd_group_size": 4}}
    return D, kwargs


def nvidia_augment_pipe(p: float = 0.3) -> tuple[torch.nn.Module, dict]:
    """(module, constructor arguments) laid out as stylegan2-ada-pytorch's ``AugmentPipe``
    ('bgc' pipeline): the probability ``p`` and the wavelet filter buffers."""
    gen = torch.Generator().manual_seed(0)
    pipe = _module("AugmentPipe", p=torch.tensor(p), Hz_geom=torch.randn(12, generator=gen),
                   Hz_fbank=torch.randn(4, 12, generator=gen))
    kwargs = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                  brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
    return pipe, kwargs


def write_ada_pickle(path, G, module_src: str = "# training/networks.py", extra_keys=None,
                     init_kwargs=None, protocol: int = 3, D=None, augment_pipe=None):
    """StyleGAN2-ADA layout: dict with G, D, G_ema, training_set_kwargs, augment_pipe.
    ``init_kwargs`` replaces G_ema's constructor arguments (default :func:`ada_init_kwargs`).
    ``D``, ``augment_pipe``: None (stored as None) or (module, constructor arguments, module
    source), stored as persistent objects of their own classes, as a training snapshot
    stores them (see :func:`nvidia_discriminator`, :func:`nvidia_augment_pipe`)."""
    cfg = G.cfg
    kwargs = ada_init_kwargs(G) if init_kwargs is None else init_kwargs

    def easy(d):
        return names.EasyDict({k: easy(v) if isinstance(v, dict) else v for k, v in d.items()})

    def other(spec):
        if spec is None:
            return None
        module, init, src = spec
        obj = _persistent_tree(module, names, type(module).__name__, {}, src)
        obj._meta["state"]["_init_kwargs"] = easy(init)
        return obj

    with nvidia_module_names() as names:
        g_ema = _persistent_tree(G, names, "Generator", {}, module_src)
        g_ema._meta["state"]["_init_kwargs"] = easy(kwargs)
        if extra_keys:
            g_ema._meta["state"]["_parameters"].update(extra_keys)
        data = {"G": g_ema, "D": other(D), "G_ema": g_ema,
                "training_set_kwargs": names.EasyDict(resolution=cfg.resolution),
                "augment_pipe": other(augment_pipe)}
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=protocol)


@contextlib.contextmanager
def storages_tagged(location: str = "cuda:0"):
    """While active, ``torch.save`` (and pickle, whose tensor records are ``torch.save``
    streams) tags every storage with ``location``, as it tags storages saved from that
    device; the data written is the same. For checkpoints saved from a GPU without one."""
    import torch.serialization as ts

    real = ts.location_tag
    ts.location_tag = lambda storage: location
    try:
        yield
    finally:
        ts.location_tag = real


def use_numpy1_names(path) -> int:
    """Rewrite the numpy globals of a protocol 0-3 pickle file to numpy 1's module names
    (``numpy.core.multiarray._reconstruct``, ``numpy.core.multiarray.scalar``), as every file
    written before numpy 2 names them. Returns how many globals were renamed."""
    p = Path(path)
    data = p.read_bytes()
    parts, last, n = [], 0, 0
    for op, arg, pos in pickletools.genops(data):
        if op.name in ("STACK_GLOBAL", "FRAME"):
            raise ValueError("only protocol 0-3 pickles (GLOBAL opcodes) can be rewritten")
        if op.name == "GLOBAL" and arg.startswith("numpy._core."):
            module, name = arg.split(" ")
            parts += [data[last:pos], op_global("numpy.core." + module[len("numpy._core."):],
                                                name)]
            last = pos + 1 + len(module) + 1 + len(name) + 1
            n += 1
    p.write_bytes(b"".join(parts) + data[last:])
    return n


def tf_variables_from_i2s(G) -> tuple[dict, dict, dict]:
    """Inverse of the TF StyleGAN2 name mapping: (mapping, synthesis, Gs own) variables."""
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in G.state_dict().items()}

    def conv(w, flip=False):
        t = w.transpose(2, 3, 1, 0)  # [out, in, k, k] -> [k, k, in, out]
        return np.ascontiguousarray(t[::-1, ::-1] if flip else t)

    mapping = {}
    for i in range(G.cfg.mapping_layers):
        mapping[f"Dense{i}/weight"] = np.ascontiguousarray(sd[f"mapping.fc{i}.weight"].T)
        mapping[f"Dense{i}/bias"] = sd[f"mapping.fc{i}.bias"]
    synth = {"4x4/Const/const": sd["synthesis.b4.const"][None]}

    def modconv(scope, prefix, flip=False, noise=None):
        synth[f"{scope}/weight"] = conv(sd[f"{prefix}.weight"], flip)
        synth[f"{scope}/mod_weight"] = np.ascontiguousarray(sd[f"{prefix}.affine.weight"].T)
        synth[f"{scope}/mod_bias"] = sd[f"{prefix}.affine.bias"] - 1.0
        synth[f"{scope}/bias"] = sd[f"{prefix}.bias"]
        if noise is not None:
            synth[f"{scope}/noise_strength"] = sd[f"{prefix}.noise_strength"]
            synth[noise] = sd[f"{prefix}.noise_const"][None, None]

    for r in G.cfg.block_resolutions:
        b = f"synthesis.b{r}"
        if r == 4:
            modconv("4x4/Conv", f"{b}.conv1", noise="noise0")
        else:
            n = 2 * int(math.log2(r))
            modconv(f"{r}x{r}/Conv0_up", f"{b}.conv0", flip=True, noise=f"noise{n - 5}")
            modconv(f"{r}x{r}/Conv1", f"{b}.conv1", noise=f"noise{n - 4}")
        modconv(f"{r}x{r}/ToRGB", f"{b}.torgb")
    return mapping, synth, {"dlatent_avg": sd["mapping.w_avg"]}


def write_tf_pickle(path, mapping, synth, own, version=4, build_module_src="# networks",
                    fmap_base=None, synthesis_kwargs=None, protocol: int = 3):
    def net(names, name, variables, func, components=None, kwargs=None):
        return names.Network({
            "version": version, "name": name, "static_kwargs": kwargs or {},
            "components": components or {}, "build_module_src": build_module_src,
            "build_func_name": func, "variables": list(variables.items())})

    with nvidia_module_names() as names:
        skw = dict(synthesis_kwargs or {})
        if fmap_base is not None:
            skw["fmap_base"] = fmap_base
        m = net(names, "G_mapping", mapping, "G_mapping")
        s = net(names, "G_synthesis", synth,
                "G_synthesis_stylegan2" if version == 4 else "G_synthesis", kwargs=skw)
        gs = net(names, "Gs", own, "G_main" if version == 4 else "G_style",
                 components={"mapping": m, "synthesis": s})
        d = net(names, "D", {}, "D_stylegan2")
        with open(path, "wb") as f:
            pickle.dump((gs, d, gs), f, protocol=protocol)


def write_tf_ada_pickle(path, G, conv_clamp=256, num_fp16_res=4, static_kwargs=None,
                        build_module_src="# training/networks.py", protocol: int = 3):
    """A StyleGAN2-ADA TensorFlow pickle (NVlabs/stylegan2-ada) in its exact layout:
    ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` states of version 5 (which add
    input/output shapes and names). Its train.py builds G from the dataset's
    num_channels/resolution/label_size and G_args (fmap_base, fmap_max, mapping_layers,
    num_fp16_res 4 and conv_clamp 256 for mixed precision); G_main passes those kwargs on to
    both components (G_mapping also gets dlatent_broadcast). The synthesis function is named
    ``G_synthesis``, as StyleGAN v1's; variables are StyleGAN2's, Gs owns only dlatent_avg."""
    cfg = G.cfg
    mapping, synth, own = tf_variables_from_i2s(G)
    kwargs = {"num_channels": cfg.img_channels, "resolution": cfg.resolution,
              "label_size": 0, "fmap_base": cfg.channel_base // 2,
              "fmap_max": cfg.channel_max, "mapping_layers": cfg.mapping_layers,
              "num_fp16_res": num_fp16_res, "conv_clamp": conv_clamp, **(static_kwargs or {})}
    res, num_ws, w_dim, z_dim = cfg.resolution, cfg.num_ws, cfg.w_dim, cfg.z_dim

    def net(names, name, variables, func, kw, inputs, outputs, components=None):
        return names.Network({
            "version": 5, "name": name, "static_kwargs": dict(kw),
            "components": components or {}, "build_module_src": build_module_src,
            "build_func_name": func, "variables": list(variables.items()),
            "input_shapes": [shape for _, shape in inputs],
            "output_shapes": [shape for _, shape in outputs],
            "input_names": [n for n, _ in inputs], "output_names": [n for n, _ in outputs]})

    with nvidia_module_names() as names:
        def generator(name):
            m = net(names, "G_mapping", mapping, "G_mapping",
                    {**kwargs, "dlatent_broadcast": num_ws},
                    [("latents_in", [None, z_dim]), ("labels_in", [None, 0])],
                    [("dlatents_out", [None, num_ws, w_dim])])
            s = net(names, "G_synthesis", synth, "G_synthesis", kwargs,
                    [("dlatents_in", [None, num_ws, w_dim])],
                    [("images_out", [None, cfg.img_channels, res, res])])
            return net(names, name, own, "G_main", kwargs,
                       [("latents_in", [None, z_dim]), ("labels_in", [None, 0])],
                       [("images_out", [None, cfg.img_channels, res, res])],
                       components={"mapping": m, "synthesis": s})

        d = net(names, "D", {}, "D_main", kwargs,
                [("images_in", [None, cfg.img_channels, res, res]), ("labels_in", [None, 0])],
                [("scores_out", [None, 1])])
        with open(path, "wb") as f:
            pickle.dump((generator("G"), d, generator("Gs")), f, protocol=protocol)


def rosinality_state_from_i2s(G) -> dict:
    """Inverse of the rosinality name mapping (g_ema state dict)."""
    sd = {k: v.detach().clone() for k, v in G.state_dict().items()}
    out = {}
    for i in range(G.cfg.mapping_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"][None]
    kern = torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 3, 3, 1]))
    kern = kern / kern.sum()

    def modconv(name, prefix, noise=None, rgb=False, up=False):
        out[f"{name}.conv.weight"] = sd[f"{prefix}.weight"][None]
        out[f"{name}.conv.modulation.weight"] = sd[f"{prefix}.affine.weight"]
        out[f"{name}.conv.modulation.bias"] = sd[f"{prefix}.affine.bias"]
        if rgb:
            out[f"{name}.bias"] = sd[f"{prefix}.bias"].reshape(1, -1, 1, 1)
        else:
            out[f"{name}.activate.bias"] = sd[f"{prefix}.bias"]
            out[f"{name}.noise.weight"] = sd[f"{prefix}.noise_strength"].reshape(1)
            out[noise] = sd[f"{prefix}.noise_const"][None, None]
        if up:
            out[f"{name}.conv.blur.kernel"] = kern * 4

    modconv("conv1", "synthesis.b4.conv1", "noises.noise_0")
    modconv("to_rgb1", "synthesis.b4.torgb", rgb=True)
    for k, r in enumerate(G.cfg.block_resolutions[1:]):
        b = f"synthesis.b{r}"
        modconv(f"convs.{2 * k}", f"{b}.conv0", f"noises.noise_{2 * k + 1}", up=True)
        modconv(f"convs.{2 * k + 1}", f"{b}.conv1", f"noises.noise_{2 * k + 2}")
        modconv(f"to_rgbs.{k}", f"{b}.torgb", rgb=True)
        out[f"to_rgbs.{k}.upsample.kernel"] = kern * 4
    return out


def write_rosinality(path, G, legacy: bool = False, layout: str = "convert_weight"):
    """A rosinality checkpoint; ``legacy`` writes torch's pre-1.6 (non-zip) format.

    ``layout``: "convert_weight" (its convert_weight.py: g_ema and latent_avg, here also args)
    or "train" (its train.py: g, d, g_ema, g_optim, d_optim, args, ada_aug_p; no latent_avg)."""
    g_ema = rosinality_state_from_i2s(G)
    args = argparse.Namespace(size=G.resolution, n_mlp=G.cfg.mapping_layers)
    if layout == "convert_weight":
        ckpt = {"g_ema": g_ema, "latent_avg": G.w_avg.clone(), "args": args}
    else:
        d = {"convs.0.0.weight": torch.randn(8, 3, 1, 1), "convs.0.1.bias": torch.zeros(8),
             "final_linear.1.weight": torch.randn(1, 8)}

        def optim(state):
            return {"state": {i: {"step": torch.tensor(10.0), "exp_avg": torch.zeros_like(v),
                                  "exp_avg_sq": torch.zeros_like(v)}
                              for i, v in enumerate(state.values())},
                    "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "eps": 1e-8,
                                      "weight_decay": 0, "amsgrad": False,
                                      "params": list(range(len(state)))}]}

        g = {k: v.clone() for k, v in g_ema.items()}
        ckpt = {"g": g, "d": d, "g_ema": g_ema, "g_optim": optim(g), "d_optim": optim(d),
                "args": args, "ada_aug_p": 0.0}
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)


def random_tf_stylegan1(resolution=128, fmap_base=256, fmap_max=8, dim=8, mapping_layers=2,
                        seed=0) -> tuple[dict, dict, dict, dict]:
    """Random variables of a StyleGAN (v1) TF network in NVIDIA's names and layouts, plus
    the synthesis static kwargs. Progressive-growing extras (ToRGB_lod{k>0}, lod) included."""
    rng = np.random.default_rng(seed)

    def rnd(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def nf(r):
        return min(2 * fmap_base // r, fmap_max)

    mapping = {}
    for i in range(mapping_layers):
        mapping[f"Dense{i}/weight"] = rnd(dim, dim, scale=100.0)  # stored at 1 / lrmul scale
        mapping[f"Dense{i}/bias"] = rnd(dim, scale=10.0)
    synth = {"lod": np.float32(0.0), "4x4/Const/const": rnd(1, nf(4), 4, 4)}
    res_list = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
    for r in res_list:
        scopes = ["4x4/Const", "4x4/Conv"] if r == 4 else [f"{r}x{r}/Conv0_up", f"{r}x{r}/Conv1"]
        n = 2 * (int(math.log2(r)) - 2)
        for j, scope in enumerate(scopes):
            c_in = nf(r) if (r == 4 or j == 1) else nf(r // 2)
            if scope != "4x4/Const":
                synth[f"{scope}/weight"] = rnd(3, 3, c_in, nf(r))
            synth[f"{scope}/Noise/weight"] = rnd(nf(r), scale=0.3)
            synth[f"{scope}/bias"] = rnd(nf(r), scale=0.3)
            synth[f"{scope}/StyleMod/weight"] = rnd(dim, 2 * nf(r))
            synth[f"{scope}/StyleMod/bias"] = rnd(2 * nf(r), scale=0.3)
            synth[f"noise{n + j}"] = rnd(1, 1, r, r)
    for lod, r in enumerate(reversed(res_list)):
        synth[f"ToRGB_lod{lod}/weight"] = rnd(1, 1, nf(r), 3)
        synth[f"ToRGB_lod{lod}/bias"] = rnd(3, scale=0.1)
    own = {"dlatent_avg": rnd(dim, scale=0.5), "lod": np.float32(0.0)}
    return mapping, synth, own, {"fmap_base": fmap_base, "fmap_max": fmap_max}


# --- pickle streams written opcode by opcode (hostile inputs) --------------------------------


def op_global(module: str, name: str) -> bytes:
    """GLOBAL: push ``module.name`` (resolved by the unpickler's find_class)."""
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def op_stack_global(module: str, name: str) -> bytes:
    """STACK_GLOBAL (protocol 4): the same, with the names pushed as strings first."""
    return op_str(module) + op_str(name) + pickle.STACK_GLOBAL


def op_str(s: str) -> bytes:
    b = s.encode("utf-8", "surrogatepass")
    return pickle.BINUNICODE + struct.pack("<I", len(b)) + b


def op_bytes(b: bytes) -> bytes:
    return pickle.BINBYTES + struct.pack("<I", len(b)) + b


def op_int(n: int) -> bytes:
    if -2**31 <= n < 2**31:
        return pickle.BININT + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return pickle.LONG1 + bytes([len(raw)]) + raw


def op_tuple(*items: bytes) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def op_call(func: bytes, *args: bytes) -> bytes:
    """REDUCE: ``func(*args)``."""
    return func + op_tuple(*args) + pickle.REDUCE


def op_build(obj: bytes, state: bytes) -> bytes:
    return obj + state + pickle.BUILD


def pickle_stream(*parts: bytes, proto: int = 3) -> bytes:
    return pickle.PROTO + bytes([proto]) + b"".join(parts) + pickle.STOP


def storage_record(data: bytes, numel: int, dtype_name: str = "FloatStorage",
                   count: int | None = None) -> bytes:
    """What ``TypedStorage.__reduce__`` stores for ``torch.storage._load_from_bytes``: torch's
    legacy save of one storage (magic number, protocol 1001, system info, a persistent id
    ('storage', type, key, 'cpu', numel, None), the key list, then the element count and the
    raw data), with ``numel`` (and the stored ``count``) free to lie about ``data``."""
    info = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}
    main = pickle_stream(op_tuple(op_str("storage"), op_global("torch", dtype_name),
                                  op_str("0"), op_str("cpu"), op_int(numel), pickle.NONE)
                         + pickle.BINPERSID, proto=2)
    return (pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
            + pickle.dumps(info, protocol=2) + main + pickle.dumps(["0"], protocol=2)
            + struct.pack("<q", numel if count is None else count) + data)
