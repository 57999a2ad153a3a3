"""The paper's three edits on W+ codes (Abdal et al. 2019, section 3 of docs/paper.md).

All functions take and return W+ codes ``[N, num_ws, w_dim]`` (a single code ``[num_ws, w_dim]``
is accepted too and the result has the same shape). They are pure tensor arithmetic: any
generator, any device, no gradients needed.
"""

from i2s.edits.expression_transfer import ExpressionTransfer, transfer_expression
from i2s.edits.morphing import morph
from i2s.edits.style_transfer import crossover, default_crossover_layers, parse_layers

__all__ = ["ExpressionTransfer", "crossover", "default_crossover_layers", "morph",
           "parse_layers", "transfer_expression"]
