"""ACL 1.0 for the broker and the NameServer: RocketMQ's plain_acl.yml, checked before every
request, reloaded when it changes.

    plain_acl.py   the file: accounts, permissions, global white addresses (PyYAML)
    addresses.py   the address patterns of whiteRemoteAddress and globalWhiteRemoteAddresses
    requests.py    the table: what each request code needs (resources, signature, admin)
    access.py      the check in RocketMQ's order, and the reload; the Dispatcher's filter
    settings.py    aclEnable / aclFile as a server finds them, and starting the check

The signature rule itself is a wire format: protocol/acl_signature.py.
"""

from .access import AccessControl, check
from .plain_acl import AclConfigError, AclRules, load_rules, parse_rules
from .settings import AclSettings, install_access_control, parse_acl_enable

__all__ = ["AccessControl", "AclConfigError", "AclRules", "AclSettings", "check",
           "install_access_control", "load_rules", "parse_acl_enable", "parse_rules"]
