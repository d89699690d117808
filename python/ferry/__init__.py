"""ferry: move machine-learning data from storage to memory, fast and checked.

    import ferry
    data = ferry.io.read("http://127.0.0.1:8080/shard-0000.tar", offset=0, length=4096)
    with ferry.safe_open("model.safetensors", framework="pt", mode="plaid") as f:
        ...
    # ferry.numpy / ferry.torch: load_file, save_file; ferry.torch.load_into_module

Every error ferry raises subclasses both `ferry.Error` and the builtin you would expect:
`ferry.NotFoundError` is a `FileNotFoundError`, `ferry.CorruptionError` a `ValueError`, and so on.
"""

from ferry._core import (
    CancelledError,
    CorruptionError,
    DeadlineError,
    Error,
    EvictedError,
    InternalError,
    InvalidArgumentError,
    IoError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    SourceChangedError,
    UnavailableError,
    UnsupportedError,
    __version__,
    cuda_description,
)
from ferry import io
from ferry._tensors import safe_open
from ferry.text import AddedToken, Encoding, Tokenizer

__all__ = [
    "CancelledError",
    "CorruptionError",
    "DeadlineError",
    "Error",
    "EvictedError",
    "InternalError",
    "InvalidArgumentError",
    "IoError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "SourceChangedError",
    "UnavailableError",
    "AddedToken",
    "Encoding",
    "Tokenizer",
    "UnsupportedError",
    "__version__",
    "cuda_description",
    "io",
    "safe_open",
]
