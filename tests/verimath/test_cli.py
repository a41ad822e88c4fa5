import subprocess
import sys


def test_help_lists_subcommands_without_heavy_imports():
    code = (
        "import sys, io, contextlib\nfrom verimath.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'sympy', 'numpy', 'trl', 'datasets',"
        " 'math_verify', 'lean_dojo', 'lean_interact') if m in sys.modules]\n"
        "print(heavy)\nprint(buf.getvalue())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, rest = out.stdout.split("\n", 1)
    assert first == "[]", f"--help imported heavy modules: {first}"
    for cmd in ("eval", "exec", "grade"):
        assert cmd in rest


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "verimath", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "COMMAND" in out.stdout
