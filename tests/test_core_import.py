"""The extension loads and maps core errors to per-layer Python exceptions."""

from smmc_gateway import _core


def test_exception_hierarchy() -> None:
    assert issubclass(_core.AuthenticationError, _core.SecurityError)
    assert issubclass(_core.SecurityError, _core.DlmsError)
    assert issubclass(_core.DlmsError, ValueError)
