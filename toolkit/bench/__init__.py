"""Benchmarks: latency/FPS and accuracy of several models on the same pairs, as readable reports.

``run_bench(BenchConfig(models=[...]), out_dir)`` is the entry point; ``metrics`` holds the
accuracy and confidence measures, ``timing`` the latency statistics, ``report`` and
``plots`` the files.
"""

from toolkit.bench.harness import BenchConfig, BenchReport, run_bench

__all__ = ["BenchConfig", "BenchReport", "run_bench"]
