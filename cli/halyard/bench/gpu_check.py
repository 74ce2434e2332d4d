"""`make gpu-check`: the one-shot GPU proof, on a machine with torch, CuPy and
transformers only (no server or operator dependencies are imported).

1. every `gpu`-marked test (only the test files that carry the marker are
   collected, so files that need the server stack are never imported);
2. `halyard bench kernels` (GEMV, paged decode attention, copy bandwidth);
3. the offline decode benchmark on an 8B-shaped random-weight model
   (`gpu_decode`: bf16, int8, int4 at batch 1, 64, 256, GPU busy fraction).
Everything lands in one JSON file (default gpu-check.json). Exit status is
non-zero when a test fails or a part cannot run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def gpu_test_files() -> list[str]:
    files = sorted(p for p in (ROOT / "tests").rglob("test_*.py") if "mark.gpu" in p.read_text())
    return [str(p.relative_to(ROOT)) for p in files]


def run_tests(out_dir: Path) -> dict:
    report = out_dir / "gpu-tests.xml"
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           "--strict-markers", f"--junitxml={report}", *gpu_test_files()]
    start = time.time()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return {"command": " ".join(cmd), "rc": done.returncode, "seconds": time.time() - start,
            "tail": (done.stdout + done.stderr)[-6000:]}


def run_kernels(out_dir: Path) -> dict:
    from halyard.bench import kernels

    parser = argparse.ArgumentParser()
    kernels.add_arguments(parser)
    path = out_dir / "kernels.json"
    rc = kernels.run(parser.parse_args(["--batch", "1", "8", "16", "64", "--json", str(path)]))
    return {"rc": rc, "results": json.loads(path.read_text()) if path.exists() else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="gpu-check.json")
    parser.add_argument("--layers", type=int, default=32, help="decode benchmark model depth (8B: 32)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    start = time.time()
    result["tests"] = run_tests(out.parent)
    for name, part in (("kernels", lambda: run_kernels(out.parent)), ("decode", lambda: _decode(args.layers))):
        t0 = time.time()
        try:
            result[name] = part()
        except Exception as err:  # report and continue: one JSON file with every part
            result[name] = {"rc": 1, "error": f"{type(err).__name__}: {err}"}
        result[name + "_seconds"] = time.time() - t0
        out.write_text(json.dumps(result, indent=2, default=str))
    result["seconds"] = time.time() - start
    out.write_text(json.dumps(result, indent=2, default=str))
    failed = [k for k in ("tests", "kernels", "decode") if result[k].get("rc", 0)]
    print(f"gpu-check: {out} ({result['seconds']:.0f} s); failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


def _decode(layers: int) -> dict:
    from halyard.bench import gpu_decode

    return {"rc": 0, "results": gpu_decode.run_all(layers=layers)}


if __name__ == "__main__":
    raise SystemExit(main())
