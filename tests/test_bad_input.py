"""Reliability against bad input: at least 15 kinds, each refused with one clear error (the field and what is
allowed) that destroys nothing already written; missing or corrupt data, damaged checkpoints, an unwritable
output folder, zero-division guards. The command line runs in this process (``prkd_cli``)."""

import hashlib
import math

import pytest
import torch

import prkd
from prkd.registry import CorruptCheckpointError
from prkd.learning import get_or_train

from conftest import tiny_fashion_mnist

TINY = dict(n_train=64, n_val=32, n_test=32, batch_size=16, epochs=2)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A complete e2e run and a complete teacher, and a fingerprint of every file under the output folder."""
    root = tmp_path_factory.mktemp("finished")
    registry = prkd.open_registry(root)
    e2e = get_or_train(prkd.make("smoke", mode="e2e", **TINY), registry=registry, progress=False,
                       log=lambda m: None)
    teacher = get_or_train(prkd.make("smoke", mode="teacher", n_masks=2, **TINY), registry=registry,
                           progress=False,
                           log=lambda m: None)
    return root, e2e.id, teacher.id


def _fingerprint(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


SMOKE = ["--preset", "smoke", "--set", "n_train=64", "n_val=32", "n_test=32", "batch_size=16", "epochs=2"]

BAD_INPUTS = {
    "unknown config key": (["--mode", "e2e", *SMOKE, "learning_rate=1"],
                           "unknown config field(s) 'learning_rate'"),
    "wrong type": (["--mode", "e2e", *SMOKE, "T=many"], "'T' must be an integer in [1, 10000]; got 'many'"),
    "alpha < 0": (["--mode", "student", "--alpha", "-0.1", *SMOKE], "'alpha' must be a number in [0, 1]"),
    "beta < 0": (["--mode", "student", "--beta", "-0.1", *SMOKE], "'beta' must be a number in [0, 1]"),
    "alpha + beta > 1": (["--mode", "student", "--alpha", "0.6", "--beta", "0.6", *SMOKE],
                         "'alpha' + 'beta' must be <= 1"),
    "L < 1": (["--mode", "teacher", "--L", "0", *SMOKE], "'n_masks' must be an integer in [1, 64]"),
    "T < 1": (["--mode", "e2e", *SMOKE, "T=0"], "'T' must be an integer in [1, 10000]"),
    "even filter size": (["--mode", "e2e", *SMOKE, "filter_size=4"], "'filter_size' must be an odd integer"),
    "non-positive filter size": (["--mode", "e2e", *SMOKE, "filter_size=-3"],
                                 "'filter_size' must be an integer in [1, 31]"),
    "image size vs U-Net depth": (["--mode", "e2e", *SMOKE, "image_size=18"],
                                  "'image_size' must be a multiple of 2**(unet_depth-1) = 4"),
    "learning rate <= 0": (["--mode", "e2e", *SMOKE, "lr=0"], "'lr' must be a number in (0, 1]"),
    "batch size <= 0": (["--mode", "e2e", *SMOKE, "batch_size=0"],
                        "'batch_size' must be an integer in [1, 65536]"),
    "epochs <= 0": (["--mode", "e2e", *SMOKE, "epochs=-1"], "'epochs' must be an integer in [1, 100000]"),
    "unknown preset": (["--mode", "e2e", "--preset", "huge"], "invalid choice: 'huge'"),
    "unknown mode": (["--mode", "wizard", *SMOKE], "invalid choice: 'wizard'"),
}
REFUSED_BY_ARGPARSE = {"unknown preset", "unknown mode"}  # SystemExit(2) from the parser; the others return 2


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_clear_error_and_destroys_nothing(case, finished, prkd_cli):
    root, _, _ = finished
    before = _fingerprint(root)
    args, message = BAD_INPUTS[case]
    result = prkd_cli("train", *args, root=root)
    assert result.returncode == 2 and result.exited == (case in REFUSED_BY_ARGPARSE), result
    assert message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert _fingerprint(root) == before


def test_missing_fashion_mnist_lists_the_ways_to_get_it(finished, tmp_path, monkeypatch, prkd_cli):
    import torchvision.datasets

    import prkd.data as data
    root, _, _ = finished
    before = _fingerprint(root)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")

    def offline(self):
        raise RuntimeError("no network")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", offline)
    monkeypatch.delenv("PRKD_DATA_DIR", raising=False)
    monkeypatch.setenv("PRKD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no ./data here
    result = prkd_cli("train", "--mode", "e2e", *SMOKE, "n_train=63", root=root)
    assert result.returncode == 2 and not result.exited, result.stderr[-2000:]
    for way in ("PRKD_DATA_DIR", "apt-get install dataset-fashion-mnist", "torchvision download"):
        assert way in result.stderr
    assert "Traceback" not in result.stderr
    new = set(_fingerprint(root)) - set(before)
    assert all(p.endswith("config.json") for p in new)  # at most the new run's config, nothing overwritten
    assert {k: v for k, v in _fingerprint(root).items() if k in before} == before


def test_corrupt_idx_file_is_named(finished, tmp_path, monkeypatch, prkd_cli):
    import prkd.data as data
    root, _, _ = finished
    bad = tmp_path / "bad-data"
    md5 = tiny_fashion_mnist(bad)  # tiny synthetic IDX files; prkd accepts them by their MD5s
    blob = bytearray((bad / "train-images-idx3-ubyte.gz").read_bytes())
    (bad / "train-images-idx3-ubyte.gz").write_bytes(bytes(blob[: len(blob) // 2]))
    for name, digest in md5.items():
        monkeypatch.setitem(data.FASHION_MNIST_MD5, name, digest)
    monkeypatch.setenv("PRKD_DATA_DIR", str(bad))
    monkeypatch.setenv("PRKD_CACHE_DIR", str(tmp_path / "cache"))
    result = prkd_cli("train", "--mode", "e2e", *SMOKE, "n_train=62", root=root)
    assert result.returncode == 2 and not result.exited
    assert "train-images-idx3-ubyte.gz" in result.stderr and "truncated" in result.stderr
    assert "Traceback" not in result.stderr


def test_student_pointed_at_a_missing_or_mismatched_teacher(finished, prkd_cli):
    root, e2e_id, teacher_id = finished
    before = _fingerprint(root)
    missing = prkd_cli("train", "--mode", "student", "--teacher-run", "teacher-L9-nope", *SMOKE, root=root)
    assert missing.returncode == 2 and "run 'teacher-L9-nope' does not exist" in missing.stderr
    mismatch = prkd_cli("train", "--mode", "student", "--teacher-run", teacher_id, *SMOKE[:2], "--set",
                        "image_size=24", "n_train=64", "n_val=32", "n_test=32", "batch_size=16", "epochs=2",
                        root=root)
    assert mismatch.returncode == 2 and "image_size=16 but the student has image_size=24" in mismatch.stderr
    assert not missing.exited and not mismatch.exited and "Traceback" not in missing.stderr + mismatch.stderr
    assert _fingerprint(root) == before


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_checkpoint_gives_a_clear_message_and_is_not_deleted(damage, tmp_path, monkeypatch, registry):
    cfg = prkd.make("smoke", mode="e2e", **TINY)
    run = registry.run_for(cfg)
    run.path.mkdir(parents=True)
    good = tmp_path / "good.pt"
    torch.save({"model": {}, "epoch": 1}, good)
    blob = good.read_bytes()[:50] if damage == "truncated" else b"not a checkpoint at all"
    run.checkpoint_file.write_bytes(blob)
    with pytest.raises(CorruptCheckpointError,
                       match="checkpoint.pt is truncated, corrupt or not a prkd file"):
        get_or_train(cfg, registry=registry, progress=False, log=lambda m: None)
    assert run.checkpoint_file.read_bytes() == blob


def test_output_folder_that_cannot_be_written(tmp_path, prkd_cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = prkd_cli("train", "--mode", "e2e", *SMOKE, root=blocker / "outputs")
    assert result.returncode == 2 and not result.exited and "cannot be written" in result.stderr
    assert "PRKD_OUTPUT_DIR" in result.stderr
    assert blocker.read_text() == "x"


def test_division_by_zero_is_guarded_in_the_normalisations():
    system = prkd.PRSystem(prkd.make("smoke"))
    z = system.initialize(torch.zeros(2, 1, 16, 16))  # an all-zero measurement
    assert torch.isfinite(torch.view_as_real(z)).all()
    from prkd.physics.spectral_init import SpectralInit
    init = SpectralInit(size=16, T=3)
    init.z0.zero_()  # a zero initial vector
    y = system.sensing(system.scene(torch.rand(2, 1, 16, 16)))
    assert torch.isfinite(torch.view_as_real(init(y, system.sensing))).all()
    from prkd.physics.optics import add_noise
    assert torch.isfinite(add_noise(torch.zeros(1, 1, 4, 4), kind="poisson", photons=10.0)).all()
    assert math.isfinite(float(prkd.metrics.correlation(torch.zeros(1, 4, 4, dtype=torch.complex64),
                                                        torch.ones(1, 4, 4, dtype=torch.complex64))))
