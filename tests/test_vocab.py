import numpy as np
import pytest

from gauss_hpc.chem.vocab import Vocabulary, tokenize

SMILES = ["[O-]c1ccccc1", "N#CC", "OC(Cl)Br", "n1ccccc1", "[NH-]C(C)=O", "O=C1CC%10CC1"]


@pytest.mark.parametrize("kind", ["char", "atom"])
def test_encode_decode_round_trip(kind):
    vocab = Vocabulary.build(SMILES, kind=kind)
    assert vocab.decode(vocab.encode(SMILES)) == SMILES
    again = Vocabulary.from_json(vocab.to_json())
    assert again == vocab


def test_atom_tokens_keep_bracket_atoms_and_halogens_whole():
    assert tokenize("[O-]c1cc(Cl)ccc1Br", "atom") == ["[O-]", "c", "1", "c", "c", "(", "Cl", ")", "c", "c", "c",
                                                       "1", "Br"]


def test_char_vocabulary_pads_with_space_to_longest():
    vocab = Vocabulary.build(SMILES)
    assert vocab.tokens[0] == " "
    assert vocab.max_length == max(map(len, SMILES))
    row = vocab.encode(["N#CC"])[0]
    assert (row[4:] == 0).all() and np.count_nonzero(row) == 4


def test_unknown_token_and_too_long_are_named():
    vocab = Vocabulary.build(["OC", "NC"])
    with pytest.raises(ValueError, match="'S'"):
        vocab.encode(["SC"])
    with pytest.raises(ValueError, match="OCCC"):
        vocab.encode(["OCCC"])
    assert not vocab.encodable("OCCC")
