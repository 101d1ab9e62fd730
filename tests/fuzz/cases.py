"""Hypothesis strategies for fuzz cases: a seed object and one to three payload mutations."""

from __future__ import annotations

from hypothesis import strategies as st
from tests.fuzz import mutate
from tests.fuzz.runner import Case
from tests.fuzz.seeds import Seed

_LAYER = st.sampled_from(["stored", "plain"])
_POS = st.integers(0, 1 << 32)
_LENGTH = st.integers(1, 64) | st.integers(65, 4096)
_VALUE = st.sampled_from(mutate.INTERESTING) | st.integers(-(1 << 63), (1 << 63) - 1) | st.integers(-70, 70)


def _generic() -> st.SearchStrategy[mutate.Mutation]:
    return st.one_of(
        st.tuples(st.just("flip"), _LAYER, _POS, st.integers(0, 7)),
        st.tuples(st.just("run"), _LAYER, _POS, _LENGTH, st.sampled_from([0, 255, 0x7F, 0x80])),
        st.tuples(st.just("truncate"), _LAYER, _POS),
        st.tuples(st.just("delete"), _LAYER, _POS, _LENGTH),
        st.tuples(st.just("insert"), _LAYER, _POS, st.binary(min_size=1, max_size=16).map(bytes.hex)),
        st.tuples(st.just("dup"), _LAYER, _POS, _LENGTH),
        st.tuples(st.just("int"), _LAYER, _POS, st.sampled_from([4, 8]), _VALUE),
    )


_SMALL = st.integers(0, 64)
_STRUCTURED: dict[str, st.SearchStrategy[mutate.Mutation]] = {
    "arrow": st.one_of(
        st.tuples(st.just("arrow_meta"), _SMALL, _POS, st.sampled_from(["set", "add", "double"]), _VALUE),
        st.tuples(st.just("arrow_buffer"), _SMALL, _POS, st.sampled_from([4, 8]), _VALUE),
        st.tuples(st.just("arrow_offsets"), _SMALL, _POS, _VALUE),
    ),
    "numpy": st.one_of(
        st.tuples(st.just("npy_header"), st.sampled_from(sorted(mutate.NPY_FIELDS)), _SMALL),
        st.tuples(st.just("npy_text"), _SMALL),
        st.tuples(st.just("npy_frame"), _SMALL, st.sampled_from(["raw", "length", "bomb"]), _VALUE),
    ),
    "json": st.tuples(st.just("json_deep"), st.sampled_from([50, 900, 5000, 100_000]), st.integers(0, 2)),
}


_BOMB = st.tuples(st.just("bomb"), st.sampled_from([8, 40, 160]))
_HEADER = st.tuples(st.just("header"), st.sampled_from(sorted(mutate.HEADER_FIELDS)), _SMALL)


def mutation(codec: str) -> st.SearchStrategy[mutate.Mutation]:
    """Structure-aware mutations for the codec's format, as often as byte-level ones; now and
    then a decompression bomb or a rewritten header field."""
    structured = _STRUCTURED.get(codec)
    found = _generic() if structured is None else st.one_of(structured, _generic())
    return st.one_of(*[found] * 8, _BOMB, _HEADER)


def cases(seeds: list[Seed]) -> st.SearchStrategy[Case]:
    def for_seed(seed: Seed) -> st.SearchStrategy[Case]:
        mutations = st.lists(mutation(seed.codec), min_size=1, max_size=3)
        return mutations.map(lambda found: Case(seed.name, tuple(found)))

    return st.sampled_from(seeds).flatmap(for_seed)
