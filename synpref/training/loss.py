"""The Bradley-Terry objective (DESIGN.md section 4): -log sigmoid(r_w - r_l).

Optional, as TRL's RewardTrainer has them: a per-pair margin subtracted inside the sigmoid, and
reward centering, coefficient * mean((r_w + r_l)^2), which keeps rewards near zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor | None = None,
                       center_coefficient: float = 0.0) -> torch.Tensor:
    diff = r_chosen - r_rejected
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff).mean()
    if center_coefficient:
        loss = loss + center_coefficient * ((r_chosen + r_rejected) ** 2).mean()
    return loss
