"""Datasets: seeded, stratified, fresh tensors, ill-scaled features spanning 1000×."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bn_core.data import DATASETS, MAX_ILL_SCALE, DataConfig, ill_scale_factors, load_dataset, train_size


def test_digits_split_is_stratified_scaled_and_typed() -> None:
    split = load_dataset(DataConfig("digits"))
    assert split.x_train.shape == (1347, 64) and split.x_test.shape == (450, 64)
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    assert split.image_shape == (1, 8, 8) and split.n_classes == 10 and split.n_features == 64
    x_all = torch.cat([split.x_train, split.x_test])
    assert x_all.min() == 0.0 and x_all.max() == 1.0
    train_counts = torch.bincount(split.y_train, minlength=10).double()
    test_counts = torch.bincount(split.y_test, minlength=10).double()
    share = test_counts / (train_counts + test_counts)  # every class holds out ~25 %
    assert torch.all((share - 0.25).abs() < 0.01)
    # no example is in both sets: rows of digits are distinct enough to check by content
    train_rows = {tuple(r) for r in split.x_train.tolist()}
    assert sum(tuple(r) in train_rows for r in split.x_test.tolist()) < 5  # a few duplicate images exist


def test_same_config_same_data_and_seed_changes_split() -> None:
    a, b = load_dataset(DataConfig("digits", seed=1)), load_dataset(DataConfig("digits", seed=1))
    c = load_dataset(DataConfig("digits", seed=2))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_train, c.y_train)
    for name in DATASETS[1:]:
        assert torch.equal(load_dataset(DataConfig(name)).x_train, load_dataset(DataConfig(name)).x_train)
        assert not torch.equal(load_dataset(DataConfig(name)).x_train, load_dataset(DataConfig(name, seed=5)).x_train)


def test_callers_cannot_corrupt_the_cache() -> None:
    first = load_dataset(DataConfig("digits"))
    snapshot = first.x_train.clone()
    first.x_train.fill_(7.0)
    first.y_train.zero_()
    again = load_dataset(DataConfig("digits"))
    assert torch.equal(again.x_train, snapshot)
    assert again.y_train.max() == 9


def test_no_global_random_state_is_touched() -> None:
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    for name in DATASETS:
        load_dataset(DataConfig(name, seed=3, ill_scaled=True))
    assert torch.equal(torch_state, torch.random.get_rng_state())
    assert np.array_equal(np_state, np.random.get_state()[1])


@pytest.mark.parametrize(
    ("cfg", "n_features", "n_classes"),
    [
        (DataConfig("moons", n_samples=400), 2, 2),
        (DataConfig("circles", n_samples=400), 2, 2),
        (DataConfig("spirals", n_samples=600, n_classes=5), 2, 5),
        (DataConfig("spirals", n_samples=600), 2, 3),
        (DataConfig("blobs", n_samples=600, n_features=32, n_classes=6), 32, 6),
    ],
)
def test_synthetic_shapes_and_balanced_classes(cfg: DataConfig, n_features: int, n_classes: int) -> None:
    split = load_dataset(cfg)
    assert split.n_classes == n_classes and split.n_features == n_features and split.image_shape is None
    assert len(split.y_train) + len(split.y_test) == cfg.n_samples
    counts = torch.bincount(torch.cat([split.y_train, split.y_test]), minlength=n_classes)
    assert counts.max() - counts.min() <= 1
    assert abs(len(split.y_test) / cfg.n_samples - 0.25) < 0.02
    assert torch.isfinite(split.x_train).all()


def test_synthetic_geometry() -> None:
    circles = load_dataset(DataConfig("circles", n_samples=1000, noise=0.0))
    radius = circles.x_train.norm(dim=1)
    assert torch.allclose(radius[circles.y_train == 0], torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(radius[circles.y_train == 1], torch.tensor(0.5), atol=1e-5)
    noisy = load_dataset(DataConfig("blobs", n_samples=2000, n_features=4, n_classes=2, noise=0.5))
    within = noisy.x_train[noisy.y_train == 0]
    assert torch.allclose(within.std(dim=0), torch.full((4,), 0.5), atol=0.05)  # cluster std = noise


def test_ill_scale_factors_span_a_thousandfold() -> None:
    scales = ill_scale_factors(64, seed=0)
    assert scales.min() == pytest.approx(1.0) and scales.max() == pytest.approx(MAX_ILL_SCALE)
    assert np.allclose(np.diff(np.log10(np.sort(scales))), 3.0 / 63)  # log-spaced
    assert not np.all(np.diff(scales) > 0)  # shuffled: not tied to the feature index


def test_ill_scaled_features_are_the_plain_ones_times_the_scales() -> None:
    plain = load_dataset(DataConfig("blobs", n_samples=800, n_features=10, n_classes=3))
    ill = load_dataset(DataConfig("blobs", n_samples=800, n_features=10, n_classes=3, ill_scaled=True))
    scales = torch.tensor(ill.feature_scales, dtype=torch.float32)
    assert torch.allclose(ill.x_train, plain.x_train * scales, rtol=1e-5)
    spread = ill.x_train.std(dim=0) / plain.x_train.std(dim=0)
    assert 900 < (spread.max() / spread.min()).item() < 1100
    digits = load_dataset(DataConfig("digits", ill_scaled=True))
    col_max = digits.x_train.max(dim=0).values
    used = col_max > 0
    assert (col_max[used].max() / col_max[used].min()).item() > 300  # pixels now live on very different scales


@pytest.mark.parametrize(
    "cfg",
    [
        DataConfig("mnist"),  # type: ignore[arg-type]
        DataConfig("moons", n_samples=3),
        DataConfig("blobs", n_classes=1),
        DataConfig("digits", test_fraction=1.0),
        DataConfig("moons", noise=-1.0),
    ],
)
def test_bad_configs_raise_value_error(cfg: DataConfig) -> None:
    with pytest.raises(ValueError):
        load_dataset(cfg)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_train_size_is_the_training_split_length(name: str) -> None:
    cfg = DataConfig(name, seed=3)
    assert train_size(cfg) == len(load_dataset(cfg).y_train) and train_size(cfg) == train_size(DataConfig(name, seed=3))


def test_digits_are_scikit_learns_read_without_importing_it(monkeypatch) -> None:
    """The bundled file, read directly, is exactly ``load_digits()``; without the file, load_digits is asked."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from bn_core import digits

    bunch = load_digits()
    direct = digits.read_digits_table()
    assert direct.shape == (1797, 65)
    assert np.array_equal(direct[:, :-1], bunch.data) and np.array_equal(direct[:, -1], bunch.target)
    monkeypatch.setattr(digits, "DIGITS_FILE", ("no", "such", "file.csv.gz"))
    assert np.array_equal(digits.read_digits_table(), direct)  # the fallback gives the same table
    probe = "import sys; from bn_core import data as d; d.load_dataset(d.DataConfig()); print('sklearn' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(digits.__file__).parents[1],
    )
    assert out.stdout.strip() == "False"  # a fresh process loads the digits and never imports scikit-learn
