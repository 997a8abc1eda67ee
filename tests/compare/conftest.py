"""What the comparison tests share: Results measured on a file of texts without labels, beside Lee's and
random weights'."""
import pytest

from bgeq_utils.compare import tabulate
from tests.factories import BGE, fp32, result, unlabelled


def _texts_group(run="mine"):
    return [unlabelled("fp32", run=run, speed=1.0),
            unlabelled("int8-dynamic-onnx", run=run, runtime="onnxruntime", runtime_baseline="fp32-onnx", disk_mb=23,
                       mem_mb=200, speed=(2.2, 2.1, 2.3), cos=(0.994, 0.993, 0.995))]


def the_row(m, label, **where):
    """The one row of the measured table ``m`` with this label and these column values."""
    t = m.table
    keep = t["label"] == label
    for column, value in where.items():
        keep &= t[column] == value
    rows = t[keep]
    assert len(rows) == 1, (label, where)
    return rows.iloc[0]


def _row(m, label, dataset):
    return the_row(m, label, dataset=dataset)


@pytest.fixture(scope="module")
def mixed():
    lee = [fp32(), result("int8-dynamic-onnx", runtime="onnxruntime", runtime_baseline="fp32-onnx", disk_mb=23,
                          mem_mb=200, speed=2.0, loss_pct=1.0, cos=0.99)]
    bge = [fp32(model=BGE, run="big", disk_mb=1340, mem_mb=1500, loss_pct=None, dataset="lee"),
           result("bf16", model=BGE, run="big", disk_mb=670, mem_mb=800, speed=1.5, cos=0.9999)]
    return tabulate(lee + bge + _texts_group())
