#!/usr/bin/env python3
# Random-weight GGUF files (float16) with the exact shapes of Qwen2.5-0.5B and Llama-3.2-1B,
# for bench/real_shapes.sh. Written with llama.cpp's gguf-py; weights N(0, 0.02²), norms 1.
#   PYTHONPATH=../shared/ref/llama.cpp/gguf-py /usr/bin/python3 bench/make_real_shapes.py OUT_DIR
import math
import sys

import numpy as np
import gguf

SHAPES = {
    "qwen2.5-0.5b": dict(arch="qwen2", D=896, L=24, H=14, KV=2, F=4864, V=151936,
                         theta=1000000.0, eps=1e-6, bias=True),
    "llama3.2-1b": dict(arch="llama", D=2048, L=16, H=32, KV=8, F=8192, V=128256,
                        theta=500000.0, eps=1e-5, llama3=8192),
}


def llama3_factors(theta, dh, factor=32.0, low=1.0, high=4.0, orig=8192):
    out = []
    for i in range(dh // 2):
        wavelen = 2 * math.pi / theta ** (-2.0 * i / dh)
        if wavelen < orig / high:
            out.append(1.0)
        elif wavelen > orig / low:
            out.append(factor)
        else:
            smooth = (orig / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write(path, m, rng):
    D, H, KV, F, V = m["D"], m["H"], m["KV"], m["F"], m["V"]
    dh = D // H
    w = gguf.GGUFWriter(path, m["arch"])
    w.add_name(path)
    w.add_context_length(32768)
    w.add_embedding_length(D)
    w.add_block_count(m["L"])
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_rope_dimension_count(dh)
    w.add_rope_freq_base(m["theta"])
    w.add_layer_norm_rms_eps(m["eps"])
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>", "<0x0A>"] + [f"\u2581t{i}" for i in range(4, V)])
    w.add_token_scores([-float(i) for i in range(V)])
    w.add_token_types([2, 3, 3, 6] + [1] * (V - 4))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    r = lambda *s: (rng.standard_normal(s, dtype=np.float32) * 0.02).astype(np.float16)
    ones = lambda n: np.ones(n, dtype=np.float32)
    w.add_tensor("token_embd.weight", r(V, D))
    w.add_tensor("output_norm.weight", ones(D))
    if "llama3" in m:
        w.add_tensor("rope_freqs.weight", llama3_factors(m["theta"], dh))
    for i in range(m["L"]):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", ones(D))
        w.add_tensor(b + "attn_q.weight", r(D, D))
        w.add_tensor(b + "attn_k.weight", r(KV * dh, D))
        w.add_tensor(b + "attn_v.weight", r(KV * dh, D))
        if m.get("bias"):
            w.add_tensor(b + "attn_q.bias", r(D).astype(np.float32))
            w.add_tensor(b + "attn_k.bias", r(KV * dh).astype(np.float32))
            w.add_tensor(b + "attn_v.bias", r(KV * dh).astype(np.float32))
        w.add_tensor(b + "attn_output.weight", r(D, D))
        w.add_tensor(b + "ffn_norm.weight", ones(D))
        w.add_tensor(b + "ffn_gate.weight", r(F, D))
        w.add_tensor(b + "ffn_up.weight", r(F, D))
        w.add_tensor(b + "ffn_down.weight", r(D, F))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    for name, m in SHAPES.items():
        write(f"{sys.argv[1]}/{name}-f16.gguf", m, rng)
        print(f"{sys.argv[1]}/{name}-f16.gguf")
