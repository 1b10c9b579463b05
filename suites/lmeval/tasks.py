"""Local lm-eval tasks that ship with ctxbench and run offline: their data is generated (passkey)
or taken from the local corpus (rolling perplexity), written as JSON lines under the cache, and
described by task-config dicts that `simple_evaluate(tasks=[...])` accepts as they are.

- `ctxbench_passkey_<L>`: a pass key (5 digits) hidden at a random depth of about L bytes of
  repeated filler (the passkey-retrieval prompt of Mohtashami & Jaggi 2023); the model generates
  the key (greedy, until a newline or period); metric exact_match.
- `ctxbench_rolling_ppl`: loglikelihood_rolling over held-out corpus documents; metrics
  word_perplexity, byte_perplexity, bits_per_byte (lm-eval's own definitions).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

FILLER = (
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
)
INTRO = (
    "There is an important piece of information hidden inside a lot of irrelevant text. "
    "Find it and memorize it.\n"
)
QUESTION = "\nWhat is the pass key? The pass key is"


def passkey_docs(length: int, n: int, seed: int) -> list[dict[str, Any]]:
    """n prompts of about `length` bytes (never fewer than the fixed parts), key at random depth."""
    rng = random.Random(seed * 1_000_003 + length)
    docs = []
    for _ in range(n):
        key = f"{rng.randrange(10000, 100000)}"
        needle = f"The pass key is {key}. Remember it. {key} is the pass key. "
        room = max(0, length - len(INTRO) - len(needle) - len(QUESTION))
        hay = (FILLER * (room // len(FILLER) + 1))[:room]
        cut = rng.randint(0, len(hay))
        cut = hay.rfind(". ", 0, cut) + 2 if ". " in hay[:cut] else 0  # at a sentence boundary
        text = INTRO + hay[:cut] + needle + hay[cut:] + QUESTION
        docs.append({"context": text, "answer": key, "depth": cut / max(1, len(hay))})
    return docs


def _write(folder: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    body = "\n".join(json.dumps(r) for r in rows) + "\n"
    digest = hashlib.sha256(body.encode()).hexdigest()[:12]
    path = folder / f"{name}-{digest}.jsonl"  # content-addressed: a change makes a new file
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(body)
        tmp.replace(path)
    return path


def _json_task(name: str, path: Path, **config) -> dict[str, Any]:
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(path)}},
        "test_split": "test",
        **config,
    }


def passkey_task(folder: Path, length: int, n: int, seed: int) -> dict[str, Any]:
    path = _write(folder, f"passkey_{length}", passkey_docs(length, n, seed))
    return _json_task(
        f"ctxbench_passkey_{length}",
        path,
        output_type="generate_until",
        doc_to_text="{{context}}",
        doc_to_target="{{answer}}",
        generation_kwargs={"until": ["\n", "."], "max_gen_toks": 8, "do_sample": False},
        metric_list=[
            {
                "metric": "exact_match",
                "aggregation": "mean",
                "higher_is_better": True,
                "ignore_case": True,
                "regexes_to_ignore": [r"\s"],
            }
        ],
    )


def rolling_task(folder: Path, docs: list[bytes], max_bytes: int) -> dict[str, Any]:
    """Held-out documents, each cut to max_bytes (0: whole) at a line boundary."""
    rows = []
    for d in docs:
        text = d.decode("utf-8", errors="replace")
        if max_bytes and len(text) > max_bytes:
            text = text[: text.rfind("\n", 0, max_bytes) + 1 or max_bytes]
        rows.append({"text": text})
    path = _write(folder, "rolling_ppl", rows)
    return _json_task(
        "ctxbench_rolling_ppl",
        path,
        output_type="loglikelihood_rolling",
        doc_to_text="",
        doc_to_target="{{text}}",
        metric_list=[
            {"metric": m, "aggregation": agg, "higher_is_better": False}
            for m, agg in (
                ("word_perplexity", "weighted_perplexity"),
                ("byte_perplexity", "weighted_perplexity"),
                ("bits_per_byte", "bits_per_byte"),
            )
        ],
    )
