"""Plain torch.nn.Modules: what computes. No Lightning in here, so every net is usable on its own."""
