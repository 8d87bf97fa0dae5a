"""PyTorch DDP reference for coco-train's data-parallel SASRec timing (bench/data_parallel.sh).

The SASRec of configs/amazon_beauty_sasrec.json in plain PyTorch: 2 pre-norm blocks, 1 head,
hidden 64, dropout 0.5, full-softmax cross-entropy over the catalogue, the last 50 training
items of every user, a global batch of 256 split over the workers. Run with torchrun:

    OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node 2 bench/ddp_sasrec.py DATA_DIR

Prints one JSON line (rank 0): the median time of a training step over STEPS steps (after
two warm-up steps) and the epoch time it makes, steps per epoch times the median; a full
epoch of eager PyTorch takes minutes on 2 cores.
"""
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

L, D, BLOCKS, DROP, BATCH = 50, 64, 2, 0.5, 256


def load(path):
    seqs = []
    with open(os.path.join(path, "sequences.txt")) as f:
        for line in f:
            items = [int(x) for x in line.split()[1:]]
            seqs.append(items[:-2][-(L + 1):])  # the training part's last L + 1 items
    num_items = max(max(s) for s in seqs if s)
    windows = torch.zeros(len(seqs), L + 1, dtype=torch.long)
    for u, s in enumerate(seqs):
        if s:
            windows[u, L + 1 - len(s):] = torch.tensor(s)
    return windows, num_items


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.attn = nn.MultiheadAttention(D, 1, dropout=DROP, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(D, D), nn.GELU(), nn.Dropout(DROP), nn.Linear(D, D))
        self.drop = nn.Dropout(DROP)

    def forward(self, x, causal, pad):
        h = self.ln1(x)
        x = x + self.drop(self.attn(h, h, h, attn_mask=causal, need_weights=False)[0])
        x = x + self.drop(self.ff(self.ln2(x)))
        return x * pad


class SASRec(nn.Module):
    def __init__(self, num_items):
        super().__init__()
        self.items = nn.Embedding(num_items + 1, D, padding_idx=0)
        self.pos = nn.Embedding(L, D)
        self.blocks = nn.ModuleList(Block() for _ in range(BLOCKS))
        self.ln, self.drop = nn.LayerNorm(D), nn.Dropout(DROP)

    def forward(self, inputs, targets):
        pad = (inputs > 0).unsqueeze(-1).float()
        x = self.items(inputs) * D ** 0.5 + self.pos.weight[-inputs.size(1):]
        x = self.drop(x) * pad
        causal = torch.ones(inputs.size(1), inputs.size(1), dtype=torch.bool).triu(1)
        for b in self.blocks:
            x = b(x, causal, pad)
        logits = self.ln(x) @ self.items.weight.t()
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=0)


def main():
    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(42)
    windows, num_items = load(sys.argv[1])
    model = SASRec(num_items)
    if distributed:
        model = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=25)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = int(os.environ.get("STEPS", "10"))
    order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(0))
    starts = list(range(0, len(order), BATCH))
    times = []
    for b in starts[:steps + 2]:
        start = time.perf_counter()
        w = windows[order[b:b + BATCH][rank::world]]  # this rank's share of the global batch
        loss = model(w[:, :-1], w[:, 1:])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        times.append(time.perf_counter() - start)
    step = statistics.median(times[2:])
    if rank == 0:
        print(json.dumps({"world_size": world, "steps_timed": len(times) - 2,
                          "step_seconds": round(step, 4), "steps_per_epoch": len(starts),
                          "epoch_seconds": round(step * len(starts), 2),
                          "users": len(windows)}), flush=True)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
