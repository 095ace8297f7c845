"""The GitOps example (examples/gitops/) run for real against the hardened lab host.

The example is copied into a git repository of its own (an infrastructure repository as a user has it),
with the lab's inventory and the collection's tarball in place of Galaxy (unreachable here). Its GitLab
pipeline runs with gitlab-ci-local's shell executor, ansible-pull pulls it from a git daemon on the
controller, and ansible-runner runs it from an AWX-style project; every run gets an environment of its own
(PATH and HOME only), not the developer's or Molecule's ANSIBLE_* settings.
The tests run in order and share the host: drift, audit gate, plan, repair, then runner, then pull.
"""

import json
import os
import shutil
import subprocess
import time

import pytest
import yaml
from lab_testing import LAB_PASSWORD, OPERATOR_KEY, PROJECT, ssh, wait_for_ssh

EXAMPLE = PROJECT / "examples" / "gitops"
TOOLS = PROJECT / ".lab" / "gitops-tools" / "node_modules"
ADDRESS = "172.30.8.11"
CONTROLLER = "172.30.8.1"
DROPIN = "/etc/ssh/sshd_config.d/00-bulwark.conf"
# Between the host's audit score with passwords accepted and its score once repaired (both asserted).
MIN_SCORE = 90


def clean_env(home, *path):
    """Nothing from the developer's shell: the tools' directories on PATH and a HOME of the run's own."""
    home.mkdir(parents=True, exist_ok=True)
    dirs = [*map(str, path), str(PROJECT / ".venv" / "bin"), "/usr/local/bin", "/usr/bin", "/bin"]
    return {"PATH": ":".join(dirs), "HOME": str(home), "LANG": "C.UTF-8"}


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as the repository's yamllint wants them."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def write_yaml(path, data):
    path.write_text(yaml.dump(data, Dumper=_Dumper, explicit_start=True, sort_keys=False, width=1000))


def run(argv, **kwargs):
    kwargs.setdefault("timeout", 600)
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def git(repo, *args):
    ident = ["-c", "user.name=Fleet Admin", "-c", "user.email=admin@example.net"]
    result = run(["git", "-C", str(repo), *ident, *args])
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("gitops")


@pytest.fixture(scope="module")
def fleet_repo(work):
    """The example as an infrastructure repository of its own, pointed at the lab."""
    built = run(["ansible-galaxy", "collection", "build", "--output-path", str(work / "dist"), str(PROJECT)])
    assert built.returncode == 0, built.stderr
    tarball = next((work / "dist").glob("bulwark-hardening-*.tar.gz"))
    repo = work / "fleet"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("collections", "audit-reports"))
    (repo / "vendor").mkdir()
    shutil.copy(tarball, repo / "vendor")
    # Galaxy is unreachable in the lab: the same collection, from its tarball.
    write_yaml(
        repo / "requirements.yml", {"collections": [{"name": f"vendor/{tarball.name}", "type": "file"}]}
    )
    keyscan = run(["ssh-keyscan", "-T", "5", ADDRESS])
    assert ADDRESS in keyscan.stdout, keyscan.stderr
    (work / "known_hosts").write_text(keyscan.stdout)
    inventory = {
        "all": {
            "children": {"fleet": {"hosts": {"gitops-trixie": {"ansible_host": ADDRESS}}}},
            "vars": {
                "ansible_user": "deploy",
                "ansible_become": True,
                # Host keys checked, against what the lab host presented.
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={work / 'known_hosts'}",
            },
        }
    }
    write_yaml(repo / "inventory" / "hosts.yml", inventory)
    # What molecule.yml converged the host with, and where the node pulls from.
    operator_key = OPERATOR_KEY.with_suffix(".pub").read_text().strip()
    fleet = {
        "bulwark_admin_networks": [f"{CONTROLLER}/32"],
        "bootstrap_admins": [{"name": "deploy", "ssh_keys": [operator_key]}],
        "pull_repository": f"git://{CONTROLLER}/fleet.git",
        "pull_branch": "main",
        "pull_interval": "30min",
        "pull_admin_address": CONTROLLER,
        "pull_admin_user": "deploy",
    }
    write_yaml(repo / "inventory" / "group_vars" / "all.yml", fleet)
    git(repo, "init", "--quiet", "--initial-branch", "main")
    git(repo, "remote", "add", "origin", "https://gitlab.example.net/infra/fleet.git")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", "The lab's fleet")
    return repo


def drift_passwords(host):
    """Behind the pipeline's back: sshd accepts passwords again (an sshd option edited by hand)."""
    with host.sudo():
        edited = host.run(
            f"sed -i 's/^PasswordAuthentication no$/PasswordAuthentication yes/' {DROPIN}"
            f" && grep -qx 'PasswordAuthentication yes' {DROPIN} && systemctl reload ssh"
        )
    assert edited.rc == 0, edited.stderr
    wait_for_ssh(ADDRESS)
    login = ssh(ADDRESS, password=LAB_PASSWORD)
    assert login.returncode == 0, f"the drift did not take: {login.stderr}"


def gitlab(repo, work, source, *jobs):
    """The pipeline of a merge request, a push or a schedule, run by gitlab-ci-local's shell executor."""
    argv = [
        str(TOOLS / ".bin" / "gitlab-ci-local"),
        "--variable", f"CI_PIPELINE_SOURCE={source}",
        # A file-type CI/CD variable in GitLab: the variable holds the key file's path.
        "--variable", f"ANSIBLE_PRIVATE_KEY_FILE={OPERATOR_KEY}",
        *jobs,
    ]  # fmt: skip
    env = clean_env(work / "home-gitlab", TOOLS / "node-linux-x64" / "bin")
    return run(argv, cwd=repo, env=env)


def test_github_workflows_pass_actionlint(fleet_repo, work):
    env = clean_env(work / "home-actionlint")
    lint = run(["actionlint", "-color=false"], cwd=fleet_repo, env=env)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # actionlint checks what it is given: a typo in an action's input and an injection fail.
    broken = fleet_repo / ".github" / "workflows" / "broken.yml"
    broken.write_text(
        (fleet_repo / ".github" / "workflows" / "apply.yml")
        .read_text()
        .replace("ansible-playbook site.yml --diff", "echo ${{ github.event.head_commit.message }}")
        .replace("ssh-key:", "ssh-kye:")
    )
    try:
        lint = run(["actionlint", "-color=false"], cwd=fleet_repo, env=env)
    finally:
        broken.unlink()
    assert lint.returncode == 1, lint.stdout + lint.stderr
    assert 'input "ssh-kye" is not defined' in lint.stdout, lint.stdout
    assert "github.event.head_commit.message" in lint.stdout and "untrusted" in lint.stdout, lint.stdout


def test_nightly_job_fails_below_the_minimum_score(host, fleet_repo, work):
    drift_passwords(host)
    nightly = gitlab(fleet_repo, work, "schedule")
    out = nightly.stdout + nightly.stderr
    assert nightly.returncode != 0, out[-3000:]
    assert "FAIL  audit" in out, out[-3000:]
    report = json.loads((fleet_repo / "audit-reports" / "gitops-trixie.json").read_text())
    assert "ssh_password_login" in report["failed"]
    assert report["score"] < MIN_SCORE
    fleet = json.loads((fleet_repo / "audit-reports" / "fleet.json").read_text())
    assert fleet["below_min_score"] == ["gitops-trixie"] and not fleet["passed"]
    # The artifacts a CI system publishes: JUnit with the failing finding, the HTML page.
    assert "ssh_password_login" in (fleet_repo / "audit-reports" / "junit.xml").read_text()
    assert (fleet_repo / "audit-reports" / "index.html").stat().st_size > 0


def test_merge_request_jobs_lint_and_print_the_check_mode_diff(host, fleet_repo, work):
    before = host.file(DROPIN).content_string
    mr = gitlab(fleet_repo, work, "merge_request_event", "lint", "plan")
    out = mr.stdout + mr.stderr
    assert mr.returncode == 0, out[-3000:]
    assert "PASS  lint" in out and "PASS  plan" in out, out[-3000:]
    # The job's log is the review's diff: the drifted line and the declared one, for this host and concern.
    assert "-PasswordAuthentication yes" in out and "+PasswordAuthentication no" in out, out[-5000:]
    drift = json.loads((fleet_repo / "drift.json").read_text())
    assert drift["drifted"] and drift["check_mode"]
    assert "sshd" in drift["hosts"]["gitops-trixie"]
    assert (fleet_repo / "plan.txt").read_text().count("-PasswordAuthentication yes") >= 1
    # Check mode changed nothing: the drift is still there, passwords still log in.
    assert host.file(DROPIN).content_string == before
    assert ssh(ADDRESS, password=LAB_PASSWORD).returncode == 0


def test_main_branch_job_repairs_the_drift(host, fleet_repo, work):
    apply = gitlab(fleet_repo, work, "push", "apply")
    out = apply.stdout + apply.stderr
    assert apply.returncode == 0, out[-3000:]
    assert "PASS  apply" in out and "gitops-trixie" in out
    assert "PasswordAuthentication no" in host.file(DROPIN).content_string
    wait_for_ssh(ADDRESS)
    refused = ssh(ADDRESS, password=LAB_PASSWORD)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr
    assert ssh(ADDRESS, command="id -un").stdout.strip() == "deploy"
    # Repaired, the host passes the same nightly gate.
    nightly = gitlab(fleet_repo, work, "schedule")
    assert nightly.returncode == 0, (nightly.stdout + nightly.stderr)[-3000:]
    report = json.loads((fleet_repo / "audit-reports" / "gitops-trixie.json").read_text())
    assert report["score"] >= MIN_SCORE and "ssh_password_login" not in report["failed"]


def awx_project(fleet_repo, work, name):
    """A private data directory as AWX lays it out for a job: project/, inventory/, env/."""
    pdd = work / name
    git(work, "clone", "--quiet", str(fleet_repo), str(pdd / "project"))
    # AWX installs the project's requirements into the job's own directory and points Ansible at it.
    home = work / f"home-{name}"
    installed = run(
        ["ansible-galaxy", "collection", "install", "--requirements-file", "requirements.yml",
         "--collections-path", str(pdd / "requirements_collections")],
        cwd=pdd / "project", env=clean_env(home),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    (pdd / "inventory").mkdir()
    shutil.copy(fleet_repo / "inventory" / "hosts.yml", pdd / "inventory" / "hosts.yml")
    shutil.copytree(fleet_repo / "inventory" / "group_vars", pdd / "inventory" / "group_vars")
    (pdd / "env").mkdir()
    (pdd / "env" / "ssh_key").write_text(OPERATOR_KEY.read_text())
    envvars = {"ANSIBLE_COLLECTIONS_PATH": str(pdd / "requirements_collections"), "ANSIBLE_FORCE_COLOR": "0"}
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    (pdd / "env" / "extravars").write_text(
        yaml.safe_dump({"audit_min_score": MIN_SCORE, "audit_output_dir": str(pdd / "audit-reports")})
    )
    return pdd, home


def runner(pdd, home, playbook):
    """ansible-runner's job, as AWX starts it: the result, its status file and its stdout artifact."""
    result = run(["ansible-runner", "run", str(pdd), "--playbook", playbook], env=clean_env(home))
    artifact = next((pdd / "artifacts").iterdir())
    return result, (artifact / "status").read_text(), (artifact / "stdout").read_text()


def test_harden_and_audit_through_ansible_runner(host, fleet_repo, work):
    before = host.file(DROPIN).sha256sum
    pdd, home = awx_project(fleet_repo, work, "awx-harden")
    result, status, stdout = runner(pdd, home, "site.yml")
    assert result.returncode == 0 and status == "successful", stdout[-4000:]
    # The host was converged already: the job reads it, finds it as declared, and changes nothing.
    assert host.file(DROPIN).sha256sum == before
    assert "gitops-trixie" in stdout and "changed=0" in stdout and "failed=0" in stdout, stdout[-3000:]

    pdd, home = awx_project(fleet_repo, work, "awx-audit")
    result, status, stdout = runner(pdd, home, "audit.yml")
    assert result.returncode == 0 and status == "successful", stdout[-4000:]
    report = json.loads((pdd / "audit-reports" / "gitops-trixie.json").read_text())
    assert report["score"] >= MIN_SCORE
    assert os.path.getsize(pdd / "audit-reports" / "junit.xml") > 0


@pytest.fixture(scope="module")
def git_daemon(fleet_repo, work):
    """The repository served over the lab network, as a git server would serve it to the nodes."""
    served = work / "served"
    served.mkdir()
    git(work, "clone", "--quiet", "--bare", str(fleet_repo), str(served / "fleet.git"))
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={served}", f"--listen={CONTROLLER}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while run(["git", "ls-remote", f"git://{CONTROLLER}/fleet.git"]).returncode != 0:
        assert time.monotonic() < deadline, "git daemon did not answer"
        time.sleep(0.3)
    yield served / "fleet.git"
    daemon.terminate()
    daemon.wait(timeout=10)


def pull_once(host):
    """One tick of the timer: the service's two ansible-pull passes; the second pass's play recap."""
    with host.sudo():
        started = host.run("systemctl start bulwark-pull.service")
        # This run's lines only (a timestamp would also catch the end of the previous run).
        run_id = host.check_output("systemctl show --property InvocationID --value bulwark-pull.service")
        journal = host.check_output(f"journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID={run_id}")
    assert started.rc == 0, journal[-4000:]
    recaps = [line for line in journal.splitlines() if line.startswith("localhost") and "ok=" in line]
    assert len(recaps) == 2, journal[-4000:]
    return recaps[1], journal


def test_ansible_pull_converges_the_node_on_a_timer(host, fleet_repo, git_daemon, work):
    env = clean_env(work / "home-pull")
    env["ANSIBLE_PRIVATE_KEY_FILE"] = str(OPERATOR_KEY)
    setup = run(["ansible-playbook", "pull-setup.yml"], cwd=fleet_repo, env=env)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-2000:]
    with host.sudo():
        assert host.service("bulwark-pull.timer").is_running
        assert host.service("bulwark-pull.timer").is_enabled
        assert host.run("systemctl list-timers --no-legend bulwark-pull.timer").stdout.strip()
    # A drift, then a pull: the node repairs itself from the repository.
    drift_passwords(host)
    recap, journal = pull_once(host)
    assert "failed=0" in recap and "changed=0" not in recap, journal[-4000:]
    assert "PasswordAuthentication no" in host.file(DROPIN).content_string
    wait_for_ssh(ADDRESS)
    refused = ssh(ADDRESS, password=LAB_PASSWORD)
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr
    assert ssh(ADDRESS, command="id -un").stdout.strip() == "deploy"
    # The node pulled the commit the controller serves.
    head = git(git_daemon, "rev-parse", "HEAD").strip()
    with host.sudo():
        assert host.check_output("git -C /var/lib/bulwark-pull rev-parse HEAD") == head
    # The next tick has nothing to do.
    recap, journal = pull_once(host)
    assert "changed=0" in recap and "failed=0" in recap, journal[-4000:]
