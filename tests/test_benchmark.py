"""The benchmark scripts run end to end at the smoke shapes and report every figure (no timing is asserted).

The scripts in benchmarks/ are run as scripts (subprocess), as a user runs them; the one module the tests
call directly (benchmarks/estimates.py, which imports prkd only) is loaded from its file path."""

import importlib.util
import json
import math
import os
import platform
import subprocess
import sys

import pytest

from conftest import REPO
from prkd.utils.allocator import TUNABLES

BENCHMARKS = REPO / "benchmarks"

#: every figure ``bench.py --preset smoke`` reports (at presets measuring several L_t, measured ones end in
#: _L<L>)
FIGURES = ["train_step_images_per_s_teacher", "train_step_images_per_s_e2e", "train_step_images_per_s_random",
           "train_step_images_per_s_student", "train_step_peak_mb_teacher", "train_step_peak_mb_e2e",
           "train_step_peak_mb_random", "train_step_peak_mb_student", "kd_over_e2e_peak_memory",
           "backward_peak_mb_recompute", "backward_peak_mb_plain", "backward_peak_mb_frozen",
           "backward_step_ms_recompute", "backward_step_ms_plain", "backward_step_ms_frozen",
           "backward_memory_ratio", "backward_memory_ratio_above_frozen",
           "kd_over_e2e_step_time", "backward_time_ratio", "init_vs_deepinv", "init_vs_deepinv_min_cosine",
           "init_vs_fft_floor", "init_backward_vs_fft_floor",
           "init_share_ffts", "init_share_products", "init_share_filter", "init_share_norms",
           "init_share_other",
           "step_fraction_of_peak_teacher", "step_fraction_of_peak_e2e", "step_fraction_of_peak_random",
           "step_fraction_of_peak_student", "step_gflop_teacher", "step_gflop_e2e", "step_gflop_random",
           "step_gflop_student", "unet_fraction_of_peak", "conv_peak_gflops_float32",
           "conv_peak_gflops_bfloat16",
           "teacher_over_student_inference", "teacher_inference_ms_per_batch",
           "student_inference_ms_per_batch", "unrolled_over_unet_step_time", "unrolled_over_unet_inference",
           "unrolled_over_unet_peak_memory", "train_step_peak_mb_e2e_unrolled", "train_step_peak_mb_e2e_unet",
           "allocator_speedup", "gemm_gflops_1thread", "gemm_gflops_all_threads",
           "unet_gflop_per_image", "init_mb_per_image_L3", "estimate_gpu_hours_teacher_L3",
           "estimate_gpu_hours_student_L1"]


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARKS / "bench.py"), *args],
                          capture_output=True, text=True)


def _load_estimates():
    spec = importlib.util.spec_from_file_location("benchmark_estimates", BENCHMARKS / "estimates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_prints_and_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    result = _bench("--preset", "smoke", "--repeats", "1", "--steps", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    with capsys.disabled():  # the figures go to the test log (CI's too), unasserted
        print("\nbenchmarks/bench.py --preset smoke:\n" + result.stdout)
    printed = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert printed.pop("written") == str(out)
    record = json.loads(out.read_text())
    # cpu_model, vector_extensions, ...: text, not figures
    for fact, value in record["machine_facts"].items():
        assert printed.pop(fact) == str(value), fact
    assert sorted(printed) == sorted(record["figures"]) == sorted(FIGURES)  # no figure lost, renamed or added
    for name in FIGURES:
        assert float(printed[name]) == pytest.approx(record["figures"][name], rel=1e-3), name
        # a difference of two peaks at these tiny shapes can come out at or below zero: finite is all it must
        # be
        floor = -math.inf if name.endswith("_above_frozen") else 0
        if name.startswith("init_share_"):  # a share of the profiled time: a part can take none of it
            assert 0 <= record["figures"][name] <= 1, name
            continue
        assert math.isfinite(record["figures"][name]) and record["figures"][name] > floor, name
    shares = [record["figures"][name] for name in FIGURES if name.startswith("init_share_")]
    assert sum(shares) == pytest.approx(1.0) and record["figures"]["init_share_ffts"] > 0
    assert record["preset"] == "smoke" and record["torch"] and record["device"] and record["date"]
    assert record["groups"] == ["machine", "train_steps", "backward", "kd_time", "backward_time", "deepinv",
                                "fft_floor", "init_breakdown", "peak", "inference", "unrolled",
                                "allocator"]  # not 'compile'



def test_the_opt_in_speedup_and_truncated_groups_print_their_figures_and_targets(tmp_path):
    out = tmp_path / "bench.json"
    result = _bench("--preset", "smoke", "--repeats", "1", "--steps", "1", "--only", "speedup", "truncated",
                    "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())["figures"]
    expected = [f"step_speedup_{mode}" for mode in ("e2e", "student", "teacher")]  # smoke: its own shapes
    expected += [f"truncated_{what}_L{L}" for L in (1, 3)
                 for what in ("cosine_phi", "cosine_psi", "init_speedup")]
    assert set(expected) | {"speedup_uses_bfloat16"} <= set(figures)
    assert all(math.isfinite(figures[name]) and figures[name] > 0 for name in expected if "speedup" in name)
    assert all(-1 <= figures[name] <= 1 for name in expected if "cosine" in name)
    assert "step_speedup_e2e: " in result.stdout and "(target >= 1.3)" in result.stdout
    assert figures["speedup_uses_bfloat16"] in (0.0, 1.0)


def test_step_time_script_times_in_a_child_with_the_allocator_asked_for():
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    clean = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "PRKD_ALLOCATOR")}
    cases = [({}, glibc), ({"PRKD_ALLOCATOR": "default"}, False),
             ({"PRKD_ALLOCATOR": "default", "GLIBC_TUNABLES": TUNABLES}, False),  # removed for the child
             ({"GLIBC_TUNABLES": TUNABLES}, True)]  # already set: times in this process, starts nothing
    for extra, tuned in cases:
        result = subprocess.run([sys.executable, str(BENCHMARKS / "step_time.py"), "--L", "2", "--size", "16",
                                 "--batch", "4", "--steps", "1"], capture_output=True, text=True,
                                 env=clean | extra)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.count("ms per step") == 1, result.stdout
        assert (repr(TUNABLES) in result.stdout) == tuned
        assert ("glibc defaults" in result.stdout) != tuned, extra


def test_gpu_estimate_counts_follow_the_shapes():
    import prkd
    estimates = _load_estimates()
    paper, quick = prkd.make("paper"), prkd.make("quick")
    gflop, init_mb = estimates.unet_gflop_per_image, estimates.init_mb_per_image
    # 96x96 vs 32x32 images: 9x the pixels; the paper's U-Net is also 4x wider and one level deeper
    assert gflop(paper) > 9 * 16 * gflop(quick) / 2
    assert init_mb(prkd.make("paper", n_masks=15)) == pytest.approx(15 * init_mb(paper))
    hours = estimates.estimate_gpu_hours(paper, 80.0, 1000.0)
    assert hours == pytest.approx(120 * (3 * 30_000 + 30_000)
                                  * (gflop(paper) / 80e3 + init_mb(paper) / 1e6) / 3600)


def test_only_estimate_prints_the_counts_and_writes_them(tmp_path):
    out = tmp_path / "bench.json"
    result = _bench("--preset", "paper", "--only-estimate", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["groups"] == [] and sorted(record["figures"]) == sorted(
        ["unet_gflop_per_image", "init_mb_per_image_L9", "init_mb_per_image_L15",
         "estimate_gpu_hours_teacher_L9",
         "estimate_gpu_hours_teacher_L15", "estimate_gpu_hours_student_L1"])
    assert all(f"{name}: " in result.stdout for name in record["figures"])


def test_an_unknown_group_is_refused_naming_the_allowed_ones(tmp_path):
    out = tmp_path / "bench.json"
    result = _bench("--preset", "smoke", "--only", "kd_time", "init_backward_time", "--out", str(out))
    assert result.returncode == 2 and not out.exists()
    assert "--only" in result.stderr and "'init_backward_time'" in result.stderr
    assert all(f"'{group}'" in result.stderr for group in ("train_steps", "backward",
                                                           "backward_time", "allocator"))


def test_the_unrolled_choice_trains_each_candidate_and_picks_the_cheapest_near_the_best(tmp_path):
    out = tmp_path / "choice.csv"
    result = subprocess.run([sys.executable, str(BENCHMARKS / "unrolled_choice.py"), "--preset", "smoke",
                             "--epochs", "1", "--stages", "1", "2", "--widths", "4", "--seeds", "0", "1",
                             "--output-dir", str(tmp_path / "runs"), "--out", str(out)],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = out.read_text().splitlines()
    assert rows[0].startswith("arch,stages,width,seeds,test_psnr,test_psnr_sd,val_psnr,")
    assert [r.split(",")[:4] for r in rows[1:]] == [["unet", "", "", "2"], ["unrolled", "1", "4", "2"],
                                                    ["unrolled", "2", "4", "2"]]
    assert "choice: K = " in result.stdout

    spec = importlib.util.spec_from_file_location("unrolled_choice", BENCHMARKS / "unrolled_choice.py")
    choice = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(choice)
    table = [{"arch": "unet", "test_psnr": 30.0, "seconds_per_step": 0.1},
             {"arch": "unrolled", "stages": 5, "test_psnr": 25.0, "seconds_per_step": 0.9},
             {"arch": "unrolled", "stages": 3, "test_psnr": 24.8, "seconds_per_step": 0.5},
             {"arch": "unrolled", "stages": 1, "test_psnr": 24.0, "seconds_per_step": 0.2}]
    assert choice.choose(table, margin=0.25)["stages"] == 3  # within 0.25 dB of 25.0, and cheaper than K = 5
    assert choice.choose(table, margin=1.0)["stages"] == 1


def test_the_committed_arithmetic_checks_regenerate_from_their_records():
    """``benchmarks/arithmetic_check.py``'s comparison, recomputed from the committed records, is the
    committed ``check.json`` (it trains nothing: the records and the committed ladder's hold every score)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import arithmetic_check
    finally:
        sys.path.remove(str(BENCHMARKS))
    folders = sorted((REPO / "docs" / "results" / "arithmetic-check").glob("*/check.json"))
    assert folders
    for check in folders:
        committed = json.loads(check.read_text())
        again = arithmetic_check.compare(committed["variant"], committed["backward_iterations"] or 5,
                                         check.parent / "records")
        assert json.loads(json.dumps(again)) == committed, check
