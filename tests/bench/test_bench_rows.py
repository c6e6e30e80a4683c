"""Bench rows as runner specs: which options reach which backend, refusals before any data
loads, and the eager FP32 row as the reference when the same checkpoint has other rows."""

import pytest

from toolkit.bench import BenchConfig, run_bench
from toolkit.bench.models import describe_models, row_spec, spec_from_options, spec_options
from toolkit.errors import InputError


def test_bench_options_reach_only_the_backends_that_honour_them():
    torch_row = row_spec("m.pth+fp16+graph", device="cuda:1", threads=2, iters=4, max_disp=64, size=(64, 96))
    assert (torch_row.device, torch_row.threads, torch_row.iters, torch_row.max_disp) == ("cuda:1", 2, 4, 64)
    assert torch_row.precision == "fp16" and torch_row.cuda_graph and torch_row.size == (64, 96)
    onnx_row = row_spec("m.onnx+cpu", device="cuda", threads=2, iters=4, max_disp=64)
    assert (onnx_row.device, onnx_row.threads, onnx_row.iters, onnx_row.max_disp) == ("cpu", 2, None, None)
    sgbm_row = row_spec("sgbm+lr", device="cuda", threads=2, iters=4, max_disp=64)
    assert (sgbm_row.device, sgbm_row.threads, sgbm_row.max_disp, sgbm_row.lr_check) == (None, None, 64, True)
    engine_row = row_spec("m.engine", device="cuda", threads=2, iters=4, max_disp=64)
    assert (engine_row.device, engine_row.threads, engine_row.iters) == (None, None, None)
    assert spec_from_options(spec_options(torch_row)) == torch_row  # what the memory probe rebuilds


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from toolkit.model import StudentConfig, build_student, save_student

    config = StudentConfig(max_disp=32, iters=1)
    path = tmp_path_factory.mktemp("rows") / "student.pth"
    return str(save_student(path, build_student(config, seed=0), config, {"note": "bench rows"}))


def test_labels_keep_the_modifiers_and_the_same_row_twice_is_refused(checkpoint):
    infos = describe_models([checkpoint, checkpoint + "+fp16+graph", checkpoint + "+lr", "sgbm"])
    assert [info.label for info in infos] == ["student.pth", "student.pth+fp16+graph", "student.pth+lr", "sgbm"]
    with pytest.raises(InputError, match="given twice"):
        describe_models([checkpoint + "+lr", checkpoint + "+lr"])


def test_an_fp16_graph_row_on_the_cpu_is_refused_before_any_data_loads(checkpoint, tmp_path):
    config = BenchConfig(models=[checkpoint, checkpoint + "+fp16+graph"], data=str(tmp_path / "nowhere"),
                         size=(64, 96), measure_memory=False)
    with pytest.raises(InputError, match="--precision fp16 needs a CUDA device"):
        run_bench(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_reference_is_the_eager_fp32_row_of_the_checkpoint(checkpoint, tmp_path):
    config = BenchConfig(models=[checkpoint + "+lr", checkpoint], size=(64, 96), warmup=0, repeats=1,
                         measure_memory=False, worst_pairs=0)
    report = run_bench(config, tmp_path / "out")
    assert report.reference["is_row"] and report.reference["label"] == "student.pth"
    rows = {row["info"]["label"]: row for row in report.rows}
    assert rows["student.pth"]["vs_reference"]["epe"] == 0
    assert rows["student.pth+lr"]["providers"] == ["eager"] and rows["student.pth+lr"]["device"] == "cpu"
