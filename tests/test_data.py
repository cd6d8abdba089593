import gzip
import shutil

import pytest
import torch

import prkd
from prkd import data
from prkd.physics.scene import phase_object
from prkd.data import (CorruptDataError, DataNotFoundError, load_splits, locate_fashion_mnist,
                       to_images)

from conftest import tiny_fashion_mnist


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRKD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def no_other_sources(monkeypatch, tmp_path):
    """Hide ./data and Debian's folder, so only the source under test can be found."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.delenv("PRKD_DATA_DIR", raising=False)


@pytest.fixture
def tiny(monkeypatch):
    """Write tiny synthetic IDX files (``tiny(folder)``) that prkd accepts: its MD5s are patched to theirs."""
    def write(folder, **kw):
        md5 = tiny_fashion_mnist(folder, **kw)
        monkeypatch.setattr(data, "FASHION_MNIST_MD5", md5)
        return md5
    return write


def _torchvision_shapes(root):
    from torchvision.datasets import FashionMNIST
    return (FashionMNIST(str(root), train=True).data.shape,
            FashionMNIST(str(root), train=False).targets.shape)


@pytest.fixture(scope="module")
def paper_splits():
    return load_splits(prkd.make("paper").data, download=False)


@pytest.mark.real_data
def test_split_sizes_and_disjointness_at_paper_scale(paper_splits):
    from torchvision.datasets import FashionMNIST
    s = paper_splits
    assert s.train.shape == (30_000, 28, 28) and s.val.shape == (30_000, 28, 28)
    assert s.test.shape == (10_000, 28, 28)
    assert s.train.dtype == torch.uint8
    # train + validation is a permutation of the 60k training images: every image used exactly once.
    key = torch.randn(784, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    split_keys = (torch.cat([s.train, s.val]).flatten(1).double() @ key).sort().values
    all_images = FashionMNIST(str(locate_fashion_mnist(download=False)), train=True).data
    assert torch.equal(split_keys, (all_images.flatten(1).double() @ key).sort().values)
    assert torch.bincount(torch.cat([s.train_labels, s.val_labels])).tolist() == [6000] * 10


@pytest.mark.real_data
def test_split_is_fixed_and_subsets_are_prefixes(paper_splits):
    full = paper_splits
    small = load_splits(prkd.make("quick", n_train=100, n_val=50, n_test=20).data, download=False)
    assert torch.equal(small.train, full.train[:100]) and torch.equal(small.val, full.val[:50])
    assert torch.equal(small.test, full.test[:20])


@pytest.mark.real_data
def test_first_training_labels_match_the_original_files():
    from torchvision.datasets import FashionMNIST
    root = locate_fashion_mnist(download=False)
    assert FashionMNIST(str(root), train=True).targets[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]


def test_debian_layout_with_rewritten_gzip_headers_is_accepted(tmp_path, cache, no_other_sources, monkeypatch,
                                                               tiny):
    # Debian's build drops the gzip FNAME field and changes mtime: the .gz bytes differ, the content does not.
    upstream = tmp_path / "upstream"
    md5 = tiny(upstream)
    debian = tmp_path / "debian"
    debian.mkdir()
    sources = sorted(upstream.glob("*.gz"))
    assert len(sources) == 4
    for src in sources:
        original = src.read_bytes()
        assert original[3] == 0x08, "upstream files carry the FNAME field"
        name_end = original.index(b"\0", 10)
        assert original[10:name_end] == src.stem.encode()
        mtime = (1234567890).to_bytes(4, "little")
        debian_bytes = b"\x1f\x8b\x08\x00" + mtime + original[8:10] + original[name_end + 1:]
        (debian / src.name).write_bytes(debian_bytes)
        assert debian_bytes != original
        with gzip.open(debian / src.name) as a, gzip.open(src) as b:
            assert a.read() == b.read()
    monkeypatch.setattr(data, "DEBIAN_DIR", debian)
    root = locate_fashion_mnist(download=False)
    staged = cache / "FashionMNIST" / "raw"
    assert root == cache and (staged / "train-images-idx3-ubyte").is_file()
    assert {name: data._md5(staged / name) for name in md5} == md5
    assert _torchvision_shapes(root) == ((12, 28, 28), (6,))


def test_unpacked_torchvision_layout_in_dot_data_is_accepted(tmp_path, cache, no_other_sources, tiny):
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    tiny(raw, gzipped=False)
    assert not list(raw.glob("*.gz")) and len(list(raw.iterdir())) == 4
    assert locate_fashion_mnist(download=False) == cache
    assert _torchvision_shapes(cache) == ((12, 28, 28), (6,))


def test_missing_data_lists_the_three_ways(cache, no_other_sources, monkeypatch):
    from torchvision.datasets import FashionMNIST

    def offline(self):
        raise RuntimeError("no network")

    monkeypatch.setattr(FashionMNIST, "download", offline)
    with pytest.raises(DataNotFoundError) as err:
        locate_fashion_mnist()
    msg = str(err.value)
    assert "PRKD_DATA_DIR" in msg and "dataset-fashion-mnist" in msg and "torchvision" in msg
    assert "no network" in msg


def test_truncated_file_gives_a_clear_error_and_leaves_the_cache_intact(tmp_path, cache, tiny):
    good_dir = tmp_path / "good"
    md5 = tiny(good_dir)
    locate_fashion_mnist(good_dir, download=False)  # a good staged copy exists
    staged = cache / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    good = staged.read_bytes()
    bad = tmp_path / "bad"
    shutil.copytree(good_dir, bad)
    staged.unlink()
    original = (good_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
    # cut inside the deflate stream
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(original[: len(original) - 12])
    with pytest.raises(CorruptDataError, match="t10k-labels-idx1-ubyte.gz.*truncated"):
        locate_fashion_mnist(bad, download=False)
    assert not list(staged.parent.glob(".*")), "a temporary file was left behind"
    assert not staged.exists(), "half a file was staged"
    others = sorted(set(md5) - {staged.name})
    assert {n: data._md5(staged.parent / n) for n in others} == {n: md5[n] for n in others}
    staged.write_bytes(good)
    assert _torchvision_shapes(cache) == ((12, 28, 28), (6,))


def test_to_images_resizes_into_the_unit_interval():
    raw = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    img = to_images(raw, 32)
    assert img.shape == (3, 1, 32, 32) and img.min() >= 0 and img.max() <= 1
    assert torch.equal(to_images(raw, 28)[:, 0], raw.float() / 255)


def test_phase_object_is_unit_modulus_with_the_chosen_phase():
    img = torch.rand(2, 1, 8, 8)
    x = phase_object(img, phase_range=torch.pi)
    assert x.shape == (2, 8, 8) and x.is_complex()
    torch.testing.assert_close(x.abs(), torch.ones(2, 8, 8))
    torch.testing.assert_close(x.angle(), torch.pi * img[:, 0], atol=1e-5, rtol=0)


def test_padding_places_the_object_in_a_larger_zero_field():
    img = torch.rand(1, 1, 8, 8)
    x = phase_object(img, phase_range=1.0, pad_factor=2)
    assert x.shape == (1, 16, 16)
    assert x[:, 8:, :].abs().max() == 0 and x[:, :, 8:].abs().max() == 0
    torch.testing.assert_close(x[:, :8, :8], phase_object(img, phase_range=1.0))
