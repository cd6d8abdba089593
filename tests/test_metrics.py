import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from prkd.metrics import correlation, psnr, ssim


@pytest.fixture
def pairs():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(5, 1, 32, 32, generator=gen)
    x_hat = (x + 0.1 * torch.randn(5, 1, 32, 32, generator=gen)).clamp(0, 1)
    return x_hat, x


def test_ssim_agrees_with_skimage_per_image(pairs):
    x_hat, x = pairs
    ours = ssim(x_hat, x)
    for i in range(len(x)):
        ref = structural_similarity(x_hat[i, 0].numpy().astype(np.float64),
                                    x[i, 0].numpy().astype(np.float64),
                                    data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
        assert abs(ours[i].item() - ref) < 1e-3


def test_ssim_agrees_with_skimage_on_the_smallest_images():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, 16, 16, generator=gen)
    x_hat = x.flip(-1)
    for i in range(2):
        ref = structural_similarity(x_hat[i, 0].double().numpy(), x[i, 0].double().numpy(), data_range=1.0,
                                    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert abs(ssim(x_hat, x)[i].item() - ref) < 1e-3


def test_psnr_agrees_with_skimage_per_image(pairs):
    x_hat, x = pairs
    ours = psnr(x_hat, x)
    for i in range(len(x)):
        ref = peak_signal_noise_ratio(x[i, 0].double().numpy(), x_hat[i, 0].double().numpy(), data_range=1.0)
        assert abs(ours[i].item() - ref) < 1e-3


def test_metrics_are_averaged_per_image_not_over_the_batch():
    x = torch.zeros(2, 1, 16, 16)
    x_hat = x.clone()
    x_hat[0] += 0.1    # MSE 0.01 -> 20 dB
    x_hat[1] += 0.001  # MSE 1e-6 -> 60 dB
    per_image = psnr(x_hat, x)
    torch.testing.assert_close(per_image, torch.tensor([20.0, 60.0]), rtol=1e-4, atol=1e-4)
    batch_psnr = -10 * torch.log10((x_hat - x).square().mean())  # what we must NOT report
    assert per_image.mean() > batch_psnr + 10


def test_estimate_is_clamped_to_the_data_range():
    x = torch.full((1, 1, 16, 16), 1.0)
    torch.testing.assert_close(psnr(torch.full_like(x, 3.0), x), torch.tensor([float("inf")]))


def test_ssim_of_identical_images_is_one_and_shapes_are_checked():
    x = torch.rand(3, 16, 16)
    torch.testing.assert_close(ssim(x, x), torch.ones(3))
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(x, x[:, :8])
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x[:, :8, :8], x[:, :8, :8])


def test_correlation_ignores_global_phase_and_scale():
    x = torch.randn(2, 8, 8, dtype=torch.complex64)
    torch.testing.assert_close(correlation(3.0 * x * 1j, x), torch.ones(2))
