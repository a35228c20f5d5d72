"""Print the torch requirement of pyproject.toml (e.g. ``torch==2.13.0``).

The container recipes install torch first, from the index of the wanted build (CPU or CUDA), with
exactly the version pyproject.toml pins; `pip install .` then finds it satisfied.

    python containers/torch-requirement.py [pyproject.toml]
"""
import re
import sys
import tomllib
from pathlib import Path

path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "pyproject.toml"
dependencies = tomllib.loads(path.read_text())["project"]["dependencies"]
torch = [d.replace(" ", "") for d in dependencies if re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].lower() == "torch"]
if len(torch) != 1:
    sys.exit(f"{path}: expected one torch requirement, found {torch}")
print(torch[0])
