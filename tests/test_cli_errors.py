"""No traceback reaches a user: fewstep's own errors exit 2 with one line, anything else exits 3
with a hint to re-run with --debug; markup in user text is printed as typed."""

import pytest

from fewstep import cli


def run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


def test_an_unexpected_error_is_an_internal_error_with_exit_3(monkeypatch, capsys):
    import fewstep.targets.registry as registry

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(registry, "discover", broken)
    code, output = run(["targets"], capsys)
    assert code == 3 and "internal error" in output and "--debug" in output and "Traceback" not in output
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["targets", "--debug"])


def test_bad_input_exits_2_and_markup_is_not_eaten(tmp_path, capsys):
    bundle = tmp_path / "[red]not-a-bundle"
    bundle.mkdir()
    code, output = run(["generate", str(bundle), "a prompt"], capsys)
    assert code == 2 and "[red]not-a-bundle" in output and "Traceback" not in output
    code, output = run(["recipe", "check", str(tmp_path / "missing.yaml")], capsys)
    assert code == 2 and "missing.yaml" in output


def test_exit_codes_are_documented(capsys):
    code, output = run(["--help"], capsys)
    assert code == 0 and "Exit codes: 0 ok, 1 a gate failed, 2 bad input or usage, 3 internal error" in output


def test_generate_output_paths_are_printed_as_typed_and_a_directory_is_refused(built_bundles, tmp_path, capsys):
    bundle, _ = built_bundles["onnxruntime-cpu"]
    target = tmp_path / "outdir"
    target.mkdir()
    code, output = run(["generate", str(bundle), "a red circle", "-o", str(target)], capsys)
    assert code == 2 and "is a directory" in output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing half-written
    for name in ("[red]x.png", "a[/x]b.png"):
        code, output = run(["generate", str(bundle), "a red circle", "-o", str(tmp_path / name)], capsys)
        assert code == 0 and str(tmp_path / name) in output and (tmp_path / name).is_file()


def test_a_full_disk_is_bad_input_with_the_numbers_not_an_internal_error(monkeypatch, capsys):
    import fewstep.targets.registry as registry
    from fewstep.fsutil import DiskSpaceError

    def full():
        raise DiskSpaceError("not enough disk space to write x.bin in /out: it needs about 9.00 GiB")

    monkeypatch.setattr(registry, "discover", full)
    code, output = run(["targets"], capsys)
    assert code == 2 and "9.00 GiB" in output and "internal error" not in output and "Traceback" not in output
