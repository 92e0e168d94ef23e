"""Scheduling policies: IsoSched and the baselines it is compared with (one module each)."""

from __future__ import annotations

from collections.abc import Sequence

from isosched.errors import IsoschedError
from isosched.sim.engine import Policy
from isosched.sim.policies.cdmsa import CdMsa
from isosched.sim.policies.fcfs import Fcfs
from isosched.sim.policies.hasp import Hasp
from isosched.sim.policies.isosched import ABLATIONS, IsoSched
from isosched.sim.policies.moca import Moca
from isosched.sim.policies.planaria import Planaria
from isosched.sim.policies.prema import Prema

__all__ = [
    "ABLATION_NAMES",
    "POLICY_NAMES",
    "check_policies",
    "make_policy",
    "needs_no_lcs_plans",
    "parse_policies",
]

_POLICIES: dict[str, type] = {
    "isosched": IsoSched,
    "hasp": Hasp,
    "prema": Prema,
    "planaria": Planaria,
    "cdmsa": CdMsa,
    "moca": Moca,
    "fcfs": Fcfs,
}
POLICY_NAMES: tuple[str, ...] = tuple(_POLICIES)

#: IsoSched with one mechanism switched off (options of the one policy, not copies of it);
#: named like policies, not part of ``all``.
ABLATION_NAMES: tuple[str, ...] = tuple(ABLATIONS)


def check_policies(policies: Sequence[str]) -> None:
    """Refuse anything but a non-empty list of known policy names, before any work.

    Raises
    ------
    IsoschedError
        On a string (``"hasp"`` would be read letter by letter), an empty list or an unknown
        name.
    """
    if isinstance(policies, str):
        raise IsoschedError(
            f"policies is a list of names, not the string {policies!r}: "
            f"parse_policies({policies!r}) makes one"
        )
    if not policies:
        raise IsoschedError("no policy given")
    for i, name in enumerate(policies):
        if name not in _POLICIES and name not in ABLATIONS:
            make_policy(name)  # raises, naming the choices
        if name in policies[:i]:
            raise IsoschedError(f"policy {name!r} is named twice")


def make_policy(name: str) -> Policy:
    """A fresh policy object by name."""
    if name == "all":
        raise IsoschedError("'all' names every policy: parse_policies('all') gives the list")
    if name in ABLATIONS:
        ablated: Policy = IsoSched(**ABLATIONS[name])
        return ablated
    try:
        cls = _POLICIES[name]
    except KeyError:
        raise IsoschedError(
            f"unknown policy {name!r}; choose from {', '.join(POLICY_NAMES)}, 'all', or an "
            f"ablation ({', '.join(ABLATION_NAMES)})"
        ) from None
    policy: Policy = cls()
    return policy


def needs_no_lcs_plans(name: str) -> bool:
    """Whether policy ``name`` places jobs on the "no LCS" plans (warm them before replays)."""
    return ABLATIONS.get(name, {}).get("lcs") is False


def parse_policies(text: str) -> list[str]:
    """``a,b,c`` or ``all`` into policy names (validated: known, each named once).

    Raises
    ------
    IsoschedError
        On an unknown or repeated name, an empty one, or ``all`` beside other names.
    """
    if text.strip() == "all":
        return list(POLICY_NAMES)
    names = [p.strip() for p in text.split(",")]
    if "all" in names:
        raise IsoschedError(f"'all' stands alone (it names every policy), not in {text!r}")
    if "" in names:
        raise IsoschedError(f"an empty policy name in {text!r}")
    check_policies(names)
    return names
