"""`mlflow models serve` (MLflow 3.17.2, its own venv) on the demo's leader, loaded by wrk.

    .venv/bin/python -m bench.mlflow_serve [--venv .venv-mlflow] [--seconds 15] [--clients 16 64]

The leader (churn-logistic: the demo's pipeline, trained here the same way) is pickled,
saved as an MLflow sklearn model by the MLflow venv's Python, served with 2 workers on
127.0.0.1, and sent one row per request (dataframe_split). MLflow is an optional extra:
create the venv with `python3 -m venv V && V/bin/pip install mlflow==3.17.2 scikit-learn==<ours>`.
Prints one JSON document on stdout's last line.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.http_compare import LUA, ROW, cpu_seconds, tree, wrk
from tests.e2e.server import free_port
from trainers import steps
from trainers.demo import demo_specs
from trainers.demo_data import generate

# MLflow's own venv, beside ours in the repository root (ignored by git; `make clean` removes it).
DEFAULT_VENV = Path(__file__).resolve().parents[1] / ".venv-mlflow"
SAVE = """
import pickle, sys, mlflow.sklearn
mlflow.sklearn.save_model(pickle.load(open(sys.argv[1], "rb")), sys.argv[2], serialization_format="pickle")
"""


def leader_pickle(directory: Path) -> tuple[Path, list[str]]:
    """The demo's churn-logistic pipeline fitted as the demo fits it; its feature order."""
    spec = next(s for s in demo_specs() if s["name"] == "churn-logistic")
    frame = steps.typed_frame(
        generate(spec["source"]["rows"], spec["source"]["seed"], end=spec["source"]["end"]), spec
    )
    train, _ = steps.split(frame, spec)
    pipeline = steps.build_pipeline(
        spec["features"], spec["algorithm"], spec["params"], spec["seed"]
    )
    fitted = steps.fit(pipeline, train, spec["features"], spec["target"])
    path = directory / "leader.pkl"
    path.write_bytes(pickle.dumps(fitted))
    return path, [f["name"] for f in spec["features"]]


def body(names: list[str]) -> str:
    row = [float(ROW[n]) if isinstance(ROW[n], bool) else ROW[n] for n in names]
    return json.dumps(
        {"dataframe_split": {"columns": [str(i) for i in range(len(names))], "data": [row]}}
    )


def static_script(directory: Path, payload: str) -> Path:
    prelude = (
        'RUN, ROW = "", ""\nPATH = "/invocations"\nHEADERS = {["Content-Type"]="application/json"}\n'
        f"BODY = [==[{payload}]==]\n"
    )
    script = directory / "mlflow.lua"
    script.write_text(
        prelude + LUA.replace("local body = string.format(", "local body = BODY or string.format(")
    )
    return script


def serve(venv: Path, model: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(venv / "bin" / "mlflow"),
                "models",
                "serve",
                "-m",
                str(model),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "--env-manager",
                "local",
                "-w",
                "2",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:]) from None
            time.sleep(0.5)
    raise RuntimeError("mlflow models serve did not answer in 180 s")


def run(venv: Path, seconds: float, clients: list[int]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        pickled, names = leader_pickle(home)
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", SAVE, str(pickled), str(home / "model")],
            check=True,
            capture_output=True,
            timeout=300,
        )
        port = free_port()
        process = serve(venv, home / "model", port, home / "mlflow.log")
        try:
            url = f"http://127.0.0.1:{port}/invocations"
            request = urllib.request.Request(
                url, body(names).encode(), {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                sample = json.loads(answer.read())
            script = static_script(home, body(names))
            wrk(url, script, 8, 3)
            runs = []
            for n in clients:
                pids = tree(process.pid)
                cpu = cpu_seconds(pids)
                result = wrk(url, script, n, seconds)
                result["server_cpu_ms_per_request"] = (
                    1000 * (cpu_seconds(pids) - cpu) / max(result["ok"], 1)
                )
                runs.append({"clients": n, **result})
            return {"sample_answer": sample, "runs": runs}
        finally:
            os.killpg(process.pid, 15)
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    args = parser.parse_args()
    print(json.dumps(run(args.venv, args.seconds, args.clients)))


if __name__ == "__main__":
    main()
