"""One prompt's image tokens in the mask decoder, kept as shared projections plus low-rank terms.

The decoder starts every prompt from the same image tokens X (N, C), N = 4096. Each layer adds
an update of rank r = heads x prompt tokens (a few dozen), ``A^T B`` with attention weights
A (r, N) and folded values B (r, C), then layer-normalises each token. A layer norm subtracts a
token's mean, scales it by its own rstd and applies per-channel gamma and beta, so after any
number of layers the tokens are

    keys = scale * (X diag(Gamma)) + columns^T @ rows

with ``scale`` (N,) the product of the layers' rstd, ``Gamma`` the product of their gammas, and
``columns`` (k, N), ``rows`` (k, C) the updates, means and shifts met so far (k = r + 2 per
layer). :class:`LowRankTokens` keeps that form and never makes the (N, C) tokens:

* a linear map of the tokens, ``keys @ W``, is ``scale * (X Gamma W) + columns^T (rows W)``,
  where ``X Gamma W`` depends on the image alone and is made once per image
  (:class:`SharedImage`) and the rest is a product of inner size k instead of C;
* the next layer norm's statistics of ``keys + A^T B`` come from per-token sums expanded the
  same way: ``|u|^2 = scale^2 |X Gamma|^2 + 2 scale c.(R Gamma X^T) + c^T (R R^T) c``.
  ``R Gamma X^T`` would again be an (N, C) product, but every row of R is a prompt's values
  times an attention's output projection (or one fixed vector), so it is a per-image
  projection of X onto each head's d + 1 dimensions times the prompt's values.

For one prompt this replaces the decoder's (N, C) x (C, r) products and passes over (N, C)
arrays with products of inner size k or d. Equal to the direct computation up to float rounding
(the tests compare both, and the oracle tests compare clicks with the reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Names of per-channel factors whose product is a weight vector: ("g0", "g0") is gamma_0^2.
Label = tuple[str, ...]


def _label(*parts: Label) -> Label:
    return tuple(sorted(sum(parts, ())))


class SharedImage:
    """The shared image tokens X (N, C) and their products with per-image maps, each made once.

    positions: (N, C) the positional encoding added to the tokens before attention logits;
    factors: the per-channel vectors (C,) that labels name (the layer norms' gamma and beta).
    """

    def __init__(
        self, tokens: torch.Tensor, positions: torch.Tensor, factors: dict[str, torch.Tensor]
    ) -> None:
        self.tokens = tokens
        self.positions = positions
        self.factors = factors
        self._cache: dict[tuple, torch.Tensor] = {}

    def _cached(self, key: tuple, make) -> torch.Tensor:
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = make()
        return value

    def weight(self, label: Label) -> torch.Tensor | None:
        """The product of the label's factors, (C,), or None for the empty label (all ones)."""
        if not label:
            return None
        out = self.factors[label[0]]
        for name in label[1:]:
            out = out * self.factors[name]
        return out

    def projected(self, name: str, label: Label, matrix: torch.Tensor) -> torch.Tensor:
        """``X diag(weight(label)) matrix``: (N, D) for a per-image matrix (C, D) named ``name``."""

        def make() -> torch.Tensor:
            return self.tokens @ self._weighted(label, matrix)

        return self._cached(("projected", name, label), make)

    def projected_heads(
        self, name: str, label: Label, matrix: torch.Tensor, heads: int, tokens_last: bool
    ) -> torch.Tensor:
        """:meth:`projected` split into heads, contiguous: (heads, d, N) with ``tokens_last``
        (for logits), else (heads, N, d) (for weighted sums over the tokens)."""

        def make() -> torch.Tensor:
            weighted = self._weighted(label, matrix)
            if tokens_last:
                return (weighted.t() @ self.tokens.t()).view(heads, -1, self.tokens.shape[0])
            out = (self.tokens @ weighted).view(self.tokens.shape[0], heads, -1)
            return out.transpose(0, 1).contiguous()

        return self._cached(("projected_heads", name, label, tokens_last), make)

    def positioned_heads(
        self, name: str, matrix: torch.Tensor, bias: torch.Tensor, heads: int
    ) -> torch.Tensor:
        """``positions @ matrix + bias`` split into heads: (heads, d, N), contiguous."""

        def make() -> torch.Tensor:
            out = torch.addmm(bias[:, None], matrix.t(), self.positions.t())
            return out.view(heads, -1, self.positions.shape[0])

        return self._cached(("positioned_heads", name), make)

    def _weighted(self, label: Label, matrix: torch.Tensor) -> torch.Tensor:
        w = self.weight(label)
        return matrix if w is None else w[:, None] * matrix

    def head_rows_against(
        self, name: str, label: Label, heads_matrix: torch.Tensor
    ) -> torch.Tensor:
        """Per head, ``heads_matrix[h] diag(weight(label)) X^T``: (heads, e, N), contiguous, for
        a per-image (heads, e, C) map named ``name``."""

        def make() -> torch.Tensor:
            heads, e, c = heads_matrix.shape
            w = self.weight(label)
            rows = heads_matrix.reshape(heads * e, c)
            rows = rows if w is None else rows * w
            return (rows @ self.tokens.t()).view(heads, e, -1)

        return self._cached(("heads", name, label), make)

    def dotted(self, label: Label) -> torch.Tensor:
        """``X @ weight(label)``: (N,)."""

        def make() -> torch.Tensor:
            w = self.weight(label)
            return self.tokens.sum(1) if w is None else self.tokens @ w

        return self._cached(("dotted", label), make)

    def squared(self, label: Label) -> torch.Tensor:
        """``|X diag(weight(label))|^2`` per token: (N,)."""

        def make() -> torch.Tensor:
            w = self.weight(label)
            squares = self.tokens * self.tokens
            return squares.sum(1) if w is None else squares @ (w * w)

        return self._cached(("squared", label), make)


@dataclass(frozen=True)
class HeadRows:
    """Rows ``values[h] @ out[h]`` of every head, stacked (heads * T, C), times a weight vector.

    values: (heads, T, e) a prompt's per-head values; out: (heads, e, C) the attention's map
    from them to channels (named ``name`` in the image's cache); label: the weight vector.
    """

    values: torch.Tensor
    out: torch.Tensor
    name: str
    label: Label = ()

    def scaled(self, factor: str) -> HeadRows:
        return HeadRows(self.values, self.out, self.name, _label(self.label, (factor,)))

    def against_image(self, image: SharedImage, gamma: Label) -> torch.Tensor:
        """These rows times ``diag(Gamma) X^T``: (heads * T, N)."""
        projected = image.head_rows_against(self.name, _label(self.label, gamma), self.out)
        heads, t, _ = self.values.shape
        return torch.bmm(self.values, projected).view(heads * t, -1)


@dataclass(frozen=True)
class VectorRow:
    """One row: the weight vector that ``label`` names."""

    label: Label

    def scaled(self, factor: str) -> VectorRow:
        return VectorRow(_label(self.label, (factor,)))

    def against_image(self, image: SharedImage, gamma: Label) -> torch.Tensor:
        """This row times ``diag(Gamma) X^T``: (1, N)."""
        return image.dotted(_label(self.label, gamma))[None]


@dataclass(frozen=True)
class LowRankTokens:
    """``scale * (X diag(Gamma)) + columns^T @ rows``: one prompt's image tokens, (N, C).

    gamma: label of Gamma; scale: (N,), None for ones; columns: (k, N) and rows: (k, C), None
    for k = 0; blocks: what the rows are made of, in order (for the layer norms' statistics).
    """

    image: SharedImage
    gamma: Label = ()
    scale: torch.Tensor | None = None
    columns: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    blocks: tuple[HeadRows | VectorRow, ...] = ()

    @property
    def rank(self) -> int:
        return 0 if self.columns is None else self.columns.shape[0]

    # ---- linear maps -----------------------------------------------------------------------

    def mapped(self, name: str, matrix: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``tokens @ matrix + bias`` for a per-image (C, D) matrix named ``name``: (N, D)."""
        shared = self.image.projected(name, self.gamma, matrix)
        if self.columns is None:
            return shared + bias
        out = torch.addmm(bias, self.columns.t(), self.rows @ matrix)
        if self.scale is None:
            return out.add_(shared)
        return out.addcmul_(shared, self.scale[:, None])

    def logits(
        self, name: str, matrix: torch.Tensor, bias: torch.Tensor, queries: torch.Tensor
    ) -> torch.Tensor:
        """Per head, ``((tokens + positions) @ matrix + bias) . queries``: (heads, T, N).

        matrix: (C, heads * d) a per-image projection named ``name``, bias: (heads * d,);
        queries: (heads, T, d), one set of T vectors per head.
        """
        heads, t, d = queries.shape
        shared = self.image.projected_heads(name, self.gamma, matrix, heads, tokens_last=True)
        out = torch.bmm(queries, shared)
        if self.scale is not None:
            out.mul_(self.scale)
        out.baddbmm_(queries, self.image.positioned_heads(name, matrix, bias, heads))
        if self.columns is not None:
            projected_rows = (self.rows @ matrix).view(-1, heads, d).permute(1, 2, 0)
            folded = torch.bmm(queries, projected_rows).view(heads * t, -1)  # (heads * T, k)
            out.view(heads * t, -1).addmm_(folded, self.columns)
        return out

    def mixed(self, name: str, matrix: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Per head, ``weights[h] @ (tokens @ matrix)[:, head h]``: (heads, T, d).

        matrix: (C, heads * d) a per-image projection named ``name``; weights: (heads, T, N).
        """
        heads, t, _ = weights.shape
        shared = self.image.projected_heads(name, self.gamma, matrix, heads, tokens_last=False)
        scaled = weights if self.scale is None else weights * self.scale
        out = torch.bmm(scaled, shared)
        if self.columns is not None:
            folded = (weights.view(heads * t, -1) @ self.columns.t()).view(heads, t, -1)
            projected_rows = (self.rows @ matrix).view(self.rank, heads, -1).transpose(0, 1)
            out.baddbmm_(folded, projected_rows)
        return out

    # ---- add an update, then layer-normalise ---------------------------------------------

    def updated(
        self, weights: torch.Tensor, update: HeadRows, norm: torch.nn.LayerNorm, index: int
    ) -> LowRankTokens:
        """``LN(tokens + weights^T @ rows(update))``, the tokens of the next layer.

        weights: (heads * T, N) attention weights; update: the folded values (heads * T rows);
        norm: the layer norm, whose gamma and beta the image's factors name ``g{index}`` and
        ``b{index}``.
        """
        values = torch.bmm(update.values, update.out)  # (heads, T, C)
        values = values.view(-1, values.shape[-1])
        if self.columns is None:
            columns, rows = weights, values
        else:
            columns = torch.cat([self.columns, weights])
            rows = torch.cat([self.rows, values])
        blocks = (*self.blocks, update)
        mean, rstd = self._statistics(columns, rows, blocks, norm.eps)

        g, b = f"g{index}", f"b{index}"
        gamma, beta = self.image.factors[g], self.image.factors[b]
        scale = rstd if self.scale is None else self.scale * rstd
        ones = torch.ones_like(rstd)
        next_columns = torch.cat([columns * rstd, (-mean * rstd)[None], ones[None]])
        next_rows = torch.cat([rows * gamma, gamma[None], beta[None]])
        next_blocks = (*(block.scaled(g) for block in blocks), VectorRow((g,)), VectorRow((b,)))
        return LowRankTokens(
            self.image, _label(self.gamma, (g,)), scale, next_columns, next_rows, next_blocks
        )

    def _statistics(
        self,
        columns: torch.Tensor,
        rows: torch.Tensor,
        blocks: tuple[HeadRows | VectorRow, ...],
        eps: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and rstd per token of ``scale * (X Gamma) + columns^T @ rows``: (N,) each."""
        image, c = self.image, rows.shape[1]
        shared_sum = image.dotted(self.gamma)
        shared_squares = image.squared(self.gamma)
        if self.scale is not None:
            shared_sum = shared_sum * self.scale
            shared_squares = shared_squares * (self.scale * self.scale)
        total = torch.addmv(shared_sum, columns.t(), rows.sum(1))
        # Cross terms with X, then the quadratic form of the low-rank part: one (k, N) array
        # z with sum_k columns * z = 2 scale c.(R Gamma X^T) + c^T (R R^T) c.
        against = torch.cat([block.against_image(image, self.gamma) for block in blocks])
        against.mul_(2.0 if self.scale is None else 2.0 * self.scale)
        z = torch.addmm(against, rows @ rows.t(), columns)
        squares = shared_squares + (columns * z).sum(0)
        mean = total / c
        variance = (squares / c - mean * mean).clamp_min_(0.0)
        return mean, torch.rsqrt(variance + eps)
