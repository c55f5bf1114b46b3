"""Data products: ODPS descriptors, discovery under domains/, and the product graph."""
