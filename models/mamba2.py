"""Mamba-2 mixer: in-projection, depthwise causal conv, SSD scan, gated RMSNorm, out-projection.

Same parameters and math as state-spaces/mamba's `Mamba2` (and transformers' `Mamba2Mixer`) with
rmsnorm=True, norm_before_gate=False, no biases on the projections, D per head. The in-projection
is one [2*d_inner + 2*G*N + H, d_model] weight (checkpoint layout: z, xBC, dt), but the
full-sequence path multiplies by its three row blocks separately: at 1M tokens the fused output
is 17 GB in bf16 for d_model 2048, and computing z only after the scan keeps the peak lower.
The conv and the scan run on the kernels chosen by config (`kernels.get`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import kernels
from models.blocks import GatedRMSNorm, step_decay_rates
from models.cache import conv_state_from


class Mamba2(nn.Module):
    def __init__(self, cfg, ssm_backend: str, conv_backend: str, **kw):
        super().__init__()
        self.d_inner, self.d_state, self.ngroups = cfg.d_inner, cfg.d_state, cfg.ngroups
        self.nheads, self.headdim, self.chunk_size = cfg.nheads_ssm, cfg.headdim, cfg.chunk_size
        self.d_conv = cfg.d_conv
        self.conv_dim = self.d_inner + 2 * self.ngroups * self.d_state
        d_in_proj = 2 * self.d_inner + 2 * self.ngroups * self.d_state + self.nheads
        self.in_proj = nn.Linear(cfg.d_model, d_in_proj, bias=False, **kw)
        self.conv_weight = nn.Parameter(torch.empty(self.conv_dim, cfg.d_conv, **kw))
        self.conv_bias = nn.Parameter(torch.empty(self.conv_dim, **kw))
        self.dt_bias = nn.Parameter(torch.empty(self.nheads, **kw))
        self.A_log = nn.Parameter(torch.empty(self.nheads, **kw))
        self.D = nn.Parameter(torch.empty(self.nheads, **kw))
        self.norm = GatedRMSNorm(self.d_inner, self.d_inner // self.ngroups, cfg.norm_eps, **kw)
        self.fused = cfg.fused_decode  # the decode step's gated norm as one kernel (kernels.norm)
        self.out_proj = nn.Linear(self.d_inner, cfg.d_model, bias=False, **kw)
        self.ssd = kernels.get("ssd", ssm_backend)
        self.ssd_step = kernels.get("ssd_step", ssm_backend)
        self.conv = kernels.get("conv1d", conv_backend)
        self.conv_step = kernels.get("conv1d_step", conv_backend)

    @torch.no_grad()
    def reset_parameters(self, dt_min=1e-3, dt_max=0.1):
        """mamba's initialisation: A = -[1..H], D = 1, dt log-uniform in [dt_min, dt_max]."""
        nn.init.uniform_(self.conv_weight, -(self.d_conv**-0.5), self.d_conv**-0.5)
        nn.init.zeros_(self.conv_bias)
        self.A_log.copy_(torch.log(torch.arange(1, self.nheads + 1, dtype=torch.float32)))
        self.D.fill_(1.0)
        u = torch.rand(self.nheads, dtype=torch.float32)
        dt = torch.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=1e-4)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def _rows(self, which: str) -> torch.Tensor:
        """Row block of the in-projection weight: z [d_inner], xbc [conv_dim] or dt [H]."""
        start = {"z": 0, "xbc": self.d_inner, "dt": self.d_inner + self.conv_dim}[which]
        size = {"z": self.d_inner, "xbc": self.conv_dim, "dt": self.nheads}[which]
        return self.in_proj.weight[start : start + size]

    def _split_xbc(self, xbc: torch.Tensor):
        """xbc [..., conv_dim] -> x [..., H, P], B [..., G, N], C [..., G, N] (views)."""
        GN = self.ngroups * self.d_state
        x, B, C = xbc.split([self.d_inner, GN, GN], dim=-1)
        return (
            x.unflatten(-1, (self.nheads, self.headdim)),
            B.unflatten(-1, (self.ngroups, self.d_state)),
            C.unflatten(-1, (self.ngroups, self.d_state)),
        )

    def forward(self, h: torch.Tensor, cache=None, **_) -> torch.Tensor:
        """h [B, T, d_model] -> [B, T, d_model]. With a cache (SSMState), its conv and SSM states
        are set to the states after the last token."""
        Bsz, T, _ = h.shape
        xbc = F.linear(h, self._rows("xbc"))  # [B, T, conv_dim]
        dt = F.linear(h, self._rows("dt"))  # [B, T, H]
        if cache is not None:
            cache.conv.copy_(conv_state_from(xbc, self.d_conv))
        xbc = self.conv(
            xbc, self.conv_weight, self.conv_bias, activation="silu"
        )  # [B, T, conv_dim]
        x, B, C = self._split_xbc(xbc)  # [B, T, H, P], [B, T, G, N] x2
        A = -torch.exp(self.A_log.float())  # [H]
        y = self.ssd(
            x,
            dt,
            A,
            B,
            C,
            chunk_size=self.chunk_size,
            D=self.D,
            dt_bias=self.dt_bias,
            dt_softplus=True,
            return_final_states=cache is not None,
        )
        if cache is not None:
            y, final = y
            cache.ssm.copy_(final)
        del xbc, x, B, C, dt
        z = F.linear(h, self._rows("z"))  # [B, T, d_inner]
        y = self.norm(y.reshape(Bsz, T, self.d_inner), z)
        del z
        return self.out_proj(y)

    def step(self, h: torch.Tensor, cache=None, **_) -> torch.Tensor:
        """One token: h [B, 1, d_model] -> [B, 1, d_model]; updates cache.conv and cache.ssm."""
        Bsz = h.shape[0]
        z, xbc, dt = self.in_proj(h[:, 0]).split([self.d_inner, self.conv_dim, self.nheads], -1)
        xbc = self.conv_step(cache.conv, xbc, self.conv_weight, self.conv_bias, activation="silu")
        x, B, C = self._split_xbc(xbc)  # [B, H, P], [B, G, N] x2
        A = step_decay_rates(self)
        y = self.ssd_step(
            cache.ssm, x, dt, A, B, C, D=self.D, dt_bias=self.dt_bias, dt_softplus=True
        )  # [B, H, P]
        y = y.reshape(Bsz, 1, self.d_inner)
        if self.fused and not torch.compiler.is_compiling():
            from kernels.norm import gated_rmsnorm

            y = gated_rmsnorm(y, z[:, None], self.norm.weight, self.norm.group_size, self.norm.eps)
        else:
            y = self.norm(y, z[:, None])
        return self.out_proj(y)
