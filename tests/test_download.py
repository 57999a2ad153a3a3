"""Downloads and the registry cache, with the network mocked."""

import hashlib
import io
import pickle

import pytest
import torch

import i2s
from i2s.weights import download as dl
from i2s.weights import registry
from i2s.weights.load import fetch
from tests.checkpoint_writers import write_ada_pickle
from tests.conftest import make_generator


class FakeResponse:
    def __init__(self, body: bytes, content_type="application/octet-stream", length=None):
        self._buf = io.BytesIO(body)
        n = len(body) if length is None else length
        self.headers = {"Content-Type": content_type, "Content-Length": str(n)}

    def read(self, n=-1):
        return self._buf.read(n)

    def close(self):
        pass


@pytest.fixture
def net(monkeypatch, tmp_path):
    """A fake internet: url -> FakeResponse factory; records requested URLs."""
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("I2S_OFFLINE", raising=False)
    routes, seen = {}, []

    def urlopen(req, timeout=None):
        url = req.full_url
        seen.append(url)
        for prefix, make in routes.items():
            if url.startswith(prefix):
                return make()
        raise dl.urllib.error.URLError("no route (mocked network)")

    monkeypatch.setattr(dl, "_urlopen", urlopen)
    return routes, seen


def test_good_file_then_cache(net, tmp_path):
    routes, seen = net
    body = b"x" * 3_000_000
    routes["https://example.org/f.bin"] = lambda: FakeResponse(body)
    dest = tmp_path / "home" / "f.bin"
    sha = hashlib.sha256(body).hexdigest()
    assert dl.download(["https://example.org/f.bin"], dest, len(body), sha, quiet=True) == dest
    assert dest.read_bytes() == body
    assert (tmp_path / "home" / "f.bin.sha256").read_text().strip() == sha
    routes.clear()  # no network now: the cache must be used
    assert dl.download(["https://example.org/f.bin"], dest, len(body), sha, quiet=True) == dest
    assert len(seen) == 1


@pytest.mark.parametrize("case", ["hash", "size", "truncated"])
def test_bad_downloads_are_never_used(net, tmp_path, case):
    routes, _ = net
    body = b"y" * 1000
    routes["https://example.org/"] = {
        "hash": lambda: FakeResponse(body),
        "size": lambda: FakeResponse(body),
        "truncated": lambda: FakeResponse(body, length=5000),
    }[case]
    dest = tmp_path / "home" / "g.bin"
    size = 999 if case == "size" else None
    sha = "00ff" if case == "hash" else None
    with pytest.raises(i2s.I2SError) as e:
        dl.download(["https://example.org/g.bin"], dest, size, sha, quiet=True)
    assert {"hash": "SHA-256", "size": "size", "truncated": "truncated"}[case] in str(e.value)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))


def test_corrupted_cache_is_fetched_again(net, tmp_path):
    routes, seen = net
    body = b"z" * 100
    routes["https://example.org/"] = lambda: FakeResponse(body)
    dest = tmp_path / "home" / "h.bin"
    dl.download(["https://example.org/h.bin"], dest, quiet=True)
    dest.write_bytes(b"z" * 50)  # damaged after download
    dl.download(["https://example.org/h.bin"], dest, quiet=True)
    assert dest.read_bytes() == body and len(seen) == 2


def test_offline_message(net, tmp_path, monkeypatch):
    _, seen = net
    monkeypatch.setenv("I2S_OFFLINE", "1")
    dest = tmp_path / "home" / "m.pkl"
    with pytest.raises(i2s.I2SError) as e:
        dl.download(["https://example.org/m.pkl"], dest)
    msg = str(e.value)
    assert "https://example.org/m.pkl" in msg and str(dest) in msg and "\n" not in msg
    assert seen == []


def test_file_placed_by_hand_is_accepted(net, tmp_path, monkeypatch):
    monkeypatch.setenv("I2S_OFFLINE", "1")
    dest = tmp_path / "home" / "n.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"abc")
    sha = hashlib.sha256(b"abc").hexdigest()
    assert dl.download(["https://example.org/n.bin"], dest, 3, sha[:8]) == dest
    dest.write_bytes(b"abd")
    (dest.parent / "n.bin.sha256").unlink()
    with pytest.raises(i2s.I2SError, match="SHA-256"):
        dl.download(["https://example.org/n.bin"], dest, 3, sha[:8])


def test_google_drive_confirm_page(net, tmp_path):
    routes, seen = net
    page = (b'<html><form id="download-form" action="https://drive.usercontent.google.com/'
            b'download" method="get"><input type="hidden" name="id" value="ABC">'
            b'<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" '
            b'value="u-1"></form></html>')
    routes["https://drive.google.com/"] = lambda: FakeResponse(page, "text/html; charset=utf-8")
    routes["https://drive.usercontent.google.com/download?id=ABC&confirm=t&uuid=u-1"] = \
        lambda: FakeResponse(b"weights")
    dest = tmp_path / "home" / "d.pkl"
    dl.download([dl.gdrive_url("ABC")], dest, quiet=True)
    assert dest.read_bytes() == b"weights" and len(seen) == 2
    old = b'<a href="/uc?export=download&amp;confirm=Xy_9&amp;id=ABC">Download anyway</a>'
    routes.clear()
    routes["https://drive.google.com/uc?export=download&id=OLD&confirm=Xy_9"] = \
        lambda: FakeResponse(b"old-style")
    routes["https://drive.google.com/uc?export=download&id=OLD"] = \
        lambda: FakeResponse(old, "text/html")
    dl.download([dl.gdrive_url("OLD")], tmp_path / "home" / "o.pkl", quiet=True)
    assert (tmp_path / "home" / "o.pkl").read_bytes() == b"old-style"


def test_registry_generator_download_convert_and_reuse(net, tmp_path, monkeypatch):
    routes, seen = net
    G = make_generator(resolution=16, seed=4)
    pkl = tmp_path / "served.pkl"
    write_ada_pickle(pkl, G)
    entry = registry.ModelEntry("tiny-test", "generator", "stylegan2", 16, "tiny.pkl",
                                ("https://example.org/tiny.pkl",), "test", "test fixture")
    monkeypatch.setitem(registry.REGISTRY, "tiny-test", entry)
    monkeypatch.setattr("i2s.weights.load.REGISTRY", registry.REGISTRY)
    routes["https://example.org/tiny.pkl"] = lambda: FakeResponse(pkl.read_bytes())
    G2 = i2s.load_generator("tiny-test")
    ws = G.mapping(torch.randn(1, 32))
    assert torch.equal(G2.synthesis(ws), G.synthesis(ws))
    routes.clear()
    i2s.load_generator("tiny-test")  # from the cache, no network
    assert len(seen) == 1


def test_registry_download_that_is_not_a_checkpoint(net, tmp_path, monkeypatch):
    routes, _ = net
    entry = registry.ModelEntry("junk-test", "generator", "stylegan2", 16, "junk.pkl",
                                ("https://example.org/junk.pkl",), "test", "test fixture")
    monkeypatch.setitem(registry.REGISTRY, "junk-test", entry)
    routes["https://example.org/junk.pkl"] = lambda: FakeResponse(pickle.dumps([1, 2]))
    with pytest.raises(i2s.I2SError, match="not a usable checkpoint"):
        fetch("junk-test", quiet=True)
    assert not (tmp_path / "home" / "downloads" / "junk.pkl").exists()


def test_registry_entries_are_complete():
    for e in registry.REGISTRY.values():
        assert e.packaged != bool(e.urls), e.name  # shipped, or downloadable
        assert all(u.startswith("https://") for u in e.urls)
        assert e.licence and e.description and e.architecture
    names = set(registry.REGISTRY)
    for needed in ("demo", "stylegan-ffhq-1024", "stylegan-celebahq-1024", "stylegan-cats-256",
                   "stylegan-cars-512", "stylegan-bedrooms-256", "stylegan2-ffhq-1024",
                   "stylegan2-ada-ffhq-1024", "stylegan2-ada-metfaces-1024",
                   "stylegan2-ada-afhqcat-512", "stylegan2-ada-afhqdog-512",
                   "stylegan2-ada-afhqwild-512", "vgg16"):
        assert needed in names
    with pytest.raises(i2s.I2SError, match="unknown model"):
        registry.get_entry("nope")


def test_models_cli(net, capsys, monkeypatch):
    from tests.test_cli import run

    code, out, _ = run(["models", "list"], capsys)
    assert code == 0 and "stylegan-ffhq-1024" in out and "vgg16" in out
    code, out, _ = run(["models", "info", "vgg16"], capsys)
    assert code == 0 and "397923af" in out and "download.pytorch.org" in out
    assert "mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)" in out and "224 px" in out
    assert "downloads" in out  # where load_vgg16 looks, with no special case
    monkeypatch.setenv("I2S_OFFLINE", "1")
    code, _, err = run(["models", "download", "stylegan2-ada-ffhq-1024"], capsys)
    assert code == 1 and "offline" in err and "ffhq.pkl" in err
    code, _, err = run(["models", "info", "nope"], capsys)
    assert code == 1 and "unknown model" in err


def test_registry_stylegan2_ada_tf_entry_downloads_and_converts(net, tmp_path):
    """A registry entry of the StyleGAN2-ADA TF release, served (mocked) with a small pickle of
    that format: converted once, the format and settings recorded; a served file that claims
    more bytes than it holds is refused and not kept."""
    from safetensors import safe_open

    from tests.checkpoint_writers import write_tf_ada_pickle

    routes, _ = net
    entry = registry.REGISTRY["stylegan2-ada-tf-metfaces-1024"]
    assert entry.urls == ("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada/pretrained/"
                          "metfaces.pkl",)
    G = make_generator(resolution=16, seed=6)
    pkl = tmp_path / "served.pkl"
    write_tf_ada_pickle(pkl, G, conv_clamp=256)
    routes[entry.urls[0]] = lambda: FakeResponse(pkl.read_bytes())
    G2 = i2s.load_generator(entry.name)
    assert G2.cfg.conv_clamp == 256
    ref = i2s.StyleGAN2Generator(G.cfg, conv_clamp=256).eval().requires_grad_(False)
    ref.load_state_dict(G.state_dict())
    ws = G.mapping(torch.randn(1, 32))
    assert torch.equal(G2.synthesis(ws), ref.synthesis(ws))
    with safe_open(str(tmp_path / "home" / "models" / f"{entry.name}.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["source_format"] == "stylegan2-ada-tf" and meta["num_fp16_res"] == "4"

    evil = registry.REGISTRY["stylegan2-ada-tf-afhqcat-512"]
    routes[evil.urls[0]] = lambda: FakeResponse(b"\x80\x04\x8e" + (2**40).to_bytes(8, "little")
                                                + b"abc")
    with pytest.raises(i2s.I2SError, match="not a usable checkpoint.*claims"):
        i2s.load_generator(evil.name)
    assert not (tmp_path / "home" / "downloads" / evil.filename).exists()


def test_hand_download_under_the_servers_name_is_accepted(net, tmp_path, monkeypatch):
    """NVIDIA's file keeps its name (ffhq.pkl) when downloaded by hand: i2s takes it."""
    monkeypatch.setenv("I2S_OFFLINE", "1")
    G = make_generator(resolution=16, seed=5)
    entry = registry.ModelEntry("hand-test", "generator", "stylegan2", 16, "i2s-name.pkl",
                                ("https://example.org/x/server-name.pkl",), "test", "fixture",
                                aliases=("old-name.pkl",))
    monkeypatch.setitem(registry.REGISTRY, "hand-test", entry)
    downloads = tmp_path / "home" / "downloads"
    downloads.mkdir(parents=True)
    write_ada_pickle(downloads / "server-name.pkl", G)
    G2 = i2s.load_generator("hand-test")
    ws = G.mapping(torch.randn(1, 32))
    assert torch.equal(G2.synthesis(ws), G.synthesis(ws))
    assert (downloads / "i2s-name.pkl").is_file() and not (downloads / "server-name.pkl").exists()


def test_legacy_cache_name_is_accepted(net, tmp_path, monkeypatch):
    monkeypatch.setenv("I2S_OFFLINE", "1")
    entry = registry.REGISTRY["stylegan2-ada-ffhq-1024"]
    assert entry.filename == "ffhq.pkl" and "ada-ffhq.pkl" in entry.aliases
    dest = tmp_path / "home" / "downloads" / "n.bin"
    dest.parent.mkdir(parents=True)
    (dest.parent / "legacy.bin").write_bytes(b"abc")
    assert dl.download(["https://example.org/n.bin"], dest,
                       aliases=(dest.parent / "legacy.bin",)) == dest
    assert dest.read_bytes() == b"abc" and (dest.parent / "n.bin.sha256").is_file()


def test_vgg16_is_downloaded_on_first_use_when_needed(net, tmp_path, monkeypatch, vgg_file):
    routes, seen = net
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("I2S_VGG16", raising=False)
    body = vgg_file.read_bytes()
    entry = registry.REGISTRY["vgg16"]
    monkeypatch.setitem(registry.REGISTRY, "vgg16", registry.ModelEntry(
        **{**entry.__dict__, "sha256": hashlib.sha256(body).hexdigest()}))
    routes[entry.urls[0]] = lambda: FakeResponse(body)
    from i2s.weights.load import find_vgg16_weights, load_vgg16
    with pytest.raises(i2s.I2SError, match="VGG-16 weights not found"):
        find_vgg16_weights()  # only present files, unless the caller needs the weights
    assert seen == []
    vgg = load_vgg16(download=True)
    assert seen == [entry.urls[0]] and isinstance(vgg, i2s.VGG16Features)
    load_vgg16(download=True)  # from the cache
    assert len(seen) == 1
    monkeypatch.setenv("I2S_OFFLINE", "1")
    (tmp_path / "home" / "downloads" / entry.filename).unlink()
    with pytest.raises(i2s.I2SError, match="offline.*--loss mse"):
        load_vgg16(download=True)


def test_embed_without_vgg_offline_is_one_clear_line(tmp_path, model_file, capsys, monkeypatch):
    from PIL import Image

    from tests.cli_run import run
    monkeypatch.setenv("I2S_OFFLINE", "1")
    monkeypatch.setenv("I2S_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("I2S_VGG16", raising=False)
    Image.new("RGB", (16, 16)).save(tmp_path / "x.png")
    code, _, err = run(["embed", tmp_path / "x.png", "--model", model_file, "--out",
                        tmp_path / "o", "--steps", 2, "-q"], capsys)
    assert code == 1 and "offline" in err and "--loss mse" in err
    assert len(err.strip().splitlines()) == 1
