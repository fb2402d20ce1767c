"""bench/onednn_kernels.py's reading of oneDNN's verbose log: only the primitives executed
inside the counted steps, summed by kind, direction and shape."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import onednn_kernels  # noqa: E402

pytestmark = pytest.mark.fast

CONV = ("convolution,brg_conv_fwd:avx512_core,forward_training,src:f32::blocked:acdb::f0 wei:f32:a:blocked:Acdb32a::f0,"
        "attr-scratchpad:user,alg:convolution_direct,mb8_ic3oc32_ih32oh32kh3sh1dh0ph1_iw32ow32kw3sw1dw0pw1")
LOG = [
    "onednn_verbose,v1,primitive,info,template:timestamp,operation,engine,primitive,implementation,prop_kind",
    f"onednn_verbose,v1,999.0,primitive,exec,cpu,{CONV},5.0",           # a warm-up step: before the window
    f"onednn_verbose,v1,1000.5,primitive,create:cache_miss,cpu,{CONV},0.7",
    f"onednn_verbose,v1,1001.0,primitive,exec,cpu,{CONV},2.5",
    "onednn_verbose,v1,1002.0,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:cdba::f0 "
    "dst:f32::blocked:Acdb48a::f0,,,96x3x3x3,0.25",
    f"onednn_verbose,v1,1003.0,primitive,exec,cpu,{CONV.replace('forward_training', 'backward_data')},4.0",
    f"onednn_verbose,v1,1004.0,primitive,exec,cpu,{CONV},1.5",
    "Epoch 1/1 - some other line, with, commas",
    f"onednn_verbose,v1,1011.0,primitive,exec,cpu,{CONV},9.0",          # after the window
]


def test_only_the_window_counts_and_shapes_stay_apart():
    totals = onednn_kernels.kernel_times(LOG, 1000.0, 1010.0)
    shape = "mb8_ic3oc32_ih32oh32kh3sh1dh0ph1_iw32ow32kw3sw1dw0pw1"
    assert totals == {("convolution", "forward_training", shape, "brg_conv_fwd:avx512_core"): 4.0,
                      ("convolution", "backward_data", shape, "brg_conv_fwd:avx512_core"): 4.0,
                      ("reorder", "undef", "96x3x3x3", "jit:uni"): 0.25}


def test_the_table_gives_milliseconds_a_step_the_sum_and_the_implementations():
    totals = onednn_kernels.kernel_times(LOG, 1000.0, 1010.0)
    text = onednn_kernels.table(totals, {("convolution", "forward_training", "x", "brg_conv_fwd:avx512_core"): 6.0,
                                         ("convolution", "backward_data", "x", "ref:any"): 2.0}, 2, by_shape=False)
    lines = text.splitlines()
    assert "| convolution | forward | 2.0 | 3.0 | brg_conv_fwd:avx512_core |" in lines
    assert "| convolution | backward, data | 2.0 | 1.0 | brg_conv_fwd:avx512_core; ref:any |" in lines
    assert "| reorder |  | 0.1 | 0.0 | jit:uni; - |" in lines
    assert lines[-1] == "| all | | 4.1 | 4.0 | |"


def test_by_shape_keeps_a_row_per_shape():
    totals = onednn_kernels.kernel_times(LOG, 1000.0, 1010.0)
    lines = onednn_kernels.table(totals, {}, 1, by_shape=True).splitlines()
    assert "| reorder |  | 96x3x3x3 | 0.2 | 0.0 | jit:uni; - |" in lines
    assert len(lines) == 2 + 3 + 1


def test_steps_must_be_a_positive_whole_number():
    assert onednn_kernels.parse_args(["--steps", "3"]).steps == 3
    for bad in ("0", "-1", "2.5", "x"):
        with pytest.raises(SystemExit):
            onednn_kernels.parse_args(["--steps", bad])
