"""Aider's repo map on a folder, timed the way context_bench times ours (scripts/bench-context).

usage: bench_context_aider.py <root> <file list> <chat file> <budget> <requests file>
Prints one JSON object. Token counts use cl100k_base (litellm ships it, so no download).
"""

import json
import os
import statistics
import sys
import time


def main():
    root, listing, chat_file, budget, requests_file = sys.argv[1:6]
    budget = int(budget)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import importlib.util

    # litellm ships tiktoken's encodings; point tiktoken at them (no download).
    litellm_dir = os.path.dirname(importlib.util.find_spec("litellm").origin)
    os.environ["TIKTOKEN_CACHE_DIR"] = os.path.join(litellm_dir, "litellm_core_utils", "tokenizers")
    import tiktoken
    from aider.io import InputOutput
    from aider.repomap import RepoMap

    encoding = tiktoken.get_encoding("cl100k_base")

    class Counter:
        """The part of aider's Model that RepoMap uses."""

        def token_count(self, text):
            return len(encoding.encode(text, disallowed_special=()))

    paths = [line for line in open(listing).read().splitlines() if line]
    requests = open(requests_file).read().splitlines() or [""]
    absolute = [os.path.join(root, path) for path in paths]
    chat = [os.path.join(root, chat_file)]
    others = [path for path in absolute if path != chat[0]]
    io = InputOutput(pretty=False, yes=True, fancy_input=False)

    def words(text):
        import re

        return set(word for word in re.split(r"\W+", text) if word)

    started = time.perf_counter()
    repo_map = RepoMap(map_tokens=budget, root=root, main_model=Counter(), io=io, refresh="always")
    repo_map.get_ranked_tags_map(chat, others, budget, set(), words(requests[0]))
    cold = time.perf_counter() - started

    ranked = repo_map.get_ranked_tags(chat, others, set(), words(requests[0]))
    top = []
    for tag in ranked:
        name = tag[0]
        if name not in top:
            top.append(name)
        if len(top) == 20:
            break

    request_times = []
    for text in requests:
        started = time.perf_counter()
        repo_map.get_ranked_tags_map(chat, others, budget, set(), words(text), force_refresh=True)
        request_times.append((time.perf_counter() - started) * 1000)

    edited = next(path for path in paths if path != chat_file and path.endswith(os.path.splitext(chat_file)[1]))
    original = open(os.path.join(root, edited), "rb").read()
    edit_times = []
    for round_number, text in enumerate(requests[:5]):
        with open(os.path.join(root, edited), "wb") as handle:
            handle.write(original + f"\n# edit {round_number}\n".encode())
        # Aider notices an edit by the file's modification time.
        stamp = time.time() + round_number + 1
        os.utime(os.path.join(root, edited), (stamp, stamp))
        started = time.perf_counter()
        repo_map.get_ranked_tags_map(chat, others, budget, set(), words(text), force_refresh=True)
        edit_times.append((time.perf_counter() - started) * 1000)
    with open(os.path.join(root, edited), "wb") as handle:
        handle.write(original)

    def percentile(samples, fraction):
        samples = sorted(samples)
        return samples[round((len(samples) - 1) * fraction)]

    print(
        json.dumps(
            {
                "files": len(paths),
                "cold_seconds": cold,
                "request_p50_ms": statistics.median(request_times),
                "request_p95_ms": percentile(request_times, 0.95),
                "edit_p50_ms": statistics.median(edit_times),
                "edit_p95_ms": percentile(edit_times, 0.95),
                "edited": edited,
                "top": top,
            }
        )
    )


if __name__ == "__main__":
    main()
