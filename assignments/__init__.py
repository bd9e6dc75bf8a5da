"""Course-side code for each assignment (data loading, fixed models); students may import it."""


def parse_seeds(text: str) -> list[int]:
    """Seeds given on a calibration script's command line: a range ``a-b`` or a list ``a,b,c``."""
    if "-" in text:
        first, last = map(int, text.split("-"))
        return list(range(first, last + 1))
    return [int(seed) for seed in text.split(",")]
