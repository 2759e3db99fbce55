#!/usr/bin/env python3
"""PyTorch peer of `npm run bench:train` and `npm run bench:sample`: the same Llama-style model and steps as
src/core/engine/tf/tfLlama.ts, timed on this machine, so the benchmarks print ratios from one run.

Modes:
  (default)  times SFT, DPO and sampling once and prints one JSON object;
  --serve    keeps one model and answers timing commands, one JSON line in and one out, so that the TypeScript
             benchmarks can interleave it with their own engines round by round (see serve());
  --logits   golden float64 logits for the parity tests.

--device cuda runs the model on the GPU (default cpu, as before); times then end with torch.cuda.synchronize().
Run with Debian's python3 (python3-torch, libopenblas0-pthread). Not part of the product.
"""
import argparse, json, math, resource, sys, time
import torch
import torch.nn.functional as F


class Llama(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        D, I, H, KV = c["hidden_size"], c["intermediate_size"], c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = D // H
        self.embed = torch.nn.Embedding(c["vocab_size"], D)
        self.layers = torch.nn.ModuleList()
        for _ in range(c["num_hidden_layers"]):
            l = torch.nn.Module()
            l.ln1 = torch.nn.Parameter(torch.ones(D))
            l.q = torch.nn.Linear(D, H * self.hd, bias=False)
            l.k = torch.nn.Linear(D, KV * self.hd, bias=False)
            l.v = torch.nn.Linear(D, KV * self.hd, bias=False)
            l.o = torch.nn.Linear(H * self.hd, D, bias=False)
            l.ln2 = torch.nn.Parameter(torch.ones(D))
            l.gate = torch.nn.Linear(D, I, bias=False)
            l.up = torch.nn.Linear(D, I, bias=False)
            l.down = torch.nn.Linear(I, D, bias=False)
            self.layers.append(l)
        self.norm = torch.nn.Parameter(torch.ones(D))
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, self.hd, 2).float() / self.hd))
        ang = torch.outer(torch.arange(c["max_position_embeddings"]).float(), inv)
        ang = torch.cat([ang, ang], -1)
        self.register_buffer("cos", ang.cos(), persistent=False)
        self.register_buffer("sin", ang.sin(), persistent=False)

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.c["rms_norm_eps"]) * w

    def rope(self, x, cos, sin):
        h = self.hd // 2
        return x * cos + torch.cat([-x[..., h:], x[..., :h]], -1) * sin

    def forward(self, ids, cache=None):
        B, T = ids.shape
        H, KV = self.c["num_attention_heads"], self.c["num_key_value_heads"]
        past = 0 if cache is None else cache[0][0].shape[2]
        cos = self.cos[past:past + T][None, None]
        sin = self.sin[past:past + T][None, None]
        x = self.embed(ids)
        new = []
        for i, l in enumerate(self.layers):
            y = self.rms(x, l.ln1)
            q = self.rope(l.q(y).view(B, T, H, self.hd).transpose(1, 2), cos, sin)
            k = self.rope(l.k(y).view(B, T, KV, self.hd).transpose(1, 2), cos, sin)
            v = l.v(y).view(B, T, KV, self.hd).transpose(1, 2)
            if cache is not None:
                k = torch.cat([cache[i][0], k], 2)
                v = torch.cat([cache[i][1], v], 2)
            new.append((k, v))
            k2 = k.repeat_interleave(H // KV, 1)
            v2 = v.repeat_interleave(H // KV, 1)
            # Explicit attention: Debian's torch 1.13 has no scaled_dot_product_attention.
            s = (q @ k2.transpose(-1, -2)) / math.sqrt(self.hd)
            if cache is None and T > 1:
                s = s.masked_fill(torch.ones(T, T, dtype=torch.bool, device=s.device).triu(1), float("-inf"))
            a = torch.softmax(s, -1) @ v2
            x = x + l.o(a.transpose(1, 2).reshape(B, T, H * self.hd))
            y = self.rms(x, l.ln2)
            x = x + l.down(F.silu(l.gate(y)) * l.up(y))
        head = getattr(self, "lm_head", None)
        return self.rms(x, self.norm) @ (self.embed.weight if head is None else head).T, new


DEVICE = torch.device("cpu")


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def peak_kb():
    """Peak resident set of this process in KiB: Linux's VmHWM (as benchChild.ts reads it), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def seq_logps(logits, targets, mask):
    return (torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0] * mask).sum(-1)


def rate(fn, steps, tokens):
    fn(); fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync()
    return tokens * steps / (time.perf_counter() - t0)


def load_hf(m, weights):
    """Copies Hugging Face LlamaForCausalLM weights ({name: {shape, data}}) into the peer model."""
    names = {"model.embed_tokens.weight": m.embed.weight, "model.norm.weight": m.norm}
    for i, l in enumerate(m.layers):
        p = f"model.layers.{i}."
        names.update({p + "input_layernorm.weight": l.ln1, p + "post_attention_layernorm.weight": l.ln2,
                      p + "self_attn.q_proj.weight": l.q.weight, p + "self_attn.k_proj.weight": l.k.weight,
                      p + "self_attn.v_proj.weight": l.v.weight, p + "self_attn.o_proj.weight": l.o.weight,
                      p + "mlp.gate_proj.weight": l.gate.weight, p + "mlp.up_proj.weight": l.up.weight,
                      p + "mlp.down_proj.weight": l.down.weight})
    with torch.no_grad():
        for name, w in weights.items():
            if name == "lm_head.weight":
                m.lm_head = torch.tensor(w["data"], dtype=torch.float64).view(*w["shape"])
                continue
            names[name].copy_(torch.tensor(w["data"], dtype=torch.float64).view(*w["shape"]))


def logits_mode(path):
    """Golden logits in float64 for the TS tests: {config, weights, ids} in, [B][T][V] out."""
    job = json.load(open(path))
    m = Llama(job["config"]).double()
    load_hf(m, job["weights"])
    with torch.no_grad():
        logits, _ = m(torch.tensor(job["ids"]))
    print(json.dumps(logits.tolist()))


class Bench:
    """One model and optimiser; training steps and KV-cache generations timed one by one."""

    def __init__(self, c):
        torch.manual_seed(0)
        self.c = c
        self.m = Llama(c).to(DEVICE)
        self.opt = torch.optim.AdamW(self.m.parameters(), lr=1e-4, weight_decay=0.01)
        self.data = {}

    def batch(self, B, T):
        if (B, T) not in self.data:
            ids = torch.randint(3, self.c["vocab_size"], (B, T + 1)).to(DEVICE)
            mask = torch.ones(B, T, device=DEVICE)
            mask[:, : T // 4] = 0
            self.data[(B, T)] = (ids[:, :-1], ids[:, 1:], mask)
        return self.data[(B, T)]

    def train_step(self, op, B, T):
        inp, tgt, mask = self.batch(B, T)
        self.opt.zero_grad()
        logits, _ = self.m(inp)
        lp = seq_logps(logits, tgt, mask)
        if op == "sft":
            loss = -(lp.sum() / mask.sum())
        else:
            # DPO: the first half of the rows are chosen, the second rejected; reference log-probs are inputs.
            half = B // 2
            ref = torch.zeros(half, device=DEVICE)
            loss = -F.logsigmoid(0.1 * ((lp[:half] - ref) - (lp[half:] - ref))).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.m.parameters(), 1.0)
        self.opt.step()

    @torch.no_grad()
    def generate(self, B, P, N, temperature):
        """Prompt pass, then N - 1 cached steps: N new tokens per row, drawn as the TS benchmark draws them."""
        prompts = torch.randint(3, self.c["vocab_size"], (B, P)).to(DEVICE)
        logits, cache = self.m(prompts)
        nxt = self.draw(logits[:, -1], temperature)
        for _ in range(N - 1):
            logits, cache = self.m(nxt, cache)
            nxt = self.draw(logits[:, -1], temperature)

    @staticmethod
    def draw(logits, temperature):
        if temperature <= 0:
            return logits.argmax(-1, keepdim=True)
        return torch.multinomial(torch.softmax(logits / temperature, -1), 1)


def serve(c):
    """Commands, one JSON object per line on stdin; each answer is one JSON line on stdout:
      {"op": "sft" | "dpo", "batch": B, "length": T, "reps": n}              -> {"seconds": [n step times]}
      {"op": "sample", "batch": B, "prompt": P, "new": N, "reps": n,
       "temperature": t}                                                     -> {"seconds": [n generation times]}
      {"op": "info"}                                                         -> {"torch": version, "threads": n}
      {"op": "peak"}                                  -> {"peak_kb": VmHWM (KiB), "cuda_peak_bytes": on CUDA only}
    Times cover the work only, not the pipe, as the TS side times its engines."""
    bench = Bench(c)
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "info":
            out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(DEVICE)}
        elif op == "peak":
            out = {"peak_kb": peak_kb()}
            if DEVICE.type == "cuda":
                out["cuda_peak_bytes"] = torch.cuda.max_memory_allocated()
        else:
            times = []
            for _ in range(int(cmd.get("reps", 1))):
                t0 = time.perf_counter()
                if op in ("sft", "dpo"):
                    bench.train_step(op, cmd["batch"], cmd["length"])
                elif op == "sample":
                    bench.generate(cmd["batch"], cmd["prompt"], cmd["new"], float(cmd.get("temperature", 1.0)))
                else:
                    raise ValueError(f"unknown op {op}")
                sync()
                times.append(time.perf_counter() - t0)
            out = {"seconds": times}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logits", help="JSON job file: print float64 logits of its weights and ids, then exit")
    ap.add_argument("--config", help="JSON of the model config (HF Llama names)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--new", type=int, default=48)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--serve", action="store_true", help="answer JSON timing commands on stdin (see serve())")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs (cpu)")
    a = ap.parse_args()
    global DEVICE
    DEVICE = torch.device(a.device)
    if a.logits:
        return logits_mode(a.logits)
    torch.set_num_threads(a.threads)
    if a.serve:
        return serve(json.loads(a.config))
    torch.manual_seed(0)
    c = json.loads(a.config)
    m = Llama(c).to(DEVICE)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.01)
    V, B, T = c["vocab_size"], a.batch, a.length
    ids = torch.randint(3, V, (B, T + 1)).to(DEVICE)
    inp, tgt = ids[:, :-1], ids[:, 1:]
    mask = torch.ones(B, T, device=DEVICE)
    mask[:, : T // 4] = 0

    def sft():
        opt.zero_grad()
        logits, _ = m(inp)
        loss = -(seq_logps(logits, tgt, mask).sum() / mask.sum())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()

    half = B // 2
    ref_c, ref_r = torch.zeros(half, device=DEVICE), torch.zeros(half, device=DEVICE)

    def dpo():
        opt.zero_grad()
        logits, _ = m(inp)
        lp = seq_logps(logits, tgt, mask)
        loss = -F.logsigmoid(0.1 * ((lp[:half] - ref_c) - (lp[half:] - ref_r))).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()

    prompts = torch.randint(3, V, (B, a.prompt)).to(DEVICE)

    @torch.no_grad()
    def sample():
        logits, cache = m(prompts)
        nxt = torch.multinomial(torch.softmax(logits[:, -1], -1), 1)
        for _ in range(a.new - 1):
            logits, cache = m(nxt, cache)
            nxt = torch.multinomial(torch.softmax(logits[:, -1], -1), 1)

    # Tokens counted as in the TS benchmark: every position trained on (B × T), and every generated token.
    out = {
        "torch": torch.__version__,
        "threads": a.threads,
        "sft": rate(sft, a.steps, B * T),
        "dpo": rate(dpo, a.steps, B * T),
        "sample": rate(sample, max(2, a.steps // 3), B * a.new),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
