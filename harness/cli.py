"""The ``avatarbench`` command. Exit codes: 0 success, 2 bad input, 1 internal failure."""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from .cli_args import _parser
from .errors import BadInput


def _load_devices(args) -> None:
    from .devices import load_device_file
    from .registry import load_builtins
    load_builtins()
    for f in getattr(args, "devices", []):
        load_device_file(f)


def cmd_list(args) -> int:
    from .registry import load_plugin
    _load_devices(args)
    for p in args.plugin:
        load_plugin(p)
    if args.what == "variants":
        from .variants import variants
        for v in variants:
            print(f"{v.name:20s} {v.family:8s} {v.role:9s} {v.precision:5s} "
                  f"parent={v.parent or '-':12s} {v.description}")
        print("\nAny variant can be cast (NAME@bf16, NAME@fp16) or quantized with the default "
              "recipes (NAME@int8, NAME@mixed); suites declare other recipes under 'quantize:'.")
    elif args.what == "metrics":
        from .metrics import metrics
        for m in metrics:
            opts = ", ".join(f"{k}={v}" for k, v in m.options.items())
            print(f"{m.name:18s} {m.direction:6s} {m.unit[:10]:10s} needs={m.needs:6s} {m.description}"
                  + (f" [options: {opts}]" if opts else ""))
            if m.per_device is not None:
                from .devices import devices
                names = ", ".join(d.name for d in devices if d.roofline or d.name == "host-cpu")
                print(f"{m.name + '@DEVICE':18s} {m.direction:6s} {m.unit[:10]:10s} {'':13s}estimated on a "
                      f"device profile (per-layer roofline); DEVICE: {names}")
    elif args.what == "suites":
        from .suite import find_suite, load_suite, suite_names
        for name in suite_names():
            s = load_suite(str(find_suite(name)))
            print(f"{name:14s} family={s.family:8s} {len(s.variants)} variants x "
                  f"{len(s.precisions)} precisions, {len(s.metrics)} metrics  {s.description}")
    elif args.what == "recipes":
        from .train.recipe import load_recipe, recipe_names
        for name in recipe_names():
            r = load_recipe(name)
            losses = ", ".join(f"{k} {v:g}" for k, v in r.losses.items())
            sync = f"; sync {r.sync.before:g} -> {r.sync.after:g} below {r.sync.below:g}" if r.sync else ""
            print(f"{name:10s} task={r.task:9s} batch {r.batch_size:3d}, {r.optimiser.name} lr {r.optimiser.lr:g}; "
                  f"losses {losses}{sync}")
        print("\nTrain one with 'avatarbench train RECIPE'; suites train variants with train: / distill:.")
    elif args.what == "losses":
        from .train.losses import losses
        for loss in losses:
            print(f"{loss.name:12s} needs {', '.join(loss.needs):36s} {loss.description.splitlines()[0]}")
        print("\nPlugins add losses with harness.register_loss; recipes weight them by name.")
    elif args.what == "weights":
        return cmd_weights(argparse.Namespace(action="status", files=[], json=False,
                                              allow_unverified_weights=False))
    elif args.what == "devices":
        from .devices import devices
        print(f"{'name':18s} {'kind':9s} {'peak GOP/s fp32/fp16/int8':27s} {'GB/s':>6s}  description")
        for d in devices:
            if d.roofline:
                r = d.roofline
                peaks = "/".join(f"{r.peak_gops[p]:g}" if p in r.peak_gops else "-"
                                 for p in ("fp32", "fp16", "int8"))
                print(f"{d.name:18s} {d.kind:9s} {peaks:27s} {r.bandwidth_gbs:6g}  {d.description}")
                print(f"{'':18s} source: {d.source}; efficiencies and overheads {d.basis}")
            else:
                state = "available" if d.available() else "not available here"
                print(f"{d.name:18s} {d.kind:9s} {state:27s} {'':6s}  {d.description}")
        print("\nMeasured devices are timed here; estimated ones give latency_ms@DEVICE (a per-layer "
              "roofline; host-cpu too, measured on first use). Add profiles in YAML: "
              "--devices FILE or AVATARBENCH_DEVICES.")
    return 0


def cmd_run(args) -> int:
    from .report.files import write_reports
    from .runner import run_suite
    _load_devices(args)
    _unverified(args)
    summary = run_suite(args.suite, args.out, variants=args.variant, plugins=tuple(args.plugin),
                        device=args.device, limit=args.limit, fresh=args.fresh,
                        progress=not args.no_progress, echo=lambda s: print(s, file=sys.stderr),
                        data_root=args.data_root)
    run_dir = summary.run_dir
    written = write_reports(run_dir)
    if written:
        print(written[0].read_text())  # table.md, as just written
    print(f"run folder: {run_dir}  ({summary.computed} cells computed, "
          f"{summary.already_recorded} already recorded, {len(summary.failed)} failed)")
    if written:
        print("wrote: " + ", ".join(str(p) for p in written))
    curves = sorted((run_dir / "training").glob("*.png"))
    if curves:
        print("training curves: " + ", ".join(str(p) for p in curves))
    shown = set()
    for variant, metric, error, bad in summary.failed:
        text = error if bad else error.splitlines()[0] + " (traceback in records.jsonl)"
        if (variant, text) not in shown:
            shown.add((variant, text))
            print(f"error: {variant} / {metric}: {text}", file=sys.stderr)
    if any(bad for *_, bad in summary.failed):
        return 2
    return 1 if summary.failed else 0


def cmd_train(args) -> int:
    from .registry import load_plugin
    from .safe_yaml import load_yaml_text
    from .train.recipe import load_recipe
    from .train.run import train_into
    for plugin in args.plugin:
        load_plugin(plugin)
    overrides = {}
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise BadInput(f"--set {item!r}: expected FIELD=VALUE")
        overrides[key.strip()] = load_yaml_text(value, f"--set {key}")
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    recipe = load_recipe(args.recipe, overrides)
    default_from = {"expert": "wav2lip-syncnet", "distill": "nota-wav2lip"}.get(recipe.task, "wav2lip")
    root = args.data_root
    if root is None:
        from .families.lipsync.synthetic import cached_dataset
        root = str(cached_dataset())
        print(f"data: synthetic talking heads at {root} (pass --data-root for real data)", file=sys.stderr)
    spec = {"label": recipe.name, "recipe": args.recipe, "overrides": overrides,
            "from": args.from_ or default_from, "data_root": root}
    if args.expert:
        spec["expert"] = {"from": "wav2lip-syncnet", "weights": args.expert}
    if args.teacher:
        spec["teacher"] = {"from": args.teacher_from, "weights": args.teacher}
    from .derive import get_variant
    from .host import check_device
    get_variant(spec["from"])
    check_device(args.device)
    out = Path(args.out or Path("results") / "train" / recipe.name)
    prov = train_into(spec, out, args.device, progress=not args.no_progress)
    losses = ", ".join(f"{k} {v:.4g}" for k, v in prov["final_losses"].items())
    print(f"trained {spec['from']} by recipe {recipe.name}: {prov['steps']} steps in {prov['wall_s']} s"
          + (f" (resumed at step {prov['resumed_from_step']})" if prov["resumed_from_step"] else ""))
    print(f"last losses: {losses}")
    best = prov["best"]
    if best["value"] is not None:
        print(f"best validation {best['on']}: {best['value']:.4g} at step {best['step']}")
    for note in prov["notes"]:
        print(f"note: {note}")
    print(f"checkpoint: {prov['checkpoint']} (sha256 {prov['checkpoint_sha256'][:12]}...); "
          f"log: {out / 'log.jsonl'}; curve: {out / 'curve.png'}")
    print(f"use it in a suite: {{name: ..., from: {spec['from']}, weights: {prov['checkpoint']}}}")
    return 0


def _unverified(args) -> None:
    if getattr(args, "allow_unverified_weights", False):
        import os
        from .canonical_weights import ENV_UNVERIFIED
        os.environ[ENV_UNVERIFIED] = "1"   # subprocesses (memory probe) see it too


def cmd_score(args) -> int:
    from .registry import load_plugin
    from .score import score
    _unverified(args)
    for p in args.plugin:
        load_plugin(p)
    metric, res, notes = score(args.metric, args.fake, args.real, args.audio, args.identity,
                               args.option)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if res.value is None:
        raise BadInput(f"{metric.name} could not be computed: {res.reason}")
    if args.json:
        print(json.dumps(_json_safe({"metric": metric.name, "value": res.value, "unit": metric.unit,
                                     "direction": metric.direction, "n": res.n, "backend": res.backend,
                                     "settings": res.settings, "stats": res.stats, "notes": notes}),
                         indent=2, default=str, allow_nan=False))
    else:
        print(f"{metric.name}: {res.value:.6g} {metric.unit}  (n={res.n}, {res.backend})")
        warning = (res.stats or {}).get("warning")
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    return 0


def _json_safe(obj):
    """Strict JSON: a non-finite number (PSNR of identical frames is inf) becomes a string."""
    import math
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def cmd_weights(args) -> int:
    from . import canonical_weights as cw
    _unverified(args)
    files = args.files or list(cw.CATALOG)
    for f in files:
        cw.entry(f)
    if args.action == "download":
        if not args.files:
            raise BadInput("weights download: name the files to fetch")
        for f in files:
            print(cw.download(f))
        return 0
    rows = [r for r in cw.status() if r["file"] in files]
    bad = []
    if args.action == "verify":
        for r in rows:
            if r["present"]:
                try:
                    r["check"] = cw.verify(r["file"], Path(r["path"]))["check"]
                except BadInput as exc:
                    r["check"] = "MISMATCH"
                    bad.append(str(exc))
            else:   # a file that is not there cannot be verified: say so, exit 2
                bad.append(cw.missing_message(r["file"]))
    if args.json:
        print(json.dumps({"search_folders": [str(f) for f in cw.search_folders()],
                          "canonical": rows, "packaged": cw.packaged()}, indent=2))
    else:
        print("looked for in: " + ", ".join(str(f) for f in cw.search_folders()))
        for r in rows:
            state = r.get("check") or ("present" if r["present"] else "missing")
            print(f"  {r['file']:40s} {state:16s} {r['metrics']:14s} {r['path'] or 'from ' + r['source']}")
        packaged = cw.packaged()
        if packaged:
            print("shipped inside installed packages (nothing to download):")
            for r in packaged:
                print(f"  {r['file']:40s} {r['package']:24s} {r['metrics']}")
        print(f"Put missing files in {cw.search_folders()[0]} (or set {cw.ENV_FOLDER}); "
              "'avatarbench weights download FILE' fetches one where a network is available.")
    for msg in bad:
        print(f"error: {msg}", file=sys.stderr)
    return 2 if bad else 0


def cmd_table(args) -> int:
    from .report.render import make_table
    from .records import load_run
    # the same call as the Python API's make_table(load_run(RUN_DIR), ...)
    print(make_table(load_run(args.run_dir), args.format, baseline=args.baseline, columns=args.columns,
                     caption=args.caption or "", label=args.label or "", max_columns=args.max_columns,
                     digits=args.digits), end="")
    return 0


def cmd_plot(args) -> int:
    from .report.plot import plot_pareto
    from .records import load_run
    try:
        w, h = (float(v) for v in args.size.split(","))
    except ValueError:
        raise BadInput(f"--size {args.size}: expected W,H in inches, e.g. 7,4.6") from None
    for p in plot_pareto(load_run(args.run_dir), args.x, args.y, args.out, args.title or "",
                         xlabel=args.xlabel, ylabel=args.ylabel, legend=args.legend, size=(w, h),
                         formats=tuple(args.formats), dpi=args.dpi):
        print(p)
    return 0


def cmd_profile(args) -> int:
    from .variant_profile import check_precision, profile_variant
    _load_devices(args)
    check_precision(args.precision)
    report = profile_variant(args.variant, device=args.device, weights=args.weights,
                             batch_size=args.batch_size, threads=args.threads, rounds=args.rounds,
                             reps=args.reps, latency=not args.no_latency, plugins=args.plugin,
                             precision=args.precision, explain=args.explain)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    explain = report.pop("explain", None)
    plan = report.pop("plan", None)
    for k, v in report.items():
        print(f"{k:22s} {v}")
    if plan:
        print("\nper-layer precision plan:")
        for r in plan:
            sens = f"  sensitivity {r['sensitivity_mse']:.3g}" if r.get("sensitivity_mse") is not None else ""
            print(f"  {r['layer']:44s} {r.get('kind', r.get('op', '')):16s} {r['precision']:5s} "
                  f"({r['why']}){sens}")
    if explain:
        print(f"\nestimated on {explain['device']}:\n{explain['text']}")
    return 0


def cmd_devices(args) -> int:
    import yaml

    from .devices import devices
    from .profiling.calibrate import DATA, calibrated_profile, calibrate_device, load_measurements
    _load_devices(args)
    data = Path(args.data) if args.data else DATA
    rows = load_measurements(data)
    names = args.device or sorted({r.device for r in rows})
    out = {}
    for name in names:
        profile = devices.get(name)
        sel = [r for r in rows if r.device == name]
        if not sel:
            raise BadInput(f"{data}: no measurements for device '{name}'")
        fits = calibrate_device(profile, sel, loo=not args.no_loo)
        out[name] = calibrated_profile(profile, fits, data)
        for precision, f in fits.items():
            loo = f.get("leave_one_out_abs_rel_error")
            print(f"{name} {precision}: {f['fit']}" + (f"; leave-one-network-out |error| median "
                  f"{loo['median']:.0%}, max {loo['max']:.0%}" if loo else ""), file=sys.stderr)
    text = yaml.safe_dump(out, sort_keys=False, width=100)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


COMMANDS = {"devices": cmd_devices, "list": cmd_list, "run": cmd_run, "table": cmd_table, "plot": cmd_plot,
            "profile": cmd_profile, "score": cmd_score, "train": cmd_train, "weights": cmd_weights}


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; recorded cells are kept, re-run to resume", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
