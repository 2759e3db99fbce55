#!/usr/bin/env python3
"""PyTorch peer of `npm run bench:train` and `npm run bench:sample`: the same Llama-style model and steps as
src/core/engine/tf/tfLlama.ts, timed on this machine, so the benchmarks print ratios from one run.

Modes:
  (default)  times SFT, DPO and sampling once and prints one JSON object;
  --serve    keeps one model and answers timing commands, one JSON line in and one out, so that the TypeScript
             benchmarks can interleave it with their own engines round by round (see serve());
  --logits   golden float64 logits for the parity tests.

--device cuda runs the model on the GPU (default cpu, as before); times then end with torch.cuda.synchronize().
--threads sets torch's intra-op threads, --blas-threads OpenBLAS's own (contenderProcess.ts picks the pairs, and
the OpenBLAS build through LD_LIBRARY_PATH); --expect-blas makes the peer refuse to run on another BLAS than the
one the parent asked for. Before any timing the peer checks a few float32 matmul products against float64 sums
done without BLAS, so a BLAS kernel that miscomputes on this CPU fails loudly instead of timing garbage.

Runs with Debian's python3 (python3-torch 1.13 on OpenBLAS; python3-threadpoolctl for the BLAS report) and with
.venv/bin/python (PyTorch 2.x on MKL, `npm run setup:python`). Not part of the product.
"""
import argparse, ctypes, json, math, re, resource, sys, time, warnings

# torch 2.x warns at import when NumPy is absent; the peer never converts to NumPy, and keeping NumPy out of the
# venv keeps its bundled OpenBLAS (and that library's threads) out of this process.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
# NumPy is never used here, but .venv has it (transformers needs it) and torch imports it when present, which loads
# NumPy's own bundled OpenBLAS and its threads into the peer's process beside torch's BLAS: the BLAS report, the
# thread settings and --expect-blas would no longer be about torch's. Marked absent, torch runs without it.
sys.modules.setdefault("numpy", None)
import torch
import torch.nn.functional as F


class Llama(torch.nn.Module):
    def __init__(self, c, sdpa=False):
        super().__init__()
        self.c = c
        # torch 2.x's fused attention, as transformers uses it by default (attn_implementation "sdpa"); the explicit
        # attention below stays for torch 1.13, which lacks it, and for the float64 golden logits.
        self.sdpa = sdpa and hasattr(F, "scaled_dot_product_attention")
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

    def forward(self, ids, cache=None, last_only=False):
        """Logits and the new KV cache; last_only keeps the logits of the last position only, as transformers'
        generate does in its prefill (logits_to_keep=1), instead of a vocabulary-wide head over every position."""
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
            if self.sdpa:
                a = F.scaled_dot_product_attention(q, k2, v2, is_causal=cache is None and T > 1)
            else:
                # Explicit attention: Debian's torch 1.13 has no scaled_dot_product_attention.
                s = (q @ k2.transpose(-1, -2)) / math.sqrt(self.hd)
                if cache is None and T > 1:
                    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool, device=s.device).triu(1), float("-inf"))
                a = torch.softmax(s, -1) @ v2
            x = x + l.o(a.transpose(1, 2).reshape(B, T, H * self.hd))
            y = self.rms(x, l.ln2)
            x = x + l.down(F.silu(l.gate(y)) * l.up(y))
        if last_only:
            x = x[:, -1:]
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


def loaded_libraries():
    """The BLAS and OpenMP libraries loaded in this process: threadpoolctl's report (for OpenBLAS: version, core
    kernel as "architecture", threading layer, threads), plus OpenBLAS's own openblas_get_config string. Without
    threadpoolctl, the OpenBLAS found in /proc/self/maps, asked through ctypes."""
    try:
        from threadpoolctl import threadpool_info
        libs = [{k: d.get(k) for k in ("internal_api", "version", "architecture", "threading_layer", "num_threads", "filepath")} for d in threadpool_info()]
    except ImportError:
        libs = []
        try:
            with open("/proc/self/maps") as f:
                paths = sorted({line.split()[-1] for line in f if "libopenblas" in line})
        except OSError:
            paths = []
        for path in paths:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            layer = {0: "disabled", 1: "pthreads", 2: "openmp"}.get(lib.openblas_get_parallel(), "unknown")
            libs.append({"internal_api": "openblas", "version": None, "architecture": lib.openblas_get_corename().decode(),
                         "threading_layer": layer, "num_threads": lib.openblas_get_num_threads(), "filepath": path})
    for d in libs:
        if d["internal_api"] == "openblas":
            get = ctypes.CDLL(d["filepath"]).openblas_get_config
            get.restype = ctypes.c_char_p
            d["config"] = get().decode().strip()
    return libs


def set_blas_threads(n):
    """OpenBLAS's own thread count, whatever torch.set_num_threads left it at (the env var only sets the start)."""
    for d in loaded_libraries():
        if d["internal_api"] == "openblas" and d["num_threads"] != n:
            ctypes.CDLL(d["filepath"]).openblas_set_num_threads(n)


def check_matmul():
    """Largest relative error (Frobenius) of float32 products on the peer's BLAS against float64 sums done by
    broadcasting, without BLAS: the shapes of the model's projections (weights transposed, as nn.Linear has them),
    a skinny decode-like product and a batched one like attention's. A float32 GEMM is ~1e-7 off; a wrong kernel
    (a core type this CPU lacks, a broken blocking) is off by order 1."""
    g = torch.Generator().manual_seed(1)
    worst = 0.0
    for m, k, n in [(64, 576, 1536), (48, 1536, 576), (3, 576, 2048), (33, 257, 129)]:
        a, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
        got = (a @ w.T).double()
        a64, w64 = a.double(), w.double()
        ref = torch.cat([(a64[i:i + 4, None, :] * w64[None]).sum(-1) for i in range(0, m, 4)])
        worst = max(worst, ((got - ref).norm() / ref.norm()).item())
    a, b = torch.randn(6, 32, 64, generator=g), torch.randn(6, 64, 40, generator=g)
    ref = (a.double()[..., None] * b.double()[:, None]).sum(2)
    worst = max(worst, (((a @ b).double() - ref).norm() / ref.norm()).item())
    if not worst < 1e-4:
        raise RuntimeError(f"float32 matmul disagrees with float64 (relative error {worst:.2e}): the BLAS kernel miscomputes on this CPU")
    return worst


def matmul_gflops(a, w, seconds):
    """GFLOP/s of a @ w.T, best of repeats over about `seconds`."""
    best, spent = math.inf, 0.0
    while spent < seconds:
        t0 = time.perf_counter()
        a @ w.T
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return 2 * a.shape[0] * a.shape[1] * w.shape[0] / best / 1e9


def blas_gflops(rounds=3, seconds=0.15):
    """GFLOP/s of a 1024 × 576 × 1536 float32 product (a 135M training step's MLP projection) on one thread and as
    this peer runs, so that the report shows whether its threads reach the cores. One thread: torch and every
    BLAS/OpenMP pool held to 1, then back. The two alternate and each keeps its best, so that load from elsewhere
    does not fall on one of them only."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    a, w = torch.randn(1024, 576), torch.randn(1536, 576)
    a @ w.T
    torch_threads = torch.get_num_threads()
    one = run = 0.0
    for _ in range(rounds):
        limits = threadpool_limits(limits=1) if threadpool_limits else None
        torch.set_num_threads(1)
        one = max(one, matmul_gflops(a, w, seconds))
        torch.set_num_threads(torch_threads)
        if limits is not None:
            limits.restore_original_limits()
        run = max(run, matmul_gflops(a, w, seconds))
    return {"one_thread": one, "as_run": run}


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
        self.m = Llama(c, sdpa=True).to(DEVICE)
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
        logits, cache = self.m(prompts, last_only=True)
        nxt = self.draw(logits[:, -1], temperature)
        for _ in range(N - 1):
            logits, cache = self.m(nxt, cache)
            nxt = self.draw(logits[:, -1], temperature)

    @staticmethod
    def draw(logits, temperature):
        if temperature <= 0:
            return logits.argmax(-1, keepdim=True)
        return torch.multinomial(torch.softmax(logits / temperature, -1), 1)


def peer_info(probe):
    """What the peer runs on: versions, threads, BLAS libraries; the matmul check; with probe, the GFLOP/s."""
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(DEVICE)}
    if DEVICE.type == "cpu":
        out["libraries"] = loaded_libraries()
        blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
        out["blas_info"] = blas.group(1) if blas else "?"
        out["check_error"] = check_matmul()
        if probe:
            out["gflops"] = blas_gflops()
    return out


def serve(c):
    """Commands, one JSON object per line on stdin; each answer is one JSON line on stdout:
      {"op": "sft" | "dpo", "batch": B, "length": T, "reps": n}              -> {"seconds": [n step times]}
      {"op": "sample", "batch": B, "prompt": P, "new": N, "reps": n,
       "temperature": t}                                                     -> {"seconds": [n generation times]}
      {"op": "info", "probe": bool}          -> {"torch": version, "threads": n, "libraries": [BLAS/OpenMP libraries],
                                                  "check_error": x, "gflops": {"one_thread", "as_run"} with probe}
      {"op": "peak"}                                  -> {"peak_kb": VmHWM (KiB), "cuda_peak_bytes": on CUDA only}
    Times cover the work only, not the pipe, as the TS side times its engines."""
    # The check before the model exists: a miscomputing BLAS fails here, before anything is timed.
    if DEVICE.type == "cpu":
        check_matmul()
    bench = Bench(c)
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "info":
            out = peer_info(bool(cmd.get("probe")))
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
    ap.add_argument("--threads", type=int, default=1, help="torch's intra-op threads")
    ap.add_argument("--blas-threads", type=int, default=0, help="OpenBLAS's own threads (0: leave as the environment set them)")
    ap.add_argument("--expect-blas", default="any", choices=["any", "openblas-pthreads", "openblas-openmp"],
                    help="refuse to run unless this OpenBLAS build is the one loaded")
    ap.add_argument("--probe", action="store_true", help="print the BLAS report (peer_info with GFLOP/s) as JSON, then exit")
    ap.add_argument("--serve", action="store_true", help="answer JSON timing commands on stdin (see serve())")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs (cpu)")
    a = ap.parse_args()
    global DEVICE
    DEVICE = torch.device(a.device)
    if a.logits:
        return logits_mode(a.logits)
    torch.set_num_threads(a.threads)
    if DEVICE.type == "cpu":
        # torch's first parallel region and BLAS call load and size their pools; then OpenBLAS is set and checked.
        torch.randn(64, 64) @ torch.randn(64, 64)
        if a.blas_threads:
            set_blas_threads(a.blas_threads)
        if a.expect_blas != "any":
            layer = a.expect_blas.split("-")[1]
            found = [d for d in loaded_libraries() if d["internal_api"] == "openblas"]
            if not any(d["threading_layer"] == layer for d in found):
                raise RuntimeError(f"asked for OpenBLAS on {layer}, loaded: {[(d['filepath'], d['threading_layer']) for d in found] or 'no OpenBLAS'}")
    if a.probe:
        print(json.dumps(peer_info(True)))
        return
    if a.serve:
        return serve(json.loads(a.config))
    torch.manual_seed(0)
    c = json.loads(a.config)
    m = Llama(c, sdpa=True).to(DEVICE)
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
        logits, cache = m(prompts, last_only=True)
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
