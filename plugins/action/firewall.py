# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewall: the module, and with reconnect_and_confirm its confirmation over a new connection."""

from ansible_collections.bulwark.hardening.plugins.plugin_utils.commit_confirm import CommitConfirmAction


class ActionModule(CommitConfirmAction):
    MODULE = "bulwark.hardening.firewall"
    CONCERN = "firewall"
