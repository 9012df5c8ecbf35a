"""``python -m smgic_pydra.baselines.ants_child ARGS_JSON SECONDS_JSON``: run antsRegistration in this process.

Used by :func:`.ants_registration.run_antsregistration` so that every registration runs in a fresh
process whose ITK thread count comes from ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` (ITK reads it
once per process). ARGS_JSON holds the argument list; the measured wall time of antsRegistration
(seconds) is written to SECONDS_JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    args_file, seconds_file = (argv or sys.argv[1:])[:2]
    import ants

    args = json.loads(Path(args_file).read_text())
    start = time.perf_counter()
    ants.registration(args, None)  # antspyx: a list of arguments runs antsRegistration as given
    Path(seconds_file).write_text(json.dumps({"seconds": time.perf_counter() - start}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
