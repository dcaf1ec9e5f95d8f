"""Zero-trust sandbox for the engine's MCP requests (protocol §5).

``Sandbox(roots, approver).handle(request)`` validates, scope-checks with the
kernel (``openat2`` beneath root fds), classifies command risk, asks the user
when needed, runs commands under bubblewrap and records everything in a
hash-chained audit log. See ``docs/sandbox.md`` for the threat model.
"""

from voco.local.sandbox.audit import AuditLog, VerifyResult, audit_verify_main, verify
from voco.local.sandbox.core import Approver, Progress, Sandbox
from voco.local.sandbox.display import install_log_escaping
from voco.local.sandbox.execute import sandbox_status
from voco.local.sandbox.risk import Assessment, classify_argv, classify_command

# Log lines that quote engine text (action names, paths) are escaped too.
install_log_escaping()

__all__ = [
    "Approver",
    "Assessment",
    "AuditLog",
    "Progress",
    "Sandbox",
    "VerifyResult",
    "audit_verify_main",
    "classify_argv",
    "classify_command",
    "sandbox_status",
    "verify",
]
