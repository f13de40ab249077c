"""Standalone ONNX Runtime latency benchmark, copied to a device and run there.
Needs only numpy and onnxruntime. Prints one JSON line: per-call times in ms."""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("inputs", help=".npz with one array per model input, by name")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(args.model, opts, providers=ort.get_available_providers())
    feeds = dict(np.load(args.inputs))
    for _ in range(args.warmup):
        sess.run(None, feeds)
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1000.0)
    print(json.dumps({"times_ms": times, "onnxruntime": ort.__version__,
                      "providers": sess.get_providers(), "threads": args.threads}))


if __name__ == "__main__":
    main()
