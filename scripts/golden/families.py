#!/usr/bin/env python3
"""Golden float64 logits of the model families we load (Llama 2/3.x and SmolLM2, Qwen2/Qwen2.5, Qwen3), for the
parity tests (test/core/model/families.test.ts).

An implementation of transformers' LlamaForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM forward passes
written from their modeling files (models/llama/modeling_llama.py, models/qwen2/modeling_qwen2.py,
models/qwen3/modeling_qwen3.py, modeling_rope_utils.py), reading a Hugging Face config.json as transformers does,
not from our TypeScript: what each family's keys mean is decided here on its own (which projections have biases,
the default head_dim, where q_norm and k_norm apply, the llama3 RoPE scaling). Eager attention with repeat_kv and a
causal mask, in float64 throughout, so that the only differences to the engines are their float32 roundings.

Usage: families.py JOB.json  where JOB is {"models": [{"config": <config.json>, "weights": {name: {"shape", "data"}},
"ids": [[...], ...]}, ...]}; prints {"models": [{"logits": [B][T][V], "inv_freq": [hd/2]}, ...]}.

Run with Debian's python3 (python3-torch). Not part of the product.
"""
import json
import math
import sys

import torch

torch.set_default_dtype(torch.float64)


def head_dim_of(cfg):
    # Qwen3Config declares head_dim = 128; LlamaConfig and Qwen2's attention fall back to hidden // heads.
    if cfg.get("head_dim") is not None:
        return cfg["head_dim"]
    if cfg["model_type"] == "qwen3":
        return 128
    return cfg["hidden_size"] // cfg["num_attention_heads"]


def rope_spec(cfg):
    """(rope_theta, scaling dict) from the older keys or newer transformers' rope_parameters."""
    params = cfg.get("rope_parameters")
    if params:
        return params.get("rope_theta", cfg.get("rope_theta", 10000.0)), params
    return cfg.get("rope_theta", 10000.0), cfg.get("rope_scaling") or {}


def inv_freq_of(cfg):
    """_compute_default_rope_parameters, then _compute_llama3_parameters where rope_type is llama3."""
    dim = head_dim_of(cfg)
    base, scaling = rope_spec(cfg)
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float64) / dim))
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type == "default":
        return inv_freq
    if rope_type != "llama3":
        raise SystemExit(f"rope_type {rope_type} is not implemented here")
    factor = scaling["factor"]
    low_freq_factor = scaling["low_freq_factor"]
    high_freq_factor = scaling["high_freq_factor"]
    old_context_len = scaling["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)


def projection_biases(cfg):
    """(q/k/v have biases, o_proj has one), per family's attention module."""
    kind = cfg["model_type"]
    if kind == "qwen2":
        return True, False  # Qwen2Attention: bias=True on q, k, v; bias=False on o_proj
    if kind in ("llama", "qwen3"):
        b = bool(cfg.get("attention_bias", False))
        return b, b
    raise SystemExit(f"model_type {kind} is not implemented here")


def rms_norm(x, weight, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    b, kv, t, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kv, n_rep, t, d).reshape(b, kv * n_rep, t, d)


def forward(cfg, w, ids):
    def p(name):
        return w[name]

    def linear(x, name, bias):
        y = x @ p(name + ".weight").T
        return y + p(name + ".bias") if bias else y

    B, T = ids.shape
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    hd = head_dim_of(cfg)
    eps = cfg.get("rms_norm_eps", 1e-6)
    qkv_bias, o_bias = projection_biases(cfg)
    qk_norm = cfg["model_type"] == "qwen3"

    inv_freq = inv_freq_of(cfg)
    freqs = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[None, None], emb.sin()[None, None]  # [1, 1, T, hd]
    mask = torch.full((T, T), float("-inf")).triu(1)

    h = p("model.embed_tokens.weight")[ids]
    for i in range(cfg["num_hidden_layers"]):
        pre = f"model.layers.{i}"
        x = rms_norm(h, p(f"{pre}.input_layernorm.weight"), eps)
        q = linear(x, f"{pre}.self_attn.q_proj", qkv_bias).view(B, T, -1, hd)
        k = linear(x, f"{pre}.self_attn.k_proj", qkv_bias).view(B, T, -1, hd)
        v = linear(x, f"{pre}.self_attn.v_proj", qkv_bias).view(B, T, -1, hd).transpose(1, 2)
        if qk_norm:  # Qwen3Attention: norms over head_dim, before the transpose and RoPE
            q = rms_norm(q, p(f"{pre}.self_attn.q_norm.weight"), eps)
            k = rms_norm(k, p(f"{pre}.self_attn.k_norm.weight"), eps)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, H // KV), repeat_kv(v, H // KV)
        scores = torch.matmul(q, k.transpose(2, 3)) * hd**-0.5 + mask
        attn = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(attn, v).transpose(1, 2).reshape(B, T, H * hd)
        h = h + linear(ctx, f"{pre}.self_attn.o_proj", o_bias)
        y = rms_norm(h, p(f"{pre}.post_attention_layernorm.weight"), eps)
        gate = linear(y, f"{pre}.mlp.gate_proj", False)
        up = linear(y, f"{pre}.mlp.up_proj", False)
        h = h + linear(torch.nn.functional.silu(gate) * up, f"{pre}.mlp.down_proj", False)
    h = rms_norm(h, p("model.norm.weight"), eps)
    head = p("model.embed_tokens.weight") if cfg.get("tie_word_embeddings", False) else p("lm_head.weight")
    return h @ head.T


def main():
    job = json.load(open(sys.argv[1]))
    out = []
    for m in job["models"]:
        cfg = m["config"]
        w = {n: torch.tensor(t["data"], dtype=torch.float64).reshape(t["shape"]) for n, t in m["weights"].items()}
        ids = torch.tensor(m["ids"], dtype=torch.int64)
        with torch.no_grad():
            logits = forward(cfg, w, ids)
        out.append({"logits": logits.tolist(), "inv_freq": inv_freq_of(cfg).tolist()})
    json.dump({"models": out}, sys.stdout)


if __name__ == "__main__":
    main()
