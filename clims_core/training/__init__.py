"""Training loops and helpers shared by several stages (schedules, augmentation, the contrastive loop)."""
