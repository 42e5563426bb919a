"""Passwords: how they are hashed, and which ones are refused.

Hashing is Argon2id with the RFC 9106 low-memory profile (3 passes over 64 MiB, 4 lanes):
about 50 ms on one core, and 64 MiB per login in progress. A hash made with other
parameters (an older profile, or the test suites' cheap one) is replaced at the next
successful login (services/accounts.authenticate), so raising the cost needs no reset.

The policy follows NIST SP 800-63B in spirit: a minimum length, and a refusal of the
passwords an attacker tries first — the commonest ones (with digits or symbols around
them), runs of keys, one or two characters repeated, the person's own e-mail name, the
site's name. Each refusal says what to change, in the reader's language.
"""
from __future__ import annotations

import re

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l

STRONG = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)
#: Only for test suites (config PASSWORD_HASH_FAST): same algorithm, minimal cost.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

#: Fewer different characters than this is a repetition, not a password.
MIN_DISTINCT = 5
#: Names of this site a password must not be built on.
SITE_WORDS = ("feereg", "portfee", "feeregistry", "港口收费")
#: Runs of keys and letters: a password that is part of one is refused.
RUNS = ("abcdefghijklmnopqrstuvwxyz", "01234567890", "09876543210", "qwertyuiopasdfghjklzxcvbnm",
        "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p", "zaq12wsxcde34rfvbgt56yhnmju78ik,.lo90p;/")
#: The commonest passwords in published leak studies (English and Chinese sites), and the
#: words they are built on; compared whole and with the digits and symbols around a word
#: taken off ("Password123!" is "password").
COMMON = frozenset("""
123456 123456789 12345678 1234567890 12345 1234567 123123 111111 000000 666666 888888 654321
123321 112233 121212 5201314 1314520 147258369 159753 741852963 11223344 a123456 a12345678
aa123456 abc123 abc123456 abcd1234 123456a 123456aa 123456abc 1q2w3e 1q2w3e4r 1q2w3e4r5t
1qaz2wsx qq123456 qwe123 qwe123456 asd123 asd123456 zxc123 zxc123456 woaini woaini1314
woaini520 iloveyou password passw0rd p@ssw0rd p@ssword password1 admin admin123 administrator
root toor qwerty qwertyuiop asdfgh asdfghjkl zxcvbnm letmein welcome monkey dragon master
football baseball sunshine princess shadow superman batman trustno1 starwars whatever freedom
hello hellokitty login changeme secret default test tester guest user abc abcd a aa aaa qq qwe
asd zxc xiaoming zhangwei wangwei liwei nicai wodemima mima mimamima baobei laopo laogong
shanghai beijing shenzhen china zhongguo aini huawei tencent alibaba taobao qqqq
""".split())


def hasher() -> PasswordHasher:
    return FAST if current_app.config.get("PASSWORD_HASH_FAST") else STRONG


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify(password_hash: str, password: str) -> bool:
    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return hasher().check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def _squash(value: str) -> str:
    """Lower case, without the spaces and punctuation that dress up a weak word."""
    return re.sub(r"[\s._\-@+]", "", value.lower())


def _core(value: str) -> str:
    """The word inside digits and symbols: "!Password2024" -> "password"."""
    return re.sub(r"^[^a-z\u4e00-\u9fff]+|[^a-z\u4e00-\u9fff]+$", "", value.lower())


def problems(password: str, email: str = "", name: str = "") -> list:
    """What is wrong with a new password, as messages to show; empty when it is acceptable."""
    min_length = current_app.config.get("PASSWORD_MIN_LENGTH", 10)
    found = []
    if len(password) < min_length:
        found.append(_l("Use at least %(n)s characters.", n=min_length))
    if password.isdigit() or password.isalpha():
        found.append(_l("Mix letters with digits or symbols."))
    lowered, squashed = password.lower(), _squash(password)
    if len(set(lowered)) < MIN_DISTINCT:
        found.append(_l("Use more different characters: this one repeats a few over and over."))
    if lowered in COMMON or _core(password) in COMMON or any(squashed in run for run in RUNS if len(squashed) >= 4):
        found.append(_l("This is one of the passwords tried first in any attack (a common password or a run "
                        "of keys); choose another."))
    local = email.split("@")[0].lower() if email else ""
    if len(local) >= 3 and (local in lowered or _squash(local) in squashed):
        found.append(_l("Do not use your e-mail name in the password."))
    person = _squash(name or "")
    # A Chinese name is two or three characters; a Latin one shorter than three is too common a fragment.
    if (len(person) >= 3 or (len(person) == 2 and re.search(r"[\u4e00-\u9fff]", person))) and person in squashed:
        found.append(_l("Do not use your own name in the password."))
    if any(word in squashed for word in SITE_WORDS):
        found.append(_l("Do not use the name of this site in the password."))
    return found
