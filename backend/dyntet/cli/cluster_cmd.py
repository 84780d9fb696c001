"""``dyntet cluster status``: a Ray cluster's slots and the workspace's running jobs, with where they run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cluster", help="show the Ray cluster that `dyntet serve --cluster` uses",
                                   description="List the cluster's slots and nodes, and the jobs of a workspace "
                                               "that are queued or running, with the node of each.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = actions.add_parser("status", help="slots, nodes, running jobs and where they run")
    status.add_argument("--cluster", default="auto", metavar="auto|ray://HOST:PORT|HOST:PORT",
                        help="the Ray cluster (default: the one this machine is part of)")
    status.add_argument("--workspace", type=Path, default=None, help="also list this workspace's jobs")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dyntet.cli import UserFacingError
    from dyntet.server.jobs.executor import make_executor
    from dyntet.server.jobs.store import JobStore

    try:
        executor = make_executor(args.cluster)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    try:
        report = executor.status()
    finally:
        executor.close()
    jobs = []
    if args.workspace is not None:
        folder = args.workspace / ".dyntet" / "jobs"
        if not folder.is_dir():
            raise UserFacingError(f"{args.workspace} has no job records (.dyntet/jobs): is it a served workspace?")
        jobs = [{"id": r.id, "kind": r.kind, "state": r.state, "node": r.node, "pid": r.pid, "attempts": r.attempts,
                 "step": (r.progress or {}).get("step"), "total": (r.progress or {}).get("total")}
                for r in JobStore(folder).load_all() if r.state in ("queued", "running")]
    report["jobs"] = jobs
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['executor']} cluster {report.get('address', '')}: {report.get('slots')} slot(s), "
          f"CPU {report.get('free_cpus', 0):g}/{report.get('cpus', 0):g} free, "
          f"GPU {report.get('free_gpus', 0):g}/{report.get('gpus', 0):g} free")
    for node in report["nodes"]:
        print(f"  node {node['node']}: {'alive' if node['alive'] else 'DEAD'}, "
              f"{node.get('cpus', 0):g} CPU, {node.get('gpus', 0):g} GPU")
    for job in jobs:
        step = f" {job['step']}/{job['total']}" if job["step"] is not None else ""
        print(f"  job {job['id']} {job['kind']} {job['state']}{step} on {job['node'] or '-'} (pid {job['pid']})")
    if args.workspace is not None and not jobs:
        print("  no queued or running jobs")
    return 0
