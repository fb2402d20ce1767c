"""What the CPU is, and whether TensorFlow's oneDNN kernels should be on for it.

TensorFlow's x86 Linux packages hold two sets of CPU kernels: Eigen's, and oneDNN's
(Intel's deep-learning library). ``TF_ENABLE_ONEDNN_OPTS`` picks one when TensorFlow is
imported; unset, TensorFlow turns oneDNN on only for CPUs with "neural network features"
(TF 2.9 release notes; the rule is ``DefaultOneDnnPolicy`` in
``tensorflow/core/util/port.cc``: AVX512_VNNI, AVX512_BF16, AVX_VNNI, AMX_TILE,
AMX_INT8 or AMX_BF16 on Linux). Elsewhere it runs Eigen's kernels, about half as fast
for the suite's networks on an AVX2-only CPU (``python bench/pytorch_paired.py`` measures
both). So on an x86 Linux CPU with AVX2 where TensorFlow's
rule leaves oneDNN off, the suite turns it on, before TensorFlow is imported
(``choose_onednn``, called by ``suite.core.quiet`` before TensorFlow is first imported). The variable, when the user
sets it, always wins. A config key cannot do this: TensorFlow reads the variable once,
when it is imported, and train.py imports it before it reads the config.

The CPU facts come from ``/proc/cpuinfo`` on Linux; elsewhere only the model name that
``platform.processor()`` gives is known, and oneDNN is left to TensorFlow.
"""

import functools
import importlib.util
import os
import platform
import sys
from dataclasses import dataclass

ENV = "TF_ENABLE_ONEDNN_OPTS"
# DefaultOneDnnPolicy's features (tensorflow/core/util/port.cc), as /proc/cpuinfo names them.
TF_ONEDNN_FEATURES = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
# The vector extensions a header names, in this order, where the CPU has them.
NOTABLE = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
           "asimd", "sve", "sve2")
X86 = ("x86_64", "amd64", "i386", "i686")


@dataclass(frozen=True)
class CpuFacts:
    model: str
    flags: frozenset    # empty where they cannot be read
    cores: int          # logical CPUs this process may run on
    machine: str        # platform.machine()
    system: str         # platform.system()

    @property
    def x86_linux(self):
        return self.system == "Linux" and self.machine.lower() in X86

    def extensions(self):
        """The notable vector extensions it has (``NOTABLE``), in that order."""
        return [f for f in NOTABLE if f in self.flags]

    def kind(self):
        """A short name for its class of vector unit: amx, avx512, avx2, or the machine's name."""
        for name, flag in (("amx", "amx_tile"), ("avx512", "avx512f"), ("avx2", "avx2")):
            if flag in self.flags:
                return name
        return self.machine.lower() or "unknown"

    def describe(self):
        """``AMD EPYC (avx2, avx512f, avx512_vnni), 2 cores``."""
        ext = ", ".join(self.extensions()) or ("no AVX2" if self.x86_linux else "")
        return f"{self.model}{f' ({ext})' if ext else ''}, {self.cores} cores"


def parse_cpuinfo(text):
    """``(model name, flags)`` of the first processor in the text of ``/proc/cpuinfo``:
    x86's ``model name`` and ``flags``, or ARM's ``Features`` (ARM may have no model name: "")."""
    model, flags = "", None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep:
            continue
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and flags is None:
            flags = frozenset(value.split())
    return model, flags or frozenset()


@functools.cache
def cpu_facts():
    """This machine's ``CpuFacts`` (read once)."""
    model, flags = "", frozenset()
    try:
        with open("/proc/cpuinfo") as f:
            model, flags = parse_cpuinfo(f.read())
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return CpuFacts(model or platform.processor() or platform.machine() or "unknown CPU", flags, cores,
                    platform.machine(), platform.system())


@dataclass(frozen=True)
class OnednnChoice:
    on: object          # True or False; None where TensorFlow decides by rules not known here
    reason: str
    set_to: str = None  # what the suite put into TF_ENABLE_ONEDNN_OPTS, if anything


def tf_default(facts):
    """Whether TensorFlow turns oneDNN on by itself on this CPU; None where its rule is not
    known here (outside x86 Linux, or without the CPU's flags)."""
    if not facts.x86_linux or not facts.flags:
        return None
    return any(f in facts.flags for f in TF_ONEDNN_FEATURES)


def _env_bool(value):
    """TF_ENABLE_ONEDNN_OPTS as TensorFlow reads it (``ReadBoolFromEnvVar``); None if invalid."""
    return {"1": True, "true": True, "0": False, "false": False}.get(value.lower())


def decide_onednn(facts, environ, tf_imported=False, tf_installed=True):
    """The ``OnednnChoice`` for ``facts`` and the environment ``environ`` (see the module
    docstring); ``tf_imported``: TensorFlow is imported already, too late to choose."""
    default = tf_default(facts)
    if not tf_installed:
        return OnednnChoice(None, "TensorFlow is not installed")
    if ENV in environ:
        value = environ[ENV]
        asked = _env_bool(value)
        if asked is None:
            return OnednnChoice(default, f"{ENV}={value!r} in the environment is not 0, 1, true or false: "
                                         f"TensorFlow's default")
        return OnednnChoice(asked, f"{ENV}={value} in the environment")
    if tf_imported:
        return OnednnChoice(default, "TensorFlow's default: it was imported before the suite could choose")
    if default is False and "avx2" in facts.flags:
        return OnednnChoice(True, f"set by the suite: TensorFlow leaves it off without AVX-512 VNNI/BF16, "
                                  f"AVX-VNNI or AMX; {ENV}=0 turns it off", "1")
    if default:
        found = ", ".join(f for f in TF_ONEDNN_FEATURES if f in facts.flags)
        return OnednnChoice(True, f"TensorFlow's default with {found}")
    if default is False:
        return OnednnChoice(False, "TensorFlow's default on a CPU without AVX2")
    return OnednnChoice(None, "TensorFlow's default; this CPU's features are not known here")


@functools.cache
def choose_onednn():
    """Decide once per process, before TensorFlow is imported, and set the variable if the
    choice is the suite's; the ``OnednnChoice``."""
    choice = decide_onednn(cpu_facts(), os.environ, tf_imported="tensorflow" in sys.modules,
                           tf_installed=importlib.util.find_spec("tensorflow") is not None)
    if choice.set_to is not None:
        os.environ[ENV] = choice.set_to
    return choice


def tensorflow_onednn():
    """Whether the imported TensorFlow runs its oneDNN kernels, as it says itself; None if
    it cannot say (not imported, or a TensorFlow without the private ``IsMklEnabled``)."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        # lazy: TensorFlow's own rule, read after the choice this module makes
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def cpu_line(facts, choice=None, tf_says=None):
    """The run header's CPU line: the model, its vector extensions and cores and, given the
    ``OnednnChoice`` (under TensorFlow), whether oneDNN is on and why. ``tf_says``
    (``tensorflow_onednn``), where known, is the state; else the choice's."""
    if choice is None:
        return facts.describe()
    on = choice.on if tf_says is None else tf_says
    state = "unknown" if on is None else ("on" if on else "off")
    return f"{facts.describe()}; oneDNN {state} ({choice.reason})"


def header_line(backend):
    """``cpu_line`` of this process, under ``backend``."""
    if backend != "tensorflow":
        return cpu_line(cpu_facts())
    return cpu_line(cpu_facts(), choose_onednn(), tensorflow_onednn())
