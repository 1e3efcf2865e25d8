"""Active Multi-task Fine-tuning (AMF) in JAX."""
import pathlib

from setuptools import find_packages, setup

_REQUIREMENTS = [
    line.strip()
    for line in (pathlib.Path(__file__).parent / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="amf",
    version="0.1.0",
    description="Active multi-task fine-tuning of generalist policies, jit-compiled and vmapped.",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["amf", "amf.*", "experiments", "configs", "configs.*",
                                     "launch", "benchmarks", "probes"]),
    install_requires=_REQUIREMENTS + ["neural-tangents==0.6.5"],
)
