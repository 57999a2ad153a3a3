import numpy as np
import pytest
import torch

import i2s
from i2s.embedding.optimisation import initial_latent
from i2s.weights.load import load_vgg16
from tests.conftest import make_generator


def random_wplus(G, seed=1, psi=1.0):
    """A random W+ code: an independent mapped w for every style input, truncated by psi."""
    z = torch.randn(G.num_ws, G.z_dim, generator=torch.Generator().manual_seed(seed))
    return G.w_avg.lerp(G.mapping(z)[:, 0][None], psi)


def test_self_consistency_psnr_at_least_30db():
    """G(w) for a random W+ code (truncation psi 0.5, as when sampling) embeds back >= 30 dB."""
    G = make_generator(resolution=16)
    target = G.synthesis(random_wplus(G, psi=0.5))
    r = i2s.embed(G, target, space="w+", steps=400, lr=0.03, loss="mse")
    assert r.final["psnr"][0] >= 30.0, r.final["psnr"]
    assert r.latent.shape == (1, G.num_ws, G.w_dim)
    assert r.history["psnr"].shape == (400, 1)
    assert r.history["loss"][-1, 0] < r.history["loss"][0, 0] / 100


def test_synthesis_gradcheck_float64():
    G = make_generator(resolution=8).double()
    ws = G.mapping(torch.randn(1, 32, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(G.synthesis, (ws,), eps=1e-6, atol=1e-5)


def test_gradient_reaches_latent_not_weights(tiny_G):
    tiny_G.requires_grad_(True)  # even a trainable generator must stay untouched
    before = {k: v.clone() for k, v in tiny_G.state_dict().items()}
    seen = []
    i2s.embed(tiny_G, torch.zeros(1, 3, 16, 16), steps=3, loss="mse",
              callback=lambda s: seen.append(s.loss.item()))
    assert all(p.grad is None for p in tiny_G.parameters())
    assert all(p.requires_grad for p in tiny_G.parameters())  # flags restored
    assert all(torch.equal(before[k], v) for k, v in tiny_G.state_dict().items())
    assert len(seen) == 3 and seen[2] < seen[0]


def test_mean_init_starts_at_w_avg(tiny_G):
    first = []
    i2s.embed(tiny_G, torch.zeros(1, 3, 16, 16), steps=1, loss="mse",
              callback=lambda s: first.append(s.image))
    want = tiny_G.synthesis(tiny_G.w_avg.expand(1, tiny_G.num_ws, -1))
    assert torch.allclose(first[0], want)


def test_initial_latents(tiny_G):
    dev = torch.device("cpu")
    r1 = initial_latent(tiny_G, "w+", "random", 2, 7, dev)
    assert torch.equal(r1, initial_latent(tiny_G, "w+", "random", 2, 7, dev))
    assert r1.min() >= -1 and r1.max() <= 1 and torch.equal(r1[0], r1[1])
    assert not torch.equal(r1, initial_latent(tiny_G, "w+", "random", 2, 8, dev))
    assert initial_latent(tiny_G, "w", "mean", 3, 0, dev).shape == (3, 1, 32)
    z = initial_latent(tiny_G, "z", "mean", 1, 0, dev)
    assert z.shape == (1, 32)
    # The chosen z maps nearer to w_avg than a typical sample does.
    d = (tiny_G.mapping(z)[0, 0] - tiny_G.w_avg).norm()
    typical = (tiny_G.mapping(torch.randn(64, 32))[:, 0] - tiny_G.w_avg).norm(dim=1).median()
    assert d < typical
    lat = i2s.LatentFile(w=np.ones((tiny_G.num_ws, 32), np.float32), space="w+",
                         model_sha256="")
    assert torch.equal(initial_latent(tiny_G, "w+", lat, 2, 0, dev), torch.ones(2, 6, 32))
    with pytest.raises(i2s.I2SError, match="no 'z'"):
        initial_latent(tiny_G, "z", lat, 1, 0, dev)
    bad = i2s.LatentFile(w=np.ones((4, 32), np.float32), space="w+", model_sha256="")
    with pytest.raises(i2s.I2SError, match="different model"):
        initial_latent(tiny_G, "w+", bad, 1, 0, dev)


@pytest.mark.parametrize("space", ["w+", "w", "z"])
def test_spaces_return_wplus_codes(tiny_G, space):
    target = tiny_G.synthesis(random_wplus(tiny_G))
    r = i2s.embed(tiny_G, target, space=space, steps=5, loss="mse")
    assert r.latent.shape == (1, tiny_G.num_ws, 32)
    assert torch.allclose(tiny_G.synthesis(r.latent), r.image, atol=1e-6)
    if space == "w":
        assert torch.equal(r.latent[:, :1].expand_as(r.latent), r.latent)
    if space == "z":
        assert r.z.shape == (1, 32)
        assert torch.allclose(tiny_G.mapping(r.z), r.latent)


def test_deterministic_on_cpu(tiny_G, vgg_file):
    vgg = load_vgg16(vgg_file)
    target = tiny_G.synthesis(random_wplus(tiny_G))
    kw = dict(steps=5, init="random", seed=3, vgg=vgg, noise_mode="random")
    a, b = i2s.embed(tiny_G, target, **kw), i2s.embed(tiny_G, target, **kw)
    assert torch.equal(a.latent, b.latent)
    assert np.array_equal(a.history["loss"], b.history["loss"])


def test_batch_equals_individual(tiny_G, vgg_file):
    vgg = load_vgg16(vgg_file)
    targets = torch.cat([tiny_G.synthesis(random_wplus(tiny_G, s)) for s in (1, 2)])
    both = i2s.embed(tiny_G, targets, steps=10, vgg=vgg)
    for i in range(2):
        one = i2s.embed(tiny_G, targets[i], steps=10, vgg=vgg)
        assert torch.allclose(one.latent[0], both.latent[i], atol=1e-4)


def test_bad_arguments(tiny_G):
    img = torch.zeros(1, 3, 16, 16)
    for kw, match in [(dict(space="q"), "space"), (dict(loss="l1"), "loss"),
                      (dict(steps=0), "steps"), (dict(lr=0.0), "lr"),
                      (dict(init="bogus"), "init"), (dict(lambda_mse=0.0), "no positive term"),
                      (dict(loss="vgg", lambda_perceptual=0.0), "no positive term")]:
        with pytest.raises(i2s.I2SError, match=match):
            i2s.embed(tiny_G, img, **{"loss": "mse", "steps": 1, **kw})
    with pytest.raises(i2s.I2SError, match="images must be"):
        i2s.embed(tiny_G, torch.zeros(1, 3, 32, 32), loss="mse", steps=1)
