"""Active Multi-task Fine-tuning (AMF) of generalist policies, in JAX."""
