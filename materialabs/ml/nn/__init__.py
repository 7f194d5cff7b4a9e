"""Message-passing layers, one per file (as in ``torch_geometric.nn.conv``)."""

from materialabs.ml.nn.gated_conv import GatedEdgeConv

__all__ = ["GatedEdgeConv"]
