import pytest

from feereg import credit_code

# Codes of real, publicly listed enterprises: their check digits are known good.
REAL_CODES = ["91350100M000100Y43", "914403001922038216", "91110000802100433B"]


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_codes_validate(code):
    assert credit_code.validate(code) == code


def test_lowercase_fullwidth_and_spaces_are_normalised():
    assert credit_code.validate(" ９１３５０１００m０００１００y４３ ") == "91350100M000100Y43"


@pytest.mark.parametrize("code", REAL_CODES)
def test_every_wrong_check_digit_is_refused(code):
    for ch in credit_code.ALPHABET:
        if ch == code[-1]:
            continue
        with pytest.raises(credit_code.InvalidCreditCode, match="check digit"):
            credit_code.validate(code[:17] + ch)


@pytest.mark.parametrize("code,reason", [
    ("9135010M000100Y43", "18 characters"),
    ("91350100M000100Y4I", "not allowed"),   # I is not in the alphabet
    ("91350100M0001O0Y43", "not allowed"),   # nor O
    ("91ABCDEFM000100Y43", "administrative division"),
])
def test_malformed_codes_say_why(code, reason):
    with pytest.raises(credit_code.InvalidCreditCode, match=reason):
        credit_code.validate(code)


def test_make_produces_valid_codes():
    body = "91440300MA5D12345"
    assert credit_code.is_valid(credit_code.make(body))
    assert credit_code.check_digit(body) == credit_code.make(body)[-1]
