"""Instructions per login (valgrind's cachegrind), for A/B comparisons that a busy machine cannot disturb.

CPU time on a shared machine moves with the neighbours (caches, frequency, hyperthreads); instruction counts
do not. This script prepares the same logins in two processes under `valgrind --tool=cachegrind` and runs
`--few` of them in one and `--many` in the other: the difference divided by (many − few) is the instruction
count of one login (ACS in → form out), with setup, imports and the IdP's signing cancelled out. The floor
(signxml verify + sign) is counted the same way, so the ratio of the two is in instructions.

    python bench/login_instructions.py [--few 5] [--many 25]     (needs valgrind; ~4 minutes)
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(what: str, count: int, prepared: int, key_folder: str) -> None:
    """Inside valgrind: prepare `prepared` logins, then run `count` of them (logins or floor calls). The keys
    are made once by the parent: generating RSA keys costs a very different number of instructions each time."""
    from common import acs_environ, bench_user, config_dict, prepare_logins
    from login_cpu import floor_inputs, signxml_calls

    from broker.app import create_app
    from broker.config import config_from_dict
    from broker.keys import load_key_pair

    with tempfile.TemporaryDirectory():
        folder = Path(key_folder)
        keys = {
            name: load_key_pair(folder / f"{name}.key", folder / f"{name}.crt") for name in ("broker", "idp")
        }
        app, user = create_app(config_from_dict(config_dict(folder))), bench_user(3)
        warm = prepare_logins(app, keys, user, 5)
        for body, _, ip in warm:  # imports and caches, in both processes alike
            b"".join(app(acs_environ(body, ip), lambda *_: None))
        items = prepare_logins(app, keys, user, prepared)
        inputs, cert, key_pair = floor_inputs(app, keys, items, user)
        verify, sign = signxml_calls(cert, key_pair)
        verify(inputs[0][0]), sign(inputs[0][1])
        environs = [acs_environ(body, ip) for body, _, ip in items]
        for n in range(count):
            if what == "login":
                page = b"".join(app(environs[n], lambda *_: None))
                assert b'name="SAMLResponse"' in page
            else:
                verify(inputs[n][0])
                sign(inputs[n][1])


def instructions(what: str, count: int, prepared: int, key_folder: Path) -> int:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "cachegrind.out"
        subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}",
             sys.executable, __file__, "--child", what, str(count), str(prepared), str(key_folder)],
            check=True, cwd=HERE.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
        assert summary, "no summary in cachegrind's output"
        return int(summary[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--few", type=int, default=5)
    parser.add_argument("--many", type=int, default=25)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]), args.child[3])
        return
    if shutil.which("valgrind") is None:
        print("skipped: valgrind is not installed (apt-get install valgrind)")
        return
    from common import make_keys

    per = {}
    with tempfile.TemporaryDirectory() as key_folder:
        make_keys(Path(key_folder))
        for what in ("floor", "login"):
            few, many = (instructions(what, n, args.many, Path(key_folder)) for n in (args.few, args.many))
            per[what] = (many - few) / (args.many - args.few)
    print(f"instructions per login (cachegrind, {args.many} − {args.few} logins):")
    print(f"  floor (signxml verify + sign):  {per['floor'] / 1e6:8.2f} M")
    print(f"  login (ACS in → form out):      {per['login'] / 1e6:8.2f} M")
    print(f"  ratio login / floor:            {per['login'] / per['floor']:8.2f}x   (in instructions)")


if __name__ == "__main__":
    main()
