"""The `aiokv` command.

`aiokv serve` will serve the DynamoDB protocol (issue 6); until then it runs a demo that writes
to the store under --data, closes it, reopens it and reads everything back, so that a fresh
clone shows the durable core working end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import aiokv


async def _demo(data: str, count: int) -> int:
    started = time.perf_counter()
    async with aiokv.open(data) as db:
        before = [k async for k, _ in db.scan(prefix=b"demo:")]
        run = len(before) // count
        async with db.batch(sync=True) as batch:
            for i in range(count):
                batch.put(f"demo:{run:04d}:{i:04d}", f"value {i} of run {run}")
    async with aiokv.open(data) as db:
        found = [k async for k, _ in db.scan(prefix=f"demo:{run:04d}:")]
        total = [k async for k, _ in db.scan(prefix=b"demo:")]
    ms = (time.perf_counter() - started) * 1000
    ok = len(found) == count
    print(
        f"aiokv {aiokv.__version__}: wrote {count} keys to {data} (run {run}), reopened, "
        f"read back {len(found)}; {len(total)} demo keys in the store; {ms:.1f} ms; "
        f"{'ok' if ok else 'MISSING DATA'}"
    )
    print("The DynamoDB endpoint arrives with issue 6; this demo stands in for it until then.")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aiokv", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the store (for now: the durable-core demo)")
    serve.add_argument("--data", default="./data", help="database directory (default ./data)")
    serve.add_argument("--count", type=int, default=1000, help="keys the demo writes")
    args = parser.parse_args(argv)
    if args.command == "serve":
        try:
            return asyncio.run(_demo(args.data, args.count))
        except aiokv.AiokvError as e:
            print(f"aiokv: {e}", file=sys.stderr)
            return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
