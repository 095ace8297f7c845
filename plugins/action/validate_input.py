# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""validate_input: every role's input checked on the controller before any role changes a host.

For each role it reads the role's argument spec, defaults and vars from the collection,
templates the role's variables with this host's variables, validates them against the spec (as the role's
own argument validation will), and then runs the pure validation of each module the role calls, on the
very arguments the role's task passes (read from the role's task file, so there is no second copy of
the mapping from variables to module options). When all of that passes and the sshd role is among them,
one module call on the host checks the sshd candidate with `sshd -t` (validate_only): what only the host
can judge, judged before bootstrap changes anything.
"""

import os
import re

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.validation import check_type_int
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.bulwark.hardening.plugins.module_utils import specs as shared_specs
from ansible_collections.bulwark.hardening.plugins.module_utils import text as text_checks
from ansible_collections.bulwark.hardening.plugins.module_utils.accounts import plan as accounts
from ansible_collections.bulwark.hardening.plugins.module_utils.baseline import files as baseline_files
from ansible_collections.bulwark.hardening.plugins.module_utils.baseline import packages as baseline_packages
from ansible_collections.bulwark.hardening.plugins.module_utils.baseline import services as baseline_services
from ansible_collections.bulwark.hardening.plugins.module_utils.baseline import settings as baseline_settings
from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban import jail
from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import model as firewall
from ansible_collections.bulwark.hardening.plugins.module_utils.host import commit_confirm
from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import mesh
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import policy as secrets
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import render as sshd
from ansible_collections.bulwark.hardening.plugins.module_utils.sysctl import baseline

try:  # ansible-core 2.19+ templates only strings marked as trusted
    from ansible.template import trust_as_template
except ImportError:  # pragma: no cover - ansible-core 2.17 and 2.18

    def trust_as_template(value):
        return value


COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = ("bootstrap", "sshd", "firewall", "fail2ban", "secrets", "overlay")
SSHD = "bulwark.hardening.sshd_config"
OVERLAY = "bulwark.hardening.overlay"
OVERLAY_SETTINGS = (
    "cidr", "port", "interface", "hub", "mtu", "keepalive",
    "container_cidr", "container_prefix", "container_network",
)  # fmt: skip
# Variables whose value is a text of several lines; everywhere else a line break could start a new
# line of the file it is rendered into (a sudoers rule, a login.defs setting, a unit option).
MULTILINE = frozenset({"bootstrap_banner_text"})
# Variables rendered as a path into a configuration file: a plain absolute path, or empty.
PATHS = frozenset(
    {
        "bootstrap_sudo_logfile",
        "bootstrap_admins_shell",
        "bootstrap_log_forwarding_ca_file",
        "sshd_banner_file",
    }
)


def _sysctl(args):
    baseline.validate_path(args.get("path", "/etc/sysctl.d/90-bulwark.conf"))
    baseline.validate(args.get("settings"))
    baseline.validate_optional(args.get("optional_keys", []))


def _sshd(args):
    sshd.render(args.get("options"), args.get("match"))
    commit_confirm.check_timeout(args.get("rollback_timeout", shared_specs.ROLLBACK_TIMEOUT))


def _baseline_files(args):
    baseline_files.validate(args.get("files"))


def _baseline_packages(args):
    baseline_packages.validate(args.get("present", []), args.get("absent", []), args.get("upgrade", "none"))
    baseline_packages.validate_times(
        args.get("cache_valid_time", baseline_packages.CACHE_VALID_TIME),
        args.get("lock_timeout", baseline_packages.LOCK_TIMEOUT),
    )


def _baseline_services(args):
    baseline_services.validate(args.get("enabled", []), args.get("disabled", []))


def _firewall(args):
    commit_confirm.check_timeout(args.get("rollback_timeout", shared_specs.ROLLBACK_TIMEOUT))
    options = {key: args[key] for key in firewall.POLICY_KEYS if key in args}
    options["ssh_rate_limit"] = args.get("ssh_rate_limit") or None
    # Whether Docker runs is the host's to say; "auto" validates the Docker options as if it did.
    options["docker"] = str(args.get("docker", "auto")).lower() in ("auto", "always", "true")
    firewall.normalise(options)


def _fail2ban(args):
    jail.validate(
        args.get("jails"),
        args.get("filters"),
        firewall_backend=args.get("firewall_backend", "nftables"),
        admin_networks=args.get("admin_networks", []),
        ignoreip=args.get("ignoreip", []),
        secrets=args.get("secrets"),
    )


def _secrets(args):
    secrets.normalise(
        args.get("secrets"),
        args.get("consumers"),
        args.get("backend", "files"),
        args.get("rotate"),
        args.get("rollback"),
        directory=args.get("directory", secrets.DEFAULT_DIRECTORY),
        keep_overlap=args.get("keep_overlap"),
    )
    secrets.compromise_date(args.get("compromised_since"))


def _overlay(args):
    # Every state: the interface and the key directory name files on the host (absent removes one).
    mesh.host_options(args)
    if args.get("state") != "present":  # a host outside the group only has its interface removed
        return
    settings = {key: args[key] for key in OVERLAY_SETTINGS if key in args}
    for key in (
        "port",
        "mtu",
        "keepalive",
        "container_prefix",
    ):  # as the module's argument spec converts them
        try:
            settings[key] = check_type_int(settings[key])
        except (KeyError, TypeError):
            pass  # absent, or not a number: the mesh's own check names it
    mesh.build(settings, args.get("members"), require_keys=False)


# role -> (tasks file, module, the module options its pure validation reads, that validation)
CHECKS = {
    "bootstrap": [
        (
            "admins.yml",
            "bulwark.hardening.admin_accounts",
            ("admins", "group", "shell", "sudoers_file", "sudo_logfile", "connecting_key"),
            accounts.validate_options,
        ),
        ("kernel.yml", "bulwark.hardening.sysctl_baseline", ("settings", "optional_keys", "path"), _sysctl),
        ("docker.yml", "bulwark.hardening.baseline_files", ("files",), _baseline_files),
        (
            "packages.yml",
            "bulwark.hardening.baseline_packages",
            ("present", "absent", "upgrade", "cache_valid_time", "lock_timeout"),
            _baseline_packages,
        ),
        ("files.yml", "bulwark.hardening.baseline_files", ("files",), _baseline_files),
        ("services.yml", "bulwark.hardening.baseline_services", ("enabled", "disabled"), _baseline_services),
    ],
    "sshd": [
        (
            "main.yml",
            "bulwark.hardening.sshd_config",
            ("options", "match", "rollback_timeout"),
            _sshd,
        )
    ],
    "firewall": [
        ("main.yml", "bulwark.hardening.firewall", (*firewall.POLICY_KEYS, "rollback_timeout"), _firewall)
    ],
    "fail2ban": [
        (
            "main.yml",
            "bulwark.hardening.fail2ban_jail",
            ("jails", "filters", "firewall_backend", "admin_networks", "ignoreip", "secrets"),
            _fail2ban,
        )
    ],
    "secrets": [
        (
            "main.yml",
            "bulwark.hardening.secret_store",
            (
                "secrets",
                "consumers",
                "backend",
                "rotate",
                "rollback",
                "keep_overlap",
                "compromised_since",
                "directory",
            ),
            _secrets,
        )
    ],
    "overlay": [
        ("mesh.yml", OVERLAY, ("state", "name", "members", "key_dir", *OVERLAY_SETTINGS), _overlay),
    ],
}
# role -> the pure check of the variables its templates render (they reach no module as options).
ROLE_VARIABLE_CHECKS = {"bootstrap": baseline_settings.validate}
# The pure validators' own error types: anything else is a bug, not bad input.
INPUT_ERRORS = (
    accounts.AdminSpecError,
    baseline_files.BaselineSpecError,
    baseline_packages.PackageSpecError,
    baseline_services.ServiceSpecError,
    baseline_settings.SettingsError,
    commit_confirm.TimeoutRefused,
    baseline.SysctlSpecError,
    firewall.PolicyError,
    jail.JailError,
    mesh.MeshError,
    secrets.SecretSpecError,
    sshd.RenderError,
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset({"roles"})

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        roles = self._task.args.get("roles", list(ROLES))
        if not isinstance(roles, list) or not all(
            isinstance(r, str) and r in ("common", *ROLES) for r in roles
        ):
            raise AnsibleError(f"roles: a list of {', '.join(('common', *ROLES))}, not {roles!r}")
        errors, checked, self._accepted = [], [], {}
        for role in ["common"] + [r for r in roles if r != "common"]:
            role_errors, role_checked = self._role(role, task_vars)
            errors += role_errors
            checked += role_checked
        if not errors and SSHD in self._accepted:
            errors += self._sshd_on_host(task_vars)
        if not errors and self._accepted.get(OVERLAY, {}).get("state") == "present":
            errors += self._overlay_keys_on_host(task_vars)
        result.update(changed=False, checked=checked)
        if errors:
            result.update(
                failed=True,
                errors=errors,
                msg="Bad input, refused before any change (nothing was applied):\n- " + "\n- ".join(errors),
            )
        else:
            result["msg"] = f"Input of {', '.join(roles)} is valid"
        return result

    # --- reading the role ----------------------------------------------------------------------------

    def _load(self, *parts):
        path = os.path.join(COLLECTION, "roles", *parts)
        if not os.path.exists(path):
            return None
        try:
            return self._loader.load_from_file(path, trusted_as_template=True)
        except TypeError:  # pragma: no cover - before 2.19 every string is a template
            return self._loader.load_from_file(path)

    def _role_data(self, role):
        specs = (self._load(role, "meta", "argument_specs.yml") or {}).get("argument_specs", {})
        spec = (specs.get("main") or {}).get("options") or {}
        defaults = dict(self._load("common", "defaults", "main.yml") or {})
        defaults.update(self._load(role, "defaults", "main.yml") or {})
        role_vars = self._load(role, "vars", "main.yml") or {}
        return spec, defaults, role_vars

    # --- checking it ---------------------------------------------------------------------------------

    def _role(self, role, task_vars):
        spec, defaults, role_vars = self._role_data(role)
        # Where an option's value comes from: the role's variables and the shared ones of roles/common.
        known = {**self._role_data("common")[0], **spec}
        # Role defaults are the weakest; the host's own variables win over them; the role's vars/ win over
        # play and inventory variables, as when the role runs.
        variables = {**defaults, **task_vars, **role_vars}
        # Lookups in the role's variables (lookup('template', ...)) find the role's templates and files.
        variables["ansible_search_path"] = [os.path.join(COLLECTION, "roles", role)]
        templar = self._templar.copy_with_new_env(available_variables=variables)
        errors, values = [], {}
        for name in spec:
            if name not in variables:
                continue
            try:
                values[name] = templar.template(variables[name])
            except AnsibleError as exc:
                errors.append(f"{role}: {name} cannot be evaluated: {_first_line(exc)}")
        outcome = ArgumentSpecValidator(spec).validate(values, validate_role_argument_spec=True)
        errors += [f"{role}: {message}" for message in outcome.error_messages]
        for name, value in values.items():
            problem = _text_problem(name, value)
            if problem:
                errors.append(f"{role}: {name}: {problem}")
        if not errors and role in ROLE_VARIABLE_CHECKS:
            # Variables the role's templates write into other programs' files (no module sees them).
            try:
                ROLE_VARIABLE_CHECKS[role](values)
            except INPUT_ERRORS as exc:
                errors.append(f"{role}: {exc}")
        if errors:
            return errors, []  # the modules' checks would only repeat these
        checked = []
        for tasks_file, module, options, check in CHECKS.get(role, []):
            task, conditions = self._find_task(role, tasks_file, module)
            task_templar = templar.copy_with_new_env(
                available_variables={**variables, **(task.get("vars") or {})}
            )
            if not all(self._holds(task_templar, condition) for condition in conditions):
                continue
            args = task.get(module) or {}
            try:
                templated = task_templar.template({key: args[key] for key in options if key in args})
                # Before 2.19 an omitted value stays a placeholder string.
                templated = {k: v for k, v in templated.items() if v != task_vars.get("omit")}
                check(templated)
                self._accepted[module] = templated
            except INPUT_ERRORS as exc:
                definitions = {**role_vars, **(task.get("vars") or {})}
                names = _culprits(_sources(args, str(exc), known, definitions), str(exc), values, task_vars)
                source = f" (set by {', '.join(names)})" if names else ""
                errors.append(f"{role} ({module}): {exc}{source}")
                continue
            except AnsibleError as exc:
                errors.append(f"{role} ({module}): its options cannot be evaluated: {_first_line(exc)}")
                continue
            checked.append(module)
        return errors, checked

    def _sshd_on_host(self, task_vars):
        """`sshd -t` of the sshd role's candidate: only the host can judge it, and before any change."""
        outcome = self._execute_module(
            SSHD, module_args={**self._accepted[SSHD], "validate_only": True}, task_vars=task_vars
        )
        if outcome.get("failed") or outcome.get("unreachable"):
            return [f"sshd ({SSHD}, on the host): {outcome.get('msg', 'failed')}"]
        return []

    def _overlay_keys_on_host(self, task_vars):
        """Every member's key must be known before the firewall opens holes for it: from this run (the hosts
        of the play generate theirs) or from this host's peer registry, read without a change."""
        args = self._accepted[OVERLAY]
        outcome = self._execute_module(
            OVERLAY,
            module_args={
                "state": "status",
                "interface": args.get("interface", "wg0"),
                "key_dir": args["key_dir"],
            },
            task_vars=task_vars,
        )
        if outcome.get("failed") or outcome.get("unreachable"):
            return [f"overlay ({OVERLAY}, on the host): {outcome.get('msg', 'failed')}"]
        in_run = set(task_vars.get("ansible_play_hosts_all") or ())
        registry = outcome.get("registry") or {}
        return [
            f"overlay: {m['name']}: its overlay public key is unknown (not in this run and not in the peer "
            f"registry of {task_vars.get('inventory_hostname')}); run the play with this host included"
            for m in args.get("members") or []
            if m["name"] not in in_run and m["name"] not in registry
        ]

    def _find_task(self, role, tasks_file, module):
        """The task calling `module` in the role's tasks file, and every `when` that guards it."""
        tasks = self._load(role, "tasks", tasks_file) or []
        found = [task for task in tasks if isinstance(task, dict) and module in task]
        if not found:
            raise AnsibleError(f"validate_input: roles/{role}/tasks/{tasks_file} no longer calls {module}")
        conditions = _when(found[0])
        if tasks_file != "main.yml":
            for task in self._load(role, "tasks", "main.yml") or []:
                if isinstance(task, dict) and task.get("ansible.builtin.import_tasks") == tasks_file:
                    conditions += _when(task)
        return found[0], conditions

    @staticmethod
    def _holds(templar, condition):
        """A `when` that cannot be evaluated yet (it reads a result registered later) counts as true."""
        try:
            return boolean(templar.template(trust_as_template("{{ " + str(condition) + " }}")), strict=False)
        except AnsibleError:
            return True


def _when(task):
    when = task.get("when", [])
    return list(when) if isinstance(when, list) else [when]


def _first_line(exc):
    return str(getattr(exc, "message", None) or exc).strip().splitlines()[0]


def _text_problem(name, value, where=None):
    """A control character (or a line break outside MULTILINE) anywhere in value, named by its place."""
    if isinstance(value, str):
        bad = text_checks.control_character(value, multiline=name in MULTILINE)
        if bad:
            return f"the control character {bad} is not allowed" + (f" (at {where})" if where else "")
        if name in PATHS and value and not text_checks.plain_absolute_path(value):
            return f"{value!r} is not a plain absolute path"
    elif isinstance(value, dict):
        for key, item in value.items():
            place = f"{where or name}[{key!r}]"
            problem = _text_problem(name, str(key), place) or _text_problem(name, item, place)
            if problem:
                return problem
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = _text_problem(name, item, f"{where or name}[{index}]")
            if problem:
                return problem
    return None


def _sources(args, message, known, definitions):
    """The role variables an error's option is computed from (following the task's and role's vars)."""
    option = re.match(r"[A-Za-z0-9_]+", message)
    if not option or option.group() not in args:
        return []
    found, seen, pending = [], set(), [args[option.group()]]
    while pending:
        for name in _NAME.findall(str(pending.pop())):
            if name in seen:
                continue
            seen.add(name)
            if name in known:
                found.append(name)
            elif name in definitions:
                pending.append(definitions[name])
    return sorted(found)


def _culprits(names, message, values, task_vars):
    """Of those variables, the ones that hold what the message names ('a quoted value', a.path[0])."""
    quoted = re.findall(r"'([^']*)'", message)
    path = re.findall(r"\.([^.\s:\[\]]+)|\[(\d+)\]", message.split(":", 1)[0])
    steps = [key or int(index) for key, index in path]

    def holds(value):
        if steps and _walk(value, steps):
            return True
        return any(_contains(value, word) for word in quoted)

    hits = [name for name in names if holds(values.get(name, task_vars.get(name)))]
    return hits or (names if len(names) <= 3 else [])


def _walk(value, steps):
    for step in steps:
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and isinstance(step, int) and step < len(value):
            value = value[step]
        else:
            return False
    return True


def _contains(value, word):
    if isinstance(value, dict):
        return any(str(key) == word or _contains(item, word) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(_contains(item, word) for item in value)
    return str(value) == word
