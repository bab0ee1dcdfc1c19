"""Command line: ``python -m ebmlib toy-table --seeds 5 --json FILE``."""
import argparse
import json
import platform
import sys
import time

import torch


def _toy_table(args):
    from .toy_table import format_table, table1

    start = time.perf_counter()
    records = table1(seeds=args.seeds, n_samples=args.samples, progress=args.progress)
    total = time.perf_counter() - start
    print(f"Table 1 on the 25-Gaussian grid: {args.samples} samples per method, mean ± std over {args.seeds} seeds")
    print(format_table(records))
    print(f"total {total:.1f} s")
    if args.json:
        meta = {"seeds": args.seeds, "n_samples": args.samples, "total_seconds": total,
                "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                "torch": torch.__version__, "threads": torch.get_num_threads(), "device": "cpu"}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "records": records}, f, indent=2)
        print(f"wrote {args.json}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ebmlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("toy-table", help="the DDLS paper's Table 1 on the 25-Gaussian grid")
    p.add_argument("--seeds", type=int, default=5, help="number of trained pairs (default 5)")
    p.add_argument("--samples", type=int, default=10_000, help="samples per method and seed (default 10000)")
    p.add_argument("--json", help="also write the records to this JSON file")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.set_defaults(run=_toy_table)
    args = parser.parse_args(argv)
    for name in ("seeds", "samples"):
        if getattr(args, name, 1) <= 0:
            parser.error(f"--{name} must be positive")
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
