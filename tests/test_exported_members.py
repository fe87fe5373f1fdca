"""The public names of the package are exactly those in `__all__`."""

import assistant


def test_all_exports() -> None:
    public = {name for name in dir(assistant) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(assistant, name)).__name__ == "module"}
    assert public - modules == set(assistant.__all__)
    assert assistant.__all__ == sorted(assistant.__all__)
    for name in assistant.__all__:
        assert getattr(assistant, name).__module__.startswith("assistant"), name
