"""suite.core.cpu: reading /proc/cpuinfo, the oneDNN choice and the header's CPU line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from suite.core.cpu import ENV, CpuFacts, OnednnChoice, cpu_line, decide_onednn, parse_cpuinfo

pytestmark = pytest.mark.fast

CPUINFO_ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c bmi2 avx2 sha_ni
bugs\t\t: sysret_ss_attrs

processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme sse
"""

CPUINFO_ARM = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes sve
CPU part\t: 0xd40
"""

AVX2 = frozenset("sse4_2 fma avx avx2".split())
ZEN4 = AVX2 | {"avx512f", "avx512_vnni", "avx512_bf16"}
SKYLAKE_X = AVX2 | {"avx512f", "avx512bw"}
ALDER_LAKE = AVX2 | {"avx_vnni"}


def facts(flags, system="Linux", machine="x86_64"):
    return CpuFacts("Test CPU", frozenset(flags), 2, machine, system)


def test_cpuinfo_first_processor_model_and_flags():
    model, flags = parse_cpuinfo(CPUINFO_ZEN3)
    assert model == "AMD EPYC 7B13"
    assert {"avx2", "fma", "sha_ni"} <= flags and "avx512f" not in flags and "sysret_ss_attrs" not in flags


def test_cpuinfo_arm_features_and_no_model_name():
    model, flags = parse_cpuinfo(CPUINFO_ARM)
    assert model == "" and {"asimd", "sve"} <= flags


def test_cpuinfo_empty():
    assert parse_cpuinfo("") == ("", frozenset())


def test_extensions_kind_and_description():
    assert facts(ZEN4).extensions() == ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"]
    assert [facts(f).kind() for f in (ZEN4, AVX2, ZEN4 | {"amx_tile"}, ())] == ["avx512", "avx2", "amx", "x86_64"]
    assert facts(AVX2).describe() == "Test CPU (avx2), 2 cores"
    assert facts({"sse2"}).describe() == "Test CPU (no AVX2), 2 cores"
    assert facts((), "Darwin", "arm64").describe() == "Test CPU, 2 cores"


def test_avx2_without_avx512_gets_onednn_from_the_suite():
    choice = decide_onednn(facts(AVX2), {})
    assert choice.on is True and choice.set_to == "1"
    assert "set by the suite" in choice.reason and f"{ENV}=0" in choice.reason


def test_avx512_without_vnni_gets_it_too():  # TensorFlow leaves it off there as well
    assert decide_onednn(facts(SKYLAKE_X), {}).set_to == "1"


@pytest.mark.parametrize("flags", [ZEN4, ALDER_LAKE, AVX2 | {"amx_tile", "amx_bf16"}])
def test_tensorflows_own_default_is_left_alone(flags):
    choice = decide_onednn(facts(flags), {})
    assert choice.on is True and choice.set_to is None and choice.reason.startswith("TensorFlow's default with")


@pytest.mark.parametrize("value, on", [("0", False), ("false", False), ("1", True), ("TRUE", True)])
@pytest.mark.parametrize("flags", [AVX2, ZEN4])
def test_the_users_variable_wins(flags, value, on):
    choice = decide_onednn(facts(flags), {ENV: value})
    assert choice.on is on and choice.set_to is None and choice.reason == f"{ENV}={value} in the environment"


def test_an_invalid_variable_is_tensorflows_default():
    choice = decide_onednn(facts(AVX2), {ENV: "yes"})
    assert choice.on is False and choice.set_to is None and "'yes'" in choice.reason


def test_too_late_once_tensorflow_is_imported():
    choice = decide_onednn(facts(AVX2), {}, tf_imported=True)
    assert choice.on is False and choice.set_to is None and "imported before" in choice.reason


@pytest.mark.parametrize("cpu", [facts(AVX2, "Darwin"), facts((), "Linux", "aarch64"), facts(())])
def test_unknown_rules_or_flags_are_left_to_tensorflow(cpu):
    choice = decide_onednn(cpu, {})
    assert choice.on is None and choice.set_to is None


def test_no_tensorflow_nothing_to_choose():
    assert decide_onednn(facts(AVX2), {}, tf_installed=False).set_to is None


def test_header_line():
    zen4 = CpuFacts("AMD EPYC", ZEN4, 2, "x86_64", "Linux")
    assert cpu_line(zen4, decide_onednn(zen4, {})) == \
        "AMD EPYC (avx2, avx512f, avx512_vnni, avx512_bf16), 2 cores; oneDNN on " \
        "(TensorFlow's default with avx512_vnni, avx512_bf16)"
    assert cpu_line(zen4, decide_onednn(zen4, {ENV: "0"})) == \
        f"AMD EPYC (avx2, avx512f, avx512_vnni, avx512_bf16), 2 cores; oneDNN off ({ENV}=0 in the environment)"
    assert cpu_line(zen4) == "AMD EPYC (avx2, avx512f, avx512_vnni, avx512_bf16), 2 cores"  # another backend


def test_header_line_says_what_tensorflow_says():
    line = cpu_line(facts(AVX2), OnednnChoice(None, "why"), tf_says=False)
    assert line.endswith("; oneDNN off (why)")
    assert cpu_line(facts(AVX2), OnednnChoice(None, "why")).endswith("; oneDNN unknown (why)")


def test_import_keras_sets_the_variable_before_tensorflow_starts():
    """In a fresh process on this machine: the variable is as decided, and TensorFlow agrees."""
    code = ("import os; from suite.core import cpu; from suite.core.quiet import import_keras; import_keras(); "
            "c = cpu.choose_onednn(); print(os.environ.get(cpu.ENV), c.set_to, c.on, cpu.tensorflow_onednn())")
    env = {k: v for k, v in os.environ.items() if k != ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         cwd=Path(__file__).resolve().parent.parent).stdout.split()
    value, set_to, on, says = out
    assert value == set_to and (on == "None" or on == says)
