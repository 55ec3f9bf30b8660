"""The client contract between versions: renamed keys, warnings for auto-generated keys, and the refusal of
a new version whose serving_default would break clients of the latest one (unless ALLOW_SIGNATURE_CHANGE)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.errors import SignatureChangeError, SignatureError
from export.metadata import read_metadata
from export.signature import parse_renames
from export.versions import read_ledger

from . import models as M
from .conftest import assert_published, numbered, run_backends, run_export


def test_parse_renames() -> None:
    assert parse_renames("input_layer_3=image, keras_tensor_9 = meta", "INPUT_NAMES") == {
        "input_layer_3": "image", "keras_tensor_9": "meta"}
    assert parse_renames("", "OUTPUT_NAMES") == {} and parse_renames(None, "OUTPUT_NAMES") == {}
    for bad, message in (("image", "not an old=new pair"), ("a=", "not an old=new pair"),
                         ("a=b c", "not a valid signature key"), ("a=b,a=c", "renamed twice")):
        with pytest.raises(SignatureError, match=message):
            parse_renames(bad, "INPUT_NAMES")


def test_auto_keys_warn_and_renames_fix_them(tmp_path: Path, models_dir: Path) -> None:
    source = tmp_path / "auto.keras"  # saved once: every build in this process would number the keys anew
    M.auto_named().save(source)
    first, printed = run_export(source, models_dir, "auto")
    keys_in = [t["name"] for t in first.metadata["signature"]["inputs"]]
    keys_out = [t["name"] for t in first.metadata["signature"]["outputs"]]
    # Keras 3 names an unnamed Input keras_tensor[_N] and outputs after their layers' default names (dense_N)
    assert all(k.startswith(("input_layer", "keras_tensor")) for k in keys_in), keys_in
    assert all(k.startswith("dense") for k in keys_out), keys_out
    assert f"INPUT_NAMES={keys_in[0]}=<name>" in printed and f"OUTPUT_NAMES={keys_out[0]}=<name>" in printed
    assert len(first.warnings) == 2 and printed.count("WARNING: ") >= 2

    renames_in = f"{keys_in[0]}=left,{keys_in[1]}=right"
    second, printed = run_export(source, models_dir, "named",
                                 input_names=renames_in, output_names=f"{keys_out[0]}=score,{keys_out[1]}=probs")
    meta = assert_published(models_dir, "named", 1, {"left": "float32", "right": "float32"}, ["score", "probs"])
    assert meta["renames"] == {"inputs": {keys_in[0]: "left", keys_in[1]: "right"},
                               "outputs": {keys_out[0]: "score", keys_out[1]: "probs"}}
    assert second.warnings == [] and "INPUT_NAMES" not in printed
    tf_out, _ = run_backends(second.path, {"left": np.ones((2, 3), "float32"), "right": np.ones((2, 2), "float32")})
    assert tf_out["score"].shape == (2, 1) and tf_out["probs"].shape == (2, 2)
    with pytest.raises(SignatureError, match=r"INPUT_NAMES: no such key \['nope'\]"):
        run_export(source, models_dir, "named", input_names="nope=x")


def test_incompatible_new_version_is_refused_with_the_diff(tmp_path: Path, models_dir: Path) -> None:
    from serving.admin.table import version_rows

    source = tmp_path / "mlp.keras"
    M.seeded(M.functional_mlp).save(source)
    run_export(source, models_dir, "mlp")
    with pytest.raises(SignatureChangeError) as info:
        run_export(source, models_dir, "mlp", input_names="pixels=image")
    message = str(info.value)
    assert "serving_default signature of version 2 is incompatible with version 1" in message
    assert "input 'image': added" in message and "input 'pixels': removed" in message
    assert "ALLOW_SIGNATURE_CHANGE=1" in message
    assert numbered(models_dir, "mlp") == [1] and read_ledger(models_dir / "mlp")["versions_used"] == [1]

    allowed, printed = run_export(source, models_dir, "mlp", input_names="pixels=image", allow_signature_change=True)
    meta = read_metadata(allowed.path)
    assert allowed.version == 2 and meta["allow_signature_change"] is True
    assert meta["signature_change"]["from_version"] == 1
    assert "input 'image': added absent -> float32" in meta["signature_change"]["changes"]
    assert "ALLOW_SIGNATURE_CHANGE=1: the signature changed from version 1" in printed
    assert "signature-change" in version_rows(models_dir, "mlp")[0]["notes"]
    # the next version is compared with version 2 (the latest), which it matches
    third, _ = run_export(source, models_dir, "mlp", input_names="pixels=image")
    assert third.version == 3 and read_metadata(third.path)["signature_change"] is None
