#!/usr/bin/env python3
"""Writes the hostile safetensors files in this folder, expected.tsv and README.md.

Each file breaks one rule of the format. Tests (src/tensors/hostile_test.cc and
python/tests/test_tensors.py) open every file listed in expected.tsv and check that ferry refuses
it with an error containing the expected text, without crashing or allocating what the file
claims. Run `python3 make.py` here after changing a case; the outputs are committed.
"""

import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def header_file(header, data=b"", length=None, raw_json=None):
    text = raw_json if raw_json is not None else json.dumps(header).encode()
    n = len(text) if length is None else length
    return struct.pack("<Q", n) + text + data


def f32(name, shape, begin, end):
    return {name: {"dtype": "F32", "shape": shape, "data_offsets": [begin, end]}}


CASES = [
    # (file, bytes, expected error text, what is wrong)
    ("header_too_small.safetensors", b"\x05\x00\x00", "fewer than the 8-byte header length",
     "3 bytes: not even the header length"),
    ("header_length_past_eof.safetensors", struct.pack("<Q", 1000) + b"{}" + b" " * 78,
     "runs past the end", "header length 1000 in an 88-byte file"),
    ("huge_header_length.safetensors", struct.pack("<Q", 1 << 63) + b"{}",
     "exceeds the limit", "header length 2^63: must be refused before any allocation"),
    ("invalid_utf8.safetensors", header_file(None, raw_json=b'{"\xff\xfe":{}}'),
     "not valid UTF-8", "tensor name with bytes FF FE"),
    ("invalid_json.safetensors", header_file(None, raw_json=b'{"a": {"dtype": '),
     "not valid JSON", "header cut in the middle of an object"),
    ("top_level_array.safetensors", header_file(None, raw_json=b"[]"),
     "top level must be a JSON object", "header is a JSON array"),
    ("truncated_data.safetensors", header_file(f32("w", [4], 0, 16), b"\x00" * 8),
     "truncated", "16 bytes of data promised, 8 present"),
    ("trailing_bytes.safetensors", header_file(f32("w", [1], 0, 4), b"\x00" * 12),
     "trailing bytes", "8 bytes after the last tensor"),
    ("overlapping_offsets.safetensors",
     header_file({**f32("a", [2], 0, 8), **f32("b", [2], 4, 12)}, b"\x00" * 12),
     "overlap", "b starts inside a"),
    ("gapped_offsets.safetensors",
     header_file({**f32("a", [1], 0, 4), **f32("b", [1], 8, 12)}, b"\x00" * 12),
     "leave a gap", "4 unclaimed bytes between a and b"),
    ("first_offset_not_zero.safetensors", header_file(f32("a", [1], 4, 8), b"\x00" * 8),
     "expected begin 0", "the first tensor does not start the data buffer"),
    ("end_before_begin.safetensors", header_file(f32("a", [0], 8, 4), b"\x00" * 8),
     "end before begin", "data_offsets [8, 4]"),
    ("out_of_bounds_offsets.safetensors", header_file(f32("a", [256], 0, 1024), b"\x00" * 16),
     "truncated", "data_offsets reach 1 KiB into a 16-byte data buffer"),
    ("span_mismatch.safetensors", header_file(f32("a", [2, 2], 0, 8), b"\x00" * 8),
     "need 16", "shape [2, 2] of F32 is 16 bytes, data_offsets span 8"),
    ("shape_overflow.safetensors",
     header_file({"a": {"dtype": "F32", "shape": [1 << 32, 1 << 32, 16], "data_offsets": [0, 0]}}),
     "overflows 64 bits", "shape product 2^68"),
    ("sub_byte_misaligned.safetensors",
     header_file({"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, b"\x00" * 2),
     "do not fill whole bytes", "3 F4 elements are 12 bits"),
    ("unknown_dtype.safetensors",
     header_file({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, b"\x00" * 16),
     "unknown dtype 'F128'", "dtype F128"),
    ("negative_offset.safetensors",
     header_file({"a": {"dtype": "U8", "shape": [4], "data_offsets": [-1, 3]}}, b"\x00" * 4),
     "non-negative integers", "data_offsets [-1, 3]"),
    ("float_shape.safetensors",
     header_file({"a": {"dtype": "U8", "shape": [2.0], "data_offsets": [0, 2]}}, b"\x00" * 2),
     "non-negative integers", "shape [2.0]"),
    ("missing_dtype.safetensors",
     header_file({"a": {"shape": [1], "data_offsets": [0, 1]}}, b"\x00"),
     "missing \"dtype\"", "a tensor entry without dtype"),
    ("duplicate_names.safetensors",
     header_file(None, b"\x00" * 2,
                 raw_json=b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                          b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}'),
     "the name appears twice", "two tensors called a"),
    ("non_string_metadata.safetensors",
     header_file({"__metadata__": {"epoch": 3}, **f32("a", [1], 0, 4)}, b"\x00" * 4),
     "must be a string", "__metadata__ value 3"),
    ("metadata_not_object.safetensors",
     header_file({"__metadata__": ["x"], **f32("a", [1], 0, 4)}, b"\x00" * 4),
     "must be an object of strings or null", "__metadata__ is a list"),
    ("tensor_not_object.safetensors", header_file({"a": [1, 2]}),
     "expected an object", "a tensor entry that is a list"),
    ("offsets_three_numbers.safetensors",
     header_file({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 2]}}, b"\x00"),
     "must be [begin, end]", "data_offsets with three numbers"),
]


def main():
    with open(os.path.join(HERE, "expected.tsv"), "w") as tsv:
        tsv.write("# file\texpected error text (generated by make.py)\n")
        for name, data, expected, _ in CASES:
            with open(os.path.join(HERE, name), "wb") as f:
                f.write(data)
            tsv.write(f"{name}\t{expected}\n")
    with open(os.path.join(HERE, "README.md"), "w") as readme:
        readme.write(
            "# Hostile safetensors files\n\n"
            "Generated by `make.py` (run it here after changing a case). Each breaks one rule of\n"
            "the format; ferry must refuse each with a clear error naming the file and, where\n"
            "there is one, the tensor, and must not crash or allocate what the file claims.\n"
            "`expected.tsv` holds the text each error must contain; the C++ and Python tests\n"
            "read it.\n\n| file | what is wrong | error contains |\n|---|---|---|\n")
        for name, _, expected, why in CASES:
            readme.write(f"| `{name}` | {why} | {expected} |\n")


if __name__ == "__main__":
    main()
