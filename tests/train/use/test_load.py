"""The Python API: ``load_model(run)``, then ``model(images)`` / ``model.predict(...)`` give probabilities and
logits with class names, the same as ``train predict``."""
import numpy as np
import pytest
from PIL import Image

import cxr_lt
from train import load_model
from train.use.predict import predict_logits


def paths_of(raw_dir, n=5):
    return sorted(raw_dir.rglob("*.png"))[:n]


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_a_model_called_on_paths_gives_predicts_logits_and_their_softmax(stage1_run, raw_dir):
    model = cxr_lt.load_model(stage1_run)
    paths = paths_of(raw_dir)
    scores = model(paths)
    want, _, _ = predict_logits(model, paths, workers=0)
    np.testing.assert_array_equal(scores.logits, want)
    np.testing.assert_allclose(scores.probabilities, softmax(want), rtol=1e-12)
    assert scores.class_names == model.class_names and list(scores.frame().columns) == model.class_names
    assert scores.top() == [model.class_names[k] for k in want.argmax(1)]


def test_predict_takes_arrays_pil_images_and_one_image_and_any_batch_size(stage1_run, raw_dir):
    model = load_model(stage1_run)
    paths = paths_of(raw_dir)
    by_path = model.predict(paths, batch_size=2).logits
    arrays = [np.asarray(Image.open(p)) for p in paths]
    np.testing.assert_allclose(model.predict(arrays, batch_size=3).logits, by_path, atol=1e-6)
    np.testing.assert_allclose(model.predict([Image.open(p) for p in paths]).logits, by_path, atol=1e-6)
    one = model.predict(paths[0])
    assert one.probabilities.shape == (1, len(model.class_names))
    np.testing.assert_allclose(one.logits[0], by_path[0], atol=1e-6)


def test_a_multi_label_models_probabilities_are_a_sigmoid_per_class(ml_stage1_run, raw_dir):
    scores = load_model(ml_stage1_run)(paths_of(raw_dir, 3))
    np.testing.assert_allclose(scores.probabilities, 1 / (1 + np.exp(-scores.logits)), rtol=1e-12)


def test_an_unreadable_image_in_memory_is_named_by_its_position(stage1_run):
    from shards.errors import UsageError

    with pytest.raises(UsageError, match="image 1 \\(in memory\\)"):
        load_model(stage1_run).predict([np.zeros((8, 8), np.uint8), np.zeros((2, 2, 2, 2), np.uint8)])
