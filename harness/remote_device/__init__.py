"""Remote-device latency: export to ONNX, copy the model, its inputs and a small
benchmark script to the device, run ONNX Runtime there and parse the per-call times
into a measured record for that device. ``ssh://[user@]host[:port][/dir]`` uses ssh and
scp; ``local:DIR`` runs the same steps in a local folder (tests, or a device mounted
here)."""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..errors import BadInput

SCRIPT = Path(__file__).with_name("ort_bench.py")


@dataclass
class LocalTransport:
    folder: Path

    def describe(self) -> str:
        return f"local:{self.folder}"

    def put(self, src: Path, name: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, self.folder / name)

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=self.folder, capture_output=True, text=True, timeout=timeout)


@dataclass
class SSHTransport:
    host: str                  # [user@]host
    port: int = 22
    folder: str = "avatarbench-remote"

    def describe(self) -> str:
        return f"ssh://{self.host}:{self.port}/{self.folder}"

    def _ssh(self, command: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", "-p", str(self.port), "-o", "BatchMode=yes", self.host, command],
                              capture_output=True, text=True, timeout=timeout)

    def put(self, src: Path, name: str) -> None:
        self._ssh(f"mkdir -p {shlex.quote(self.folder)}", 60)
        r = subprocess.run(["scp", "-P", str(self.port), "-q", str(src), f"{self.host}:{self.folder}/{name}"],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise BadInput(f"remote {self.describe()}: copying {src.name} failed: {r.stderr.strip()[-300:]}")

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess:
        return self._ssh(f"cd {shlex.quote(self.folder)} && " + " ".join(map(shlex.quote, argv)), timeout)


def transport_for(target: str):
    if target.startswith("local:"):
        return LocalTransport(Path(target[len("local:"):]).expanduser())
    if target.startswith("ssh://"):
        u = urlparse(target)
        if not u.hostname:
            raise BadInput(f"remote target '{target}': no host (ssh://[user@]host[:port][/dir])")
        host = f"{u.username}@{u.hostname}" if u.username else u.hostname
        return SSHTransport(host, u.port or 22, u.path.lstrip("/") or "avatarbench-remote")
    raise BadInput(f"remote target '{target}': expected local:DIR or ssh://[user@]host[:port][/dir]")


def parse_output(stdout: str, where: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        try:
            out = json.loads(line)
        except json.JSONDecodeError:
            continue
        times = out.get("times_ms") if isinstance(out, dict) else None
        if isinstance(times, list) and times and all(isinstance(t, (int, float)) and t > 0 for t in times):
            return out
        break
    raise BadInput(f"remote {where}: the benchmark printed no timing line; output ends with: "
                   f"{stdout.strip()[-300:]!r}")


def remote_latency(onnx_path: Path, names: list[str], inputs: tuple, target: str, python: str,
                   threads: int, warmup: int, runs: int, work: Path) -> dict:
    """Per-call times measured on ``target`` by ONNX Runtime there."""
    import numpy as np
    transport = transport_for(target)
    work.mkdir(parents=True, exist_ok=True)
    np.savez(work / "inputs.npz", **{n: t.detach().float().numpy() for n, t in zip(names, inputs)})
    transport.put(onnx_path, "model.onnx")
    transport.put(work / "inputs.npz", "inputs.npz")
    transport.put(SCRIPT, "ort_bench.py")
    argv = [python, "ort_bench.py", "model.onnx", "inputs.npz", "--threads", str(threads),
            "--warmup", str(warmup), "--runs", str(runs)]
    try:
        proc = transport.run(argv, timeout=1800)
    except subprocess.TimeoutExpired:
        raise BadInput(f"remote {transport.describe()}: the benchmark did not finish in 30 minutes") from None
    except OSError as exc:
        raise BadInput(f"remote {transport.describe()}: cannot start `{' '.join(argv)}`: {exc}") from None
    if proc.returncode != 0:
        raise BadInput(f"remote {transport.describe()}: `{' '.join(argv)}` exited {proc.returncode}: "
                       f"{proc.stderr.strip()[-500:]}")
    out = parse_output(proc.stdout, transport.describe())
    out["target"] = transport.describe()
    return out
