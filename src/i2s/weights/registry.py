"""Named pretrained models: where to get them, what they are, under which licence.

Sizes and SHA-256 digests of NVIDIA's files are not published with them and could not be
checked from this project's machines, so they are ``None`` here. Those downloads are
verified against the server's Content-Length, and by a successful conversion. The digest
measured at download is recorded beside the file and checked on every later use. VGG-16's
file name carries the first 8 hex digits of its SHA-256, which is verified.
"""

from __future__ import annotations

from dataclasses import dataclass

from i2s.errors import I2SError
from i2s.weights.download import gdrive_url

CC_BY_NC = "CC BY-NC 4.0 (NVIDIA)"
NVIDIA_NC = "NVIDIA Source Code License-NC (non-commercial)"
ADA = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
CC_BY_NC_SA = "CC BY-NC-SA 4.0 (NVIDIA; GET3D checkpoints)"
GET3D_HF = "https://huggingface.co/JunGaoNVIDIA/get3d-ckpt/resolve/main/"
GET3D_GITHUB = "https://raw.githubusercontent.com/nv-tlabs/GET3D/master/"
# GET3D's official tetrahedral grids: tet_res, bytes, SHA-256 (measured on the repository).
GET3D_TETS = (
    (64, 949928, "49b3c1ef9408f507a13c393010271442824b21a63d3d87706d6fe1b1a80556ce"),
    (70, 1303171, "0bb8902e8c2ad48da75742005d235c2572682e40e003cc3c967d868d1f9976e3"),
    (80, 1938278, "1e284975466f4f8a47137844bc5fe9ac8bdc4d36cd7cef2f94ae20844b4b84b7"),
    (90, 2793045, "21db3f84be612622f938f122b673dbc1a2a1918ea38c716a6068efc85db3e2ed"),
    (100, 3827921, "bf75e8c5270cf85e13183b4adf237efd1a1f5b8d420752b2580888a630e6481c"),
)
# The TensorFlow release of StyleGAN2-ADA (NVlabs/stylegan2-ada README, "pretrained"): the
# same networks as TF pickles (Network version 5). cifar10.pkl is class-conditional: not listed.
ADA_TF = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada/pretrained/"
# The lpips project's VGG calibration (v0.1); size and SHA-256 measured on the repository's file.
E4E = ("https://raw.githubusercontent.com/omertov/encoder4editing/main/editings/"
       "interfacegan_directions/")
# Sizes and SHA-256 of the published direction files, measured on the files in snapshots of
# genforce/interfacegan (commit 8da3fc0) and omertov/encoder4editing (commit 99ea505); the
# downloads are checked against them.
INTERFACEGAN_FILES = (
    ("age", "age", "f92c72c6621fd9630a2100168462a15a531bee410099847fdcdf844159eb7e30"),
    ("eyeglasses", "eyeglasses",
     "ac826235cc7347eb1f57ba9e6e2904e52f34a6052a4db03dc693648a4f231cc5"),
    ("gender", "gender", "077953b129bbb52605b3391d4824938c9ded35337f60d282478c72dcc3c5c28f"),
    ("pose", "head pose (yaw)",
     "688585cf4d2bc3eead7bc18b4cf6e0985a0beb8a5ed46f25a08b2925d33efc1a"),
    ("smile", "smile", "5a729c200c2c933806116cb77624ccedbd6fce21aa98fca8be49aeaa35caa1c7"),
)
E4E_FILES = (
    ("age", "[1, 512]", 2808, "50074516b1629707d89b5e43d6b8abd1792212fa3b961a87a11323d6a5222ae0"),
    ("smile", "[1, 512]", 2808,
     "817a7e732b59dee9eba862bec8bd7e8373568443bc9f9731a21cf9b0356f0653"),
    ("pose", "[1, 18, 512] (one vector per style input, all equal)", 37624,
     "736e0eacc8488fa0b020a2e7bd256b957284c364191dfea693705e5d06d43e7d"),
)
E4E_PCA = ("https://raw.githubusercontent.com/omertov/encoder4editing/main/editings/"
           "ganspace_pca/")
INTERFACEGAN = "https://raw.githubusercontent.com/genforce/interfacegan/master/boundaries/"
LPIPS_URL = ("https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/"
             "v0.1/vgg.pth")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str                     # "generator", "vgg16", "lpips", "tet-grid", "direction"
    #                               or "direction-set"
    architecture: str             # "stylegan1", "stylegan2", "vgg16"
    resolution: int | None
    filename: str
    urls: tuple[str, ...]
    licence: str
    description: str
    size: int | None = None       # exact bytes, where known
    approx_mb: int | None = None  # for display when the exact size is unknown
    sha256: str | None = None     # full digest or a prefix, where known
    packaged: bool = False        # ships inside the i2s package (src/i2s/data/), no download
    # Feature networks only: the input they were trained on (RGB in [0, 1], normalised with
    # mean/std per channel, input_size x input_size images).
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    input_size: int | None = None
    # Settings the checkpoint does not store (GET3D's tet_res, dmtet_scale, ...), as pairs.
    config: tuple[tuple[str, object], ...] = ()
    # Other names the downloaded file is accepted under in the download folder (names that
    # earlier versions of i2s used), renamed to ``filename`` when found.
    aliases: tuple[str, ...] = ()
    # Directions only: the registry model they were found for.
    for_model: str | None = None


def _ada_tf(dataset, res, desc):
    return ModelEntry(f"stylegan2-ada-tf-{dataset}-{res}", "generator", "stylegan2", res,
                      f"ada-tf-{dataset}.pkl", (ADA_TF + f"{dataset}.pkl",), NVIDIA_NC,
                      f"{desc} (StyleGAN2-ADA TensorFlow release)")


def _v1(name, res, gid, fname, desc, mb=None):
    return ModelEntry(name, "generator", "stylegan1", res, fname, (gdrive_url(gid),), CC_BY_NC,
                      desc, approx_mb=mb)


DEMO_LICENCE = ("MIT (i2s); distilled from the DigiFace DCGAN of gan-face-generate 1.1.1, "
                "MIT (c) 2023 Chien Liu")

DEMO_3D_LICENCE = ("MIT (i2s); distilled from i2s's own procedural furniture family "
                   "(i2s.demo.furniture), no external data")

REGISTRY: dict[str, ModelEntry] = {e.name: e for e in [
    ModelEntry("demo", "generator", "stylegan2", 64, "demo.safetensors", (), DEMO_LICENCE,
               "64 px synthetic faces, a small StyleGAN2 trained by i2s train-demo (ships with "
               "i2s; the offline default)", size=13726064,
               sha256="94021ea3bb4f1e4c9aef318e3f9a25f202d029e64512dfcb42d90cfd271f63e4",
               packaged=True),
    ModelEntry("demo-3d", "generator", "get3d", 256, "demo-3d.safetensors", (), DEMO_3D_LICENCE,
               "procedural furniture (tables, stools, chairs, benches), a small GET3D trained by "
               "i2s train-demo-3d (ships with i2s; the offline default of the 3D commands)",
               size=3411944,
               sha256="3ee7dd93c781188864d3804cdc6dcf4ec4f65644f13890474cb8a90ff8bec176",
               packaged=True),
    _v1("stylegan-ffhq-1024", 1024, "1MEGjdvVpUsu1jB4zrXZN7Y4kBBOzizDQ",
        "karras2019stylegan-ffhq-1024x1024.pkl",
        "StyleGAN (v1) FFHQ faces, the Image2StyleGAN paper's model", 310),
    _v1("stylegan-celebahq-1024", 1024, "1MGqJl28pN4t7SAtSrPdSRJSQJqahkzUf",
        "karras2019stylegan-celebahq-1024x1024.pkl", "StyleGAN (v1) CelebA-HQ faces", 310),
    _v1("stylegan-bedrooms-256", 256, "1MOSKeGF0FJcivpBI7s63V9YHloUTORiF",
        "karras2019stylegan-bedrooms-256x256.pkl", "StyleGAN (v1) LSUN bedrooms"),
    _v1("stylegan-cars-512", 512, "1MJ6iCfNtMIRicihwRorsM3b7mmtmK9c3",
        "karras2019stylegan-cars-512x384.pkl",
        "StyleGAN (v1) LSUN cars: 512x384 content in a 512x512 frame"),
    _v1("stylegan-cats-256", 256, "1MQywl0FNt6lHu8E_EUqnRbviagS7fbiJ",
        "karras2019stylegan-cats-256x256.pkl", "StyleGAN (v1) LSUN cats"),
    ModelEntry("stylegan2-ffhq-1024", "generator", "stylegan2", 1024,
               "stylegan2-ffhq-config-f.pkl",
               ("https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl",
                "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/"
                "files/stylegan2-ffhq-1024x1024.pkl"),
               CC_BY_NC, "StyleGAN2 config-f FFHQ faces (TF pickle; NGC mirror in PyTorch format)"),
    ModelEntry("stylegan2-ada-ffhq-1024", "generator", "stylegan2", 1024, "ffhq.pkl",
               (ADA + "ffhq.pkl",), NVIDIA_NC, "StyleGAN2-ADA FFHQ faces",
               aliases=("ada-ffhq.pkl",)),
    ModelEntry("stylegan2-ada-metfaces-1024", "generator", "stylegan2", 1024, "metfaces.pkl",
               (ADA + "metfaces.pkl",), NVIDIA_NC, "StyleGAN2-ADA MetFaces (portrait art)",
               aliases=("ada-metfaces.pkl",)),
    ModelEntry("stylegan2-ada-afhqcat-512", "generator", "stylegan2", 512, "afhqcat.pkl",
               (ADA + "afhqcat.pkl",), NVIDIA_NC, "StyleGAN2-ADA AFHQ cats",
               aliases=("ada-afhqcat.pkl",)),
    ModelEntry("stylegan2-ada-afhqdog-512", "generator", "stylegan2", 512, "afhqdog.pkl",
               (ADA + "afhqdog.pkl",), NVIDIA_NC, "StyleGAN2-ADA AFHQ dogs",
               aliases=("ada-afhqdog.pkl",)),
    ModelEntry("stylegan2-ada-afhqwild-512", "generator", "stylegan2", 512, "afhqwild.pkl",
               (ADA + "afhqwild.pkl",), NVIDIA_NC, "StyleGAN2-ADA AFHQ wild animals",
               aliases=("ada-afhqwild.pkl",)),
    _ada_tf("ffhq", 1024, "FFHQ faces, trained with the original StyleGAN2"),
    _ada_tf("metfaces", 1024, "MetFaces (portrait art), transfer learning from FFHQ with ADA"),
    _ada_tf("afhqcat", 512, "AFHQ cats, trained from scratch with ADA"),
    _ada_tf("afhqdog", 512, "AFHQ dogs, trained from scratch with ADA"),
    _ada_tf("afhqwild", 512, "AFHQ wild animals, trained from scratch with ADA"),
    _ada_tf("brecahad", 512, "BreCaHAD (breast cancer histopathology), trained from scratch "
            "with ADA"),
    *[ModelEntry(f"get3d-shapenet-{cls}", "generator", "get3d", 1024, f"shapenet_{cls}.pt",
                 (f"{GET3D_HF}shapenet_{cls}.pt",), CC_BY_NC_SA,
                 f"GET3D ShapeNet {cls}s: textured 3D meshes (geometry and texture latents); "
                 f"released config, dmtet_scale {scale}", approx_mb=None,
                 config=(("dmtet_scale", scale), ("tet_res", 90), ("image_resolution", 1024)))
      for cls, scale in (("car", 1.0), ("chair", 0.8), ("motorbike", 1.0), ("table", 0.8))],
    *[ModelEntry(f"get3d-tets-{res}", "tet-grid", "get3d", None, f"{res}_compress.npz",
                 (f"{GET3D_GITHUB}data/tets/{res}_compress.npz",), NVIDIA_NC,
                 f"GET3D's tetrahedral grid at tet_res {res} (what its checkpoints were trained "
                 "on; fetched when a mesh is first made)", size=size, sha256=sha)
      for res, size, sha in GET3D_TETS],
    *[ModelEntry(f"interfacegan-ffhq-{attr}", "direction", "stylegan1", 1024,
                 f"stylegan_ffhq_{attr}_w_boundary.npy", (f"{INTERFACEGAN}stylegan_ffhq_{attr}"
                                                          "_w_boundary.npy",),
                 "MIT (InterFaceGAN, (c) 2019 Yujun Shen, Jinjin Gu, Xiaoou Tang, Bolei Zhou)",
                 f"InterFaceGAN's {what} boundary (unit normal, W space, [1, 512]) for the "
                 "paper's model; i2s edit --direction " + attr,
                 size=4224, sha256=sha, for_model="stylegan-ffhq-1024")
      for attr, what, sha in INTERFACEGAN_FILES],
    *[ModelEntry(f"e4e-ffhq-{attr}", "direction", "stylegan2", 1024, f"e4e-{attr}.pt",
                 (f"{E4E}{attr}.pt",),
                 "MIT (encoder4editing, (c) 2021 omertov)",
                 f"e4e's InterFaceGAN {attr} direction for StyleGAN2 config-f FFHQ (W, a "
                 f"{shape} torch tensor); i2s edit --direction {attr}", size=size, sha256=sha,
                 for_model="stylegan2-ffhq-1024")
      for attr, shape, size, sha in E4E_FILES],
    # size and SHA-256 measured as for E4E_FILES
    ModelEntry("e4e-ffhq-ganspace", "direction-set", "stylegan2", 1024, "e4e-ffhq_pca.pt",
               (f"{E4E_PCA}ffhq_pca.pt",), "MIT (encoder4editing, (c) 2021 omertov)",
               "e4e's GANSpace PCA of W for StyleGAN2 config-f FFHQ (80 components: comp "
               "[80, 1, 512], std [80], mean [1, 512]); i2s edit --direction "
               "e4e-ffhq-ganspace:K", size=167562,
               sha256="4d7f9df1c96180d9026b9cb8d04753579fbf385f321a9d0e263641601c5e5d36",
               for_model="stylegan2-ffhq-1024"),
    ModelEntry("vgg16", "vgg16", "vgg16", None, "vgg16-397923af.pth",
               ("https://download.pytorch.org/models/vgg16-397923af.pth",),
               "BSD-3-Clause (torchvision); trained on ImageNet, whose terms of use apply",
               "torchvision's ImageNet VGG-16, for the paper's perceptual loss", approx_mb=528,
               sha256="397923af", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
               input_size=224),
    ModelEntry("lpips-vgg", "lpips", "vgg16", None, "lpips-vgg-v0.1.pth", (LPIPS_URL,),
               "BSD-2-Clause (lpips, (c) 2018 Richard Zhang, Phillip Isola, Alexei A. Efros, "
               "Eli Shechtman, Oliver Wang)",
               "LPIPS v0.1 linear calibration of VGG-16's features (5 non-negative per-channel "
               "weight vectors); used with the vgg16 entry", size=7289,
               sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868"),
]}


def get_entry(name: str) -> ModelEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise I2SError(f"unknown model '{name}'; known: {', '.join(REGISTRY)}") from None
