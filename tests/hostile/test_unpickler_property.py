"""Property tests of the restricted unpickler: random pickle opcode streams (real opcodes,
GLOBAL / STACK_GLOBAL with allowed and forbidden names, REDUCE, BUILD, NEWOBJ, persistent ids,
numpy arrays (protocol 5's _frombuffer too) and tensor records with random sizes) either load
or raise one I2SError, never anything else, and never have a side effect (the marker file a
forbidden call would write is never created).

The default run draws a few hundred streams (about 5 s); raise ``I2S_HYPOTHESIS_EXAMPLES`` for a
longer search."""

from __future__ import annotations

import os
import pickle
import struct
from collections import OrderedDict

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import i2s
from i2s.weights.convert.safe_pickle import load_pickle
from tests.checkpoint_writers import (
    op_bytes,
    op_call,
    op_global,
    op_int,
    op_stack_global,
    op_str,
    op_tuple,
    storage_record,
)

EXAMPLES = int(os.environ.get("I2S_HYPOTHESIS_EXAMPLES", "250"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])

ALLOWED = [("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
           ("builtins", "bytes"), ("__builtin__", "set"), ("_codecs", "encode"),
           ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
           ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
           ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
           ("dnnlib.tflib.network", "Network"), ("dnnlib.util", "EasyDict"),
           ("torch_utils.persistence", "_reconstruct_persistent_obj"),
           ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
           ("torch.storage", "_load_from_bytes"), ("torch", "float32"),
           ("torch.nn.modules.conv", "Conv2d")]
# Each of these would create the marker file if it were ever called with the marker's path.
FORBIDDEN = [("os", "system"), ("posix", "system"), ("builtins", "exec"), ("builtins", "eval"),
             ("__builtin__", "eval"), ("builtins", "open"), ("io", "open"),
             ("subprocess", "call"), ("builtins", "getattr"), ("pathlib", "Path"),
             ("copy_reg", "_reconstructor"), ("_codecs", "decode"), ("numpy", "save"),
             ("torch", "save"), ("pickle", "loads"), ("builtins", "__import__")]


def _literal():
    return st.one_of(
        st.just(pickle.NONE), st.just(pickle.NEWTRUE), st.just(pickle.NEWFALSE),
        st.integers(-2**70, 2**70).map(op_int),
        st.text(max_size=8).map(op_str), st.binary(max_size=16).map(op_bytes),
        st.sampled_from([pickle.EMPTY_LIST, pickle.EMPTY_DICT, pickle.EMPTY_TUPLE,
                         pickle.EMPTY_SET, pickle.MARK]))


def _structural():
    return st.sampled_from([
        pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3, pickle.LIST, pickle.DICT,
        pickle.APPEND, pickle.APPENDS, pickle.SETITEM, pickle.SETITEMS, pickle.ADDITEMS,
        pickle.FROZENSET, pickle.POP, pickle.POP_MARK, pickle.DUP, pickle.MEMOIZE,
        pickle.REDUCE, pickle.BUILD, pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.BINPERSID,
        pickle.STOP]) | st.integers(0, 5).map(lambda i: pickle.BINPUT + bytes([i])) \
        | st.integers(0, 5).map(lambda i: pickle.BINGET + bytes([i])) \
        | st.integers(0, 2**40).map(lambda n: pickle.PERSID + str(n).encode() + b"\n")


def _global(names):
    return st.tuples(st.sampled_from(names), st.booleans()).map(
        lambda t: op_stack_global(*t[0]) if t[1] else op_global(*t[0]))


def _forbidden_call(marker: str):
    """A forbidden global called with arguments that would create the marker file."""
    args = {("os", "system"): (op_str(f"touch {marker}"),),
            ("posix", "system"): (op_str(f"touch {marker}"),),
            ("subprocess", "call"): (op_str(f"touch {marker}"),),
            ("builtins", "open"): (op_str(marker), op_str("w")),
            ("io", "open"): (op_str(marker), op_str("w")),
            ("pathlib", "Path"): (op_str(marker),)}
    code = f"open({marker!r}, 'w')"
    return st.sampled_from(FORBIDDEN).map(
        lambda g: op_call(op_global(*g), *args.get(g, (op_str(code),))))


def _dims():
    return st.lists(st.integers(-3, 2**41) | st.sampled_from([0, 1, 2, 3, 4]), max_size=4)


def _array():
    """numpy's array layout with random shape, dtype and data."""
    def build(shape, dtype, data, version):
        dt = op_call(op_global("numpy", "dtype"), op_str(dtype), pickle.NEWFALSE,
                     pickle.NEWTRUE) + op_tuple(op_int(3), op_str("<"), pickle.NONE,
                                                pickle.NONE, pickle.NONE, op_int(-1),
                                                op_int(-1), op_int(0)) + pickle.BUILD
        arr = op_call(op_global("numpy._core.multiarray", "_reconstruct"),
                      op_global("numpy", "ndarray"), op_tuple(op_int(0)), op_bytes(b"b"))
        state = op_tuple(*([op_int(version)] if version else []),
                         op_tuple(*(op_int(d) for d in shape)), dt, pickle.NEWFALSE,
                         op_bytes(data))
        return arr + state + pickle.BUILD
    return st.builds(build, _dims(), st.sampled_from(["f4", "f8", "i8", "b1", "O8", "U3", "V8",
                                                      "f4,f4", "S2"]),
                     st.binary(max_size=40), st.sampled_from([0, 1, 2]))


def _frombuffer():
    """numpy's protocol-5 array layout, _frombuffer(buffer, dtype, shape, order[, axis
    order]), with random buffer, dtype, shape, order and axis order."""
    def build(buf, dtype, shape, order, axes):
        dt = op_call(op_global("numpy", "dtype"), op_str(dtype), pickle.NEWFALSE,
                     pickle.NEWTRUE)
        extra = () if axes is None else (op_tuple(*(op_int(a) for a in axes)),)
        return op_call(op_global("numpy._core.numeric", "_frombuffer"),
                       pickle.BYTEARRAY8 + struct.pack("<Q", len(buf)) + buf, dt,
                       op_tuple(*(op_int(d) for d in shape)), op_str(order), *extra)
    return st.builds(build, st.binary(max_size=48), st.sampled_from(["f4", "f8", "i2", "O8"]),
                     _dims(), st.sampled_from(["C", "F", "K", "A"]),
                     st.none() | st.lists(st.integers(-1, 3), max_size=4))


def _tensor():
    """_rebuild_tensor_v2 on a stored record (whose claims may lie) with random view args."""
    def build(n, claim, offset, size, stride, extra):
        rec = storage_record(bytes(4 * n), n if claim is None else claim)
        storage = op_call(op_global("torch.storage", "_load_from_bytes"), op_bytes(rec))
        return op_call(op_global("torch._utils", "_rebuild_tensor_v2"), storage, op_int(offset),
                       op_tuple(*(op_int(d) for d in size)),
                       op_tuple(*(op_int(d) for d in stride)), *extra)
    return st.builds(build, st.integers(0, 8), st.none() | st.integers(-1, 2**41),
                     st.integers(-2, 2**40), _dims(), _dims(),
                     st.sampled_from([(), (pickle.NEWFALSE,),
                                      (pickle.NEWFALSE, op_call(op_global(
                                          "collections", "OrderedDict"), ))]))


def _misc_calls():
    return st.sampled_from([
        op_call(op_global("_codecs", "encode"), op_str("\xe9"), op_str("latin1")),
        op_call(op_global("_codecs", "encode"), op_str("x"), op_str("rot13")),
        op_call(op_global("builtins", "bytes"), op_int(2**40)),
        op_call(op_global("numpy", "ndarray"), op_tuple(op_int(2**40))),
        op_call(op_global("numpy", "dtype"), op_str("V1099511627776")),
        op_call(op_global("numpy._core.multiarray", "scalar"),
                op_call(op_global("numpy", "dtype"), op_str("f8")), op_bytes(b"\0" * 8)),
        op_call(op_global("torch_utils.persistence", "_reconstruct_persistent_obj"),
                pickle.EMPTY_DICT),
        op_call(op_global("dnnlib.util", "EasyDict")),
        op_global("dnnlib.tflib.network", "Network") + pickle.EMPTY_TUPLE + pickle.NEWOBJ
        + pickle.EMPTY_DICT + pickle.BUILD,
        b"\x80\x04\x8e" + (2**40).to_bytes(8, "little"),
        pickle.BYTEARRAY8 + (2**40).to_bytes(8, "little"),
        pickle.FRAME + (2**40).to_bytes(8, "little"),
        pickle.LONG4 + struct.pack("<i", 2**31 - 1),
    ])


def _stream(marker: str):
    chunk = st.one_of(_literal(), _literal(), _structural(), _structural(), _global(ALLOWED),
                      _global(FORBIDDEN), _forbidden_call(marker), _array(), _frombuffer(),
                      _tensor(),
                      _misc_calls())
    return st.tuples(st.sampled_from([0, 2, 3, 4, 5]), st.lists(chunk, max_size=25),
                     st.booleans()).map(
        lambda t: (pickle.PROTO + bytes([t[0]]) if t[0] else b"") + b"".join(t[1])
        + (pickle.STOP if t[2] else b""))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("unpickler")


def _marker(workdir):
    return str(workdir / "pwned")


def test_random_opcode_streams_load_or_raise_one_i2s_error(workdir):
    marker = _marker(workdir)
    path = workdir / "stream.pkl"

    @SETTINGS
    @given(_stream(marker))
    def check(data):
        path.write_bytes(data)
        try:
            load_pickle(path)
        except i2s.I2SError as e:
            assert "\n" not in str(e)
        assert not os.path.exists(marker)

    check()


def test_random_tensor_views_load_inside_their_storage_or_raise(workdir):
    path = workdir / "tensor.pkl"

    class View:
        def __init__(self, args):
            self.args = args

        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, self.args)

    values = st.integers(-3, 6) | st.integers(-2**62, 2**62) | st.sampled_from([None, 1.5,
                                                                                True, "1"])

    @SETTINGS
    @given(st.integers(0, 12), values, st.lists(values, max_size=3),
           st.lists(values, max_size=3))
    def check(n, offset, size, stride):
        base = torch.arange(float(n))
        typed = torch.storage.TypedStorage(wrap_storage=base.untyped_storage(),
                                           dtype=torch.float32, _internal=True)
        path.write_bytes(pickle.dumps(View((typed, offset, tuple(size), tuple(stride), False,
                                            OrderedDict())), protocol=3))
        try:
            t = load_pickle(path)
        except i2s.I2SError as e:
            assert "\n" not in str(e)
            return
        assert t.numel() <= max(n, 0)
        assert torch.equal(t, base.as_strided(tuple(size), tuple(stride), offset))

    check()
