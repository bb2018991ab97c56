"""Participants that take turns training: in this process, or in a worker process of their own.

A Participant trains one implementation through the epochs of one configuration, a few steps per
turn. A RemoteParticipant does the same in a child process (`python benchmarks/turns.py`) that
talks JSON lines over its stdin and stdout; bench_mnist.py uses it to race two minigrad checkouts
(each child imports the minigrad on its own PYTHONPATH) and to measure each implementation's peak
memory alone. Both answer the same four calls: start_epoch, run, accuracy, memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

from trainers import TRAINERS, PhaseClock, batches, epoch_order, initial_layers

HERE = Path(__file__).resolve().parent


def memory_mib(field: str) -> float | None:
    """A size from /proc/self/status in MiB ("VmHWM": peak resident set, "VmRSS": now).

    Not getrusage's ru_maxrss: Linux carries that across exec, so a fresh worker would report
    the peak of the process that started it. None off Linux.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # the kernel reports kB
    except OSError:
        pass
    return None


def reset_peak_memory() -> None:
    """Make the peak resident set the current one (Linux: "5" into clear_refs), where allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


class Participant:
    """One implementation (a name in trainers.TRAINERS) on one configuration, in this process.

    `config` holds sizes, batch_size, seed, settings (the SGD keywords), warmup_steps and
    max_steps. Building it warms up on a throwaway copy: `warmup_steps` steps, then the epoch's
    short last batch if it has one (torch.compile compiles again for a new shape). The trainer
    that is timed then starts from the untouched initial weights. A trainer with `restart`
    (a compiled step: jax_jit, minigrad_compiled) warms up itself instead, keeping what it
    compiled, and restarts from the initial weights.
    """

    def __init__(self, impl: str, config: dict, data, test):
        self.name, self.config, self.data, self.test = impl, config, data, test
        reset_peak_memory()  # loading the data set made temporaries; count from here
        self.rss_before = memory_mib("VmRSS")
        make, count = TRAINERS[impl], len(data[1])
        layers = initial_layers(config["sizes"], config["seed"])
        warm = make(layers, data, config["settings"])
        steps = list(
            batches(
                warm.indices(epoch_order(config["seed"], -1, count)), config["batch_size"], None
            )
        )
        self.first_loss = warm.step(steps[0])
        for index in steps[1 : max(1, config["warmup_steps"])] + steps[-1:]:
            warm.step(index)
        if hasattr(warm, "restart"):
            warm.restart(layers)
            self.trainer = warm
        else:
            del warm
            self.trainer = make(layers, data, config["settings"])
        self.pending = iter(())

    def start_epoch(self, epoch: int) -> None:
        """Begin epoch `epoch`: every participant sees the same permutation."""
        order = epoch_order(self.config["seed"], epoch, len(self.data[1]))
        self.pending = batches(
            self.trainer.indices(order), self.config["batch_size"], self.config["max_steps"]
        )

    def run(self, steps: int) -> dict:
        """Train up to `steps` steps of the epoch: seconds, steps done, last loss, phase seconds."""
        clock, done, loss = PhaseClock(), 0, None
        start = time.perf_counter()
        for index in islice(self.pending, steps):
            clock.restart()
            loss = self.trainer.step(index, clock)
            done += 1
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "steps": done, "loss": loss, "phases": dict(clock.seconds)}

    def accuracy(self) -> float:
        return self.trainer.accuracy(*self.test)

    def memory(self) -> dict:
        """Peak RSS since the data was loaded (MiB), and how much above the RSS at that point."""
        peak = memory_mib("VmHWM")
        if peak is None or self.rss_before is None:
            return {"peak_rss_mib": None, "after_data_mib": None}
        return {"peak_rss_mib": peak, "after_data_mib": peak - self.rss_before}


class RemoteParticipant:
    """A Participant in a child process, with `env` (threads) and `pythonpath` (which minigrad)."""

    def __init__(self, impl, config, data_root, env, pythonpath=None, label=None):
        env = dict(env)
        if pythonpath is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(pythonpath), env.get("PYTHONPATH")])
            )
        self.name = label or impl
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "turns.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        setup = self._ask("setup", impl=impl, config=config, data_root=str(data_root))
        self.first_loss, self.minigrad_file = setup["first_loss"], setup["minigrad_file"]

    def _ask(self, command: str, **arguments):
        self.process.stdin.write(json.dumps({"command": command, **arguments}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            raise RuntimeError(f"{self.name}: worker exited (code {code}) during {command!r}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.name}: worker failed during {command!r}: {answer['error']}")
        return answer["result"]

    def start_epoch(self, epoch: int) -> None:
        self._ask("start_epoch", epoch=epoch)

    def run(self, steps: int) -> dict:
        return self._ask("run", steps=steps)

    def accuracy(self) -> float:
        return self._ask("accuracy")

    def memory(self) -> dict:
        return self._ask("memory")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)


def serve() -> None:
    """The worker: answer one JSON command per line until stdin closes.

    With one thread (the environment bench_mnist.py's child passes on), the worker runs on one
    core, as the child does: it inherits the child's core, and pins itself if started otherwise.
    """
    import harness

    if harness.in_threads(1):
        harness.pin_to_one_core()
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the replies
    participant = None
    for line in sys.stdin:
        request = json.loads(line)
        command = request.pop("command")
        try:
            if command == "setup":
                participant = _setup(**request)
                import minigrad

                result = {"first_loss": participant.first_loss, "minigrad_file": minigrad.__file__}
            else:
                result = getattr(participant, command)(**request)
            replies.write(json.dumps({"result": result}) + "\n")
        except Exception as error:  # reported to the driver, which stops the benchmark
            replies.write(json.dumps({"error": f"{type(error).__name__}: {error}"}) + "\n")
        replies.flush()


def _setup(impl, config, data_root) -> Participant:
    import harness

    data, test = harness.load_mnist(data_root)
    return Participant(impl, config, data, test)


if __name__ == "__main__":
    serve()
