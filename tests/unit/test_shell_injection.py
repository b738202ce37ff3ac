"""Issue 14 items 1-5, as reproduced there: each hostile input is refused (exit 2, one line)
or rendered inert, and the rendered script, run under bash with stubs that execute their
command (tests/unit/shell_stubs.py), never runs an injected command."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.unit.shell_stubs import Cli, Sandbox, olmoctl, refused_cleanly, sandbox_home


@pytest.fixture
def box(tmp_path: Path, user_env: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Stubs, and a HOME inside tmp_path so `~` runs roots resolve (and get created) there."""
    return sandbox_home(tmp_path, monkeypatch)


def _profile(tmp_path: Path, base: str = "dev", **changes: object) -> str:
    """A copy of a shipped profile with `changes`, its runs under tmp_path."""
    data = yaml.safe_load((REPO / "clusters" / f"{base}.yaml").read_text())
    data.update(runs_root=str(tmp_path / "runs"), **changes)
    path = tmp_path / f"{base}-{len(changes)}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _inert(box: Sandbox, res: Cli) -> None:
    """Refused cleanly, or rendered into a script that runs no injected command."""
    if res.code != 0:
        assert refused_cleanly(res), (res.code, res.err)
        return
    ran = box.run(res.out)
    assert not ran.pwned, res.out


def _runs(box: Sandbox, res: Cli) -> list[str]:
    """The script renders and runs to its end (the stub python is called)."""
    assert res.code == 0, res.err
    ran = box.run(res.out)
    assert ran.code == 0, ran.err
    assert not ran.pwned
    assert ran.python_calls, ran.err
    return ran.python_calls


PAYLOAD = "x\ntouch ./pwned\n#"


# -- 1: free text in the header comment ----------------------------------------------------
def test_name_override_with_newline_is_refused(box: Sandbox) -> None:
    res = olmoctl("render", "tiny", "-c", "dev", "-o", f"name={PAYLOAD}")
    assert refused_cleanly(res), res.err
    assert "name" in res.err


def test_recipe_file_name_with_newline_is_refused(box: Sandbox, tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "recipes" / "tiny.yaml").read_text())
    data["name"] = PAYLOAD
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(data))
    assert refused_cleanly(olmoctl("render", str(path), "-c", "dev"))


def test_sweep_grid_value_with_newline_is_refused(box: Sandbox) -> None:
    res = olmoctl("sweep", "tiny", "-c", "dev", "--grid", "name=a,b\ntouch ./pwned", "--dry-run")
    assert refused_cleanly(res), res.err
    assert not box.pwned()


def test_launch_from_override_of_name_is_refused(user_env: Path) -> None:
    """launch --from RUN builds through SpecConfig.from_spec: the same validation."""
    from olmoctl.core.launch.specs import SpecConfig, resolve
    from olmoctl.errors import UsageError

    recorded = resolve("tiny", "dev")
    with pytest.raises(UsageError, match="name") as e:
        SpecConfig.from_spec(recorded, overrides=[f"name={PAYLOAD}"]).build()
    assert "\n" not in str(e.value)


def test_header_comment_holds_validated_names_only(box: Sandbox) -> None:
    text = olmoctl("render", "tiny", "-c", "dev", "--name", "r-1").out
    header = [line for line in text.splitlines() if line.startswith("# ")][:2]
    assert header[0].startswith("# Rendered by olmoctl ") and "run r-1: recipe tiny" in header[0]


# -- 2: cluster.python and other command/path fields ----------------------------------------
@pytest.mark.parametrize("cluster", ["dev", "local", "lumi"])
@pytest.mark.parametrize("plain", [False, True])
def test_python_with_shell_code_is_refused(box: Sandbox, cluster: str, plain: bool) -> None:
    args = ["render", "tiny", "-c", cluster, "-o", "cluster.account=p1"]
    args += ["-o", "cluster.python=touch ./pwned; python", *(["--plain"] if plain else [])]
    res = olmoctl(*args)
    assert refused_cleanly(res), res.err
    assert "cluster.python" in res.err


def test_python_is_quoted_the_same_in_every_branch(box: Sandbox, tmp_path: Path) -> None:
    py = str(box.bin / "python")  # a path (the stub), one word
    prof = _profile(tmp_path, python=py)
    local = _profile(tmp_path, "local", python=py, description="local copy")
    for args in (["-c", prof], ["-c", prof, "--plain"], ["-c", local]):
        calls = _runs(box, olmoctl("render", "tiny", *args))
        assert calls  # the stub python ran the command...
        text = olmoctl("render", "tiny", *args).out
        assert f"\n{py} -u -m " in text or f"  {py} -u -m " in text  # ...as one plain word


@pytest.mark.parametrize(
    "override",
    [
        "cluster.runs_root=/tmp/x$(touch ./pwned)",
        "cluster.data_root=/d`touch ./pwned`",
        "cluster.modules=[a;touch ./pwned]",
        "cluster.srun_args=['--x=1 ;touch ./pwned']",
        "cluster.sbatch_args=['--x=1\ntouch ./pwned']",
        "cluster.cpu_bind=map_cpu:1;touch ./pwned",
        "cluster.mem=1G\ntouch ./pwned",
        "cluster.partition=dev\ntouch ./pwned",
    ],
)
def test_command_ish_fields_are_refused(box: Sandbox, override: str) -> None:
    assert refused_cleanly(olmoctl("render", "tiny", "-c", "dev", "-o", override))
    assert not box.pwned()


# -- 3: env and binds: only $NAME / ${NAME} expand; composition stays data ------------------
def test_env_payload_built_across_values_is_refused(box: Sandbox) -> None:
    res = olmoctl(
        "render", "tiny", "-c", "dev",
        "-o", "cluster.env.D=$", "-o", "cluster.env.P=(pwn)",
        "-o", "cluster.env.X=${D}${P}", "-o", "cluster.env.Y=${X@P}",
    )  # fmt: skip
    assert refused_cleanly(res), res.err


@pytest.mark.parametrize(
    "value",
    [
        "${X@P}",
        "$[1+1]",
        "$((1+1))",
        "${!X}",
        "`pwn`",
        "$(pwn)",
        "a\\b",
        'a"b',
        "$$",
        "${X:-$(pwn)}",
    ],
)
def test_env_value_expansions_other_than_a_plain_reference_are_refused(
    box: Sandbox, value: str
) -> None:
    res = olmoctl("render", "tiny", "-c", "dev", "-o", f"cluster.env.Y={value}")
    assert refused_cleanly(res), (value, res.err)


@pytest.mark.parametrize("runtime", ["singularity", "apptainer", "podman", "pyxis", "bwrap"])
def test_composed_env_values_stay_data(box: Sandbox, tmp_path: Path, runtime: str) -> None:
    """Pieces that are each harmless, referring to one another: the script runs, and
    nothing they spell is executed (double quotes never re-parse an expansion), whatever
    the runtime does with image, binds and arguments (a prefix, srun flags, bwrap's pairs)."""
    env = {"D": "a", "P": "(pwn);pwn;|pwn", "X": "${D}${P}", "Y": "$X", "OMP_NUM_THREADS": "1"}
    binds = ["$X:/x", "${Y}"]
    image = "/img/$X.sif"
    if runtime == "bwrap":  # a root filesystem that has every mount point (item 8's check)
        spelled = "a(pwn);pwn;|pwn"  # $X as bash expands it
        root = tmp_path / "rootfs"
        image = f"{root}/$X"
        for point in ("etc/hosts", "etc/resolv.conf", "etc/passwd", "etc/group", "x"):
            (root / spelled / point).parent.mkdir(parents=True, exist_ok=True)
            (root / spelled / point).touch()
        (root / (spelled + spelled)).touch()  # IMAGE + "${Y}": a relative destination
    container = {
        "runtime": runtime,
        "image": image,
        "binds": binds,
        "exec_args": ["--env=$Y"],
        "env": {"Z": "${P}:$X", "LD_LIBRARY_PATH": "$Y:/opt/lib"},
    }
    prof = _profile(tmp_path, env=env, container=container)
    _runs(box, olmoctl("render", "tiny", "-c", prof))


@pytest.mark.parametrize(
    "override",
    [
        "cluster.container.runtime=docker;pwn",
        "cluster.container.binds=['/a:/b:rw;touch ./pwned']",
        "cluster.container.binds=['/a:/b:$(pwn)']",
    ],
)
def test_container_runtime_and_bind_options_are_checked(box: Sandbox, override: str) -> None:
    res = olmoctl("render", "tiny", "-c", "dev-container", "-o", override)
    assert refused_cleanly(res), res.err
    assert not box.pwned()


def test_runtime_is_one_of_the_known_ones(box: Sandbox) -> None:
    res = olmoctl("render", "tiny", "-c", "dev-container", "-o", "cluster.container.runtime=docker")
    assert refused_cleanly(res), res.err
    for runtime in ("singularity", "apptainer", "podman", "pyxis", "bwrap"):
        assert runtime in res.err


def test_a_bind_that_does_not_fit_the_runtime_is_refused(box: Sandbox) -> None:
    bwrap = olmoctl(
        "render", "tiny", "-c", "dev-container", "-o", "cluster.container.binds=['/a:/b:slave']"
    )
    assert refused_cleanly(bwrap) and "bwrap takes the options ro or rw only" in bwrap.err
    pyxis = olmoctl(
        "render", "tiny", "-c", "dev-container", "-o", "cluster.container.runtime=pyxis",
        "-o", "cluster.container.binds=['/a,/b:/c']",
    )  # fmt: skip
    assert refused_cleanly(pyxis) and "joins binds with commas" in pyxis.err


def test_bind_with_prompt_expansion_is_refused(box: Sandbox) -> None:
    res = olmoctl(
        "render", "tiny", "-c", "lumi", "-o", "cluster.account=p1",
        "-o", "cluster.container.binds=['${X@P}:/x']",
    )  # fmt: skip
    assert refused_cleanly(res), res.err


@pytest.mark.parametrize(
    "override",
    [
        "cluster.container.env.X=$(touch ./pwned)",
        "cluster.container.env.X=`touch ./pwned`",
        'cluster.container.env.X=a"; touch ./pwned; "',
        "cluster.container.env={'X=1;touch ./pwned;Y': 'v'}",
        "cluster.min_time=01:00:00\ntouch ./pwned",
        "cluster.network_plugin=$(touch ./pwned)",
    ],
)
def test_container_env_time_min_and_plugin_are_refused(box: Sandbox, override: str) -> None:
    """Issue 15 item 3's fields: container.env (rendered as SINGULARITYENV_X), min_time
    (#SBATCH --time-min), network_plugin (read by `olmoctl doctor`)."""
    res = olmoctl("render", "tiny", "-c", "lumi", "-o", "cluster.account=p1", "-o", override)
    assert refused_cleanly(res), (override, res.err)
    assert not box.pwned()


def test_composed_container_env_stays_data(box: Sandbox, tmp_path: Path) -> None:
    prof = _profile(
        tmp_path,
        base="lumi",
        account="p1",
        env={"D": "a", "P": "(pwn);pwn;|pwn", "OMP_NUM_THREADS": "1"},
        container={"image": "/img.sif", "env": {"X": "${D}${P}", "LD_LIBRARY_PATH": "$P:/l"}},
    )
    _runs(box, olmoctl("render", "tiny", "-c", prof))


# -- 4: {user} (and HOME, account) filled in after validation ------------------------------
@pytest.mark.parametrize("var", ["LOGNAME", "USER"])
def test_user_name_from_the_environment_is_validated(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch, var: str
) -> None:
    monkeypatch.delenv("LOGNAME")
    monkeypatch.setenv(var, 'x$(touch ./pwned)"; id; "')
    res = olmoctl(
        "render", "tiny", "-c", "lumi", "-o", "cluster.account=p1",
        "-o", "cluster.container.binds=['/home/{user}']",
    )  # fmt: skip
    assert refused_cleanly(res), res.err
    assert f"${var}" in res.err


def test_home_is_validated(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/h$(touch ./pwned)")
    assert refused_cleanly(olmoctl("render", "tiny", "-c", "dev"))


@pytest.mark.parametrize("var", ["OLMOCTL_ACCOUNT", "SBATCH_ACCOUNT"])
def test_account_from_the_environment_is_validated(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch, var: str
) -> None:
    monkeypatch.setenv(var, "p1\ntouch ./pwned")
    assert refused_cleanly(olmoctl("render", "tiny", "-c", "lumi"))


# -- 5: node names from the store ----------------------------------------------------------
def _fail_node(node: str, cluster: str = "dev") -> None:
    from olmoctl.store import Store

    store = Store()
    store.connect()
    with store.tx() as tx:
        tx.node_failure(cluster, node, "NODE_FAIL")


def test_bad_node_name_in_the_store_is_refused(box: Sandbox) -> None:
    _fail_node("n1\ntouch ./pwned")
    res = olmoctl("render", "tiny", "-c", "dev")
    assert refused_cleanly(res), res.err
    assert "node" in res.err


def test_good_node_name_from_the_store_is_excluded(box: Sandbox) -> None:
    _fail_node("n1.cluster")
    res = olmoctl("render", "tiny", "-c", "dev")
    assert "\n#SBATCH --exclude=n1.cluster\n" in res.out
    _runs(box, res)


def test_steering_a_job_refuses_bad_node_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from olmoctl.backends import slurm_cli
    from olmoctl.backends.slurm import SlurmBackend
    from olmoctl.errors import OlmoctlError

    calls: list[list[str]] = []
    monkeypatch.setattr(slurm_cli, "run", lambda args, **kw: calls.append(args))
    for job, nodes in [("12", ["n1 JobName=x"]), ("12", ["n1,n2"]), ("12 Nice=1", ["n1"])]:
        with pytest.raises(OlmoctlError):
            SlurmBackend().exclude_pending(job, nodes)
    assert calls == []


def test_classify_keeps_only_host_names() -> None:
    from olmoctl.schemas.shellsafe import is_host

    assert is_host("nid001234") and is_host("c1-2.local")
    assert not any(map(is_host, ["", "-n", "n1\nx", "n 1", "n1,n2", "n[1-2]", "a" * 64]))


# -- the shipped profiles: every script runs to its end under the stubs ---------------------
@pytest.mark.parametrize(
    "cluster", ["dev", "dev-container", "local", "lumi", "frontier", "a100", "h100"]
)
def test_shipped_profiles_run_under_the_stubs(box: Sandbox, tmp_path: Path, cluster: str) -> None:
    more = []
    if cluster in ("a100", "h100"):  # their python_env activates a venv: one that is there
        (tmp_path / "venv" / "bin").mkdir(parents=True)
        (tmp_path / "venv" / "bin" / "activate").write_text(": venv activate stub\n")
        more = ["-o", f"cluster.python_env.venv={tmp_path}/venv"]
    res = olmoctl(
        "render", "tiny", "-c", cluster, "-o", "cluster.account=p1",
        "-o", f"cluster.runs_root={tmp_path}/runs", *more,
    )  # fmt: skip
    calls = _runs(box, res)
    assert calls[0].startswith("-u -m ")
