"""Chemistry: ligand curation, SMILES vocabularies, complexes, descriptors."""
