"""mini-swe-agent's own time per step, measured the way `agent_bench` measures Async Coder's.

One task of N steps against a scripted OpenAI-compatible upstream in this process (a thread
answering `/v1/chat/completions` with the same tool call every time: read `src/lib.rs`, which
mini-swe-agent runs as `cat src/lib.rs` through its bash tool). Each step's loop time is the time
from one step's start to the next one's, less the model call (`model.query`: litellm, the HTTP
exchange with the upstream, cost) and the command (`env.execute`). CPU is this process's user +
system time (the upstream thread included, the `cat` children not) divided by the steps.

Prints one JSON object: steps, loop time p50/p99 (microseconds), model call p50, CPU per step.
Run by `scripts/bench-agent` inside a virtualenv holding mini-swe-agent:
    python bench_agent_mini_swe.py STEPS
"""

import json
import os
import resource
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("MSWEA_SILENT_STARTUP", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MSWEA_COST_TRACKING", "ignore_errors")

import yaml  # noqa: E402  (mini-swe-agent's own dependency)
from minisweagent import package_dir  # noqa: E402
from minisweagent.agents.default import DefaultAgent  # noqa: E402
from minisweagent.environments.local import LocalEnvironment  # noqa: E402
from minisweagent.models.litellm_model import LitellmModel  # noqa: E402


class Upstream(BaseHTTPRequestHandler):
    """The scripted model: every request gets one `bash` tool call, as OpenAI sends it."""

    calls = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (the standard library's name)
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length))
        assert request["messages"], "the request carries the conversation"
        with Upstream.lock:
            Upstream.calls += 1
            call = Upstream.calls
        body = json.dumps(
            {
                "id": f"chatcmpl-{call}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "gpt-4o-2024-08-06",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [
                                {
                                    "id": f"call_{call}",
                                    "type": "function",
                                    "function": {
                                        "name": "bash",
                                        "arguments": json.dumps({"command": "cat src/lib.rs"}),
                                    },
                                }
                            ],
                            "refusal": None,
                        },
                        "logprobs": None,
                        "finish_reason": "tool_calls",
                    }
                ],
                "usage": {"prompt_tokens": 120 + 40 * call, "completion_tokens": 18, "total_tokens": 138 + 40 * call},
                "system_fingerprint": "fp_bench",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *arguments):
        pass


step_starts: list[float] = []
model_times: list[float] = []
tool_times: list[float] = []


class TimedModel(LitellmModel):
    def query(self, messages, **kwargs):
        begin = time.perf_counter()
        try:
            return super().query(messages, **kwargs)
        finally:
            model_times.append(time.perf_counter() - begin)


class TimedEnvironment(LocalEnvironment):
    def execute(self, action, cwd="", *, timeout=None):
        begin = time.perf_counter()
        try:
            return super().execute(action, cwd, timeout=timeout)
        finally:
            tool_times.append(time.perf_counter() - begin)


class TimedAgent(DefaultAgent):
    def step(self):
        step_starts.append(time.perf_counter())
        return super().step()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(round((len(ordered) - 1) * share), len(ordered) - 1)]


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    project = Path(tempfile.mkdtemp(prefix="bench-mini-swe-"))
    (project / "src").mkdir()
    (project / "src/lib.rs").write_text("pub fn answer() -> u32 {\n    42\n}\n")
    config = yaml.safe_load((package_dir / "config" / "default.yaml").read_text())
    model = TimedModel(
        model_name="openai/gpt-4o",
        model_kwargs={"api_base": f"http://127.0.0.1:{port}/v1", "api_key": "bench-key-0123456789"},
        cost_tracking="ignore_errors",
    )
    environment = TimedEnvironment(cwd=str(project))
    agent_config = {
        key: value
        for key, value in config["agent"].items()
        if key in ("system_template", "instance_template")
    }
    agent = TimedAgent(model, environment, step_limit=steps, cost_limit=0, **agent_config)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = agent.run("Read src/lib.rs")
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    server.shutdown()
    if len(model_times) != steps or len(tool_times) != steps:
        sys.exit(
            f"mini-swe-agent made {len(model_times)} model calls and ran {len(tool_times)} commands "
            f"in {steps} steps (exit status {result.get('exit_status')!r}); the scripted run went wrong"
        )
    overheads = [
        (step_starts[index + 1] - step_starts[index]) - model_times[index] - tool_times[index]
        for index in range(steps - 1)
    ]
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    print(
        json.dumps(
            {
                "steps": steps,
                "loop_p50_us": percentile(overheads, 0.5) * 1e6,
                "loop_p99_us": percentile(overheads, 0.99) * 1e6,
                "model_call_p50_us": percentile(model_times, 0.5) * 1e6,
                "cpu_per_step_us": cpu / steps * 1e6,
                "wall_seconds": elapsed,
            }
        )
    )


if __name__ == "__main__":
    main()
