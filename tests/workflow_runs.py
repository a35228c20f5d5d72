"""Running the workflow from tests: one Snakemake command line and one dry-run parser for all."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(workdir: Path, *args: str, env: dict | None = None, cwd: Path | None = None,
              check: bool = True) -> subprocess.CompletedProcess:
    """Run the project's Snakefile with ``workdir`` as working directory; assert success when ``check``."""
    command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd or workdir)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def planned_jobs(dry_run_output: str) -> list[dict]:
    """rule, wildcards and outputs of every job a dry run lists."""
    jobs = []
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", dry_run_output):
        head = re.match(r"(?:local)?rule (\w+):", block.strip())
        if not head:
            continue
        found = re.search(r"\n\s+wildcards: (.*)", block)
        outputs = re.search(r"\n\s+output: (.*)", block)
        jobs.append({
            "rule": head.group(1),
            "wildcards": dict(item.split("=", 1) for item in found.group(1).split(", ")) if found else {},
            "output": outputs.group(1).split(", ") if outputs else [],
        })
    return jobs
