"""The semi-supervised SMILES VAE and its property heads."""
