"""Shared bits of the benchmark scripts: paths, the shared data folder, README table updates."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OUT = ROOT / "benchmarks" / "out"


def shipped_phasenet_weights() -> str:
    """The weights of the shipped default PhaseNet picker: the SeisBench picker of config/config.yaml."""
    import yaml

    pickers = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["pickers"]
    return next(picker["weights"] for picker in pickers.values() if picker["type"] == "seisbench")


def seisbench_cache() -> Path | None:
    """A writable copy of ../shared's SeisBench cache (SeisBench may write into it), or None."""
    source = SHARED / "models" / "seisbench-cache"
    if not source.exists():
        return None
    target = Path(tempfile.mkdtemp(prefix="quakesnake-seisbench-")) / "cache"
    shutil.copytree(source, target)
    return target


def markdown_table(header: list[str], rows: list[list]) -> str:
    def cell(value):
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def update_readme(section: str, text: str) -> None:
    """Replace the README block between <!-- {section}:start --> and <!-- {section}:end -->."""
    readme = ROOT / "README.md"
    content = readme.read_text()
    pattern = re.compile(rf"(<!-- {section}:start -->\n).*?(<!-- {section}:end -->)", re.S)
    if not pattern.search(content):
        raise SystemExit(f"README.md has no <!-- {section}:start/end --> block")
    readme.write_text(pattern.sub(lambda m: m.group(1) + text.rstrip() + "\n" + m.group(2), content))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"
