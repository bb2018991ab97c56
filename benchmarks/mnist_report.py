"""bench_mnist.py's JSON as tables (text or Markdown) and as a PNG chart.

python benchmarks/mnist_report.py benchmarks/results/bench_mnist.json --markdown
python benchmarks/mnist_report.py benchmarks/results/bench_mnist.json --chart epochs.png
"""

from __future__ import annotations

import argparse
import json

import harness

CHARTED = ("minigrad", "pytorch", "numpy_floor")  # the three the chart compares
COLOURS = {"minigrad": "tab:blue", "pytorch": "tab:orange", "numpy_floor": "tab:green"}


def format_tables(document: dict, markdown: bool = False) -> str:
    """For each thread count: epoch times, the step breakdown, and peak memory."""
    out = []
    for run in document["runs"]:
        threads = run["threads_requested"]
        results = [r for r in document["results"] if r["threads"] == threads]
        sgemm = run["sgemm"]
        peaks = ", ".join(f"{lib} {sgemm[lib]:.0f}" for lib in ("numpy", "torch") if lib in sgemm)
        out.append(
            f"{threads} thread(s); sgemm peak {sgemm['peak_gflops']:.0f} GFLOP/s "
            f"({peaks}; best of {len(sgemm['measured'])} x 5 calls, {sgemm['size']}-square); "
            "load average before "
            f"{run['load_average']['before']}, after {run['load_average']['after']}"
        )
        out += ["", epoch_table(results, markdown), ""]
        out += ["Step breakdown, microseconds per step:", "", breakdown_table(results, markdown)]
        if any("memory" in r for r in results):
            out += ["", "Peak memory, each alone in a fresh process (MiB):", ""]
            out.append(memory_table(results, markdown))
        out.append("")
    return "\n".join(out)


def epoch_table(results, markdown=False) -> str:
    rows = []
    for r in results:
        for name, impl in r["impls"].items():
            ratio = r.get("ratios", {}).get(f"minigrad/{name}", 1.0 if name == "minigrad" else None)
            rows.append(
                [
                    r["batch_size"],
                    r["width"],
                    name,
                    f"{impl['median_epoch_seconds']:.3f}",
                    f"{impl['steps_per_second']:.0f}",
                    f"{impl['percent_of_peak']:.0f}%",
                    f"{100 * impl['test_accuracy']:.2f}%",
                    "-" if ratio is None else f"{ratio:.2f}x",
                ]
            )
        rows.append(
            [
                r["batch_size"],
                r["width"],
                "(bound: matmuls at sgemm peak)",
                f"{r['bound_seconds']:.3f}",
                "-",
                "100%",
                "-",
                "-",
            ]
        )
    headers = [
        "batch",
        "width",
        "impl",
        "epoch s",
        "steps/s",
        "% of peak",
        "test acc",
        "minigrad/this",
    ]
    return harness.table(headers, rows, markdown)


def breakdown_table(results, markdown=False) -> str:
    rows = []
    for r in results:
        floor = r["impls"].get("numpy_floor", {}).get("step_us", {}).get("step")
        for name, impl in r["impls"].items():
            us = impl["step_us"]
            above = "-" if floor is None else f"{us['step'] - floor:.0f}"
            parts = ("gather", "forward", "backward", "optimiser", "overhead", "step")
            rows.append(
                [r["batch_size"], r["width"], name] + [f"{us[p]:.0f}" for p in parts] + [above]
            )
    headers = [
        "batch",
        "width",
        "impl",
        "gather",
        "forward",
        "backward",
        "optimiser",
        "overhead",
        "step",
        "above floor",
    ]
    return harness.table(headers, rows, markdown)


def memory_table(results, markdown=False) -> str:
    rows = [
        [
            r["batch_size"],
            r["width"],
            name,
            _mib(m["peak_rss_mib"]),
            _mib(m["after_data_mib"]),
        ]
        for r in results
        for name, m in r.get("memory", {}).items()
    ]
    headers = ["batch", "width", "impl", "peak RSS MiB", "above the loaded data MiB"]
    return harness.table(headers, rows, markdown)


def _mib(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def plot(document: dict, path) -> str:
    """Epoch time against batch size (width 128) and against width, fewest threads; a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    threads = min(run["threads_requested"] for run in document["runs"])
    results = [r for r in document["results"] if r["threads"] == threads]
    figure, (by_batch, by_width) = plt.subplots(1, 2, figsize=(11, 4.2))
    narrow = sorted((r for r in results if r["width"] == 128), key=lambda r: r["batch_size"])
    _lines(by_batch, narrow, "batch_size", "-", "")
    by_batch.set(
        xscale="log",
        xlabel="batch size (width 128)",
        ylabel="epoch seconds (median)",
        title="Epoch time against batch size",
    )
    for batch, style in zip(
        sorted({r["batch_size"] for r in results if r["width"] != 128}),
        ("-", "--", ":", "-."),
        strict=False,
    ):
        wide = sorted((r for r in results if r["batch_size"] == batch), key=lambda r: r["width"])
        if len(wide) > 1:
            _lines(by_width, wide, "width", style, f", batch {batch}")
    by_width.set(
        xscale="log",
        yscale="log",
        xlabel="width W (784 -> W -> W/2 -> 10)",
        ylabel="epoch seconds (median)",
        title="Epoch time against width",
    )
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}")
    for axes in (by_batch, by_width):
        ticks = sorted({x for line in axes.lines for x in line.get_xdata()})
        axes.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        axes.xaxis.set_major_formatter(plain)
        axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axes.yaxis.set_major_formatter(plain)
        axes.grid(True, which="both", alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=7)
    machine = document["machine"]
    figure.suptitle(
        f"MNIST MLP training, {threads} thread(s), {machine['cpu']} "
        f"({machine['usable_cpus']} CPUs), {document['date'][:10]}",
        fontsize=10,
    )
    figure.tight_layout()
    harness.write_atomically(
        path, lambda temporary: figure.savefig(temporary, format="png", dpi=110)
    )
    plt.close(figure)
    return str(path)


def _lines(axes, results, key, style, suffix):
    xs = [r[key] for r in results]
    for name in CHARTED:
        if all(name in r["impls"] for r in results):
            times = [r["impls"][name]["median_epoch_seconds"] for r in results]
            axes.plot(xs, times, style, marker="o", color=COLOURS[name], label=name + suffix)
    axes.plot(
        xs,
        [r["bound_seconds"] for r in results],
        style,
        color="grey",
        label="bound: matmuls at sgemm peak" + suffix,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="a file written by bench_mnist.py")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--chart", default=None, help="write the chart to this PNG")
    args = parser.parse_args(argv)
    with open(args.json) as file:
        document = json.load(file)
    print(format_tables(document, args.markdown))
    if args.chart:
        print(f"chart written to {plot(document, args.chart)}")


if __name__ == "__main__":
    main()
