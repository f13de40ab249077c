"""The ``avatarbench`` command line's arguments: every command and option, with help."""
from __future__ import annotations

import argparse

UNVERIFIED_HELP = ("accept canonical weight files whose sha256 does not match the hash in their "
                   "name (same as AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS=1); records say 'unverified'")
PLUGIN_HELP = "Python file that registers variants, metrics or devices (repeatable)"
EPILOG = "Exit codes: 0 success, 2 bad input (the message says what and where), 1 internal failure."


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="avatarbench", epilog=EPILOG,
                                 description="Benchmark compressed talking-face and avatar generators.")
    from .version import __version__
    ap.add_argument("--version", action="version", version=f"avatarbench {__version__}",
                    help="print the version and exit")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND",
                            help="list, run, train, score, weights, table, plot, profile or devices "
                                 "('avatarbench COMMAND -h' for its options)")

    p = sub.add_parser("list", help="list registered variants, metrics, suites or devices")
    p.add_argument("what", choices=["variants", "metrics", "suites", "devices", "weights", "recipes", "losses"],
                   help="what to list: variants, metrics (with their options and NAME@DEVICE forms), "
                        "suites, devices (profiles), weights (canonical files), recipes (training) or "
                        "losses (training losses and KD terms)")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE", help=PLUGIN_HELP)
    p.add_argument("--devices", action="append", default=[], metavar="FILE",
                   help="YAML file of extra device profiles (repeatable)")

    p = sub.add_parser("devices", help="device profiles: calibrate the estimator on published latencies")
    p.add_argument("action", choices=["calibrate"],
                   help="calibrate: fit each device's estimator to the published latencies and "
                        "print (or --out) the profiles with the fit and its leave-one-out error")
    p.add_argument("--data", metavar="FILE", help="calibration CSV (default: the shipped "
                                                  "harness/calibration/jetson_tensorrt.csv)")
    p.add_argument("--device", action="append", metavar="NAME",
                   help="only this device (repeatable; default: every device in the data)")
    p.add_argument("--out", metavar="FILE", help="write the calibrated profiles here (YAML, loadable "
                                                 "with --devices); default: print them")
    p.add_argument("--no-loo", action="store_true", help="skip the leave-one-network-out errors")
    p.add_argument("--devices", action="append", default=[], metavar="FILE",
                   help="YAML file of extra device profiles (repeatable)")

    p = sub.add_parser("run", help="run a named suite (or a suite YAML file) into a run folder")
    p.add_argument("suite", metavar="SUITE",
                   help="a suite name (see 'avatarbench list suites') or the path of a suite YAML file")
    p.add_argument("--out", help="run folder (default results/SUITE_NAME); re-running resumes it")
    p.add_argument("--variant", action="append", metavar="NAME",
                   help="only this variant (repeatable); a plain NAME also selects the suite's "
                        "NAME@bf16 / @int8 / @mixed entries; NAME@P selects one")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE", help=PLUGIN_HELP)
    p.add_argument("--device", help="cpu or cuda[:N] (default: the suite's profiling.device)")
    p.add_argument("--limit", type=int, help="use at most N data items (suites with data)")
    p.add_argument("--data-root", metavar="DIR",
                   help="dataset folder for suites that score generated video (lrs2, lrs3)")
    p.add_argument("--allow-unverified-weights", action="store_true", help=UNVERIFIED_HELP)
    p.add_argument("--fresh", action="store_true", help="start over; the old run folder is kept beside")
    p.add_argument("--devices", action="append", default=[], metavar="FILE",
                   help="YAML file of extra device profiles (repeatable)")
    p.add_argument("--no-progress", action="store_true",
                   help="print no progress (default: a bar on a terminal, else a line every few seconds)")

    p = sub.add_parser("train", help="train one recipe (expert, evaluator, generator, distill, scratch or "
                                     "a YAML file) into a folder; re-running resumes it")
    p.add_argument("recipe", metavar="RECIPE", help="a built-in recipe name or a recipe YAML file")
    p.add_argument("--from", dest="from_", metavar="VARIANT",
                   help="the architecture to train (default: wav2lip-syncnet for expert recipes, "
                        "nota-wav2lip for distill, wav2lip otherwise)")
    p.add_argument("--data-root", metavar="DIR",
                   help="LRS-layout data with filelists/train.txt and val.txt (default: the harness's "
                        "synthetic talking heads, made once and cached)")
    p.add_argument("--out", metavar="DIR", help="output folder (default results/train/RECIPE)")
    p.add_argument("--steps", type=int, help="override the recipe's steps")
    p.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any recipe field (YAML value; nested as optimiser.lr=3e-4)")
    p.add_argument("--expert", metavar="FILE", help="the frozen sync expert's checkpoint (SyncNet_color)")
    p.add_argument("--teacher", metavar="FILE", help="the frozen teacher's checkpoint (distill)")
    p.add_argument("--teacher-from", metavar="VARIANT", default="wav2lip",
                   help="the teacher's architecture (default wav2lip)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE", help=PLUGIN_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("score", help="one quality metric on folders of frames or videos (no suite)",
                       epilog=EPILOG)
    p.add_argument("metric", help="fid, kid, lpips, psnr, ssim, lse_c, lse_d, identity, ...")
    p.add_argument("--fake", required=True, metavar="PATH",
                   help="generated frames: a folder of images, a video, or a folder of videos")
    p.add_argument("--real", metavar="PATH", help="reference frames (same forms as --fake)")
    p.add_argument("--audio", metavar="FILE", help="driving audio for lse_c/lse_d (default: each video's own)")
    p.add_argument("--identity", metavar="PATH", help="source identity image or video for identity "
                                                      "(default: the first reference frame)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a metric option (see 'avatarbench list metrics'), repeatable")
    p.add_argument("--allow-unverified-weights", action="store_true", help=UNVERIFIED_HELP)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE", help=PLUGIN_HELP)

    p = sub.add_parser("weights", help="canonical weight files: where they are looked for, present or not")
    p.add_argument("action", choices=["status", "verify", "download"],
                   help="status: where each file is; verify: check hashes (exit 2 when a file is "
                        "missing or does not match); download: fetch the named files")
    p.add_argument("files", nargs="*", metavar="FILE", help="only these files (download: required)")
    p.add_argument("--allow-unverified-weights", action="store_true", help=UNVERIFIED_HELP)
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("table", help="comparison table of a run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (written by 'avatarbench run')")
    p.add_argument("--format", default="markdown", choices=["markdown", "latex", "csv", "csv-long", "html"],
                   help="markdown (default); latex (booktabs); csv (metric ids as headers, a units row, "
                        "values in the records' units); csv-long (one row per cell); html")
    p.add_argument("--baseline", metavar="VARIANT",
                   help="add ratio columns against this variant (default: the suite's report.baseline; "
                        "'' for none)")
    p.add_argument("--columns", nargs="+", metavar="METRIC",
                   help="only these metric columns, in this order (default: the suite's)")
    p.add_argument("--max-columns", type=int, metavar="N",
                   help="split a wide table into stacked parts of at most N metric columns "
                        "(LaTeX: 8 by default; other formats: no split)")
    p.add_argument("--digits", type=int, default=3, metavar="N",
                   help="significant digits of every number (default 3)")
    p.add_argument("--caption", help="LaTeX caption (default: 'Results of the SUITE suite.')")
    p.add_argument("--label", help="LaTeX label (default: tab:SUITE)")

    p = sub.add_parser("plot", help="scatter two metrics of a run, Pareto front marked (PNG + SVG)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (written by 'avatarbench run')")
    p.add_argument("--x", required=True, metavar="METRIC", help="metric id on the x axis (a column of the run)")
    p.add_argument("--y", required=True, metavar="METRIC", help="metric id on the y axis")
    p.add_argument("--out", help="output path without suffix (default RUN_DIR/plots/pareto_Y_vs_X)")
    p.add_argument("--title", help="plot title (default: the metrics' names)")
    p.add_argument("--xlabel", help="x axis label (default: metric name and unit)")
    p.add_argument("--ylabel", help="y axis label (default: metric name and unit)")
    p.add_argument("--legend", default="outside", metavar="WHERE",
                   help="legend position: outside (right of the axes, default), none, or a matplotlib "
                        "location such as 'upper left' or 'best'")
    p.add_argument("--size", default="7,4.6", metavar="W,H", help="figure size in inches (default 7,4.6)")
    p.add_argument("--format", nargs="+", default=["png", "svg"], choices=["png", "svg", "pdf"],
                   dest="formats", help="file formats to write (default: png svg)")
    p.add_argument("--dpi", type=int, default=150, help="resolution of PNG output (default 150)")

    p = sub.add_parser("profile", help="params, MACs, size and latency of one variant")
    p.add_argument("variant", help="a variant name; NAME@bf16 for a cast, NAME@int8 / NAME@mixed quantized")
    p.add_argument("--device", default="cpu",
                   help="cpu or cuda (measured), or a device profile such as jetson-xavier-nx (estimated)")
    p.add_argument("--precision", help="fp32, bf16, fp16, int8 or mixed (same as NAME@P)")
    p.add_argument("--explain", action="store_true",
                   help="show which layers dominate the latency estimate and why")
    p.add_argument("--devices", action="append", default=[], metavar="FILE",
                   help="YAML file of extra device profiles (repeatable)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--weights", metavar="FILE", help="load this checkpoint (never runs pickled code)")
    p.add_argument("--batch-size", type=int, default=1, help="frames per forward call (default 1)")
    p.add_argument("--threads", default="all", help="CPU threads for latency: a number or 'all'")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds of the latency measurement (default 3)")
    p.add_argument("--reps", type=int, default=5, help="timed calls per round (default 5)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE", help=PLUGIN_HELP)
    return ap
