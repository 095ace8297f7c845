import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.moduli import filter_moduli

MODULI = """# Time Type Tests Tries Size Generator Modulus
20220714110357 2 6 100 2047 2 E98F
20220714110358 2 6 100 3071 5 E98F
20220714110359 2 6 100 4095 2 E98F
20220714110360 2 6 100 3070 2 E98F
"""


def test_keeps_moduli_of_at_least_n_bits():
    text, removed, kept = filter_moduli(MODULI, 3072)
    assert (removed, kept) == (2, 2)
    assert text.splitlines() == [
        "# Time Type Tests Tries Size Generator Modulus",
        "20220714110358 2 6 100 3071 5 E98F",
        "20220714110359 2 6 100 4095 2 E98F",
    ]


def test_already_filtered_file_is_unchanged():
    once, _unused, _unused = filter_moduli(MODULI, 3072)
    twice, removed, _unused = filter_moduli(once, 3072)
    assert (twice, removed) == (once, 0)


def test_zero_keeps_everything():
    assert filter_moduli(MODULI, 0) == (MODULI, 0, 4)


def test_negative_is_refused():
    with pytest.raises(ValueError, match="moduli_min_bits"):
        filter_moduli(MODULI, -1)
