#!/usr/bin/env python3
"""Benchmark peer (not a test): pywinrm in a thread pool against a lab inventory.

Runs trustsweep's probe script (playbooks/scripts/probe.ps1) with pywinrm's run_ps on
every host of an Ansible-style YAML inventory (`trustsweep lab serve --write-inventory`),
THREADS hosts at once, NTLM with message encryption over HTTP, as Ansible's winrm
connection would. Prints one line: hosts, ok, failed, wall seconds.

    target/interop-venv/bin/python scripts/bench_pywinrm.py INVENTORY [THREADS]
"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import winrm
import yaml

PROBE = (Path(__file__).resolve().parent.parent / "playbooks/scripts/probe.ps1").read_text()


def hosts(inventory):
    doc = yaml.safe_load(Path(inventory).read_text())
    out = []

    def walk(group):
        for name, h in (group.get("hosts") or {}).items():
            out.append((name, h))
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk(doc["all"])
    return out


def probe(entry):
    _name, h = entry
    s = winrm.Session(
        f"http://{h['ansible_host']}:{h['ansible_port']}/wsman",
        auth=(h["ansible_user"], h["ansible_password"]),
        transport="ntlm",
        operation_timeout_sec=20,
        read_timeout_sec=30,
    )
    try:
        r = s.run_ps(PROBE)
        return r.status_code == 0 and b"ts.name=" in r.std_out
    except Exception:  # noqa: BLE001 - a failed host is counted, the sweep goes on
        return False


def main():
    inventory = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    targets = hosts(inventory)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(probe, targets))
    wall = time.monotonic() - started
    ok = sum(results)
    print(f"hosts={len(targets)} ok={ok} failed={len(targets) - ok} wall_s={wall:.2f}")
    return 0 if ok == len(targets) else 2


if __name__ == "__main__":
    sys.exit(main())
