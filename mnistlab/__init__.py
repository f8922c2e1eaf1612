"""MNIST Lab's core: data, networks, training, preprocessing and figures. Never imports Streamlit."""

__version__ = "0.1.0"
