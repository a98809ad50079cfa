"""The settings checks name the key, the expected form and the value given."""

import pytest

from clims_core.checks import require_one_of, require_open_unit


def test_require_one_of_names_key_choices_and_value():
    require_one_of("seg.deeplab.loss", "ce", ("ce", "balanced"))
    with pytest.raises(ValueError, match=r"^seg\.deeplab\.loss: expected one of \('ce', 'balanced'\), got 'dice'$"):
        require_one_of("seg.deeplab.loss", "dice", ("ce", "balanced"))
    with pytest.raises(ValueError, match=r"^backbone depth: expected one of \[18, 50\], got 19$"):
        require_one_of("backbone depth", 19, [18, 50])


@pytest.mark.parametrize("value", [0.0, 1.0, -0.1, 1.5])
def test_require_open_unit_rejects_the_ends_and_outside(value):
    with pytest.raises(ValueError, match=rf"^refine\.crf\.bg_thres: expected a number in \(0, 1\), got {value}$"):
        require_open_unit("refine.crf.bg_thres", value)


def test_require_open_unit_accepts_inside():
    require_open_unit("refine.crf.bg_thres", 0.3)
