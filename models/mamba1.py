"""Mamba-1 mixer: in-projection, depthwise causal conv, selective scan (gated by z), out-projection.

Same parameters and math as state-spaces/mamba's `Mamba` (and transformers' `MambaMixer`): x_proj
produces dt (rank dt_rank), B and C per token; dt_proj lifts dt to d_inner, its bias is the scan's
delta_bias. The in-projection weight is [2*d_inner, d_model] (checkpoint layout: x, z); as in the
Mamba-2 mixer the full-sequence path multiplies by its two row blocks separately so that z exists
only while it is needed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import kernels
from models.blocks import step_decay_rates
from models.cache import conv_state_from


class Mamba1(nn.Module):
    def __init__(self, cfg, ssm_backend: str, conv_backend: str, **kw):
        super().__init__()
        self.d_inner, self.d_state, self.dt_rank = cfg.d_inner, cfg.d_state_m1, cfg.dt_rank
        self.d_conv = cfg.d_conv
        self.in_proj = nn.Linear(cfg.d_model, 2 * self.d_inner, bias=False, **kw)
        self.conv_weight = nn.Parameter(torch.empty(self.d_inner, cfg.d_conv, **kw))
        self.conv_bias = nn.Parameter(torch.empty(self.d_inner, **kw))
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * self.d_state, bias=False, **kw)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True, **kw)
        self.A_log = nn.Parameter(torch.empty(self.d_inner, self.d_state, **kw))
        self.D = nn.Parameter(torch.empty(self.d_inner, **kw))
        self.out_proj = nn.Linear(self.d_inner, cfg.d_model, bias=False, **kw)
        self.scan = kernels.get("selective_scan", ssm_backend)
        self.scan_step = kernels.get("selective_scan_step", ssm_backend)
        self.conv = kernels.get("conv1d", conv_backend)
        self.conv_step = kernels.get("conv1d_step", conv_backend)

    @torch.no_grad()
    def reset_parameters(self, dt_min=1e-3, dt_max=0.1):
        """mamba's initialisation: A = -[1..N] per channel, D = 1, dt log-uniform."""
        nn.init.uniform_(self.conv_weight, -(self.d_conv**-0.5), self.d_conv**-0.5)
        nn.init.zeros_(self.conv_bias)
        A = torch.arange(1, self.d_state + 1, dtype=torch.float32).expand(self.d_inner, -1)
        self.A_log.copy_(torch.log(A))
        self.D.fill_(1.0)
        nn.init.uniform_(self.dt_proj.weight, -(self.dt_rank**-0.5), self.dt_rank**-0.5)
        u = torch.rand(self.d_inner, dtype=torch.float32)
        dt = torch.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(min=1e-4)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def _dt_bc(self, x: torch.Tensor):
        """x [..., d_inner] (after the conv) -> dt [..., d_inner] (before bias), B, C [..., N]."""
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.linear(dt, self.dt_proj.weight), B, C

    def forward(self, h: torch.Tensor, cache=None, **_) -> torch.Tensor:
        """h [B, T, d_model] -> [B, T, d_model]. With a cache (SSMState), its conv and SSM states
        are set to the states after the last token."""
        x = F.linear(h, self.in_proj.weight[: self.d_inner])  # [B, T, d_inner]
        if cache is not None:
            cache.conv.copy_(conv_state_from(x, self.d_conv))
        x = self.conv(x, self.conv_weight, self.conv_bias, activation="silu")  # [B, T, d_inner]
        dt, B, C = self._dt_bc(x)  # [B, T, d_inner], [B, T, N] x2
        z = F.linear(h, self.in_proj.weight[self.d_inner :])  # [B, T, d_inner]
        A = -torch.exp(self.A_log.float())  # [d_inner, N]
        y = self.scan(
            x,
            dt,
            A,
            B,
            C,
            D=self.D,
            z=z,
            delta_bias=self.dt_proj.bias,
            delta_softplus=True,
            return_last_state=cache is not None,
        )
        if cache is not None:
            y, last = y
            cache.ssm.copy_(last)
        del x, z, dt, B, C
        return self.out_proj(y)

    def step(self, h: torch.Tensor, cache=None, **_) -> torch.Tensor:
        """One token: h [B, 1, d_model] -> [B, 1, d_model]; updates cache.conv and cache.ssm."""
        x, z = self.in_proj(h[:, 0]).chunk(2, dim=-1)  # [B, d_inner] x2
        x = self.conv_step(cache.conv, x, self.conv_weight, self.conv_bias, activation="silu")
        dt, B, C = self._dt_bc(x)
        A = step_decay_rates(self)
        y = self.scan_step(
            cache.ssm,
            x,
            dt,
            A,
            B,
            C,
            D=self.D,
            z=z,
            delta_bias=self.dt_proj.bias,
            delta_softplus=True,
        )  # [B, d_inner]
        return self.out_proj(y[:, None])
