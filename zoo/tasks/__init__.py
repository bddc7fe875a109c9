"""LightningModules: what is learned and how it is judged (loss, metrics, optimiser, logging)."""
