"""Deterministic bridges into the anonymous world: authenticated links only.

First-party events carry anonymous identifiers next to a first-party one: a web login
has ``cookie_id`` + ``account_id``, a web-shop order ``cookie_id`` + ``email``; the
anonymous identifier records themselves (source ``cookie`` / ``maid``) carry their own id
in ``cookie_id`` / ``maid``. Linking on exactly these keys follows the authenticated
path cookie -> login/order -> account/e-mail -> customer and nothing else: no phones, no
name/address combinations, no IP or behaviour. That is the CDP's reach into the DMP
world - high precision, low reach (only identifiers that ever logged in or ordered).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from matchers.cascade import Cascade

__all__ = ["BRIDGE_RULES", "LoginBridge"]

#: The authenticated keys: first-party account ids, e-mails given at checkout, and the
#: anonymous ids those events carry.
BRIDGE_RULES: tuple[tuple[str, ...], ...] = (
    ("account_id",),
    ("customer_no",),
    ("email",),
    ("cookie_id",),
    ("maid",),
)


class LoginBridge(Cascade):
    """The cascade restricted to authenticated links (see module docstring).

    Same parameters as :class:`~matchers.cascade.Cascade`; ``rules=None`` means
    :data:`BRIDGE_RULES`, and junk e-mails plus e-mails shared by more than 50 records
    (a shop's placeholder address) are ignored by default. The cap is scoped to the
    shareable keys (``group_size_keys``, default
    :data:`~matchers.cascade.GROUP_SIZE_KEYS`): account ids and the cookies that logged
    into them are never capped (hundreds of logins on one account are normal); pass
    ``group_size_keys=["email", "cookie_id"]`` to also cap a kiosk's cookie.
    """

    name: ClassVar[str] = "login-bridge"
    version: ClassVar[str] = "2"

    def __init__(
        self,
        *,
        rules: Sequence[Sequence[str]] | None = None,
        email_canonical: bool = False,
        phone_region: str = "US",
        phone_method: str = "sql",
        max_group_size: int | None = 50,
        group_size_keys: Sequence[str] | None = None,
        exclude_junk: bool = True,
        exclude_values: Mapping[str, Sequence[str]] | None = None,
        unique_keys: Sequence[str] | None = None,
        time_windows: Mapping[str, float] | None = None,
        max_cluster_size: int | None = None,
    ) -> None:
        super().__init__(
            rules=rules,
            email_canonical=email_canonical,
            phone_region=phone_region,
            phone_method=phone_method,
            max_group_size=max_group_size,
            group_size_keys=group_size_keys,
            exclude_junk=exclude_junk,
            exclude_values=exclude_values,
            unique_keys=unique_keys,
            time_windows=time_windows,
            max_cluster_size=max_cluster_size,
        )

    def _rules(self) -> list[list[str]]:
        if self.rules is None:
            return [list(r) for r in BRIDGE_RULES]
        return super()._rules()
