"""ctxbench models behind lm-eval's `LM` interface, registered as `ctxbench`, so that
`lm_eval.simple_evaluate(model=CtxbenchLM(...), tasks=[...])` runs any task on native and
transformers-backed models.

No silent truncation. An input longer than `max_length` tokens is either an error
(`long_inputs="error"`) or scored exactly with the state carried across chunks
(`long_inputs="carry_state"`): the first `max_length` tokens run through `forward` and `prefill`
(the cache is allocated for the whole input), then the rest token by token through `step`, so
every token is conditioned on everything before it (KV cache for attention layers, recurrent
state for Mamba layers). `stats` counts how many requests took that path.

    from suites.lmeval.model import CtxbenchLM, ByteTokenizer
    lm = CtxbenchLM(model, ByteTokenizer(), device="cpu", max_length=1024)
"""

from __future__ import annotations

from typing import Any

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

LONG_INPUTS = ("error", "carry_state")


class ByteTokenizer:
    """UTF-8 bytes as tokens (vocabulary 256), for the byte-level models the quality suites
    train. The prefix of a document with no context is a newline byte: the models were trained
    on text, where a document start follows a blank line."""

    vocab_size = 256
    prefix_id = 10

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


class HFTokenizer:
    """A transformers tokenizer behind the same two methods; the prefix is its EOS/BOS token."""

    def __init__(self, tok):
        self.tok = tok
        self.prefix_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids)


@register_model("ctxbench")
class CtxbenchLM(LM):
    def __init__(
        self,
        model,
        tokenizer,
        device: str = "cpu",
        max_length: int = 2048,
        long_inputs: str = "carry_state",
    ):
        super().__init__()
        if long_inputs not in LONG_INPUTS:
            raise ValueError(f"long_inputs: unknown value {long_inputs!r}; valid: {LONG_INPUTS}")
        self.model, self.tok, self._device = model, tokenizer, device
        self.max_length, self.long_inputs = max_length, long_inputs
        # fp32 weights (as trained) run under bf16 autocast on a GPU; the caches' K/V then hold
        # the bf16 the layers produce (the SSM state keeps its own dtype, models/cache.py)
        self.compute_dtype = torch.bfloat16 if device == "cuda" else None
        self.stats = {"scored_requests": 0, "carried_state": 0, "tokens_scored": 0}

    # -- scoring ------------------------------------------------------------------------------

    def _autocast(self):
        kind = torch.device(self._device).type
        enabled = self.compute_dtype is not None
        return torch.autocast(kind, dtype=self.compute_dtype or torch.bfloat16, enabled=enabled)

    def _new_cache(self, max_len: int):
        return self.model.allocate_cache(1, max_len, self.compute_dtype)

    @torch.no_grad()
    def token_logprobs(self, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [T] -> (log p(ids[t+1] | ids[:t+1]) [T-1] fp32, whether ids[t+1] was the argmax
        [T-1]). Inputs over max_length: error, or exact with the state carried (see module)."""
        self.stats["scored_requests"] += 1
        x = torch.tensor(ids, dtype=torch.long, device=self._device)[None]  # [1, T]
        T, M = len(ids), self.max_length
        if T <= M:
            with self._autocast():
                logits = self.model(x)[0, :-1].float()  # [T-1, V]
        elif self.long_inputs == "error":
            raise ValueError(
                f"input of {T} tokens is longer than max_length={M} and long_inputs='error'; "
                "use long_inputs='carry_state' to score it exactly across chunks"
            )
        else:
            self.stats["carried_state"] += 1
            logits = self._carried(x, M)
        target = x[0, 1:]
        logp = torch.log_softmax(logits, dim=-1)
        self.stats["tokens_scored"] += T - 1
        return logp.gather(-1, target[:, None])[:, 0], logits.argmax(-1) == target

    def _carried(self, x: torch.Tensor, M: int) -> torch.Tensor:
        """Logits [T-1, V] predicting x[1:], chunk one through forward + prefill, then step."""
        T = x.shape[1]
        with self._autocast():
            head = self.model(x[:, :M])[0].float()  # [M, V]: predicts x[1 : M + 1]
            cache = self._new_cache(T)
            self.model.prefill(x[:, :M], cache)
            rest = [self.model.step(x[:, t : t + 1], cache)[0, 0].float() for t in range(M, T - 1)]
        return torch.cat([head, torch.stack(rest)]) if rest else head

    def _pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Tokens of context and continuation, split as lm-eval's HF model does: encode the
        whole, so a tokenizer's merges across the boundary are the model's view."""
        whole = self.tok.encode(context + continuation)
        ctx = self.tok.encode(context)
        if whole[: len(ctx)] != ctx:  # merge across the boundary: fall back to separate encoding
            return ctx, self.tok.encode(continuation)
        return ctx, whole[len(ctx) :]

    # -- lm-eval's interface --------------------------------------------------------------------

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        out = []
        for req in requests:
            ctx, cont = self._pair(*req.args)
            ctx = ctx or [self.tok.prefix_id]
            logp, greedy = self.token_logprobs(ctx + cont)
            tail = slice(len(ctx) - 1, None)  # positions predicting the continuation
            out.append((float(logp[tail].sum()), bool(greedy[tail].all())))
        return out

    def loglikelihood_rolling(self, requests) -> list[float]:
        out = []
        for req in requests:
            ids = [self.tok.prefix_id, *self.tok.encode(req.args[0])]
            out.append(float(self.token_logprobs(ids)[0].sum()))
        return out

    @torch.no_grad()
    def generate_until(self, requests) -> list[str]:
        out = []
        for req in requests:
            context, kwargs = req.args
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            max_new = int(kwargs.get("max_gen_toks", 32))
            ids = self.tok.encode(context) or [self.tok.prefix_id]
            if len(ids) + max_new > self.max_length and self.long_inputs == "error":
                raise ValueError(
                    f"prompt of {len(ids)} tokens + {max_new} new > max_length={self.max_length}"
                )
            out.append(self._greedy(ids, until, max_new))
        return out

    def _greedy(self, ids: list[int], until: list[str], max_new: int) -> str:
        x = torch.tensor(ids, dtype=torch.long, device=self._device)[None]
        cache = self._new_cache(len(ids) + max_new)
        with self._autocast():
            logits = self.model.prefill(x, cache)  # [1, 1, V]
            new: list[int] = []
            for _ in range(max_new):
                nxt = int(logits[0, -1].float().argmax())
                new.append(nxt)
                text = self.tok.decode(new)
                if any(u in text for u in until):
                    break
                logits = self.model.step(torch.tensor([[nxt]], device=self._device), cache)
        text = self.tok.decode(new)
        for u in until:
            text = text.split(u)[0]
        return text


def info(lm: CtxbenchLM) -> dict[str, Any]:
    return {"max_length": lm.max_length, "long_inputs": lm.long_inputs, **lm.stats}
