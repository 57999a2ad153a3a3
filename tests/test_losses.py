import math

import torch
import torch.nn.functional as F

from i2s.embedding.losses import EmbedLoss, PerceptualLoss, mse_per_sample
from i2s.media.metrics import psnr as psnr_from_mse
from i2s.weights.load import load_vgg16


def test_mse_and_psnr_known_values():
    a = torch.zeros(2, 3, 4, 4)
    b = torch.zeros(2, 3, 4, 4)
    b[1] = 0.2  # 0.1 on the [0, 1] scale
    mse = mse_per_sample(a, b)
    assert torch.allclose(mse, torch.tensor([0.0, 0.01]))
    assert math.isclose(psnr_from_mse(mse)[1].item(), 20.0, rel_tol=1e-5)
    assert psnr_from_mse(mse)[0].item() == float("inf")


def test_perceptual_is_sum_of_per_layer_means(vgg_file):
    vgg = load_vgg16(vgg_file)
    loss = PerceptualLoss(vgg)
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    got = loss(x, loss.features(y))
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    taps = ["conv1_1", "conv1_2", "conv3_2", "conv4_2"]
    fx = vgg(((x + 1) / 2 - mean) / std, taps)
    fy = vgg(((y + 1) / 2 - mean) / std, taps)
    want = sum(((a - b) ** 2).sum(dim=(1, 2, 3)) / a[0].numel()
               for a, b in zip(fx, fy, strict=True))
    assert torch.allclose(got, want, rtol=1e-5)
    assert torch.allclose(loss(y, loss.features(y)), torch.zeros(2), atol=1e-6)


def test_large_images_are_area_resized_to_256(vgg_file):
    vgg = load_vgg16(vgg_file)
    loss = PerceptualLoss(vgg, layers=("conv1_1",))
    big = torch.rand(1, 3, 512, 512) * 2 - 1
    assert loss.features(big)[0].shape[-1] == 256
    assert loss.features(torch.rand(1, 3, 64, 64))[0].shape[-1] == 64
    # the area average, whichever op computes it (avg_pool2d for whole factors)
    for size in (512, 384):
        img = torch.rand(1, 3, size, size) * 2 - 1
        x = F.interpolate((img + 1) / 2, size=(256, 256), mode="area")
        want = vgg(((x - loss.mean) / loss.std), ["conv1_1"])[0]
        torch.testing.assert_close(loss.features(img)[0], want, rtol=1e-5, atol=1e-5)


def test_zero_difference_has_zero_gradient():
    a = torch.rand(2, 3, 8, 8, requires_grad=True)
    mse = mse_per_sample(a, a.detach())
    mse.sum().backward()
    assert torch.equal(mse, torch.zeros(2)) and torch.equal(a.grad, torch.zeros_like(a))


def test_embed_loss_terms(vgg_file):
    target = torch.zeros(1, 3, 16, 16)
    img = torch.full((1, 3, 16, 16), 0.2)
    only_mse = EmbedLoss(target, None, lambda_mse=2.0, lambda_perceptual=0.0)(img)
    assert torch.allclose(only_mse["loss"], torch.tensor([0.02]))
    both = EmbedLoss(target, PerceptualLoss(load_vgg16(vgg_file)), 1.0, 1.0)(img)
    assert torch.allclose(both["loss"], both["mse"] + both["perceptual"])
    assert both["perceptual"].item() > 0
