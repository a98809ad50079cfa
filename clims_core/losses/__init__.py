"""Loss functions, each a pure function of tensors, tested on hand-made values."""
