"""Next-token cross entropy, two ways with the same numbers.

`plain_loss`: logits for every position (B, T, V), then fp32 cross entropy (the reference).
`chunked_loss`: the output head and the cross entropy `chunk` rows at a time, with the
gradients computed in the same pass (as Liger's fused linear cross entropy does), so neither
the full logits nor their fp32 copy, log-softmax and gradient (each B x T x V; 3.3 GB in fp32
for the 1B at micro-batch 8) ever exist. Per row it runs the same kernels as the plain loss
(log_softmax, the same exp, the same gradient expression), and the mean goes through
nll_loss's own reduction, so with one chunk (the tiny recipe) the loss is bitwise the plain
one; with many, the head's matmul on a chunk's rows may round differently from the full one
(BLAS picks kernels by shape), so the loss matches to rounding; the head's gradient is
summed chunk by chunk (fp32 accumulator), so gradients match to rounding (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F


def plain_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross entropy over the T-1 predicted positions, in fp32."""
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten(), reduction="mean"
    )


def _rows(logits: torch.Tensor, targets: torch.Tensor, coef: torch.Tensor | None) -> Any:
    """Per-row loss (fp32) and, when coef is given, d(coef * sum of rows)/d(logits) in the
    logits' dtype, through the very kernels of cross_entropy's backward (nll_loss's -coef at
    the target, then log_softmax's backward), so the values are the plain path's."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    rows = -logp.gather(1, targets[:, None]).squeeze(1)
    if coef is None:
        return rows, None
    grad_logp = torch.zeros_like(logp).scatter_(1, targets[:, None], (-coef).expand(len(rows), 1))
    grad = torch._log_softmax_backward_data(grad_logp, logp, 1, torch.float32)
    return rows, grad.to(logits.dtype)


def compiled_rows(backend: str = "inductor") -> Callable[..., Any]:
    """The per-chunk softmax/gradient math fused by torch.compile (used with compile on)."""
    return torch.compile(_rows, backend=backend, dynamic=False)


class _ChunkedLinearCE(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        h: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        divide_by: int,
        chunk: int,
        rows_fn: Callable[..., Any],
        grad_enabled: bool,
    ) -> torch.Tensor:
        n = h.shape[0]
        # needs_input_grad is set under no_grad too (evaluation): ask the caller's mode.
        want_h = grad_enabled and ctx.needs_input_grad[0]
        want_w = grad_enabled and ctx.needs_input_grad[1]
        coef = None
        if want_h or want_w:
            # The plain path's gradient scale, in the same fp32 steps: (1 / divide_by) / n.
            one = torch.ones((), dtype=torch.float32, device=h.device)
            coef = one / divide_by / n
        # Even chunks: one shape for every chunk (or two), so a compiled rows_fn builds once.
        chunk = -(-n // -(-n // chunk))
        rows = torch.empty(n, dtype=torch.float32, device=h.device)
        grad_h = torch.empty_like(h) if want_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=h.device) if want_w else None
        for s in range(0, n, chunk):
            hc, tc = h[s : s + chunk], targets[s : s + chunk]
            logits = hc @ weight.t()  # the head in the compute dtype, as F.linear would
            rows[s : s + chunk], g = rows_fn(logits, tc, coef)
            if grad_h is not None:
                torch.mm(g, weight, out=grad_h[s : s + chunk])
            if grad_w is not None:
                if g.dtype == torch.float32:
                    grad_w.addmm_(g.t(), hc)
                else:
                    grad_w += (g.t() @ hc).float()
        ctx.save_for_backward(grad_h, grad_w)
        ctx.w_dtype = weight.dtype
        # nll_loss over (n, 1) is the plain loss's own mean reduction over the same rows.
        zeros = torch.zeros(n, dtype=torch.long, device=h.device)
        return F.nll_loss(-rows[:, None], zeros) / divide_by

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:  # type: ignore[override]
        grad_h, grad_w = ctx.saved_tensors
        # Exactly 1.0 when the loss itself is backpropagated (x * 1.0 is exact).
        if grad_h is not None:
            grad_h = grad_h * grad_out.to(grad_h.dtype)
        if grad_w is not None:
            grad_w = (grad_w * grad_out).to(ctx.w_dtype)
        return grad_h, grad_w, None, None, None, None, None


def chunked_loss(
    h: torch.Tensor,
    weight: torch.Tensor,
    tokens: torch.Tensor,
    *,
    divide_by: int = 1,
    chunk: int,
    rows_fn: Callable[..., Any] | None = None,
) -> torch.Tensor:
    """plain_loss(h @ weight.T, tokens) / divide_by, `chunk` rows at a time.

    h: final hidden states (B, T, D) after the last norm; weight: the head (V, D). Computes
    the gradients during the forward pass: call it only for a loss that is backpropagated
    once (a training step), or under no_grad. rows_fn: `compiled_rows()` or the eager math.
    """
    d = h.shape[-1]
    h2 = h[:, :-1].reshape(-1, d)
    targets = tokens[:, 1:].reshape(-1)
    rows_fn = rows_fn or _rows
    grad = torch.is_grad_enabled()
    return _ChunkedLinearCE.apply(h2, weight, targets, divide_by, chunk, rows_fn, grad)
