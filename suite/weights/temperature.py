"""Temperature scaling's T kept with the weights (``suite.analysis.calibration``): the
sidecar's ``calibration`` entry, which predict.py applies to its probabilities.

Only a T fitted on images the network never trained on is written into the sidecar; one
fitted on its own training images (weights trained on all 50,000, as every shipped one is)
would make a fresh image's probabilities sharper than the network's own, so it stays in
the report folder only.
"""

import datetime

from suite.core.atomic import write_json
from suite.core.errors import UserError
from suite.weights.sidecar import read_sidecar, sidecar_path

FILE = "temperature.json"


def save_temperature(weights, temperature, note, held_out, report_dir):
    """Write ``temperature.json`` into the report folder and, if ``held_out``, the sidecar
    beside ``weights``; the line that says where it went."""
    entry = {"temperature": temperature, "fitted_on": note, "held_out": held_out,
             "method": "temperature scaling (Guo et al. 2017, arXiv:1706.04599), NLL minimised",
             "fitted": datetime.datetime.now().isoformat(timespec="seconds")}
    write_json(report_dir / FILE, entry)
    if not held_out:
        return (f"temperature T = {temperature:.3f} written to {report_dir / FILE} only, not beside the weights: "
                f"it was fitted on images the network trained on")
    sidecar = read_sidecar(weights, missing_ok=True)
    if sidecar is None:
        return f"temperature T = {temperature:.3f} written to {report_dir / FILE} (the weights have no sidecar to keep it)"
    try:
        write_json(sidecar_path(weights), {**sidecar, "calibration": entry})
    except (OSError, UserError) as e:
        return f"temperature T = {temperature:.3f} written to {report_dir / FILE}; not into {sidecar_path(weights)}: {e}"
    return f"temperature T = {temperature:.3f} saved in {sidecar_path(weights)}; predict.py applies it"


def temperature_of(sidecar):
    """``(T, note)`` kept in a sidecar dict, or ``(None, None)``."""
    entry = (sidecar or {}).get("calibration") or {}
    t = entry.get("temperature")
    if isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0:
        return float(t), entry.get("fitted_on", "")
    return None, None
