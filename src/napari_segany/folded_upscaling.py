"""The decoder's first upscaling product for one prompt, from a projection made once per image.

After the two-way transformer, a prompt's image tokens are the shared image tokens X after a
few steps of "add a low-rank update, then layer-normalise":
``keys_{l+1} = LN_l(keys_l + A_l B_l)``, where ``A_l`` (N, r) are attention weights and
``B_l`` (r, C) folded values, with r = heads x tokens, a few dozen. A layer norm scales each
token by its own ``rstd`` after subtracting its own mean, so a linear map of the final tokens
expands to

    keys_L @ W = s_0 * (X @ M_0) + [low-rank terms of width ~ L * (r + 2)]

with ``M_l = diag(gamma_l) ... diag(gamma_{L-1}) W`` and ``s_l`` the product of the layers'
``rstd`` from l on. ``X @ M_0`` does not depend on the prompt, so the decoder's first
transposed convolution, a (4096 x 256) x (256 x 256) product per click, becomes a product
about half as wide and a scaled sum. Equal to the direct product up to float rounding (the
tests compare both).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .modeling import Sam


@dataclass(frozen=True)
class NormalizedUpdate:
    """One "add a low-rank update, then layer-normalise" step of one prompt's image tokens.

    weights: (r, N) and values: (r, C), the update ``weights.T @ values`` (attention weights
    and folded values); mean, rstd: (N, 1), the layer norm's statistics of the updated tokens.
    """

    weights: torch.Tensor
    values: torch.Tensor
    mean: torch.Tensor
    rstd: torch.Tensor


class FirstUpscaling:
    """The first transposed convolution of the final image tokens of single prompts.

    image_tokens: (1, N, C), the shared tokens the transformer starts from.
    """

    def __init__(self, model: Sam, image_tokens: torch.Tensor) -> None:
        weight, self.bias = model.mask_decoder.first_upscaling()  # (C, D), (D,)
        norms = [layer.norm4 for layer in model.mask_decoder.transformer.layers]
        maps = [weight]  # M_L = W, M_l = diag(gamma_l) M_{l+1}
        for norm in reversed(norms):
            maps.insert(0, norm.weight[:, None] * maps[0])
        self._maps = maps
        # What each norm's mean and shift contribute: (1, D) rows.
        self._mean_rows = [norm.weight[None] @ maps[i + 1] for i, norm in enumerate(norms)]
        self._shift_rows = [norm.bias[None] @ maps[i + 1] for i, norm in enumerate(norms)]
        self._projected = image_tokens[0] @ maps[0]  # (N, D), X @ M_0

    def __call__(self, steps: list[NormalizedUpdate]) -> torch.Tensor:
        """The convolution's output (N, D) for the tokens that ``steps`` lead to from the
        shared ones (one step per transformer layer)."""
        # scales[l]: the product of rstd over layers l.. (the one past the last is 1).
        scales: list[torch.Tensor | None] = [None] * (len(steps) + 1)
        for i in reversed(range(len(steps))):
            later = scales[i + 1]
            scales[i] = steps[i].rstd if later is None else steps[i].rstd * later
        columns, rows = [], []
        for i, step in enumerate(steps):
            scale, later = scales[i], scales[i + 1]
            columns += [step.weights.t() * scale, step.mean * -scale]
            rows += [step.values @ self._maps[i], self._mean_rows[i]]
            if later is not None:
                columns.append(later)
                rows.append(self._shift_rows[i])
        # The last shift is not rescaled: it joins the convolution's bias.
        columns.append(torch.ones_like(steps[-1].rstd))
        rows.append(self._shift_rows[-1] + self.bias)
        # Row-major factors: the product runs ~10% faster than with a transposed left one.
        out = torch.cat(columns, dim=1) @ torch.cat(rows)
        return out.addcmul_(self._projected, scales[0])
