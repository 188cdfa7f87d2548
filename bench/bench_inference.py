"""Train vs Inference: the page's default run, BN folding's inference speed-up, and the cached page rerun."""

from __future__ import annotations

import statistics

from bench.common import Result, median_time, rerun_times


def _default_run(quick: bool):
    from bn_core.data import DataConfig, load_dataset
    from bn_core.experiments.inference import InferenceConfig, run_inference

    split = load_dataset(DataConfig("digits"))
    runs = []
    seconds, _ = median_time(lambda: runs.append(run_inference(InferenceConfig(), data=split)), 1 if quick else 3)
    result = Result("inference_default_run_s", seconds, "s", goal=3.0,
                    detail={"what": "run_inference(InferenceConfig()): 300 SGD steps, EMA/batch stats every step, "
                                    "precise BN every 10 steps, train/eval gap vs batch size"})  # fmt: skip
    return result, runs[-1], split


def _fold(run, split, quick: bool) -> list[Result]:
    """Speed-up of the folded net over the same weights with torch's BN (and with the hand-written BN).

    Timed with ``bn_core.folding.interleaved_times``: the candidates alternate every round, as in
    ``bench.common.interleaved_ratio``, but with the garbage collector paused instead of a full
    ``gc.collect()`` before every call, which costs ~0.35 s in a process that has imported torch on
    this machine: thousands of sub-millisecond calls would take minutes.
    """
    import numpy as np

    from bn_core.experiments.inference import trained_model
    from bn_core.folding import fold_bn, interleaved_times

    models = {"torch_bn": trained_model(run, "torch"), "manual_bn": trained_model(run), "folded": None}
    models["folded"] = fold_bn(models["manual_bn"])
    rounds = 300 if quick else 3000
    results = []
    for n, name in ((len(split.y_test), "fold_speedup"), (1, "fold_speedup_batch1")):
        x = split.x_test[:n]
        times = interleaved_times({k: (lambda m=m, x=x: m(x)) for k, m in models.items()}, rounds)
        ratio = {k: float(np.median(np.asarray(times[k][1]) / np.asarray(times["folded"][1]))) for k in models}
        detail = {
            "what": f"eval-mode forward of {n} test image(s): torch nn.BatchNorm1d net / folded net, median of "
            "per-round ratios, interleaved in the same run",
            **{f"{k}_median_ms": times[k][0] * 1e3 for k in models},
            "speedup_vs_manual_bn": ratio["manual_bn"],
            "rounds": rounds,
        }
        results.append(Result(name, ratio["torch_bn"], "x", goal=1.0, better="higher", detail=detail))
    return results


def _page_rerun(quick: bool) -> list[Result]:
    from tests.helpers import open_page

    at = open_page("views/inference.py")
    layers = [1, 2] * (3 if quick else 10)
    # both views are cached after the first visit: what a class mostly hits
    times = rerun_times(
        at, [lambda at, layer=layer: at.radio(key="inference:layer").set_value(layer) for layer in layers]
    )
    return [
        Result("inference_rerun_cached_ms", statistics.median(times[2:]) * 1e3, "ms", goal=150.0,
               detail={"runs": len(times) - 2, "what": "AppTest rerun of Train vs Inference after switching the "
                                                       "BN layer back and forth (every result and chart cached)"}),
    ]  # fmt: skip


def run(quick: bool) -> list[Result]:
    default, trained, split = _default_run(quick)
    return [default, *_fold(trained, split, quick), *_page_rerun(quick)]
