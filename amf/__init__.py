"""Active Multi-task Fine-tuning (AMF) of generalist policies, in JAX.

Importing `amf` applies the CPU settings of `amf.jax_compat` and the patches that let
neural-tangents 0.6.5 import on current JAX without TensorFlow (`amf.nt_compat`), so that
`import neural_tangents` works after `import amf`.
"""
from amf import jax_compat, nt_compat

jax_compat.apply()
nt_compat.apply()
