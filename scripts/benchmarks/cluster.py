"""M tiny jobs through one ``dyntet serve``: the local executor (today's default, one heavy job at a time)
and then a local Ray cluster (``--cluster``, 2 CPUs = 2 slots), in one run, on loopback.

The job is the built-in ``selftest`` (power iteration, ``STEPS`` steps of ``STEP_S`` s, checkpointed): it
sleeps between steps, so it needs almost no CPU and two of them overlap on 2 cores as two GPU-bound jobs
would on two GPUs. A CPU-heavy job (training) cannot show scale-out on a 2-core machine that also runs the
server and Ray. Times run from the first submit to the last ``done`` (server start not counted).

- ``local_s``, ``ray_s``: wall times; ``speedup`` = ``local_s / ray_s``.
- ``overhead_s_per_job``: what Ray adds to each job on its slot, ``(ray_s - local_s / slots) · slots / jobs``
  (0 when 2 slots halve the time exactly).
- ``job_s``: one job alone through the local executor (spawn + import + run), the reference for the estimate.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from dyntet_protocol import Client

from benchmarks.protocol import _start_server

JOBS, SLOTS, STEPS, STEP_S = 6, 2, 100, 0.05


def run() -> dict:
    base = Path(tempfile.mkdtemp(prefix="dyntet-bench-cluster-"))
    try:
        print(f"load average {open('/proc/loadavg').read().split()[:3]}")
        job_s = _through(base / "one", (), 1)
        local_s = _through(base / "local", (), JOBS)
        import ray

        # 127.0.0.2: Ray replaces 127.0.0.1 by the machine's network address; this keeps it on loopback.
        ray.init(address="local", num_cpus=SLOTS, include_dashboard=False, _node_ip_address="127.0.0.2", log_to_driver=False)
        try:
            ray_s = _through(base / "ray", ("--cluster", ray.get_runtime_context().gcs_address), JOBS)
        finally:
            ray.shutdown()
        print(f"load average {open('/proc/loadavg').read().split()[:3]}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {"jobs": JOBS, "slots": SLOTS, "job_s": round(job_s, 2), "local_s": round(local_s, 2),
            "ray_s": round(ray_s, 2), "overhead_s_per_job": round((ray_s - local_s / SLOTS) * SLOTS / JOBS, 3),
            "speedup": round(local_s / ray_s, 3), "loadavg_1m": float(open("/proc/loadavg").read().split()[0])}


def _through(workspace: Path, extra: tuple[str, ...], jobs: int) -> float:
    workspace.mkdir(parents=True)
    server = _start_server(workspace, *extra)
    try:
        with Client(server["requests"], timeout_s=30) as client:
            start = time.perf_counter()
            ids = [client.submit("selftest", {"run": f"runs/j{i}", "steps": STEPS, "step_s": STEP_S})["id"]
                   for i in range(jobs)]
            records = [client.wait(job_id, timeout_s=600, poll_s=0.05) for job_id in ids]
            elapsed = time.perf_counter() - start
            if any(r["state"] != "done" for r in records):
                raise RuntimeError(f"a benchmark job did not finish: {[r['state'] for r in records]}")
            nodes = sorted({r["node"] for r in records})
            print(f"{jobs} job(s) {'with ' + ' '.join(extra) if extra else 'local'}: {elapsed:.2f} s on {nodes}",
                  flush=True)
            client.shutdown()
        server["process"].wait(30)
    finally:
        if server["process"].poll() is None:
            server["process"].kill()
    return elapsed
