"""Goodput at Llama 3's failure rate (the profiles' node MTBF) on 128 nodes of 8 H100s, at
the Young/Daly interval, sync and async saves: the figures quoted in docs/plan.md.

    .venv/bin/python benchmarks/plan_goodput.py [SEEDS]
"""

from __future__ import annotations

import sys
import time

from olmoctl.core.plan import inputs as plan_inputs
from olmoctl.core.plan.costs import make_plan
from olmoctl.core.plan.simulate import simulate


def main(seeds: int = 256) -> None:
    for recipe in ("7b", "65b"):
        r, c = plan_inputs.load(recipe, "h100")
        p = make_plan(r, c, 128)
        t0 = time.perf_counter()
        sim = simulate(p, seeds=seeds)
        took = time.perf_counter() - t0
        for mode in ("async", "sync"):
            m = sim["modes"][mode]
            yd = m["young_daly"]
            print(
                f"{recipe} h100 x128 {mode:5}: goodput {100 * yd['mean']:.2f}% "
                f"± {100 * yd['std']:.2f} (5-95%: {100 * yd['p5']:.2f}-{100 * yd['p95']:.2f}), "
                f"closed form {100 * m['analytic_young_daly']:.2f}%, "
                f"optimum {m['optimum_vs_young_daly']:.2f} x Young/Daly "
                f"({sim['young_daly_s'][mode] / 60:.0f} min)"
            )
        print(f"  ({seeds} seeds, {took:.2f} s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 256)
