# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An ansible-vault encrypted file on the controller: read it, and write it atomically (0600).

The action plugins' stores (secret_store's, the overlay's preshared keys) keep their documents in one; the
option names the file in every error, and nothing is applied after one.
"""

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.parsing.vault import AnsibleVaultError, is_encrypted, match_encrypt_secret


def require_secret(vault, option):
    if not vault.secrets:
        raise AnsibleActionFail(
            f"{option}: an encrypted store needs a vault secret (--vault-id or --vault-password-file)."
            " Nothing was applied"
        )


def read(vault, path, option):
    """The decrypted text of path, or None when there is no file yet."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    if not is_encrypted(data):
        raise AnsibleActionFail(f"{option}: {path} is not ansible-vault encrypted. Nothing was applied")
    try:
        return to_text(vault.decrypt(data))
    except AnsibleVaultError as exc:
        raise AnsibleActionFail(f"{option}: {path}: {exc}. Nothing was applied") from None


def write(vault, path, text, vault_id, vault_id_option):
    """Encrypted, atomically (a temporary file in the same directory, 0600, then a rename)."""
    try:
        found_id, secret = match_encrypt_secret(vault.secrets, encrypt_vault_id=vault_id)
    except AnsibleVaultError as exc:
        raise AnsibleActionFail(f"{vault_id_option}: {exc}") from None
    data = vault.encrypt(to_bytes(text), secret, vault_id=found_id)
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".bulwark-store.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
