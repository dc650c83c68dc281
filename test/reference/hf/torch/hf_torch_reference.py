#!/usr/bin/python3
"""A second, separately written reference of the Hugging Face causal LMs, in PyTorch (float64).

Used to cross-check the TypeScript float64 reference (test/reference/hf/model.ts). It is written
with tensor operations in the shape of the Hugging Face modeling code (rotate_half, repeat_kv,
eager_attention_forward, mask functions as in masking_utils, GPT2Attention._attn with its tril
buffer), not as a translation of the TypeScript loops, so a slip in either shows up as a
mismatch. Runs on Debian's python3-torch (1.13) and numpy; it needs no `transformers`.

stdin: JSON {"models": [model, ...]}, a model being {"config": config.json object, "tensors":
{name: {"shape": [...], "data": base64 of little-endian float32}}, "cases": [case, ...]} where a
case is
  {"input_ids": [...]} or {"inputs_embeds": [[...], ...]}  (scaled embedding space)
  optional "positions": [...], "patches": [{"layer", "row", "vector"}] (overwrite the residual
  row before that block), "replace": {"layer", "position", "vector"} (after that block),
  "greedy": n (continue input_ids greedily n tokens).
stdout: JSON {"models": [{"cases": [{"block_outputs": [[row, ...] per layer], "logits": [...],
  "logits_no_softcap": [...], "greedy": [...]}]}]} (one process for many models: torch's import
  is most of the cost).
"""

import base64
import json
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

DTYPE = torch.float64

# Configuration-class defaults (transformers configuration_*.py) for the fields read below.
DEFAULTS = {
    "gpt2": {"n_inner": None, "layer_norm_epsilon": 1e-5, "scale_attn_weights": True,
             "scale_attn_by_inverse_layer_idx": False, "tie_word_embeddings": True,
             "activation_function": "gelu_new"},
    "llama": {"num_key_value_heads": None, "head_dim": None, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
              "rope_scaling": None, "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
              "hidden_act": "silu"},
    "mistral": {"num_key_value_heads": 8, "head_dim": None, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                "sliding_window": 4096, "tie_word_embeddings": False, "hidden_act": "silu"},
    "qwen2": {"num_key_value_heads": 32, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "rope_scaling": None,
              "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 28,
              "tie_word_embeddings": False, "hidden_act": "silu"},
    "qwen3": {"num_key_value_heads": 32, "head_dim": 128, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
              "rope_scaling": None, "attention_bias": False, "use_sliding_window": False,
              "sliding_window": 4096, "max_window_layers": 28, "tie_word_embeddings": False,
              "hidden_act": "silu"},
    "gemma2": {"num_key_value_heads": 4, "head_dim": 256, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
               "attention_bias": False, "query_pre_attn_scalar": 256, "sliding_window": 4096,
               "final_logit_softcapping": 30.0, "attn_logit_softcapping": 50.0, "tie_word_embeddings": True,
               "hidden_activation": "gelu_pytorch_tanh"},
    "gemma3_text": {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216,
                    "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
                    "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
                    "max_position_embeddings": 131072, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
                    "rope_theta": 1000000.0, "attention_bias": False, "query_pre_attn_scalar": 256,
                    "sliding_window": 4096, "final_logit_softcapping": None, "attn_logit_softcapping": None,
                    "rope_scaling": None, "rope_local_base_freq": 10000.0, "sliding_window_pattern": 6},
}


def load_tensors(raw):
    out = {}
    for name, entry in raw.items():
        array = np.frombuffer(base64.b64decode(entry["data"]), dtype="<f4").astype(np.float64)
        out[name] = torch.from_numpy(array.copy()).reshape(entry["shape"]).to(DTYPE)
    return out


# --------------------------------------------------------------------------------------------
# Activations (transformers/activations.py)

def new_gelu(x):  # NewGELUActivation
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACT2FN = {
    "gelu_new": new_gelu,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
}


# --------------------------------------------------------------------------------------------
# GPT-2 (modeling_gpt2.py)

def gpt2_model(cfg, W):
    prefix = "transformer." if "transformer.wte.weight" in W else ""
    d, n_head, n_layer = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    head_dim = d // n_head
    inner = cfg["n_inner"] if cfg["n_inner"] is not None else 4 * d
    eps = cfg["layer_norm_epsilon"]
    act = ACT2FN[cfg["activation_function"]]
    wte = W[prefix + "wte.weight"]
    lm_head = wte if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    max_positions = cfg["n_positions"]
    bias = torch.tril(torch.ones((max_positions, max_positions), dtype=torch.bool)).view(1, 1, max_positions, max_positions)

    def conv1d(x, name):  # Conv1D.forward: addmm(bias, x, weight), weight (in, out)
        return torch.addmm(W[name + ".bias"], x, W[name + ".weight"])

    def split_heads(t):
        return t.view(t.size(0), n_head, head_dim).permute(1, 0, 2)

    def attn(layer_idx, query, key, value):  # GPT2Attention._attn
        attn_weights = torch.matmul(query, key.transpose(-1, -2))
        if cfg["scale_attn_weights"]:
            attn_weights = attn_weights / torch.full([], value.size(-1) ** 0.5, dtype=attn_weights.dtype)
        if cfg["scale_attn_by_inverse_layer_idx"]:
            attn_weights = attn_weights / float(layer_idx + 1)
        query_length, key_length = query.size(-2), key.size(-2)
        causal_mask = bias[0, :, key_length - query_length: key_length, :key_length]
        mask_value = torch.full([], torch.finfo(attn_weights.dtype).min, dtype=attn_weights.dtype)
        attn_weights = torch.where(causal_mask, attn_weights, mask_value)
        attn_weights = F.softmax(attn_weights, dim=-1)
        return torch.matmul(attn_weights, value)

    def forward(case):
        ids = case.get("input_ids")
        if ids is not None:
            inputs_embeds = wte[torch.tensor(ids)]
        else:
            inputs_embeds = torch.tensor(case["inputs_embeds"], dtype=DTYPE)
        S = inputs_embeds.size(0)
        positions = torch.tensor(case.get("positions", list(range(S))))
        hidden = inputs_embeds + W[prefix + "wpe.weight"][positions]
        outs = []
        for l in range(n_layer):
            hidden = apply_patches(case, l, hidden)
            p = f"{prefix}h.{l}."
            residual = hidden
            x = F.layer_norm(hidden, (d,), W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
            query, key, value = conv1d(x, p + "attn.c_attn").split(d, dim=-1)
            a = attn(l, split_heads(query), split_heads(key), split_heads(value))
            a = a.permute(1, 0, 2).contiguous().view(S, d)
            hidden = conv1d(a, p + "attn.c_proj") + residual
            residual = hidden
            x = F.layer_norm(hidden, (d,), W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
            hidden = residual + conv1d(act(conv1d(x, p + "mlp.c_fc")), p + "mlp.c_proj")
            hidden = apply_replace(case, l, hidden)
            outs.append(hidden)
        hidden = F.layer_norm(hidden, (d,), W[prefix + "ln_f.weight"], W[prefix + "ln_f.bias"], eps)
        logits = hidden @ lm_head.T
        return outs, logits, logits

    return forward


# --------------------------------------------------------------------------------------------
# Llama / Mistral / Qwen2 / Qwen3 / Gemma-2 / Gemma-3 (modeling_llama.py, modeling_gemma2.py, ...)

def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    cos = cos.unsqueeze(0)
    sin = sin.unsqueeze(0)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def repeat_kv(hidden_states, n_rep):
    kv_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, None, :, :].expand(kv_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(kv_heads * n_rep, slen, head_dim)


def rope_inv_freq(base, dim, scaling):
    # _compute_default_rope_parameters
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(DTYPE) / dim))
    rope_type = "default" if scaling is None else scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type == "default":
        return inv_freq
    if rope_type == "linear":  # _compute_linear_scaling_rope_parameters
        return inv_freq / scaling["factor"]
    if rope_type == "llama3":  # _compute_llama3_parameters
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
    raise ValueError(f"rope type {rope_type} not supported")


def rotary_model(model_type, cfg, W):
    gemma = model_type in ("gemma2", "gemma3_text")
    if model_type == "gemma3_text":
        prefix = next(p for p in ("model.", "language_model.model.", "model.language_model.")
                      if p + "embed_tokens.weight" in W)
    else:
        prefix = "model."
    d = cfg["hidden_size"]
    n_heads = cfg["num_attention_heads"]
    kv_heads = cfg["num_key_value_heads"] if cfg.get("num_key_value_heads") is not None else n_heads
    if model_type == "qwen2":
        head_dim = d // n_heads
    else:
        head_dim = cfg.get("head_dim") or d // n_heads
    n_layers = cfg["num_hidden_layers"]
    eps = cfg["rms_norm_eps"]
    act = ACT2FN[cfg["hidden_activation"] if gemma else cfg["hidden_act"]]
    embed = W[prefix + "embed_tokens.weight"]
    if cfg["tie_word_embeddings"]:
        lm_head = embed
    else:
        lm_head = W["lm_head.weight"] if "lm_head.weight" in W else W["language_model.lm_head.weight"]

    # Which layers slide, and the window.
    if model_type in ("qwen2", "qwen3"):
        window = cfg["sliding_window"] if cfg["use_sliding_window"] else None
    elif model_type == "llama":
        window = None
    else:
        window = cfg.get("sliding_window")
    layer_types = cfg.get("layer_types")
    if layer_types is None:
        if model_type == "gemma2":
            layer_types = ["sliding_attention" if bool((i + 1) % 2) else "full_attention" for i in range(n_layers)]
        elif model_type == "gemma3_text":
            pattern = cfg.get("sliding_window_pattern", cfg.get("_sliding_window_pattern", 6))
            layer_types = ["sliding_attention" if bool((i + 1) % pattern) else "full_attention"
                           for i in range(n_layers)]
        elif model_type in ("qwen2", "qwen3"):
            layer_types = ["sliding_attention" if window is not None and i >= cfg["max_window_layers"]
                           else "full_attention" for i in range(n_layers)]
        elif model_type == "mistral":
            layer_types = ["sliding_attention"] * n_layers
        else:
            layer_types = ["full_attention"] * n_layers

    # Rotary bases: Gemma-3 local layers use rope_local_base_freq with default RoPE.
    inv_freq_global = rope_inv_freq(cfg["rope_theta"], head_dim, cfg.get("rope_scaling"))
    inv_freq_local = (rope_inv_freq(cfg["rope_local_base_freq"], head_dim, None)
                      if model_type == "gemma3_text" else inv_freq_global)
    scaling = cfg["query_pre_attn_scalar"] ** -0.5 if gemma else head_dim ** -0.5
    softcap = cfg.get("attn_logit_softcapping") if gemma else None
    attention_bias = cfg.get("attention_bias", False)
    qkv_bias = True if model_type == "qwen2" else attention_bias
    o_bias = False if model_type == "qwen2" else attention_bias
    mlp_bias = cfg.get("mlp_bias", False) if model_type == "llama" else False

    def rms_norm(x, weight):
        if gemma:  # Gemma2RMSNorm / Gemma3RMSNorm
            output = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
            return output * (1.0 + weight)
        variance = x.pow(2).mean(-1, keepdim=True)  # LlamaRMSNorm
        return weight * (x * torch.rsqrt(variance + eps))

    def linear(x, name, bias):
        return F.linear(x, W[name + ".weight"], W[name + ".bias"] if bias else None)

    def mask(S, sliding):  # masking_utils: causal_mask_function & sliding_window_overlay
        q_idx = torch.arange(S)[:, None]
        kv_idx = torch.arange(S)[None, :]
        allowed = kv_idx <= q_idx
        if sliding and window is not None:
            allowed = allowed & (kv_idx > q_idx - window)
        return torch.where(allowed, torch.tensor(0.0, dtype=DTYPE), torch.tensor(torch.finfo(DTYPE).min, dtype=DTYPE))

    def attention(l, x, cos_sin, attention_mask):
        p = f"{prefix}layers.{l}.self_attn."
        S = x.size(0)
        q = linear(x, p + "q_proj", qkv_bias).view(S, -1, head_dim)
        k = linear(x, p + "k_proj", qkv_bias).view(S, -1, head_dim)
        v = linear(x, p + "v_proj", qkv_bias).view(S, -1, head_dim)
        if model_type in ("qwen3", "gemma3_text"):
            q = rms_norm(q, W[p + "q_norm.weight"])
            k = rms_norm(k, W[p + "k_norm.weight"])
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        cos, sin = cos_sin
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        # eager_attention_forward
        key_states = repeat_kv(k, n_heads // kv_heads)
        value_states = repeat_kv(v, n_heads // kv_heads)
        attn_weights = torch.matmul(q, key_states.transpose(1, 2)) * scaling
        if softcap is not None:
            attn_weights = torch.tanh(attn_weights / softcap) * softcap
        attn_weights = attn_weights + attention_mask
        attn_weights = F.softmax(attn_weights, dim=-1)
        out = torch.matmul(attn_weights, value_states).transpose(0, 1).reshape(S, -1)
        return linear(out, p + "o_proj", o_bias)

    def mlp(l, x):
        p = f"{prefix}layers.{l}.mlp."
        return linear(act(linear(x, p + "gate_proj", mlp_bias)) * linear(x, p + "up_proj", mlp_bias),
                      p + "down_proj", mlp_bias)

    def rotary(inv_freq, positions):
        freqs = positions[:, None].to(DTYPE) * inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()

    def forward(case):
        ids = case.get("input_ids")
        if ids is not None:
            hidden = embed[torch.tensor(ids)]
            if gemma:  # Gemma2Model normalizer / Gemma3TextScaledWordEmbedding, in float32
                hidden = hidden * torch.tensor(d ** 0.5, dtype=torch.float32).to(DTYPE)
        else:
            hidden = torch.tensor(case["inputs_embeds"], dtype=DTYPE)
        S = hidden.size(0)
        positions = torch.tensor(case.get("positions", list(range(S))))
        rot = {"full_attention": rotary(inv_freq_global, positions),
               "sliding_attention": rotary(inv_freq_local, positions)}
        masks = {"full_attention": mask(S, False), "sliding_attention": mask(S, True)}
        outs = []
        for l in range(n_layers):
            hidden = apply_patches(case, l, hidden)
            p = f"{prefix}layers.{l}."
            kind = layer_types[l]
            residual = hidden
            x = rms_norm(hidden, W[p + "input_layernorm.weight"])
            x = attention(l, x, rot[kind], masks[kind])
            if gemma:
                x = rms_norm(x, W[p + "post_attention_layernorm.weight"])
            hidden = residual + x
            residual = hidden
            if gemma:
                x = rms_norm(hidden, W[p + "pre_feedforward_layernorm.weight"])
                x = rms_norm(mlp(l, x), W[p + "post_feedforward_layernorm.weight"])
            else:
                x = mlp(l, rms_norm(hidden, W[p + "post_attention_layernorm.weight"]))
            hidden = residual + x
            hidden = apply_replace(case, l, hidden)
            outs.append(hidden)
        hidden = rms_norm(hidden, W[prefix + "norm.weight"])
        logits_raw = hidden @ lm_head.T
        logits = logits_raw
        final_cap = cfg.get("final_logit_softcapping") if gemma else None
        if final_cap is not None:
            logits = torch.tanh(logits_raw / final_cap) * final_cap
        return outs, logits, logits_raw

    return forward


def apply_patches(case, layer, hidden):
    for patch in case.get("patches", []):
        if patch["layer"] == layer:
            hidden = hidden.clone()
            hidden[patch["row"]] = torch.tensor(patch["vector"], dtype=DTYPE)
    return hidden


def apply_replace(case, layer, hidden):
    replace = case.get("replace")
    if replace is not None and replace["layer"] == layer:
        hidden = hidden.clone()
        hidden[replace["position"]] = torch.tensor(replace["vector"], dtype=DTYPE)
    return hidden


def build(config, W):
    model_type = config["model_type"]
    if model_type == "gemma3":
        cfg = dict(DEFAULTS["gemma3_text"])
        cfg.update(config.get("text_config") or {})
        cfg["tie_word_embeddings"] = config.get("tie_word_embeddings", True)
        return rotary_model("gemma3_text", cfg, W)
    cfg = dict(DEFAULTS[model_type])
    cfg.update(config)
    if model_type == "gpt2":
        return gpt2_model(cfg, W)
    return rotary_model(model_type, cfg, W)


def run_model(payload):
    W = load_tensors(payload["tensors"])
    forward = build(payload["config"], W)
    results = []
    with torch.no_grad():
        for case in payload["cases"]:
            outs, logits, logits_raw = forward(case)
            result = {
                "block_outputs": [o.tolist() for o in outs],
                "logits": logits.tolist(),
                "logits_no_softcap": logits_raw.tolist(),
            }
            if case.get("greedy"):
                ids = list(case["input_ids"])
                new = []
                for _ in range(case["greedy"]):
                    _, step_logits, _ = forward({"input_ids": ids})
                    token = int(torch.argmax(step_logits[-1]))
                    new.append(token)
                    ids.append(token)
                result["greedy"] = new
            results.append(result)
    return {"cases": results}


def main():
    payload = json.load(sys.stdin)
    models = [run_model(model) for model in payload["models"]]
    json.dump({"torch": torch.__version__, "models": models}, sys.stdout)


if __name__ == "__main__":
    main()
