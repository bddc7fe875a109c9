"""Data modules: bundled sets, splits, preprocessing fitted on training data only, batching, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from zoo.data.batches import TensorBatches
from zoo.data.preprocess import TabularPreprocessor
from zoo.data.tabular import (
    BostonDataModule,
    CsvDataModule,
    HousePricesDataModule,
    SklearnDataModule,
)
from zoo.errors import ZooError


@pytest.mark.parametrize(
    "dm, task, n_features, n_classes",
    [
        (SklearnDataModule(name="digits", dataset="digits"), "classification", 64, 10),
        (SklearnDataModule(name="iris", dataset="iris"), "classification", 4, 3),
        (SklearnDataModule(name="wine", dataset="wine"), "classification", 13, 3),
        (SklearnDataModule(name="breast_cancer", dataset="breast_cancer"), "classification", 30, 2),
        (BostonDataModule(name="boston"), "regression", 13, 0),
        (BostonDataModule(name="boston", target="above_median"), "classification", 13, 2),
        (HousePricesDataModule(name="house_prices"), "regression", 1, 0),
    ],
)
def test_bundled_sets_declare_what_they_yield(dm, task, n_features, n_classes):
    spec = dm.spec
    assert spec.task == task
    assert spec.input_shape == [n_features]
    assert spec.num_classes == n_classes
    sizes = {k: len(v[0]) for k, v in dm.splits.items()}
    total = sum(sizes.values())
    assert spec.num_train == sizes["train"]
    assert abs(sizes["test"] / total - 0.2) < 0.01 and abs(sizes["val"] / total - 0.1) < 0.01


def test_split_is_stable_and_stratified_whatever_the_training_seed():
    torch.manual_seed(0)
    a = SklearnDataModule(name="digits", dataset="digits")
    a.setup()
    torch.manual_seed(123)
    b = SklearnDataModule(name="digits", dataset="digits")
    b.setup()
    for split in ("train", "val", "test"):
        assert torch.equal(a.splits[split][0], b.splits[split][0])
    full = np.bincount(np.concatenate([a.splits[s][1].numpy() for s in a.splits])) / 1797
    test = np.bincount(a.splits["test"][1].numpy()) / len(a.splits["test"][1])
    assert np.abs(full - test).max() < 0.01  # class proportions kept in the test split


def test_splits_draw_the_rows_scikit_learns_train_test_split_draws():
    from sklearn.model_selection import train_test_split as sklearn_split

    from zoo.data.splits import train_test_split

    rng = np.random.default_rng(0)
    for case in range(300):  # sizes, class counts and balances, shares, seeds; stratified or not
        n, k = int(rng.integers(4, 2000)), int(rng.integers(1, 12))
        labels = rng.choice(k, size=n, p=rng.dirichlet(np.ones(k) * rng.uniform(0.2, 5)))
        counts = np.bincount(labels)
        stratify = labels if case % 4 and counts[counts > 0].min() >= 2 else None
        share, seed, rows = float(rng.uniform(0.01, 0.9)), int(rng.integers(10**6)), np.arange(n) * 3 + 1
        try:
            expected = sklearn_split(rows, test_size=share, random_state=seed, stratify=stratify)
        except ValueError:
            with pytest.raises(ValueError):
                train_test_split(rows, share, seed, stratify)
            continue
        for ours, theirs in zip(train_test_split(rows, share, seed, stratify), expected, strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_standardisation_uses_training_statistics_only():
    dm = BostonDataModule(name="boston")
    dm.setup()
    x_train, x_test = dm.splits["train"][0], dm.splits["test"][0]
    assert torch.allclose(x_train.mean(0), torch.zeros(13), atol=1e-5)
    assert torch.allclose(x_train.std(0, unbiased=False), torch.ones(13), atol=1e-4)
    assert not torch.allclose(x_test.mean(0), torch.zeros(13), atol=1e-2)
    y_train = dm.splits["train"][1]
    assert dm.spec.target_mean[0] == pytest.approx(float(y_train.mean()), rel=1e-5)


def test_batch_size_full_one_and_mini():
    dm = HousePricesDataModule(name="house_prices", batch_size="full")
    dm.setup()
    n = dm.spec.num_train
    assert len(dm.train_dataloader()) == 1 and len(next(iter(dm.train_dataloader()))[0]) == n
    dm.batch_size = 1
    assert len(dm.train_dataloader()) == n
    dm.batch_size = 32
    assert [len(x) for x, _ in dm.train_dataloader()] == [32] * (n // 32) + ([n % 32] if n % 32 else [])


def test_shuffling_depends_on_seed_and_epoch_only():
    x = torch.arange(100).float().unsqueeze(1)
    batches = TensorBatches(x, x, batch_size=10, shuffle=True, seed=7)

    def order(epoch):
        batches.set_epoch(epoch)
        return torch.cat([b for b, _ in batches]).squeeze(1)

    first, again, second = order(0), order(0), order(1)
    assert torch.equal(first, again) and not torch.equal(first, second)
    assert sorted(first.tolist()) == list(range(100))  # every sample once per epoch


def test_a_last_batch_of_one_sample_joins_the_one_before_so_batch_norm_can_train_on_it():
    x = torch.arange(33).float().unsqueeze(1)
    batches = TensorBatches(x, x, batch_size=16, shuffle=True, seed=0)
    assert [len(b) for b, _ in batches] == [16, 17] and len(batches) == 2
    y = torch.arange(34).float().unsqueeze(1)
    assert [len(b) for b, _ in TensorBatches(y, y, batch_size=16)] == [16, 16, 2]
    grouped = TensorBatches(x, x, batch_size=8, shuffle=True, group=2)  # 8, 8, 8, 9: two groups of two
    assert len(grouped) == 2 and [[len(b) for b, _ in g] for g in grouped] == [[8, 8], [8, 9]]
    net = torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.BatchNorm1d(4)).train()
    for b, _ in batches:
        net(b)


@pytest.mark.parametrize("bad", [0, -1, "abc", 2.5])
def test_bad_batch_size_is_refused(bad):
    with pytest.raises(ZooError, match="data.batch_size"):
        HousePricesDataModule(name="house_prices", batch_size=bad)


def write_csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


MIXED = """age,fare,sex,port,survived
22,7.25,male,S,0
38,71.3,female,C,1
26,7.9,female,S,1
35,53.1,female,S,1
,8.05,male,,0
54,51.9,male,S,0
2,21.1,male,Q,0
27,11.1,female,S,1
14,30.1,female,C,1
4,16.7,female,S,1
58,26.6,female,S,1
20,8.05,male,S,0
39,31.3,male,S,0
14,7.85,female,S,0
55,16.0,female,S,1
2,29.1,male,Q,0
,13.0,male,S,1
31,18.0,female,S,0
,7.2,female,C,1
35,26.0,male,S,0
"""


def test_preprocessing_encodes_categories_and_missing_values_from_training_rows():
    train = pd.DataFrame(
        {"age": [22.0, np.nan, 30.0, 40.0], "fare": [7.0, 8.0, 9.0, 10.0], "port": ["S", None, "C", "S"]}
    )
    pre = TabularPreprocessor().fit(train)
    names = pre.feature_names
    assert names == ["age", "fare", "age_missing", "port=<missing>", "port=C", "port=S"]
    row = pre.transform(pd.DataFrame({"age": [np.nan], "fare": [np.nan], "port": ["Q"]}))[0]
    cols = dict(zip(names, row, strict=True))
    assert cols["age"] == pytest.approx((30.0 - 30.5) / np.std([22.0, 30.0, 30.0, 40.0]), rel=1e-5)  # median, scaled
    assert cols["age_missing"] == 1.0
    assert cols["fare"] == pytest.approx((8.5 - 8.5) / np.std([7.0, 8.0, 9.0, 10.0]))  # no indicator for fare
    assert cols["port=<missing>"] == cols["port=C"] == cols["port=S"] == 0.0  # unseen category -> all zeros
    restored = TabularPreprocessor()
    restored.load_state_dict(pre.state_dict())
    assert np.array_equal(restored.transform(train), pre.transform(train))


def test_csv_file_with_mixed_columns_trains_a_classifier_spec(tmp_path):
    dm = CsvDataModule(name="csv", path=str(write_csv(tmp_path, MIXED)), target="survived")
    spec = dm.spec
    assert spec.task == "classification" and spec.class_names == ["0", "1"]
    assert {"age", "fare", "sex=female", "sex=male", "port=S"} <= set(spec.feature_names)
    assert spec.input_shape == [len(spec.feature_names)]


def test_csv_infers_regression_and_it_can_be_overridden(tmp_path):
    path = write_csv(tmp_path, "x,y\n" + "".join(f"{i},{i * 1.5 + 0.1}\n" for i in range(40)))
    assert CsvDataModule(name="csv", path=str(path), target="y").spec.task == "regression"
    ints = write_csv(tmp_path, "x,y\n" + "".join(f"{i},{i % 3}\n" for i in range(40)), "ints.csv")
    assert CsvDataModule(name="csv", path=str(ints), target="y").spec.task == "classification"
    assert CsvDataModule(name="csv", path=str(ints), target="y", task="regression").spec.task == "regression"


@pytest.mark.parametrize(
    "content, target, task, message",
    [
        (None, "y", "auto", r"file '.*nope.csv' not found"),
        ("", "y", "auto", r"is empty"),
        ("x,y\n", "y", "auto", r"header but no rows"),
        ("x,y\n1,2\n", "price", "auto", r"column 'price' is not in .*; set data.target to one of: x, y$"),
        (
            "x;y\n1;2\n",
            "y",
            "auto",
            r"one of: x;y \(the header is one column: is it separated by ';'\? give "
            r"'data.sep=\";\"'\)$",
        ),
        ("x,y\n1,2.5\n2,abc\n3,4.5\n", "y", "regression", r"not numeric \('abc' on line 3\)"),
        ("x,y\n1,a\n2,a\n3,a\n", "y", "auto", r"single class \(a\)"),
        ("x,y\n1,a\n2,b\n3,\n4,a\n", "y", "auto", r"target 'y' is missing in row 3 \(from 1 after the header: line 4 "),
    ],
)
def test_csv_bad_input_gets_one_line_naming_the_problem(tmp_path, content, target, task, message):
    path = tmp_path / "nope.csv" if content is None else write_csv(tmp_path, content)
    with pytest.raises(ZooError, match=message) as err:
        CsvDataModule(name="csv", path=str(path), target=target, task=task).setup()
    assert "\n" not in str(err.value)
