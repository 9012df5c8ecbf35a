"""Pydra task: train SM-GICNet through the ``smgic-train`` entry point (resumable with ``resume=True``)."""

from __future__ import annotations

from pydra.compose import python


@python.define(outputs=["checkpoints"])
def Train(images: list, out_dir: str, device: str = "cpu", stages: str = "1-4", iterations: str = "",
          seed: int = 0, config: str = "", resume: bool = False) -> str:
    """Run :func:`smgic_pydra.cli.train.main` on network-grid images; returns the checkpoints folder.

    Arguments mirror ``smgic-train`` (``iterations``/``config`` empty: its defaults). Raises
    RuntimeError when training fails (the message of ``smgic-train`` is on stderr).
    """
    from pathlib import Path

    from smgic_pydra.cli.train import main

    argv = [*map(str, images), "--out", out_dir, "--device", device, "--no-progress"]
    if resume:
        argv.append("--resume")
    else:
        argv += ["--stages", stages, "--seed", str(seed)]
        argv += ["--iterations", iterations] if iterations else []
        argv += ["--config", config] if config else []
    status = main(argv)
    if status != 0:
        raise RuntimeError(f"smgic-train exited with status {status} for {out_dir}")
    return str(Path(out_dir) / "checkpoints")
