"""Glue for the thin rule scripts: logging to the rule's log file, failures named by shard."""
from __future__ import annotations

import logging
import re
import resource
import sys
import time
from contextlib import contextmanager

from quakesnake.errors import QuakesnakeError

# Each job's closing line, and how to read it back (benchmarks/dag_scale.py sums a run's jobs).
JOB_DONE = "rule %s (%s) done after %.1f s; CPU of the job's process %.1f s (its imports included)"
JOB_DONE_PATTERN = re.compile(r"rule (\w+) \(.*\) done after ([0-9.]+) s; CPU of the job's process ([0-9.]+) s")


@contextmanager
def logged(snakemake):
    """Send logging (and warnings) to the rule's log file; log any failure with the job's wildcards."""
    log_file = snakemake.log[0] if len(snakemake.log) else None
    logging.basicConfig(
        filename=log_file,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    job = ", ".join(f"{k}={v}" for k, v in snakemake.wildcards.items()) or snakemake.rule
    logging.getLogger("quakesnake").info("rule %s (%s) started", snakemake.rule, job)
    started = time.perf_counter()
    try:
        yield logging.getLogger("quakesnake")
    except QuakesnakeError as exc:
        # an anticipated failure: its message names the file and the reason; the log keeps the traceback
        logging.getLogger("quakesnake").exception("rule %s (%s) failed: %s", snakemake.rule, job, exc)
        print(f"quakesnake: rule {snakemake.rule} ({job}) failed: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        logging.getLogger("quakesnake").exception("rule %s (%s) failed: %s", snakemake.rule, job, exc)
        print(f"quakesnake: rule {snakemake.rule} ({job}) failed: {exc}", file=sys.stderr)
        raise
    # The job's own account of its cost, every thread included: Snakemake's benchmark files sample
    # CPU time every 30 s after a job's first 30 s, so they miss up to 30 s of a long job's CPU.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    logging.getLogger("quakesnake").info(JOB_DONE, snakemake.rule, job, time.perf_counter() - started,
                                         usage.ru_utime + usage.ru_stime)
