"""The set-up (tools/install.py, run by `make`): on Linux, torch's CPU build when PyTorch's index answers,
the plain pin when it does not."""

import json
import re
import socket

import pytest

import install


@pytest.fixture
def pip_calls(monkeypatch):
    """Record each pip and uv install instead of running it (uv's as ("uv", ...)); every call succeeds."""
    calls = []
    monkeypatch.setattr(install, "pip", lambda *args: calls.append(args) or True)
    monkeypatch.setattr(install, "uv", lambda *args, log_path=None: calls.append(("uv", *args)) or True)
    monkeypatch.setattr(install.subprocess, "run", lambda *args, **kwargs: None)  # the font-cache warm-up
    monkeypatch.setattr(install, "installed_torch", lambda: "installed: torch (stand-in)")
    monkeypatch.setattr(install, "compile_installed", lambda: None)
    monkeypatch.setattr(install, "write_lab_settings", lambda: None)
    return calls


def test_the_torch_pin_is_read_from_requirements():
    assert install.torch_pin() == next(
        line.split("==")[1]
        for line in install.REQUIREMENTS.read_text(encoding="utf-8").splitlines()
        if line.startswith("torch==")
    )


def test_on_linux_torch_alone_comes_from_the_cpu_index_then_uv_installs_the_rest(monkeypatch, pip_calls):
    monkeypatch.setattr(install.sys, "platform", "linux")
    monkeypatch.setattr(install, "reachable", lambda url, seconds=5: True)
    install.main([])
    assert_linux_order(pip_calls, ("--no-deps", "--index-url", install.CPU_INDEX, f"torch=={install.torch_pin()}"))


def assert_linux_order(calls, torch):
    """uv first; then torch alone beside the rest without torch (in either order: they run at once); then
    requirements.txt whole, which adds torch's dependencies."""
    excludes = str(install.pathlib.Path(install.sys.prefix) / "uv-excludes.txt")
    assert calls[0] == (install.UV,) and calls[-1] == ("uv", "-r", str(install.REQUIREMENTS)) and len(calls) == 4
    assert set(calls[1:3]) == {torch, ("uv", "-r", str(install.REQUIREMENTS), "--excludes", excludes)}


def test_when_the_cpu_index_cannot_be_reached_the_plain_pin_is_installed_with_a_notice(monkeypatch, pip_calls, capsys):
    monkeypatch.setattr(install.sys, "platform", "linux")
    monkeypatch.setattr(install, "reachable", lambda url, seconds=5: False)
    install.main([])
    assert_linux_order(pip_calls, ("--no-deps", f"torch=={install.torch_pin()}"))
    out = capsys.readouterr().out
    assert "did not answer within 5 s" in out and "CUDA" not in out  # no guess at the build
    assert "the summary at the end says which build" in out
    assert "ready: torch (stand-in)" in out.rstrip().splitlines()[-2]  # what was installed, asked afterwards


def test_the_set_up_ends_with_what_was_installed_where_and_what_to_open_next(monkeypatch, pip_calls, capsys):
    monkeypatch.setattr(install.sys, "platform", "darwin")
    install.main([])
    last = capsys.readouterr().out.rstrip().splitlines()[-2:]
    assert last[0].startswith("ready: torch (stand-in), and the course's requirements, in ")
    assert last[1].startswith("next:  make lab opens notebook 00")


def test_pip_writes_to_the_log_not_the_screen_and_a_failure_shows_the_end_of_the_log(monkeypatch, tmp_path, capsys):
    log = tmp_path / "install.log"
    monkeypatch.setattr(install, "LOG", log)
    assert install.pip("--no-deps", "--dry-run", "--no-index", "a-package-that-does-not-exist==0") is False
    out = capsys.readouterr().out
    assert "pip failed; the end of its output" in out and "a-package-that-does-not-exist" in log.read_text()
    assert out.count("\n") <= 17  # the last 15 lines of the log and a heading, not pip's whole output


def test_jupyterlab_settings_turn_the_news_toast_off_and_keep_other_overrides(tmp_path):
    path = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}')
    install.write_lab_settings(tmp_path)
    settings = json.loads(path.read_text())
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}


@pytest.mark.parametrize(
    "version, cuda, said",
    [("2.13.0+cpu", "", "the CPU build"), ("2.6.0+cu124", "12.4", "a CUDA 12.4 build"), ("2.6.0", "12.4", "CUDA 12.4")],
)
def test_the_set_up_reports_the_torch_build_that_was_installed(version, cuda, said):
    assert said in install.describe_torch(version, cuda) and version in install.describe_torch(version, cuda)


def test_the_installed_torch_is_asked_of_torch_itself():
    import torch

    assert install.installed_torch().startswith(f"installed: torch {torch.__version__}, ")


@pytest.mark.parametrize("platform, choice", [("darwin", "cpu"), ("win32", "cpu"), ("linux", "cuda")])
def test_elsewhere_or_with_torch_cuda_uv_installs_the_requirements_as_they_are(
    monkeypatch, pip_calls, platform, choice
):
    monkeypatch.setattr(install.sys, "platform", platform)
    monkeypatch.setattr(install, "reachable", lambda url, seconds=5: pytest.fail("the index was probed"))
    install.main(["--torch", choice])
    assert pip_calls == [(install.UV,), ("uv", "-r", str(install.REQUIREMENTS))]


@pytest.mark.parametrize("fails, note", [("uv", "uv failed"), ("pip uv", "pip could not install uv")])
def test_where_uv_cannot_be_installed_or_fails_pip_installs_the_rest(monkeypatch, capsys, pip_calls, fails, note):
    """uv reads none of pip's settings (a mirror, a certificate): pip, which does, takes over, as before uv."""
    monkeypatch.setattr(install.sys, "platform", "darwin")
    monkeypatch.setattr(install, "uv", lambda *args, log_path=None: pip_calls.append(("uv", *args)) and False)
    if fails == "pip uv":
        monkeypatch.setattr(install, "pip", lambda *args: pip_calls.append(args) or args != (install.UV,))
    install.main([])
    assert pip_calls[-1] == ("-r", str(install.REQUIREMENTS)) and (
        ("uv", "-r", str(install.REQUIREMENTS)) in pip_calls
    ) == (fails == "uv")
    out = capsys.readouterr().out
    assert (
        f"note: {note} (see " in out
        and "install-uv.log and " in out
        and "pip installs the rest instead (slower)" in out
    )


def test_uv_installs_into_this_environment_without_a_cache_and_logs_its_output(monkeypatch, tmp_path):
    log, commands = tmp_path / "install.log", []
    monkeypatch.setattr(install, "LOG", log)
    monkeypatch.setattr(
        install.subprocess,
        "run",
        lambda command, **kwargs: commands.append(command) or install.subprocess.CompletedProcess(command, 0),
    )
    assert install.uv("-r", "requirements.txt") is True
    (command,) = commands
    assert command[:6] == [install.sys.executable, "-m", "uv", "pip", "install", "--python"] and "--no-cache" in command
    assert log.read_text().startswith("+ uv pip install --python ")


def test_uv_is_pinned_and_installed_by_pip_before_anything_else():
    assert re.fullmatch(r"uv==\d+\.\d+\.\d+", install.UV)


def test_a_closed_port_counts_as_unreachable():
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert install.reachable(f"http://127.0.0.1:{port}/", seconds=5) is False


def test_bytecode_is_compiled_at_install_for_all_but_what_the_course_never_imports(monkeypatch):
    calls = []
    monkeypatch.setattr(install.subprocess, "run", lambda command, **kwargs: calls.append(command))
    install.compile_installed()
    assert calls and all("compileall" in command and install.NOT_COMPILED in command for command in calls)
    skipped = re.compile(install.NOT_COMPILED)
    assert skipped.search("site-packages/transformers/models/bert/modeling_bert.py")
    assert not skipped.search("site-packages/transformers/trainer.py")
    assert not skipped.search("site-packages/torch/nn/functional.py")
    assert skipped.search("Lib\\site-packages\\transformers\\models\\t5\\modeling_t5.py")  # Windows
