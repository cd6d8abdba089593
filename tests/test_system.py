"""PRSystem and the U-Net: bottleneck exposed, batch independence, determinism, devices, frozen optics."""

import pytest
import torch

import prkd
from prkd.data import to_images
from prkd.metrics import psnr, ssim
from prkd.nets.unet import UNet


@pytest.mark.parametrize("depth, width, n", [(2, 4, 8), (3, 8, 16), (4, 16, 32)])
def test_unet_shapes_and_bottleneck(depth, width, n):
    net = UNet(depth=depth, width=width)
    x_hat, features = net(torch.randn(2, 2, n, n))
    assert x_hat.shape == (2, 1, n, n)
    s = n // 2 ** (depth - 1)
    assert features.shape == (2, width * 2 ** (depth - 1), s, s) == (2, *net.feature_shape(n))


def test_system_returns_y_z_x_hat_and_features(device):
    cfg = prkd.make("smoke", n_masks=3)
    system = prkd.PRSystem(cfg).to(device)
    out = system(torch.rand(4, 1, 16, 16).to(device))
    assert out.y.shape == (4, 3, 16, 16) and out.z.shape == (4, 16, 16) and out.z.is_complex()
    assert out.x_hat.shape == (4, 1, 16, 16) and out.features.shape == (4, 32, 4, 4)


def test_padded_scene_is_cropped_back_before_the_unet():
    cfg = prkd.make("smoke", pad_factor=2)
    out = prkd.PRSystem(cfg)(torch.rand(2, 1, 16, 16))
    assert out.y.shape == (2, 1, 32, 32) and out.z.shape == (2, 16, 16) and out.x_hat.shape == (2, 1, 16, 16)


def test_an_image_gives_the_same_result_alone_or_in_a_batch(test_images):
    cfg = prkd.make("quick", n_masks=3)
    system = prkd.PRSystem(cfg).eval()
    img = to_images(test_images[:8], cfg.data.image_size)
    with torch.no_grad():
        batch = system(img)
        alone = system(img[5:6])
    torch.testing.assert_close(alone.z, batch.z[5:6], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(alone.x_hat, batch.x_hat[5:6], atol=1e-6, rtol=1e-5)
    target = img[5:6]
    assert abs(psnr(alone.x_hat, target) - psnr(batch.x_hat, img)[5]) < 1e-6
    assert abs(ssim(alone.x_hat, target) - ssim(batch.x_hat, img)[5]) < 1e-6


def test_same_config_and_seed_give_identical_systems_other_seeds_differ():
    a, b = prkd.PRSystem(prkd.make("smoke", seed=3)), prkd.PRSystem(prkd.make("smoke", seed=3))
    c = prkd.PRSystem(prkd.make("smoke", seed=4))
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.sensing.phi, c.sensing.phi)
    assert not torch.equal(a.unet.head.weight, c.unet.head.weight)


def test_building_a_system_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    prkd.PRSystem(prkd.make("smoke"))
    assert torch.equal(torch.rand(3), expected)


def test_random_baseline_freezes_phi_and_psi_only():
    system = prkd.PRSystem(prkd.make("smoke"), trainable_optics=False)
    assert not system.sensing.phi.requires_grad and not system.init.filter.psi.requires_grad
    assert all(p.requires_grad for p in system.unet.parameters())


def test_gradients_reach_every_trainable_part(device):
    system = prkd.PRSystem(prkd.make("smoke", n_masks=2)).to(device)
    out = system(torch.rand(4, 1, 16, 16).to(device))
    (out.x_hat.square().mean() + out.features.mean()).backward()
    for name, p in system.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert system.sensing.phi.grad.abs().sum() > 0 and system.init.filter.psi.grad.abs().sum() > 0


def test_mask_penalty_is_zero_when_its_weight_is_zero():
    assert prkd.PRSystem(prkd.make("smoke", rho=0.0)).mask_penalty().item() == 0.0
    assert prkd.PRSystem(prkd.make("smoke", rho=2.0)).mask_penalty().item() > 0.0


def test_default_device_is_chosen_once_and_overridable(monkeypatch):
    monkeypatch.setenv("PRKD_DEVICE", "cpu")
    assert prkd.default_device() == torch.device("cpu")
    monkeypatch.delenv("PRKD_DEVICE")
    assert prkd.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_channels_last_unet_matches_the_contiguous_layout():
    torch.manual_seed(0)
    net = UNet(depth=3, width=8).eval()
    assert net.head.weight.is_contiguous(memory_format=torch.channels_last)
    z = torch.randn(3, 2, 16, 16)
    plain = UNet(depth=3, width=8).eval().to(memory_format=torch.contiguous_format)
    plain.load_state_dict(net.state_dict())
    for (a, fa), (b, fb) in [(net(z), plain(z))]:
        assert torch.allclose(a, b, atol=1e-5) and torch.allclose(fa, fb, atol=1e-5)


def test_unet_precision_is_float32_on_the_cpu_and_bfloat16_autocast_on_cuda(device):
    img = torch.rand(4, 1, 16, 16).to(device)
    auto = prkd.PRSystem(prkd.make("smoke")).to(device).eval()
    exact = prkd.PRSystem(prkd.make("smoke", precision="float32")).to(device).eval()
    with torch.no_grad():
        a, b = auto(img), exact(img)
    assert a.x_hat.dtype == a.features.dtype == torch.float32
    # the optics and the initialization are float32 always
    assert torch.equal(a.y, b.y) and torch.equal(a.z, b.z)
    if device.type == "cpu":
        assert torch.equal(a.x_hat, b.x_hat)
    else:  # bfloat16 keeps ~3 significant digits
        assert not torch.equal(a.x_hat, b.x_hat) and torch.allclose(a.x_hat, b.x_hat, atol=0.05, rtol=0.05)


def test_peak_memory_counts_this_work_only():
    from prkd.utils.memory import PeakMemory
    cpu = torch.device("cpu")
    earlier = torch.ones(64, 2**20)  # 256 MB, freed before tracking starts: its pages may stay resident
    del earlier
    with PeakMemory(cpu) as tracker:
        assert tracker.mb() < 50
        block = torch.ones(32, 2**20)  # 128 MB
        assert 120 < tracker.mb() < 200, (tracker.kind, tracker.mb())
        del block
        assert 120 < tracker.mb() < 200  # the peak stays
    with PeakMemory(cpu) as later:  # a new tracker does not see the earlier work's peak
        small = torch.ones(4, 2**20)
        assert 10 < later.mb() < 60
        del small
