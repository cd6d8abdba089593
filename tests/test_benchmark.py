"""The benchmark script runs end to end at the smoke shapes and reports every figure (no timing is asserted)."""

import json
import math
import subprocess
import sys

import pytest

from conftest import REPO

FIGURES = ["train_step_images_per_s_teacher", "train_step_images_per_s_e2e", "train_step_images_per_s_random",
           "train_step_images_per_s_student", "kd_over_e2e_step_time", "kd_over_e2e_peak_memory",
           "init_backward_memory_ratio", "init_backward_time_ratio", "init_vs_fft_floor",
           "teacher_over_student_inference", "allocator_speedup", "init_vs_deepinv", "init_vs_deepinv_min_cosine",
           "unet_gflop_per_image", "init_mb_per_image_L3", "estimate_gpu_hours_teacher_L3",
           "estimate_gpu_hours_student_L1", "train_step_peak_mb_e2e", "train_step_peak_mb_student",
           "init_backward_peak_mb_plain", "init_backward_peak_mb_recompute", "init_backward_step_ms_plain",
           "init_backward_peak_mb_frozen", "init_backward_memory_ratio_above_frozen"]


def test_benchmark_prints_and_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench.py"), "--preset", "smoke",
                             "--repeats", "1", "--steps", "1", "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    with capsys.disabled():  # the figures go to the test log (CI's too), unasserted
        print("\nbenchmarks/bench.py --preset smoke:\n" + result.stdout)
    printed = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    record = json.loads(out.read_text())
    for name in FIGURES:
        assert float(printed[name]) == pytest.approx(record["figures"][name], rel=1e-3), name
        # a difference of two peaks at these tiny shapes can come out at or below zero: finite is all it must be
        floor = -math.inf if name.endswith("_above_frozen") else 0
        assert math.isfinite(record["figures"][name]) and record["figures"][name] > floor, name
    assert record["preset"] == "smoke" and record["torch"] and record["device"] and record["date"]


def test_step_time_script_runs_with_either_allocator():
    import os
    for extra in ({}, {"PRKD_ALLOCATOR": "default"}):
        env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"} | extra
        result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "step_time.py"), "--L", "2", "--size", "16",
                                 "--batch", "4", "--steps", "1"], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "ms per step" in result.stdout
        assert ("glibc defaults" in result.stdout) == bool(extra)


def test_gpu_estimate_counts_follow_the_shapes():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench
    import prkd
    paper, quick = prkd.make("paper"), prkd.make("quick")
    # 96x96 vs 32x32 images: 9x the pixels; the paper's U-Net is also 4x wider and one level deeper
    assert bench.unet_gflop_per_image(paper) > 9 * 16 * bench.unet_gflop_per_image(quick) / 2
    assert bench.init_mb_per_image(prkd.make("paper", n_masks=15)) == pytest.approx(15 * bench.init_mb_per_image(paper))
    hours = bench.estimate_gpu_hours(paper, 80.0, 1000.0)
    assert hours == pytest.approx(120 * (3 * 30_000 + 30_000) * (bench.unet_gflop_per_image(paper) / 80e3 +
                                                                    bench.init_mb_per_image(paper) / 1e6) / 3600)


def test_an_unknown_group_is_refused_naming_the_allowed_ones(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench.py"), "--preset", "smoke",
                             "--only", "kd_time,speed", "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 2 and not out.exists()
    assert "--only" in result.stderr and "speed" in result.stderr and "init_backward_time" in result.stderr
