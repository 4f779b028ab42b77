"""Peak memory of FilesClient.upload on a large file, against the emulator.

The emulator runs in its own process and the upload in a fresh child process, so the
figure is the client's alone. A child that only imports ftprep and builds a client is
measured in the same run as the baseline.

    python benchmarks/api_upload_memory.py [--size 500MB]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from ftprep.sizes import format_size, parse_size

CHILD = """
import json, resource, sys, time
import ftprep
from ftprep.client import RetryPolicy
path, url, upload = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
start = time.perf_counter()
with ftprep.FilesClient("bench", base_url=url, retry=RetryPolicy.never()) as client:
    size = client.upload(path, purpose="batch").bytes if upload else 0
elapsed = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_bytes": peak_kib * 1024, "bytes": size, "seconds": elapsed}))
"""


def write_dataset(path: Path, size: int) -> None:
    line = json.dumps({"text": "x" * 990}).encode() + b"\n"
    block = line * (1 << 20 // len(line) + 1)
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            chunk = block[: size - written]
            fh.write(chunk)
            written += len(chunk)


def run_child(path: Path, url: str, upload: bool) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), url, "1" if upload else "0"],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def peak_of(pid: int) -> int | None:
    """Peak resident memory of a running process (Linux), to show the emulator streams
    uploads to disk too."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="500MB", help="size of the generated file")
    args = parser.parse_args()
    size = parse_size(args.size)
    work = Path(tempfile.mkdtemp(prefix="ftprep-bench-"))
    server = None
    try:
        data = work / "big.jsonl"
        write_dataset(data, size)
        command = [sys.executable, "-m", "ftprep", "emulator", "--port", "0"]
        command += ["--data-dir", str(work / "emu"), "--max-size", str(size + 1)]
        server = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert server.stdout is not None
        url = server.stdout.readline().split(" at ")[1].split()[0]
        baseline = run_child(data, url, upload=False)
        measured = run_child(data, url, upload=True)
        assert measured["bytes"] == size, measured
        extra = measured["peak_bytes"] - baseline["peak_bytes"]
        print(f"file                  {format_size(size)}")
        print(f"peak RSS, no upload   {format_size(int(baseline['peak_bytes']))}")
        print(f"peak RSS, upload      {format_size(int(measured['peak_bytes']))}")
        print(f"upload adds           {format_size(max(int(extra), 0))}")
        print(f"peak / file size      {measured['peak_bytes'] / size:.3f}")
        print(f"upload / baseline     {measured['peak_bytes'] / baseline['peak_bytes']:.2f}")
        print(f"upload time           {measured['seconds']:.1f} s")
        server_peak = peak_of(server.pid)
        if server_peak is not None:
            print(f"emulator peak RSS     {format_size(server_peak)}")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.pop("FTPREP_BASE_URL", None)
    main()
