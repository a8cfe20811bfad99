"""mypy on the package against a baseline that can only shrink.

    python .ci/mypy_baseline.py            # fail if any file has more errors than the baseline
    python .ci/mypy_baseline.py --update   # write the current counts (after fixing some)

mypy runs with the settings of pyproject.toml ([tool.mypy]). The baseline,
.ci/mypy-baseline.json, holds the number of errors of each file that had some when it was
written; a file not in it must have none. Counts per file, not a total, so that fixing errors in
one module cannot pay for new ones in another. A count that went down is reported so that the
baseline is lowered in the same commit.
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / ".ci" / "mypy-baseline.json"
ERROR = re.compile(r"^(?P<file>[^:\s]+\.py):\d+(?::\d+)?: error: ", re.M)


def current_counts() -> dict[str, int]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-error-summary",
            "--no-color-output",
            "--show-error-codes",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        sys.exit(f"mypy failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    sys.stdout.write(done.stdout)
    return dict(sorted(collections.Counter(ERROR.findall(done.stdout)).items()))


def main() -> int:
    counts = current_counts()
    if "--update" in sys.argv[1:]:
        BASELINE.write_text(json.dumps(counts, indent=1) + "\n")
        print(f"mypy baseline written: {sum(counts.values())} errors in {len(counts)} files")
        return 0
    baseline = json.loads(BASELINE.read_text())
    worse = {f: (baseline.get(f, 0), n) for f, n in counts.items() if n > baseline.get(f, 0)}
    better = {f: (n, counts.get(f, 0)) for f, n in baseline.items() if counts.get(f, 0) < n}
    for f, (was, now) in better.items():
        print(
            f"mypy baseline: {f} has {now} errors, {was} allowed: lower it "
            f"(python .ci/mypy_baseline.py --update)"
        )
    if worse:
        for f, (allowed, now) in worse.items():
            print(f"mypy: {f} has {now} errors, the baseline allows {allowed}")
        return 1
    print(
        f"mypy: {sum(counts.values())} errors in {len(counts)} files, within the baseline "
        f"({sum(baseline.values())})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
