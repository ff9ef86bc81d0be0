"""The VAE, its heads, the masked loss and the checkpoint contract (load_run) other stages rely on."""

import numpy as np
import pytest
import torch

from gauss_hpc.chem.vocab import Vocabulary
from gauss_hpc.model import CheckpointError, SmilesVAE, load_run
from gauss_hpc.model import checkpoint as ckpt
from gauss_hpc.model import losses
from gauss_hpc.model.vae import BatchNoise
from gauss_hpc.model.decoders import DECODERS

SMILES = ["OC", "[O-]c1ccccc1", "N#CC", "n1ccccc1", "OCC", "[O-]C"]


def small_model(**kw):
    args = dict(vocab_size=12, max_length=9, latent_dim=6, encoder_hidden=(16, 12, 8), decoder_hidden=16,
                n_labels=2)
    args.update(kw)
    torch.manual_seed(0)
    return SmilesVAE(**args)


def test_paper_default_sizes_and_shapes():
    vocab = Vocabulary.build(SMILES)
    model = SmilesVAE(vocab.size, vocab.max_length, n_labels=3, kd_head=True)
    assert [g.hidden_size for g in model.encoder] == [128, 96, 32]
    assert all(g.bidirectional for g in model.encoder)
    assert model.decoder.decoder1.hidden_size == 128 and model.decoder.decoder2.hidden_size == vocab.size
    assert model.latent_dim == 32
    tokens = torch.from_numpy(vocab.encode(SMILES))
    mu, logvar = model.encode(tokens)
    assert mu.shape == logvar.shape == (len(SMILES), 32)
    assert model.decode_logits(mu, tokens).shape == (len(SMILES), vocab.max_length, vocab.size)
    assert model.generate(mu).shape == tokens.shape
    assert model.predict_proxy(mu).shape == (len(SMILES), 3)
    assert model.predict_kd(mu, torch.zeros(len(SMILES), 6)).shape == (len(SMILES), 7)


def test_autoregressive_generation_agrees_with_teacher_forcing():
    """Greedy generation is the argmax of the teacher-forced logits fed with its own output, and a string
    ends at its first padding token."""
    vocab = Vocabulary.build(SMILES)
    model = small_model(vocab_size=vocab.size, max_length=vocab.max_length, decoder="autoregressive",
                        decoder_hidden=24).eval()
    z = torch.randn(50, 6)
    with torch.no_grad():
        generated = model.generate(z)
        forced = model.decode_logits(z, generated).argmax(-1)
    assert generated.shape == (50, vocab.max_length)
    for row_g, row_f in zip(generated, forced):
        end = int((row_g == 0).nonzero()[0]) if (row_g == 0).any() else len(row_g) - 1
        assert torch.equal(row_g[:end + 1], row_f[:end + 1])
        assert (row_g[end:] == 0).all() or end == len(row_g) - 1
    with pytest.raises(ValueError, match="needs the target tokens"):
        model.decoder.logits(z)


def test_bfloat16_products_give_nearly_the_same_strings():
    """[sample] precision = "bfloat16": the decoder's products in bfloat16 (the autoregressive state and gates in
    float32) write nearly every string as float32 does."""
    vocab = Vocabulary.build(SMILES)
    for kind in DECODERS:
        model = small_model(vocab_size=vocab.size, max_length=vocab.max_length, decoder=kind,
                            decoder_hidden=24).eval()
        z = torch.randn(200, 6)
        with torch.no_grad():
            exact = model.generate(z)
            rounded = model.generate(z, matmul_dtype=torch.bfloat16)
        assert rounded.dtype == exact.dtype and rounded.shape == exact.shape
        assert (rounded == exact).all(dim=1).float().mean() >= 0.9, kind


def test_a_forced_prefix_is_written_and_the_rest_reads_it():
    """keep_donor: the first tokens are the caller's, later ones are the decoder's own given that prefix (the
    teacher-forced argmax of the whole string agrees after the prefix); the repeat decoder refuses a prefix."""
    vocab = Vocabulary.build(SMILES)
    model = small_model(vocab_size=vocab.size, max_length=vocab.max_length, decoder="autoregressive",
                        decoder_hidden=24).eval()
    z = torch.randn(30, 6)
    prefix = torch.full((30, 3), -1, dtype=torch.long)
    prefix[:, 0] = vocab.index["["]
    prefix[:10, 1] = vocab.index["O"]           # rows 0-9 force two tokens, the others one
    with torch.no_grad():
        generated = model.generate(z, prefix=prefix)
        forced = model.decode_logits(z, generated).argmax(-1)
    assert (generated[:, 0] == vocab.index["["]).all() and (generated[:10, 1] == vocab.index["O"]).all()
    for row, (g, f) in enumerate(zip(generated, forced)):
        start = 2 if row < 10 else 1
        end = int((g == 0).nonzero()[0]) if (g == 0).any() else len(g) - 1
        assert torch.equal(g[start:end + 1], f[start:end + 1])
    repeat = small_model(vocab_size=vocab.size, max_length=vocab.max_length, decoder="repeat").eval()
    with pytest.raises(ValueError, match="needs the autoregressive decoder"):
        repeat.generate(z, prefix=prefix)


def test_temperature_draws_come_from_the_callers_uniforms():
    vocab = Vocabulary.build(SMILES)
    for kind in ("repeat", "autoregressive"):
        model = small_model(vocab_size=vocab.size, max_length=vocab.max_length, decoder=kind).eval()
        z, u = torch.randn(20, 6), torch.rand(20, vocab.max_length)
        with torch.no_grad():
            a, b = model.generate(z, u, 0.7), model.generate(z, u, 0.7)
            c = model.generate(z, torch.rand(20, vocab.max_length), 0.7)
        assert torch.equal(a, b) and not torch.equal(a, c), kind


def test_autoregressive_vae_learns_to_reconstruct_strings():
    """The property the decoder exists for: a few hundred steps on six ligands give them back whole."""
    vocab = Vocabulary.build(SMILES)
    tokens = torch.from_numpy(vocab.encode(SMILES))
    model = small_model(vocab_size=vocab.size, max_length=vocab.max_length, decoder="autoregressive",
                        decoder_hidden=48, n_labels=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        mu, logvar = model.encode(tokens)
        loss = losses.reconstruction(model.decode_logits(mu, tokens), tokens, len(tokens))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        decoded = vocab.decode(model.eval().generate(model.encode(tokens)[0]).numpy())
    assert decoded == SMILES


def test_unknown_decoder_is_an_error():
    with pytest.raises(ValueError, match="unknown decoder 'lstm'"):
        small_model(decoder="lstm")


def test_encode_rejects_wrong_length():
    model = small_model()
    with pytest.raises(ValueError, match=r"shape \(batch, 9\)"):
        model.encode(torch.zeros(2, 5, dtype=torch.long))


def test_noise_drawn_for_global_batch_is_split_exactly():
    """Two halves of a global batch see exactly the rows of the whole: the basis of rank invariance."""
    model = small_model(proxy_dropout=0.2)
    whole = BatchNoise.draw(model, 10, seed=1, epoch=3, step=7)
    again = BatchNoise.draw(model, 10, seed=1, epoch=3, step=7)
    assert torch.equal(whole.eps, again.eps) and torch.equal(whole.proxy_keep, again.proxy_keep)
    halves = [whole.rows(0, 5), whole.rows(5, 10)]
    assert torch.equal(torch.cat([h.eps for h in halves]), whole.eps)
    assert not torch.equal(BatchNoise.draw(model, 10, 1, 3, 8).eps, whole.eps)


def test_masked_mse_ignores_unlabelled_values_in_loss_and_gradient():
    model = small_model(proxy_dropout=0.0)
    tokens = torch.randint(0, 12, (8, 9))
    mask = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 0], [1, 1], [0, 1]], dtype=torch.bool)
    clean = torch.where(mask, torch.randn(8, 2), torch.full((8, 2), float("nan")))

    def head_grads(targets):
        model.zero_grad()
        mu, _ = model.encode(tokens)
        loss = losses.masked_mse(model.predict_proxy(mu), targets, mask, mask.sum(0))
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.proxy.parameters()]

    loss_nan, grads_nan = head_grads(clean)
    garbage = torch.where(mask, clean, torch.full((8, 2), 1e6))
    loss_garbage, grads_garbage = head_grads(garbage)
    assert torch.isfinite(loss_nan) and torch.equal(loss_nan, loss_garbage)
    assert all(torch.isfinite(a).all() and torch.equal(a, b) for a, b in zip(grads_nan, grads_garbage))


def test_masked_mse_normalized_by_global_count():
    """Two ranks' partial losses sum to the one-rank loss when both use the global labelled count."""
    pred, target = torch.randn(10, 2), torch.randn(10, 2)
    mask = torch.rand(10, 2) > 0.4
    count = mask.sum(0)
    whole = losses.masked_mse(pred, target, mask, count)
    parts = losses.masked_mse(pred[:4], target[:4], mask[:4], count) + \
        losses.masked_mse(pred[4:], target[4:], mask[4:], count)
    assert torch.allclose(whole, parts)


def write_run(tmp_path, model):
    vocab = Vocabulary.build(SMILES)
    payload = ckpt.model_payload(model, vocab=vocab, label_names=["donor_z", "donor_charge"],
                                 label_mean=np.array([7.5, -0.4]), label_std=np.array([0.5, 0.1]),
                                 config={"latent_dim": model.latent_dim})
    ckpt.save(tmp_path / ckpt.BEST, payload)
    return vocab


def test_load_run_round_trip_with_weights_only(tmp_path):
    vocab = Vocabulary.build(SMILES)
    model = small_model(vocab_size=vocab.size, max_length=vocab.max_length)
    write_run(tmp_path, model)
    torch.load(tmp_path / ckpt.BEST, weights_only=True)  # the contract: plain tensors and values only
    run = load_run(tmp_path)
    assert not run.model.training
    assert run.vocab == vocab and run.label_names == ["donor_z", "donor_charge"]
    assert run.kd_head is None
    np.testing.assert_allclose(run.unstandardize(np.array([[0.0, 1.0]])), [[7.5, -0.3]])
    tokens = torch.from_numpy(vocab.encode(SMILES))
    with torch.no_grad():
        assert torch.equal(run.model.encode(tokens)[0], model.eval().encode(tokens)[0])


def test_missing_and_corrupt_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match=r"best\.pt: checkpoint not found\. Train first"):
        load_run(tmp_path)
    (tmp_path / ckpt.BEST).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match=r"best\.pt: not a readable gauss_hpc checkpoint.*delete it"):
        load_run(tmp_path)
    torch.save({"something": torch.zeros(2)}, tmp_path / ckpt.BEST)
    with pytest.raises(CheckpointError, match="not a gauss_hpc.train checkpoint"):
        load_run(tmp_path)
    with pytest.raises(CheckpointError, match="not a directory"):
        load_run(tmp_path / "nope")


def test_rng_state_round_trip_is_weights_only_loadable(tmp_path):
    import random

    state = ckpt.rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.save(tmp_path / "rng.pt", {"format": "gauss_hpc.train", "rng": state})
    ckpt.set_rng_state(ckpt.load(tmp_path / "rng.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def test_early_stopping_tracks_the_best_epoch_and_stops_after_patience():
    from gauss_hpc.model.tracking import EarlyStopping

    stopping = EarlyStopping(patience=2, min_delta=0.1)
    outcomes = [stopping.update(epoch, loss) for epoch, loss in enumerate([1.0, 0.95, 0.5, 0.45, 0.44])]
    # 0.95 and 0.45 are new bests but not 0.1 better than the reference: the counter runs on
    assert outcomes == [(True, False), (True, False), (True, False), (True, False), (True, True)]
    assert stopping.best_epoch == 4 and stopping.best_score == 0.44
    again = EarlyStopping(patience=2, min_delta=0.1)
    again.load(stopping.state())
    assert again == stopping
