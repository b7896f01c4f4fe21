"""alae_tf.faces: landmarks, the FFHQ / CelebA / centre crops and their transforms, paste-back,
attribute directions and the authors' edit formula, refinement; alae-photo and
alae-import --directions on the imported 128 px fixture model.

The face photo is matplotlib's ``grace_hopper.jpg`` (it ships inside matplotlib, a dependency);
MTCNN (the ``mtcnn`` package's bundled weights) finds its landmarks.
"""

import json
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from helpers.fixtures import OFFICIAL_128
from PIL import Image

from alae_tf.errors import FaceError
from alae_tf.faces import align, directions, landmarks
from alae_tf.official.config import face_alignment_of

PHOTO = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture(scope="module")
def photo():
    with Image.open(PHOTO) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def face(photo):
    from alae_tf.faces.detect import detect_faces

    faces = detect_faces(photo)
    assert len(faces) == 1 and faces[0].confidence > 0.95, faces
    return faces[0]


def _detected_points(picture):
    from alae_tf.faces.detect import detect_faces

    (found,) = detect_faces(picture)
    return found.points


# ------------------------------------------------------------------ crops


def test_the_ffhq_crop_puts_the_face_where_a_detector_finds_it_again(photo, face):
    crop = align.align(photo, face.points, "ffhq", 256)
    assert crop.image.shape == (256, 256, 3) and crop.method == "ffhq"
    mapped = crop.to_crop(face.points)
    # FFHQ's geometry: the eyes level and centred, the mouth below them.
    assert abs(mapped[0, 1] - mapped[1, 1]) < 3 and abs(mapped[:2, 0].mean() - 128) < 3
    assert mapped[3, 1] > mapped[0, 1] + 40
    # MTCNN on the crop finds the landmarks where the transform put them.
    assert np.abs(_detected_points(crop.image) - mapped).max() < 4


def test_the_celeba_crop_puts_the_landmarks_on_the_template(photo, face):
    crop = align.align(photo, face.points, "celeba", 128)
    left, top = align.CELEBA_CROP[:2]
    template = align.CELEBA_TEMPLATE - [left, top]  # the 128 px crop's own coordinates
    mapped = crop.to_crop(face.points)
    assert np.abs(mapped - template).max() < 3, mapped  # five points, one similarity
    assert np.abs(_detected_points(crop.image) - template).max() < 4


def test_no_alignment_is_the_centre_square(photo):
    crop = align.align(photo, None, "none", 64)
    height, width = photo.shape[:2]
    side = min(width, height)
    top = (height - side) // 2
    want = Image.fromarray(photo[top:top + side]).resize((64, 64), Image.BOX)
    assert np.abs(crop.image.astype(int) - np.asarray(want)).max() <= 2
    np.testing.assert_allclose(crop.quad[2] - crop.quad[0], [side, side])


def test_ffhq_quad_is_the_published_recipe():
    rng = np.random.default_rng(0)
    for _ in range(5):
        points = rng.uniform(100, 400, size=(5, 2))
        quad, side = align.ffhq_quad(points)
        # ffhq-dataset's recreate_aligned_images, written out with its own numpy idioms.
        eye_l, eye_r, mouth_l, mouth_r = points[0], points[1], points[3], points[4]
        eye_avg = (eye_l + eye_r) * 0.5
        eye_to_eye, eye_to_mouth = eye_r - eye_l, (mouth_l + mouth_r) * 0.5 - eye_avg
        x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
        x /= np.hypot(*x)
        x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
        y = np.flipud(x) * [-1, 1]
        c = eye_avg + eye_to_mouth * 0.1
        np.testing.assert_allclose(quad, np.stack([c - x - y, c - x + y, c + x + y, c + x - y]))
        assert side == pytest.approx(np.hypot(*x) * 2)


def test_a_face_at_the_photo_edge_is_padded_not_black(photo, face):
    edge = photo[:, 150:]  # the face's left side at the border
    crop = align.align(edge, face.points - [150, 0], "ffhq", 128)
    assert crop.image.min(axis=-1).max() > 0
    corner = crop.image[:16, :16].reshape(-1, 3)
    assert (corner.sum(-1) > 30).mean() > 0.9  # reflected and blended, not zeros


def test_crop_and_photo_coordinates_round_trip(photo, face):
    for method, size in (("ffhq", 64), ("celeba", 128), ("none", 32)):
        crop = align.align(photo, face.points, method, size)
        np.testing.assert_allclose(crop.to_photo(crop.to_crop(face.points)), face.points,
                                   atol=1e-9)


def test_paste_back_changes_only_the_face(photo, face):
    crop = align.align(photo, face.points, "ffhq", 64)
    grey = np.full((64, 64, 3), 128, np.uint8)
    pasted = align.paste_back(photo, crop, grey)
    assert pasted.shape == photo.shape and pasted.dtype == np.uint8
    changed = np.any(pasted != photo, axis=-1)
    centre = np.rint(crop.to_photo([[31.5, 31.5]])[0]).astype(int)
    assert np.all(pasted[centre[1], centre[0]] == 128)  # the face's middle is the new face
    # Outside the crop's quad the photo is untouched, and so is most of the crop's square.
    inside = Image.new("L", (photo.shape[1], photo.shape[0]))
    from PIL import ImageDraw

    ImageDraw.Draw(inside).polygon([tuple(p) for p in crop.quad], fill=1)
    assert not np.any(changed & (np.asarray(inside) == 0))
    assert 0.4 < changed[np.asarray(inside) == 1].mean() < 0.9  # an ellipse in the square
    # A face that is the crop itself puts the photo back, up to the resampling.
    again = align.paste_back(photo, crop, crop.image)
    assert np.abs(again.astype(int) - photo)[changed].mean() < 20


def test_bad_pictures_and_methods_are_refused(photo, face):
    with pytest.raises(FaceError, match="unknown face alignment 'dlib'"):
        align.align(photo, face.points, "dlib", 64)
    with pytest.raises(FaceError, match=r"uint8 \[H, W, 3\]"):
        align.align(photo.astype(np.float32), face.points, "ffhq", 64)
    with pytest.raises(FaceError, match="no size"):
        align.align(photo, np.full((5, 2), 100.0), "ffhq", 64)


# ------------------------------------------------------------------ landmarks


def test_68_points_become_five():
    points = np.arange(136, dtype=float).reshape(68, 2)
    five = landmarks.five_points(points)
    np.testing.assert_allclose(five[0], points[36:42].mean(0))
    np.testing.assert_allclose(five[1], points[42:48].mean(0))
    np.testing.assert_allclose(five[2:], points[[30, 48, 54]])


@pytest.mark.parametrize("points, message", [
    ([[1, 2]] * 4, r"expected 5 or 68 \[x, y\] points, got an array of shape \[4, 2\]"),
    ([[1, 2, 3]] * 5, "shape \\[5, 3\\]"),
    ([["a", 2]] * 5, "expected a list of \\[x, y\\] numbers"),
    ([[1, float("nan")]] * 5, "finite"),
])
def test_bad_landmarks_are_named(points, message):
    with pytest.raises(FaceError, match=message):
        landmarks.five_points(points)


def test_landmark_files(tmp_path):
    points = [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(points))
    assert landmarks.read_landmarks(one, ["a/p.jpg"])["a/p.jpg"].shape == (5, 2)
    many = tmp_path / "many.json"
    many.write_text(json.dumps({"p.jpg": points, "q.jpg": points}))
    found = landmarks.read_landmarks(many, ["x/p.jpg", "q.jpg"])
    assert set(found) == {"x/p.jpg", "q.jpg"}
    with pytest.raises(FaceError, match="no landmarks for 'r.jpg'"):
        landmarks.read_landmarks(many, ["r.jpg"])
    with pytest.raises(FaceError, match="one list of points serves one photo"):
        landmarks.read_landmarks(one, ["p.jpg", "q.jpg"])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(FaceError, match="not valid JSON"):
        landmarks.read_landmarks(tmp_path / "bad.json", ["p.jpg"])
    with pytest.raises(FaceError, match="cannot read landmarks file"):
        landmarks.read_landmarks(tmp_path / "none.json", ["p.jpg"])


# ------------------------------------------------------------------ directions


def _unit(rng, n, dim):
    v = rng.normal(size=(n, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_the_edit_is_the_authors_demo_formula():
    rng = np.random.default_rng(0)
    latent = 12
    names = ["gender", "smile", "young"]
    normals = _unit(rng, 3, latent)
    found = dict(zip(names, normals, strict=True))
    w, w_avg = rng.normal(size=latent), rng.normal(size=latent)
    sliders = {"smile": 7.5, "young": -3.0}
    # interactive_demo.py, transcribed: values read first, then taken out one by one, then
    # the sliders' values put in and the average added back.
    latents = w - w_avg
    values = [float((latents * n).sum()) for n in normals]
    for v, n in zip(values, normals, strict=True):
        latents = latents - v * n
    slider = [sliders.get(name, v) for name, v in zip(names, values, strict=True)]
    want = latents + sum(v * n for v, n in zip(slider, normals, strict=True)) + w_avg
    np.testing.assert_allclose(directions.edit(w, w_avg, found, sliders), want, atol=1e-12)
    np.testing.assert_allclose(directions.edit(w, w_avg, found, {}), w, atol=1e-12)
    assert directions.start_values(w, w_avg, found)["smile"] == pytest.approx(values[1])
    with pytest.raises(FaceError, match="unknown direction 'chubby'; this model has: gender"):
        directions.edit(w, w_avg, found, {"chubby": 1.0})


def test_edited_styles_take_the_first_sixteen_slots():
    original = np.zeros((18, 4))
    styles = directions.edited_styles(np.ones(4), original)
    assert styles[:16].min() == 1 and styles[16:].max() == 0
    assert directions.edited_styles(np.ones(4), np.zeros((14, 4))).min() == 1


def test_a_fitted_direction_points_from_one_set_to_the_other():
    rng = np.random.default_rng(1)
    true = _unit(rng, 1, 16)[0]
    without = rng.normal(size=(200, 16))
    with_ = rng.normal(size=(200, 16)) + 3 * true
    normal, accuracy = directions.fit_direction(with_, without)
    assert normal @ true > 0.9 and accuracy > 0.9
    assert np.linalg.norm(normal) == pytest.approx(1.0)


def test_author_direction_files(tmp_path):
    rng = np.random.default_rng(2)
    for index in (0, 1, 19):
        np.save(tmp_path / f"direction_{index}.npy", _unit(rng, 1, 8)[0])
    found = directions.read_author_directions(tmp_path, 8)
    assert list(found) == ["gender", "smile", "glasses"]
    with pytest.raises(FaceError, match="has shape \\[8\\]; this model's w has 16 values"):
        directions.read_author_directions(tmp_path, 16)
    with pytest.raises(FaceError, match="no direction_N.npy file"):
        directions.read_author_directions(tmp_path / "..", 8)
    with pytest.raises(FaceError, match="is not a folder"):
        directions.read_author_directions(tmp_path / "none", 8)
    run = tmp_path / "run"
    directions.save_directions(run, found, source="test")
    loaded = directions.load_directions(run, 8)
    assert list(loaded) == sorted(found) and np.allclose(loaded["smile"], found["smile"])
    assert directions.load_directions(tmp_path / "other", 8) == {}


def test_imported_configs_name_their_crop():
    assert [face_alignment_of(n) for n in ("ffhq", "celeba-hq256", "celeba_hq256", "celeba",
                                           "bedroom", "style128")] == [
        "ffhq", "ffhq", "ffhq", "celeba", "none", "none"]


# ------------------------------------------------------------------ the model


@pytest.fixture(scope="module")
def face_run(tmp_path_factory):
    """The 128 px fixture model imported with three attribute directions of its size."""
    from alae_tf.training import import_official

    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(3)
    folder = root / "principal_directions"
    folder.mkdir()
    for index in (0, 1, 4):  # gender, smile, young
        np.save(folder / f"direction_{index}.npy", _unit(rng, 1, 16)[0])
    run_dir = root / "run"
    assert import_official.main([
        str(OFFICIAL_128 / "model_zip.pth"), "--config", str(OFFICIAL_128 / "config.yaml"),
        "--run-dir", str(run_dir), "--directions", str(folder)]) == 0
    return run_dir


def test_refinement_lowers_the_loss_from_e_of_x(face_run, photo, face):
    from alae_tf.faces.photos import FacePipeline, psnr
    from alae_tf.runs import load_trained_model

    model = load_trained_model(str(face_run))[0]
    pipeline = FacePipeline(model, "ffhq")
    crop = align.align(photo, face.points, "ffhq", pipeline.size).image
    w = pipeline.encode(crop)
    assert w.shape == (16,) and np.all(np.isfinite(w))
    first = pipeline.decode(w)
    np.testing.assert_array_equal(first, pipeline.decode(w))  # fixed noise: the same picture
    for per_slot in (False, True):
        refined, history = pipeline.refine(crop, w, 40, per_slot=per_slot,
                                           learning_rate=0.005)
        losses = [loss for _, loss in history]
        assert refined.shape == ((12, 16) if per_slot else (16,))
        assert all(b <= a for a, b in zip(losses, losses[1:], strict=False)), losses
        assert psnr(crop, pipeline.decode(refined)) > psnr(crop, first)


def test_alae_photo_aligns_reconstructs_refines_edits_and_pastes(face_run, tmp_path, capsys):
    from alae_tf.training import photo as photo_app

    out = tmp_path / "out"
    assert photo_app.main([str(face_run), str(PHOTO), "--out", str(out), "--align", "ffhq",
                           "--refine", "20", "--edit", "smile=20", "gender+=-5",
                           "--traverse", "young"]) == 0
    printed = capsys.readouterr().out
    assert "photos cropped: ffhq" in printed and "refine grace_hopper: step 20/20" in printed
    found = re.search(r"E\(x\) PSNR ([\d.]+) dB; refined \(20 steps, w\) PSNR ([\d.]+) dB",
                      printed)
    assert found and float(found.group(2)) >= float(found.group(1)), printed
    edit = re.search(r"edit: smile (-?[\d.]+) -> 20\.0, gender (-?[\d.]+) -> (-?[\d.]+)", printed)
    assert edit and float(edit.group(3)) == pytest.approx(float(edit.group(2)) - 5, abs=0.11)
    names = {p.name for p in out.iterdir()}
    for key in ("aligned", "reconstruction", "refined", "pasted", "edited", "edited_pasted",
                "traverse_young", "grid"):
        assert f"grace_hopper_{key}.png" in names, key
    assert {"grace_hopper_w.npy", "grace_hopper_w_refined.npy"} <= names
    assert np.load(out / "grace_hopper_w.npy").shape == (16,)
    with Image.open(out / "grace_hopper_grid.png") as grid:
        assert grid.size == (4 * 130 + 2, 130 + 2)  # crop, E(x), refined, edited
    with Image.open(out / "grace_hopper_traverse_young.png") as row:
        assert row.size == (10 * 130 + 2, 130 + 2)
    with Image.open(out / "grace_hopper_pasted.png") as pasted, Image.open(PHOTO) as original:
        pasted, original = np.asarray(pasted), np.asarray(original.convert("RGB"))
        assert pasted.shape == original.shape
        assert np.array_equal(pasted[:20], original[:20])  # far from the face: the photo
        assert not np.array_equal(pasted, original)


def test_alae_photo_refuses_bad_photos_and_edits_in_one_line(face_run, tmp_path, capsys):
    from alae_tf.training import photo as photo_app

    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture")
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 160, 3), 200, np.uint8)).save(blank)
    out = tmp_path / "out"
    cases = [
        ([str(notes)], "notes.jpg: not an image this can read"),
        ([str(tmp_path / "gone.jpg")], "gone.jpg: no such file"),
        ([str(blank), "--align", "ffhq"], "no face found in blank.png; give its landmarks"),
        ([str(PHOTO), "--edit", "chubby=3"], "unknown direction 'chubby'; "),
        ([str(PHOTO), "--edit", "smile"], "--edit 'smile': expected NAME=VALUE"),
        ([str(PHOTO), "--landmarks", str(tmp_path / "none.json")], "cannot read landmarks"),
        ([str(PHOTO), "--face", "3", "--align", "ffhq"], "has 1 face(s); --face counts from 0"),
    ]
    for args, message in cases:
        assert photo_app.main([str(face_run), *args, "--out", str(out)]) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("alae-photo: error: "), lines
        assert message in lines[0], lines
    assert not out.exists() or not any(out.iterdir())


def test_alae_import_refuses_directions_of_another_size(tmp_path, capsys):
    from alae_tf.training import import_official

    folder = tmp_path / "principal_directions"
    folder.mkdir()
    np.save(folder / "direction_1.npy", np.ones(512) / np.sqrt(512))  # the FFHQ model's size
    assert import_official.main([
        str(OFFICIAL_128 / "model_zip.pth"), "--config", str(OFFICIAL_128 / "config.yaml"),
        "--run-dir", str(tmp_path / "run"), "--directions", str(folder)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "direction 'smile' has shape [512]; this model's w has 16 values" in line
    assert not (tmp_path / "run").exists()


def test_the_saved_model_edits_as_the_library_does(face_run, tmp_path, photo, face, capsys):
    """alae-export writes edit signatures from the run's directions; over the served model
    (alae-serve's ServedModel) they give the library's edit: the same w, start values and
    picture (noise seed 0 both ways)."""
    from alae_tf.export import cli as export_cli
    from alae_tf.export.rest import ServedModel
    from alae_tf.faces.photos import FacePipeline
    from alae_tf.runs import load_trained_model

    assert export_cli.main([str(face_run), str(tmp_path), "--name", "faces"]) == 0
    assert "edit signatures: 3 attribute directions (gender, smile, young)" in (
        capsys.readouterr().out)
    served = ServedModel(str(tmp_path / "faces"), name="faces")
    metadata = json.loads(served.run("metadata", {})["json"].item())
    assert metadata["directions"]["names"] == ["gender", "smile", "young"]
    assert metadata["signatures"]["edit"]["outputs"]["start"]["shape"] == [-1, 3]

    model = load_trained_model(str(face_run))[0]
    pipeline = FacePipeline(model, "ffhq", seed=0)
    crop = align.align(photo, face.points, "ffhq", pipeline.size).image
    strengths = np.array([[0.0, 2.5, -1.0]], np.float32)
    got = served.run("edit_uint8", {"images": crop[None], "strengths": strengths})

    found = directions.load_directions(face_run, model.latent_dim)
    w = pipeline.encode(crop)
    start = directions.start_values(w, pipeline.w_avg, found)
    values = {n: start[n] + s for n, s in zip(found, strengths[0], strict=True)}
    edited = directions.edit(w, pipeline.w_avg, found, values)
    np.testing.assert_allclose(got["start"][0], [start[n] for n in found], atol=1e-4)
    np.testing.assert_allclose(got["w"][0], edited, atol=1e-4)
    want = pipeline.decode(directions.edited_styles(edited, pipeline.styles(w)))
    assert got["images"].dtype == np.uint8
    assert np.abs(got["images"][0].astype(int) - want).max() <= 1
    with pytest.raises(Exception, match="strengths"):
        served.run("edit", {"images": crop[None] / 255.0, "strengths": strengths[:, :2]})
