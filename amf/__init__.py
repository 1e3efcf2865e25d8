"""Active Multi-task Fine-tuning (AMF) of generalist policies, in JAX."""
from amf import jax_compat

jax_compat.apply()
