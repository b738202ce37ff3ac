"""The model and what shapes its computation: the OLMo architecture (olmo), FSDP2 wrapping
(parallelize), fused kernels and compilation (fastpath), the loss, the optimizer and
schedule (optim), and the transformers export mapping (export_hf).

May import train.runtime only.
"""
