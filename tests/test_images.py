import numpy as np
import pytest
import torch
from PIL import Image

import i2s
from i2s.media.images import load_image, save_image, to_tensor, to_uint8


def test_modes_are_converted_to_rgb(tmp_path):
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((8, 8), 100, np.uint8), "L").save(gray)
    assert (load_image(gray, 8) == 100).all()

    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(deep)  # 16-bit grayscale
    assert (load_image(deep, 8) == 255).all()

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:4, ..., 3] = 255  # top half opaque red, bottom half fully transparent
    p = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(p)
    out = load_image(p, 8)
    assert (out[:4] == [255, 0, 0]).all() and (out[4:] == 255).all()  # over white

    pal = Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).convert("P")
    p = tmp_path / "pal.png"
    pal.save(p)
    assert load_image(p, 8).shape == (8, 8, 3)


def test_non_square_is_centre_cropped_then_resized(tmp_path):
    a = np.zeros((10, 30, 3), np.uint8)
    a[:, 10:20] = 200  # the centre square is all 200
    p = tmp_path / "wide.png"
    Image.fromarray(a).save(p)
    assert (load_image(p, 10) == 200).all()
    assert load_image(p, 4).shape == (4, 4, 3)


@pytest.mark.parametrize("content,match", [(None, "no such file"), (b"", "empty"),
                                           (b"hello, not an image", "not an image")])
def test_bad_inputs(tmp_path, content, match):
    p = tmp_path / "x.png"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(i2s.I2SError, match=match):
        load_image(p, 8)
    with pytest.raises(i2s.I2SError, match="folder"):
        load_image(tmp_path, 8)


def test_truncated_image(tmp_path):
    p = tmp_path / "t.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(p)
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(i2s.I2SError):
        load_image(p, 8)


def test_tensor_round_trip_exact():
    a = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
    t = to_tensor(a)
    assert t.shape == (2, 3, 5, 5) and t.min() >= -1 and t.max() <= 1
    assert np.array_equal(to_uint8(t), a)
    assert np.array_equal(to_uint8(t[0]), a[0])
    assert np.array_equal(to_uint8(torch.full((3, 1, 1), 5.0))[0, 0], [255, 255, 255])


def test_save_image_formats(tmp_path):
    a = np.zeros((4, 4, 3), np.uint8)
    save_image(tmp_path / "a.png", a)
    save_image(tmp_path / "a.jpg", a)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a.png"]
    with pytest.raises(i2s.I2SError, match="format"):
        save_image(tmp_path / "a.xyz", a)
