"""The speed settings (olmoctl/train/model/fastpath.py, loss.py, parallelize.set_prefetch): the
chunked loss against the plain one (values and gradients), the model's numerics against the
pre-fastpath formulas, one compiled graph for all blocks, and the auto policies."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F

from olmoctl.schemas.recipe import Recipe
from olmoctl.train.model import fastpath
from olmoctl.train.model import loss as loss_mod
from olmoctl.train.model.loss import chunked_loss, plain_loss
from olmoctl.train.model.olmo import OLMo, apply_rotary, layer_norm
from olmoctl.train.model.parallelize import set_prefetch
from tests.train.helpers import tiny


def recipe(**kw: Any) -> Recipe:
    return Recipe.model_validate(tiny(**kw))


def tiny_model(layers: int = 3, tying: bool = True, dtype: torch.dtype = torch.float32) -> OLMo:
    cfg = recipe(**{"model.n_layers": layers, "model.weight_tying": tying}).model
    model = OLMo(cfg)
    model.init_weights(seed=1)
    return model.to(dtype)


def tokens(b: int = 4, t: int = 64) -> torch.Tensor:
    return torch.randint(0, 257, (b, t), generator=torch.Generator().manual_seed(0))


def loss_and_grads(
    model: OLMo, mode: str, chunk: int = 4096, divide_by: int = 1
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    model.cross_entropy, model.ce_chunk_tokens = mode, chunk
    tok = tokens()
    loss = model(tok, loss=True, divide_by=divide_by)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def rel_err(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(((a[n].float() - b[n].float()).norm() / b[n].float().norm()).item() for n in b)


@pytest.mark.parametrize("tying", [True, False])
def test_chunked_loss_equals_plain_loss_and_gradients(tying: bool) -> None:
    model = tiny_model(tying=tying)
    ref_loss, ref = loss_and_grads(model, "plain", divide_by=3)
    # The plain path is the old `loss_fn(model(tok), tok) / accum`.
    with torch.no_grad():
        assert torch.equal(plain_loss(model(tokens()), tokens()) / 3, ref_loss)
    # One chunk (the tiny recipe's case: 252 rows < 4096): bitwise, loss and every gradient.
    loss, grads = loss_and_grads(model, "chunked", 4096, divide_by=3)
    assert torch.equal(loss, ref_loss)
    assert all(torch.equal(grads[n], ref[n]) for n in ref), [
        n for n in ref if not torch.equal(grads[n], ref[n])
    ]
    # Many chunks (uneven last one): the same per-row kernels and nll_loss's reduction, but
    # the head's matmul on a few rows need not round as it does inside the full one (MKL's
    # small-M kernels differ: seen on AVX2), so the loss agrees to rounding, not bitwise;
    # the head gradient is summed per chunk. Run to run, each stays bitwise.
    for chunk in (7, 13, 50):  # 36 x 7; 19 x 13 + 5; 6 x 42
        loss, grads = loss_and_grads(model, "chunked", chunk, divide_by=3)
        assert torch.allclose(loss, ref_loss, rtol=1e-6, atol=0)
        assert rel_err(grads, ref) < 1e-6
        again_loss, again = loss_and_grads(model, "chunked", chunk, divide_by=3)
        assert torch.equal(again_loss, loss)  # deterministic run to run
        assert all(torch.equal(again[n], grads[n]) for n in grads)


def test_chunked_loss_in_bf16_and_without_grad() -> None:
    model = tiny_model(dtype=torch.bfloat16)
    ref_loss, ref = loss_and_grads(model, "plain")
    loss, grads = loss_and_grads(model, "chunked", 50)
    assert torch.equal(loss, ref_loss)
    # bf16: the plain head gradient is one bf16 matmul, the chunked one an fp32 sum of
    # bf16 matmuls (more exact): within a bf16 rounding step.
    assert rel_err(grads, ref) < 1e-2
    h = torch.randn(2, 9, 16, requires_grad=True)
    w = torch.randn(40, 16, requires_grad=True)
    tok = torch.randint(0, 40, (2, 9))
    calls = []

    def rows_fn(logits: torch.Tensor, targets: torch.Tensor, coef: Any) -> Any:
        calls.append(coef)
        return loss_mod._rows(logits, targets, coef)

    with torch.no_grad():  # evaluation: the loss only, no gradient computed on the way
        got = chunked_loss(h, w, tok, chunk=5, rows_fn=rows_fn)
        assert torch.equal(got, plain_loss(F.linear(h, w), tok))
    assert calls and all(c is None for c in calls)


def old_layer_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x.float(), (x.shape[-1],), eps=eps).type_as(x)


def old_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.float().chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x.float() * cos + rotated * sin).type_as(x)


def test_norm_and_rotary_keep_their_numerics() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 4, 16, 32, generator=g) * 3 + 1
    cos, sin = torch.randn(16, 32, generator=g), torch.randn(16, 32, generator=g)
    for dtype in (torch.float32, torch.bfloat16):
        xd = x.to(dtype)
        assert torch.equal(apply_rotary(xd, cos, sin), old_rotary(xd, cos, sin))
    # fp32 (CPU runs): the same bits. bf16 (GPU runs without compile): F.layer_norm now
    # reads bf16 and computes in fp32 inside; at most one bf16 rounding step apart.
    assert torch.equal(layer_norm(x, 1e-5), old_layer_norm(x, 1e-5))
    xb = x.bfloat16()
    new, old = layer_norm(xb, 1e-5).float(), old_layer_norm(xb, 1e-5).float()
    assert ((new - old).abs() <= old.abs() * 2**-7 + 1e-6).all()


def count_graphs(layers: int, checkpointing: bool) -> int:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model = tiny_model(layers)
    model.activation_checkpointing = checkpointing
    train = recipe(**{"train.compile": True}).train
    s = fastpath.configure(model, train, "cpu", backend="eager")  # dynamo only: fast
    assert s.compile and s.cross_entropy == "chunked"
    for _ in range(2):
        model(tokens(), loss=True).backward()
    return int(counters["stats"]["unique_graphs"])


@pytest.mark.parametrize("checkpointing", [False, True])
def test_compiled_blocks_share_one_graph(checkpointing: bool) -> None:
    # One graph for the block (whatever the depth), one for the loss's per-chunk math.
    assert count_graphs(2, checkpointing) == 2
    assert count_graphs(5, checkpointing) == 2


def test_compile_and_attention_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    assert recipe().train.compile == "auto"
    assert not fastpath.compile_enabled("auto", "cpu")
    assert fastpath.compile_enabled("auto", "cuda")
    assert not fastpath.compile_enabled(False, "cuda")
    assert fastpath.compile_enabled(True, "cpu")
    assert recipe(**{"train.compile": False}).train.compile is False
    with pytest.raises(ValueError, match="compile"):
        recipe(**{"train.compile": "sometimes"})

    assert fastpath.attention_order("auto", "cpu") is None
    assert fastpath.attention_order("math", "cpu") == ["math"]
    assert fastpath.attention_order("flash", "cuda") == ["flash", "math"]
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    assert fastpath.attention_order("auto", "cuda")[0] == "cudnn"  # H100/H200
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (8, 0))
    assert fastpath.attention_order("auto", "cuda")[0] == "flash"  # A100
    monkeypatch.setattr(torch.version, "hip", "6.2")
    assert fastpath.attention_order("auto", "cuda") is None  # ROCm: torch's own order


def test_an_explicit_attention_kernel_runs_on_cpu() -> None:
    model = tiny_model()
    with torch.no_grad():
        ref = model(tokens(), loss=True)
        s = fastpath.configure(model, recipe(**{"train.attention": "math"}).train, "cpu")
        assert s.attention == ["math"]
        got = model(tokens(), loss=True)
    assert got.item() == pytest.approx(ref.item(), rel=1e-5)


def test_prefetch_lists() -> None:
    class Fake:
        def __init__(self, i: int) -> None:
            self.i, self.fwd, self.bwd = i, [], []

        def set_modules_to_forward_prefetch(self, mods: list[Any]) -> None:
            self.fwd = [m.i for m in mods]

        def set_modules_to_backward_prefetch(self, mods: list[Any]) -> None:
            self.bwd = [m.i for m in mods]

    blocks = [Fake(i) for i in range(4)]
    set_prefetch(blocks, 2)
    assert [b.fwd for b in blocks] == [[1, 2], [2, 3], [3], []]
    assert [b.bwd for b in blocks] == [[], [0], [1, 0], [2, 1]]
    untouched = [Fake(i) for i in range(3)]
    set_prefetch(untouched, 0)
    assert all(b.fwd == [] and b.bwd == [] for b in untouched)


FSDP_BF16 = r"""
import json, torch, torch.distributed as dist
from olmoctl.schemas.recipe import Recipe
from olmoctl.train.model import parallelize as P
from olmoctl.train.model.olmo import OLMo
from tests.train.helpers import tiny

dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
gpu_policy = P.mp_policy
P.mp_policy = lambda device, precision, cfg: gpu_policy("cuda", precision, cfg)  # bf16 on CPU
r = Recipe.model_validate(tiny(**{"model.n_layers": 3, "fsdp.prefetch": 2}))
seen = []
out = {}
for mode in ("plain", "chunked"):
    with torch.device("meta"):
        m = OLMo(r.model)
    m.cross_entropy = mode
    P.parallelize(m, device_type="cpu", world_size=1, local_world_size=1, fsdp=r.fsdp,
                  precision="bf16")
    m.to_empty(device="cpu")
    m.init_weights(1)
    m.blocks[1].attn.register_forward_pre_hook(lambda mod, args: seen.append(
        [str(a.dtype) for a in args]))
    tok = torch.randint(0, 257, (4, 64), generator=torch.Generator().manual_seed(0))
    loss = m(tok, loss=True, divide_by=2)
    loss.backward()
    out[mode] = (loss.item(), {n: p.grad.full_tensor() for n, p in m.named_parameters()})
(lp, gp), (lc, gc) = out["plain"], out["chunked"]
print("RESULT", json.dumps({
    "seen": seen, "loss": [lp, lc],
    "grad_dtypes": sorted({str(g.dtype) for g in gc.values()}),
    "rel": max(((gc[n] - gp[n]).norm() / gp[n].norm()).item() for n in gp),
}))
dist.destroy_process_group()
"""


def test_fsdp2_bf16_keeps_rotary_fp32_and_chunked_loss_matches(tmp_path: Any) -> None:
    """The GPU path's FSDP2 + bf16 mixed precision, run on CPU/gloo: blocks get bf16
    activations and fp32 rotary tables; the chunked loss through FSDP's gathered, tied
    weight gives the plain loss and its gradients (fp32, reduced) to bf16 rounding."""
    import json
    import subprocess
    import sys

    from tests.train.helpers import REPO

    proc = subprocess.run(
        [sys.executable, "-c", FSDP_BF16], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert res["seen"] == [["torch.bfloat16", "torch.float32", "torch.float32"]] * 2
    assert res["loss"][0] == res["loss"][1]
    assert res["grad_dtypes"] == ["torch.float32"]
    assert res["rel"] < 1e-2


FSDP_COMPILE = r"""
import json, torch, torch.distributed as dist
from torch._dynamo.utils import counters
from olmoctl.schemas.recipe import Recipe
from olmoctl.train.model import fastpath
from olmoctl.train.model import parallelize as P
from olmoctl.train.model.olmo import OLMo
from tests.train.helpers import tiny

dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
graphs = {}
for layers in (2, 5):
    torch._dynamo.reset()
    counters.clear()
    r = Recipe.model_validate(tiny(**{"model.n_layers": layers, "train.compile": True}))
    with torch.device("meta"):
        m = OLMo(r.model)
    fastpath.configure(m, r.train, "cpu", backend="eager")
    P.parallelize(m, device_type="cpu", world_size=1, local_world_size=1, fsdp=r.fsdp,
                  precision="fp32")
    m.to_empty(device="cpu")
    m.init_weights(1)
    for _ in range(2):
        m(torch.randint(0, 257, (2, 64)), loss=True).backward()
    graphs[layers] = [counters["stats"]["unique_graphs"], counters["frames"]["total"]]
print("RESULT", json.dumps(graphs))
dist.destroy_process_group()
"""


def test_compiled_blocks_under_fsdp2_share_one_graph() -> None:
    """The GPU arrangement (blocks compiled, then fully_shard: FSDP2's hooks run inside each
    block's compiled call) on CPU/gloo: the graph and frame counts do not grow with depth."""
    import json
    import subprocess
    import sys

    from tests.train.helpers import REPO

    proc = subprocess.run(
        [sys.executable, "-c", FSDP_COMPILE], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    graphs = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert graphs["2"] == graphs["5"], graphs
    assert graphs["2"][0] == 2, graphs  # the block's graph and the loss's
