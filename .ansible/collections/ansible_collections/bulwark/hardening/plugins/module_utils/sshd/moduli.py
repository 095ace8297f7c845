"""Filter /etc/ssh/moduli: keep only the Diffie-Hellman groups of at least N bits.

The 5th field of a moduli line is the size in bits minus one (2047 for a 2048-bit prime), so keeping
moduli of at least N bits means keeping lines whose size field is >= N - 1 (`awk '$5 >= 3071'` for 3072).
Comments and blank lines are kept.
"""


def filter_moduli(text, min_bits):
    """(new text, number of moduli removed, number kept)."""
    if not isinstance(min_bits, int) or min_bits < 0:
        raise ValueError("moduli_min_bits must be a non-negative integer")
    out, removed, kept = [], 0, 0
    for line in text.splitlines(keepends=True):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            out.append(line)
            continue
        try:
            size = int(fields[4])
        except (IndexError, ValueError):
            out.append(line)
            continue
        if size >= min_bits - 1:
            out.append(line)
            kept += 1
        else:
            removed += 1
    return "".join(out), removed, kept
