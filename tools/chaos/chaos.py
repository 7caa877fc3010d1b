"""Faults under load, with nothing lost: the reliability suite.

    .venv/bin/python3 tools/chaos/chaos.py [--short] [--binary .build/release/tally] [SCENARIO ...]

The run starts its own PostgreSQL and Redis (tools/services.sh, a private state folder); each
scenario starts its own Tally instances, uses its own ids, and drives load through grpcio clients that record every acknowledgement,
injects one fault, lets the clients retry as real ones do (same ids), waits for the queues to
drain and counts: acknowledged, stored, lost, duplicated, phantom, boards off. Prints one line
per scenario and `N passed, N failed`; exits non-zero when one fails. `--short` runs the CI
subset (about three minutes)."""
import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from harness import ROOT, Services, stubs  # noqa: E402
import domain_scenarios  # noqa: E402
import event_scenarios  # noqa: E402

# The CI subset: a crash of each process the data passes through, a lease lost mid-write, a user stuck online.
SHORT = ["events/tally-killed", "events/redis-killed", "events/postgres-restarted", "events/worker-paused", "presence/instance-killed"]


def all_scenarios():
    scenarios = {f"events/{name}": (lambda services, binary, fault=fault, options=options:
                                    event_scenarios.run_events_scenario(services, binary, fault, **options))
                 for name, (fault, options) in event_scenarios.SCENARIOS.items()}
    scenarios.update(domain_scenarios.SCENARIOS)
    return scenarios


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(ROOT / ".build" / "release" / "tally"))
    parser.add_argument("--short", action="store_true", help="the CI subset")
    parser.add_argument("scenarios", nargs="*", help="names (default: all, or the short subset)")
    args = parser.parse_args()
    scenarios = all_scenarios()
    names = args.scenarios or (SHORT if args.short else list(scenarios))
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {sorted(scenarios)}")
    stubs()
    services = Services()
    passed = 0
    try:
        services.migrate(args.binary)
        for name in names:
            started = time.monotonic()
            try:
                ok, line = scenarios[name](services, args.binary)
            except Exception as error:  # a scenario that cannot run has failed
                ok, line = False, f"error: {type(error).__name__}: {error}"
            passed += ok
            print(f"{'PASS' if ok else 'FAIL'}  {name:36} {line} ({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        services.stop()
    print(f"{passed} passed, {len(names) - passed} failed")
    sys.exit(0 if passed == len(names) else 1)


if __name__ == "__main__":
    main()
