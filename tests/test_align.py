"""FFHQ alignment, paste-back and the identity metric (dlib parts skip without dlib)."""

import json

import numpy as np
import pytest
from PIL import Image

from i2s.errors import I2SError
from i2s.faces import alignment as A
from i2s.faces import detect as faces
from i2s.faces.identity import identity_distance
from i2s.faces.paste import paste_back
from tests.cli_run import run

needs_faces = pytest.mark.skipif(not faces.identity_available(),
                                 reason="dlib-bin / face-recognition-models not installed")


def psnr(a, b, where=None):
    d = a.astype(np.float64) - b.astype(np.float64)
    if where is not None:
        d = d[where]
    return 10 * np.log10(255.0**2 / max(np.mean(d**2), 1e-12))


def synthetic_landmarks():
    """68 points with eyes centred at (40, 50) and (60, 50), mouth corners (42, 70), (58, 70)."""
    lm = np.zeros((68, 2))
    lm[36:42] = [40, 50]
    lm[42:48] = [60, 50]
    lm[48] = [42, 70]
    lm[54] = [58, 70]
    return lm


def test_ffhq_quad_known_answer():
    quad = A.ffhq_quad(synthetic_landmarks())
    # d_ee = (20, 0), d_em = (0, 20): half side max(40, 36) = 40, centre (50, 52).
    np.testing.assert_allclose(quad, [[10, 12], [10, 92], [90, 92], [90, 12]])
    canon = A.canonical_eye_positions(synthetic_landmarks(), 80)
    # The quad maps [10, 90] x [12, 92] to [0, 80]^2: eyes at (30, 38) and (50, 38).
    np.testing.assert_allclose(canon, [[30, 38], [50, 38]])


def test_ffhq_quad_rotates_with_the_face():
    lm = synthetic_landmarks()
    t = np.radians(30)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    quad = A.ffhq_quad(lm @ rot.T)
    np.testing.assert_allclose(quad, A.ffhq_quad(lm) @ rot.T, atol=1e-9)


def test_warp_and_paste_back_axis_aligned_square():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (20, 20, 3), np.uint8)
    img = np.asarray(Image.fromarray(small).resize((200, 160), Image.BICUBIC))
    quad = np.array([[50.0, 30], [50, 130], [150, 130], [150, 30]])
    warped = A.warp_quad(img, quad, 100)
    np.testing.assert_array_equal(warped[5:95, 5:95], img[35:125, 55:145])  # a pure crop
    t = A.AlignTransform(quad, (200, 160), 100, np.zeros((68, 2)), (0, 0, 1, 1))
    out, mask = paste_back(warped, img, t, feather=0.1)
    assert np.array_equal(out[mask == 0], img[mask == 0])
    assert mask[80, 100] == pytest.approx(1.0) and mask[0, 0] == 0
    assert psnr(out, img, mask >= 1) > 45


def test_paste_back_rotated_quad_round_trip():
    rng = np.random.default_rng(1)
    img = np.asarray(Image.fromarray(rng.integers(0, 256, (16, 16, 3), np.uint8)).resize(
        (240, 240), Image.BICUBIC))
    quad = A.ffhq_quad(synthetic_landmarks() * 2 + 20) @ np.eye(2)
    c = quad.mean(0)
    t = np.radians(20)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    quad = (quad - c) @ rot.T + c
    aligned = A.warp_quad(img, quad, 256)
    tr = A.AlignTransform(quad, (240, 240), 256, np.zeros((68, 2)), (0, 0, 1, 1))
    out, mask = paste_back(aligned, img, tr)
    assert psnr(out, img, mask >= 1) > 35
    assert np.array_equal(out[mask == 0], img[mask == 0])
    # A model-sized (smaller) edit is accepted and lands in the same place.
    small = np.asarray(Image.fromarray(aligned).resize((64, 64), Image.LANCZOS))
    out64, _ = paste_back(small, img, tr)
    assert psnr(out64, img, mask >= 1) > 20


def test_transform_json_round_trip_and_bad_files(tmp_path):
    t = A.AlignTransform(A.ffhq_quad(synthetic_landmarks()), (120, 100), 64,
                         synthetic_landmarks(), (1, 2, 3, 4))
    t.save(tmp_path / "t.json")
    u = A.AlignTransform.load(tmp_path / "t.json")
    np.testing.assert_array_equal(u.quad, t.quad)
    assert u.original_size == (120, 100) and u.size == 64 and u.box == (1, 2, 3, 4)
    (tmp_path / "bad.json").write_text("{\"format\": \"other\"}")
    for p in (tmp_path / "bad.json", tmp_path / "missing.json"):
        with pytest.raises(I2SError):
            A.AlignTransform.load(p)
    with pytest.raises(I2SError, match="was made on"):
        paste_back(np.zeros((64, 64, 3), np.uint8), np.zeros((10, 10, 3), np.uint8), t)


@pytest.fixture(scope="module")
def astronaut():
    skimage_data = pytest.importorskip("skimage.data")
    return skimage_data.astronaut()


@needs_faces
def test_astronaut_alignment_eye_line_and_positions(astronaut):
    aligned = A.align(astronaut, size=256)
    assert aligned.image.shape == (256, 256, 3)
    assert aligned.transform.landmarks.shape == (68, 2)
    # Landmarks found again on the aligned image: the eye line is horizontal and the eyes
    # are where the recipe puts them.
    again = faces.largest_face(aligned.image).landmarks + 0.5
    eyes = A.eye_centres(again)
    d = eyes[1] - eyes[0]
    assert abs(np.degrees(np.arctan2(d[1], d[0]))) < 1.0
    canon = A.canonical_eye_positions(aligned.transform.landmarks, 256)
    assert np.abs(eyes - canon).max() < 2.0
    # For this face 2|d_ee| > 1.8|d_em|: the eyes sit at 3/8 and 5/8 of the width.
    np.testing.assert_allclose(canon[:, 0], [96, 160])


@needs_faces
def test_rotated_and_shifted_photo_aligns_the_same(astronaut):
    base = A.align(astronaut, size=256).image
    moved = np.asarray(Image.fromarray(astronaut).rotate(15, resample=Image.BICUBIC,
                                                         translate=(20, 10)))
    other = A.align(moved, size=256).image
    assert psnr(base, other) > 22   # measured 26.0 dB; an unaligned crop is far lower
    assert psnr(base, moved[:256, 100:356]) < 15


@needs_faces
def test_paste_back_of_unedited_face_reproduces_photo(astronaut):
    aligned = A.align(astronaut, size=256)
    out, mask = paste_back(aligned.image, astronaut, aligned.transform)
    assert (mask >= 1).sum() > 10000
    assert psnr(out, astronaut, mask >= 1) >= 35      # measured 44.1 dB
    assert np.array_equal(out[mask == 0], astronaut[mask == 0])


@needs_faces
def test_no_face_and_identity(astronaut):
    skimage_data = pytest.importorskip("skimage.data")
    with pytest.raises(faces.NoFaceFound, match="no face found; dlib's CNN.*--detector cnn"):
        A.align(skimage_data.coffee(), size=64)
    assert identity_distance(astronaut, astronaut) == 0.0
    aligned = A.align(astronaut, size=64).image
    flipped = aligned[:, ::-1].copy()
    assert identity_distance(aligned, flipped) < faces.SAME_PERSON_THRESHOLD
    noise = np.random.default_rng(0).integers(0, 256, aligned.shape, np.uint8)
    assert identity_distance(aligned, noise) > faces.SAME_PERSON_THRESHOLD


@needs_faces
def test_cli_align_embed_edit_paste_back(tmp_path, astronaut, model_file, capsys):
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    coffee = tmp_path / "coffee.png"
    Image.fromarray(pytest.importorskip("skimage.data").coffee()).save(coffee)
    code, out, err = run(["align", photo, coffee, "--out", tmp_path / "al", "--size", 64],
                         capsys)
    assert code == 1 and "coffee.png: no face found" in err and "--detector cnn" in err
    assert len(err.strip().splitlines()) == 1
    t = json.loads((tmp_path / "al" / "astronaut.json").read_text())
    assert t["original_size"] == [512, 512] and len(t["quad"]) == 4
    assert Image.open(tmp_path / "al" / "astronaut.png").size == (64, 64)

    code, _, _ = run(["embed", photo, "--align", "--model", model_file, "--out", tmp_path / "e",
                      "--steps", 2, "--loss", "mse", "-q"], capsys)
    assert code == 0
    folder = tmp_path / "e" / "astronaut"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["aligned"] is True and "identity_distance" in metrics
    assert (folder / "transform.json").is_file()

    code, _, _ = run(["paste-back", folder / "reconstruction.png", "--into", photo,
                      "--transform", folder / "transform.json", "--out", tmp_path / "p.png"],
                     capsys)
    assert code == 0 and Image.open(tmp_path / "p.png").size == (512, 512)

    lat = folder / "latent.npz"
    code, _, _ = run(["morph", lat, lat, "--frames", 2, "--model", model_file, "--out",
                      tmp_path / "m", "--paste-back", photo], capsys)
    assert code == 0
    assert Image.open(tmp_path / "m" / "frames" / "000_pasted.png").size == (512, 512)
    # Without a findable transform --paste-back fails before any work.
    code, _, err = run(["style-transfer", photo, photo, "--model", model_file, "--out",
                        tmp_path / "s", "--paste-back", photo], capsys)
    assert code == 1 and "needs the alignment transform" in err


def test_commands_say_what_to_install_without_dlib(tmp_path, monkeypatch, capsys, model_file):
    def missing():
        raise faces.FaceModelsMissing(f"face alignment needs dlib: {faces.INSTALL_HINT}")

    monkeypatch.setattr(faces, "_dlib", missing)
    faces._detector.cache_clear()
    faces._predictor.cache_clear()
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    code, _, err = run(["align", img, "--out", tmp_path / "a"], capsys)
    assert code == 1 and "pip install dlib-bin face-recognition-models" in err
    code, _, err = run(["embed", img, "--align", "--model", model_file, "--out", tmp_path / "e",
                        "--loss", "mse", "--steps", 1], capsys)
    assert code == 1 and "pip install dlib-bin" in err
    # Commands that do not need faces are unaffected.
    code, _, _ = run(["embed", img, "--model", model_file, "--out", tmp_path / "e2",
                      "--loss", "mse", "--steps", 1, "-q"], capsys)
    assert code == 0
    metrics = json.loads((tmp_path / "e2" / "x" / "metrics.json").read_text())
    assert metrics["identity_distance"] is None and "not installed" in metrics["identity_note"]
    faces._detector.cache_clear()
    faces._predictor.cache_clear()


@needs_faces
def test_detection_scores_choice_and_cnn(astronaut, tmp_path, capsys):
    from i2s.faces import FaceChoice
    from tests.cli_run import run
    faces_found = faces.detect_faces(astronaut)
    assert len(faces_found) == 2 and faces_found[0].score > 1.0 > 0.3 > faces_found[1].score
    only = faces.detect_faces(astronaut, min_score=0.3)
    assert len(only) == 1 and only[0].box == faces_found[0].box
    second = A.align(astronaut, size=64, choice=FaceChoice(index=1))
    assert second.transform.box == faces_found[1].box
    with pytest.raises(faces.NoFaceFound, match="face index 2 asked for, but only 2"):
        A.align(astronaut, size=64, choice=FaceChoice(index=2))
    with pytest.raises(faces.NoFaceFound, match="scoring at least 5"):
        A.align(astronaut, size=64, choice=FaceChoice(min_score=5.0))
    cnn = faces.detect_faces(astronaut, detector="cnn")
    assert len(cnn) == 1 and cnn[0].score > 0.8    # no suit patch
    (l1, t1, r1, b1), (l2, t2, r2, b2) = cnn[0].box, faces_found[0].box
    assert max(abs(l1 - l2), abs(t1 - t2), abs(r1 - r2), abs(b1 - b2)) < 20
    photo = tmp_path / "a.png"
    Image.fromarray(astronaut).save(photo)
    code, out, _ = run(["align", photo, "--out", tmp_path / "o", "--size", 64, "--all-faces",
                        "--min-face-score", 0.3], capsys)
    assert code == 0 and "face score 1.16, hog" in out and "_1.png" not in out
    t = A.AlignTransform.load(tmp_path / "o" / "a_0.json")
    assert t.score == pytest.approx(faces_found[0].score)
    code, _, err = run(["align", photo, "--out", tmp_path / "o2", "--all-faces",
                        "--face-index", 1], capsys)
    assert code == 2 and "--all-faces" in err
