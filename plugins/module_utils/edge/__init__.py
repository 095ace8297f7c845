"""The TLS edge (nginx as the one public door): TLS profiles as data, the model and the renderer (pure)."""
