"""Accuracy of the edge latency estimator on public measurements (no Wav2Lip in them).

For each device in harness/calibration/jetson_tensorrt.csv: fit the estimator's six free
numbers (compute and memory efficiency, per-layer and per-inference overhead, and the
small-layer efficiency law: exponent and full-efficiency size) to every network, and leave each network out in turn to predict it from a fit to the others. The
leave-one-network-out error is the honest accuracy of the estimator on networks it was not
fitted to. Also shown: the error of the previous shared assumption (40% compute, 60%
memory efficiency, 15 us per layer, nothing per inference) on the same data.

    python tests/benchmarks/edge_calibration.py [--data FILE]
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.devices import Roofline, devices  # noqa: E402
from harness.profiling.calibrate import (DATA, calibrate_device, layer_terms, load_measurements,  # noqa: E402
                                         network_layers, predict_ms)
from harness.registry import load_builtins  # noqa: E402

ASSUMED = (0.4, 0.6, 15.0, 0.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    load_builtins()
    rows = load_measurements(args.data)
    summary = []
    for name in sorted({r.device for r in rows}):
        sel = [r for r in rows if r.device == name]
        fits = calibrate_device(devices.get(name), sel)
        for precision, f in fits.items():
            roof = devices.get(name).roofline_model()
            ideal = Roofline(roof.peak_gops, roof.bandwidth_gbs, 1.0, 1.0, 0.0, {})
            terms = [layer_terms(network_layers(r.network, r.batch, r.input), ideal, precision)
                     for r in sel if r.precision == precision]
            assumed = predict_ms(terms, *ASSUMED)
            measured = np.array(f["measured_ms"])
            print(f"\n{name} {precision}: fit {f['fit']}")
            print(f"  {'network':20s} {'measured':>9s} {'fitted':>8s} {'left out':>9s} {'error':>7s} "
                  f"{'assumed':>8s} {'error':>7s}")
            for net, m, fit_ms, loo, a in zip(f["networks"], measured, f["fitted_ms"], f["leave_one_out_ms"],
                                              assumed):
                print(f"  {net:20s} {m:9.2f} {fit_ms:8.2f} {loo:9.2f} {loo / m - 1:+7.0%} {a:8.2f} "
                      f"{a / m - 1:+7.0%}")
            e = f["leave_one_out_abs_rel_error"]
            a_err = np.abs(assumed / measured - 1)
            summary.append(f"{name:18s} {precision:5s} {len(measured):3d} networks  leave-one-out |error| "
                           f"median {e['median']:.0%} mean {e['mean']:.0%} max {e['max']:.0%};  "
                           f"previous assumption median {np.median(a_err):.0%} max {a_err.max():.0%}")
    print("\nsummary (batch 1, TensorRT, published torch2trt tables; estimates, not measurements here)")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
