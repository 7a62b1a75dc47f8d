#!/usr/bin/env bash
# Install beatgrid with its test extras and run the test suite.
#   bash tests/run.sh [pytest args...]
# Uses the CPU build of torch (constraints-cpu.txt). Where apt-get is usable (root),
# also installs Chromium (report rendering test) and Slurm + munge (cluster test);
# without them those tests skip and say what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q -c constraints-cpu.txt -e ".[test,slurm]"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${BEATGRID_SKIP_APT:-0}" != 1 ]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld slurmd slurm-client munge)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing system packages for the report and cluster tests: ${missing[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
      || echo "warning: apt-get could not install ${missing[*]}; the tests that need them will skip"
  fi
fi

# The slowest tests are printed and kept: benchmarks/out/tests/junit.xml has every test's time
# (python benchmarks/slowest_tests.py benchmarks/out/tests/junit.xml makes RESULTS.md's table).
mkdir -p benchmarks/out/tests
exec python3 -m pytest -n 2 --durations=25 --junitxml=benchmarks/out/tests/junit.xml "$@"
