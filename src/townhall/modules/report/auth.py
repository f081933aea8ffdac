"""Roles and resource-level checks of the Reports app (the same checks guard HTTP and WS)."""

from __future__ import annotations

import uuid

from townhall.core.auth.rbac import register_role
from townhall.core.deps import Principal
from townhall.core.errors import Forbidden

# Permissions
CREATE = "report.create"  # file, comment publicly, follow (every signed-up account)
STAFF_READ = "report.staff_read"  # see internal comments, unmasked text, analysis, audit trail
HANDLE = "report.handle"  # change status, comment internally, assign to oneself, merge duplicates
ASSIGN = "report.assign"  # assign others, reroute, override AI
STATS = "report.stats"  # statistics and audit log of the scope
STAFF_GRANT = "report.staff_grant"  # grant/revoke officer in the scope
MANAGE = "report.manage"  # departments, categories, routing rules (admin)

CITIZEN_PERMISSIONS = [CREATE]
OFFICER_PERMISSIONS = [CREATE, STAFF_READ, HANDLE]
DEPT_ADMIN_PERMISSIONS = [*OFFICER_PERMISSIONS, ASSIGN, STATS, STAFF_GRANT]

register_role("citizen", "Files and follows reports", CITIZEN_PERMISSIONS)
register_role(
    "officer", "Handles the reports of a department (scope department:<id>)", OFFICER_PERMISSIONS
)
register_role(
    "department_admin",
    "Runs a department: assigns, reroutes, statistics (scope department:<id>)",
    DEPT_ADMIN_PERMISSIONS,
)

STAFF_ROLES = ("officer", "department_admin")


def scope(department_id: uuid.UUID | None) -> str | None:
    """The RBAC scope of a department; None (triage) matches only unscoped grants."""
    return f"department:{department_id}" if department_id else None


def can(
    principal: Principal | None, permission: str, department_id: uuid.UUID | None = None
) -> bool:
    """May the principal do this on a report of that department?"""
    if principal is None:
        return False
    if permission in CITIZEN_PERMISSIONS and principal.grants.has_role("user"):
        return True  # every signed-up account is a citizen
    return principal.grants.allows(permission, scope(department_id))


def require(principal: Principal, permission: str, department_id: uuid.UUID | None = None) -> None:
    if not can(principal, permission, department_id):
        raise Forbidden(f"missing permission {permission!r} for this report")


def departments_with(principal: Principal | None, permission: str) -> set[uuid.UUID] | None:
    """Departments where the principal holds the permission; None means all of them."""
    if principal is None:
        return set()
    scopes = principal.grants.scopes_of(permission)
    if "" in scopes:
        return None
    out = set()
    for s in scopes:
        if s.startswith("department:"):
            try:
                out.add(uuid.UUID(s.split(":", 1)[1]))
            except ValueError:
                continue
    return out


def is_staff(principal: Principal | None) -> bool:
    found = departments_with(principal, STAFF_READ)
    return found is None or bool(found)
