from typing import Any
from typing import Any as Buffer  # collections.abc.Buffer needs Python >= 3.12

import numpy as np
import numpy.typing as npt

SEED_BYTES: int
KEY_BYTES: int
PURPOSE_PAIRWISE: int
PURPOSE_SELF: int
PURPOSE_ROUNDING: int
PURPOSE_SELECT: int
MAX_WORDS: int

def derive_key(seed: Buffer, purpose: int, round_id: int) -> bytes: ...
def pair_seed(secret_key: Buffer, peer_public_key: Buffer) -> bytes: ...
def mask_expand(n: int, seed: Buffer, purpose: int, round_id: int, offset: int = 0,
                out: npt.NDArray[np.uint32] | None = None) -> npt.NDArray[np.uint32]: ...
def mask_add(vec: npt.NDArray[np.uint32], seed: Buffer, purpose: int, round_id: int,
             offset: int = 0, sign: int = 1) -> None: ...
def mask_add_many(vec: npt.NDArray[np.uint32], seeds: list[Buffer], signs: list[int], purpose: int,
                  round_id: int, offset: int = 0) -> None: ...
def vec_add(acc: npt.NDArray[np.uint32], x: npt.NDArray[np.uint32], sign: int = 1) -> None: ...
def quantize(x: npt.NDArray[np.floating[Any]], clip: float, levels: int, seed: Buffer, round_id: int,
             offset: int = 0, out: npt.NDArray[np.uint32] | None = None) -> npt.NDArray[np.uint32]: ...
def dequantize(total: npt.NDArray[np.uint32], clip: float, levels: int, count: int,
               dtype: Any = ...) -> npt.NDArray[np.floating[Any]]: ...
