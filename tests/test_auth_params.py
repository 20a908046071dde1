"""What ships for passwords: the suite hashes with argon2's cheapest parameters (tests/conftest.py),
so this checks the shipped ones, and that hashes made under either verify under the other."""

from __future__ import annotations

import argon2
from argon2 import PasswordHasher

from hub import auth


def test_passwords_ship_hashed_with_argon2id_at_rfc_9106_strength():
    shipped = auth.PASSWORD_PARAMETERS
    assert shipped.type is argon2.Type.ID
    assert (shipped.memory_cost, shipped.time_cost) >= (65536, 3)


def test_a_hash_keeps_its_parameters_so_either_hasher_verifies_it():
    shipped = PasswordHasher.from_parameters(auth.PASSWORD_PARAMETERS)
    cheap = PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
    strong = shipped.hash("correct horse battery staple")
    assert strong.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert cheap.verify(strong, "correct horse battery staple")
    assert shipped.verify(cheap.hash("correct horse battery staple"), "correct horse battery staple")
    assert shipped.check_needs_rehash(cheap.hash("x" * 12))  # a weak hash is upgraded at the next sign-in
