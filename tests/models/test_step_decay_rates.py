"""The decode step's decay rates, kept between steps (models.blocks.step_decay_rates)."""

import torch
from torch import nn

from models.blocks import step_decay_rates


def _mixer():
    m = nn.Module()
    m.A_log = nn.Parameter(torch.log(torch.arange(1.0, 5.0)).to(torch.bfloat16))
    return m


def test_rates_are_kept_until_a_log_changes_in_place():
    m = _mixer()
    with torch.inference_mode():
        first = step_decay_rates(m)
        assert first.dtype == torch.float32
        torch.testing.assert_close(first, -torch.exp(m.A_log.float()))
        assert step_decay_rates(m) is first  # no recomputation: no kernels in the step
    with torch.no_grad():  # as an optimizer step or load_state_dict changes it
        m.A_log.add_(1.0)
    with torch.inference_mode():
        again = step_decay_rates(m)
    assert again is not first
    torch.testing.assert_close(again, -torch.exp(m.A_log.float()))


def test_with_autograd_the_rates_carry_the_gradient():
    m = _mixer()
    a = step_decay_rates(m)
    assert a.requires_grad
    a.sum().backward()
    torch.testing.assert_close(
        m.A_log.grad.float(), a.detach().to(torch.bfloat16).float(), rtol=1e-2, atol=1e-2
    )


def test_a_model_built_in_inference_mode_still_steps():
    # an inference tensor has no version counter: the rates are computed, not kept
    with torch.inference_mode():
        m = _mixer()
        torch.testing.assert_close(step_decay_rates(m), -torch.exp(m.A_log.float()))
