"""python -m sonolab.embed: embeddings of files with a trained run, as npz or Kaldi ark / scp."""

from __future__ import annotations

import numpy as np
import pytest

from sonolab.embed import main as embed_main
from sonolab.utils.errors import DataFormatError


def test_embeddings_score_the_trials_as_the_run_did(trained_run, tiny_voxceleb, tmp_path, capsys):
    assert (
        embed_main(
            [f"run_dir={trained_run}", f"wavs={tiny_voxceleb / 'wav'}", f"out={tmp_path / 'npz'}"]
        )
        == 0
    )
    data = np.load(tmp_path / "npz" / "embeddings.npz")
    index = {k: i for i, k in enumerate(data["keys"].tolist())}
    emb = data["embeddings"] / np.linalg.norm(data["embeddings"], axis=1, keepdims=True)
    rows = [line.split() for line in (trained_run / "scores_synth.txt").read_text().splitlines()]
    for enroll, test, score, _ in rows[
        :10
    ]:  # plain cosine of the same embeddings = the run's trial scores
        assert float(emb[index[enroll]] @ emb[index[test]]) == pytest.approx(float(score), abs=1e-4)
    assert (
        embed_main(
            [
                f"run_dir={trained_run}",
                f"wavs={tiny_voxceleb / 'wav'}",
                f"out={tmp_path / 'ark'}",
                "format=ark",
            ]
        )
        == 0
    )
    import kaldiio

    ark = dict(kaldiio.load_scp(str(tmp_path / "ark" / "xvector.scp")))
    assert set(ark) == set(index) and np.allclose(
        ark[rows[0][0]], data["embeddings"][index[rows[0][0]]]
    )
    assert str(tmp_path / "ark" / "xvector.scp") in capsys.readouterr().out


def test_a_list_naming_a_missing_file_is_refused_with_its_line(
    trained_run, tiny_voxceleb, tmp_path
):
    first = next((tiny_voxceleb / "wav").rglob("*.wav"))
    listing = tmp_path / "list.txt"
    listing.write_text(f"{first}\n{tmp_path / 'gone.wav'}\n")
    with pytest.raises(
        DataFormatError, match=r"list.txt: expected an existing audio file on every line \(line 2\)"
    ):
        embed_main([f"run_dir={trained_run}", f"wavs={listing}"])
