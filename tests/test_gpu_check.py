"""The GPU check (benchmarks/gpu_check.sh) runs end to end at the smoke shapes on the CPU and reports every
figure, printed and in its JSON; bad arguments are refused naming the option. No timing is asserted: on a
CPU at smoke shapes the figures say only that the script works (docs/performance.md, "GPU check")."""

import json
import math
import re
import subprocess

from conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
MODES = ("teacher", "e2e", "student")

#: every figure the check reports
FIGURES = ([f"train_{what}_{mode}" for what in ("images_per_s", "step_ms", "peak_mb") for mode in MODES]
           + ["kd_over_e2e_step_time", "kd_over_e2e_peak_memory", "student_over_teacher_step_time",
              "student_over_teacher_peak_memory", "teacher_inference_ms_per_batch",
              "student_inference_ms_per_batch", "teacher_over_student_inference"]
           + [f"estimate_hours_{mode}" for mode in MODES])


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_gpu_check_prints_and_writes_every_figure_at_smoke_shapes(tmp_path, capsys):
    out = tmp_path / "g.json"
    # L_t = 3 and 3 inference passes (as bench.py's smoke preset measures L_t = 3): seconds on a busy CPU
    result = _check("--preset", "smoke", "--device", "cpu", "--steps", "2", "--warmup", "1",
                    "--teacher-masks", "3",
                    "--inference-repeats", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    with capsys.disabled():  # the figures go to the test log, unasserted
        print("\nbenchmarks/gpu_check.sh --preset smoke --device cpu:\n" + result.stdout)
    printed = dict(line.split(": ", 1) for line in result.stdout.splitlines() if re.match(r"\w+: ", line))
    assert printed.pop("written") == str(out)
    record = json.loads(out.read_text())
    assert sorted(printed) == sorted(record["figures"]) == sorted(FIGURES)  # no figure lost, renamed or added
    for name in FIGURES:
        value = record["figures"][name]
        assert math.isfinite(value) and value > 0, name
        assert float(printed[name]) == value or abs(float(printed[name]) / value - 1) < 1e-3, name
    assert record["preset"] == "smoke" and record["steps"] == 2 and record["teacher_masks"] == 3
    assert record["device_type"] == "cpu" and record["shapes"]["image_size"] == 16
    assert record["device"] and record["torch"] and record["date"] and "cuda" in record and "cudnn" in record
    assert "ESTIMATE" in result.stdout and "ESTIMATE" in record["estimate"]


def test_gpu_check_refuses_bad_arguments_naming_the_option(tmp_path):
    out = tmp_path / "g.json"
    for args, option in ((["--steps", "0"], "--steps"), (["--preset", "huge"], "--preset")):
        result = _check(*args, "--device", "cpu", "--out", str(out))
        assert result.returncode == 2 and option in result.stderr, (args, result.stderr)
    assert not out.exists()
