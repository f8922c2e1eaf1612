"""`python -m mnistlab class ...`: a class challenge from the command line (`classes.ClassStore`).

    python -m mnistlab class create "Year 10 B"            # prints the class code and the teacher's key
    python -m mnistlab class challenge K7MQ2P --key KEY --budget 50000 --dataset mnist --ladder 1
    python -m mnistlab class submit K7MQ2P --handle ada lesson.safetensors   # a new handle: its secret
    python -m mnistlab class board K7MQ2P
    python -m mnistlab class submissions K7MQ2P --key KEY   # each one's number, to remove one
    python -m mnistlab class close K7MQ2P --key KEY

Only argparse is imported here; the store (SQLAlchemy, torch) once the arguments are read.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta

from mnistlab.errors import ClassError

KEY_ENV = "MNISTLAB_CLASS_KEY"  # the teacher's key, instead of --key (which others may see in `ps`)


def add_commands(parser: argparse.ArgumentParser, parser_class) -> None:
    """The `class` command's own commands and flags."""
    commands = parser.add_subparsers(dest="class_command", metavar="COMMAND", required=True,
                                     parser_class=parser_class)
    key_help = f"the teacher's key (or ${KEY_ENV})"

    def command(name, help, key=False):
        p = commands.add_parser(name, help=help)
        if name != "create":
            p.add_argument("code", help="the class code, e.g. K7MQ2P")
        if key:
            p.add_argument("--key", default=None, help=key_help)
        p.add_argument("--db", default=None, help="the database: an SQLAlchemy URL or an SQLite file "
                                                  "(default $MNISTLAB_DB, else the models folder's)")
        return p

    command("create", "make a class; prints its code and the teacher's key (shown once)").add_argument(
        "name", help="the class's name, e.g. \"Year 10 B\"")
    c = command("challenge", "set the class's challenge (the teacher's)", key=True)
    c.add_argument("--dataset", default="mnist", help="mnist (default) or fashion")
    c.add_argument("--budget", default="50000", help="the most parameters a network may have (default 50000)")
    c.add_argument("--families", default="mlp", help="mlp (default), cnn or mlp,cnn")
    c.add_argument("--limit", default="5", help="submissions per student per hour (default 5)")
    c.add_argument("--ends", default=None, metavar="TIME|MINUTES",
                   help="when it ends: an ISO time (UTC unless it says), e.g. 2026-12-07T15:30, or minutes "
                        "from now (default: when the class is closed)")
    c.add_argument("--ladder", default=None, metavar="STEP",
                   help="the Ladder: show a new public score only when it beats the student's best shown by "
                        "STEP percentage points, e.g. 1 (default: off)")
    s = command("submit", "score a model file on the class's challenge; a new handle joins and is "
                          "given its secret")
    s.add_argument("model", metavar="MODEL_FILE", help="a .safetensors file, or a model name in the "
                                                       "models folder")
    s.add_argument("--handle", required=True, help="your handle in the class (1 to 24 characters)")
    s.add_argument("--secret", default=None, help="the secret you were given when your handle joined")
    command("board", "the class's board: public ranks; private ones once the class is closed", key=True)
    command("members", "the class's students and their submissions (the teacher's)", key=True)
    command("submissions", "every submission, newest first, with its number (the teacher's)", key=True)
    command("close", "close the class: no more submissions; the board shows the private scores", key=True)
    r = command("remove", "remove a student (--handle) or a submission (--submission)", key=True)
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--handle", help="the student to remove")
    which.add_argument("--submission", metavar="ID", help="the submission to remove (its number)")


def run(args) -> None:
    from mnistlab.classes import ClassStore

    store = ClassStore(args.db)
    command = args.class_command
    key = getattr(args, "key", None) or os.environ.get(KEY_ENV)
    if command in ("challenge", "members", "submissions", "close", "remove") and not key:
        raise ClassError(f"`class {command}` needs the teacher's key: --key KEY or ${KEY_ENV}.")
    if command == "create":
        made = store.create(args.name)
        print(f"class {made.name!r}: code {made.code}")
        print(f"teacher's key: {made.key}")
        print("Keep the key: it is shown only now (the class stores a hash of it) and is needed to set the "
              "challenge, see the members, remove and close.", file=sys.stderr)
    elif command == "challenge":
        from mnistlab.challenge import Challenge

        rules = store.set_challenge(args.code, key, Challenge(
            args.dataset, args.budget, args.families, args.limit, _ends(args.ends), args.ladder))
        print(f"challenge set: {rules.label()}")
    elif command == "submit":
        receipt = store.submit(args.code, args.handle, _model_bytes(args.model), secret=args.secret)
        if receipt.secret:
            print(f"{receipt.handle!r} joined; your secret: {receipt.secret}")
            print("Keep the secret: it is shown only now, and every later submission under your handle "
                  "needs it (--secret).", file=sys.stderr)
        better = "" if receipt.improved else " (not better than your best shown)"
        print(f"submission {receipt.id}: public score {receipt.shown:.2%}{better}; your best "
              f"{receipt.best:.2%}; {receipt.left} more this hour", flush=True)
    elif command == "board":
        print(board_text(store.board(args.code, key)))
    elif command == "members":
        for m in store.members(args.code, key):
            best = "—" if m.best is None else f"{m.best:.2%} ({m.best_parameters:,} parameters)"
            gone = "  removed" if m.removed else ""
            print(f"{m.handle:<24}  joined {m.joined:%Y-%m-%d %H:%M}  {m.submissions:>3} submissions  "
                  f"best {best}{gone}")
    elif command == "submissions":
        for x in store.submissions(args.code, key):
            private = "" if x.private is None else f"  private {x.private:.2%}"
            gone = "  removed" if x.removed else ""
            print(f"{x.id:>6}  {x.submitted:%Y-%m-%d %H:%M:%S}  {x.handle:<24}  public {x.public:.2%} (shown "
                  f"{x.shown:.2%}){private}  {x.architecture} ({x.parameters:,} parameters){gone}")
    elif command == "close":
        store.close(args.code, key)
        print(f"class {store.info(args.code).code} closed; its board now shows the private scores")
    elif command == "remove":
        if args.handle is not None:
            store.remove_student(args.code, key, args.handle)
            print(f"removed {args.handle.strip()!r} and their submissions from the board")
        else:
            store.remove_submission(args.code, key, args.submission)
            print(f"removed submission {args.submission} from the board")


def _ends(value: str | None) -> datetime | None:
    """--ends: minutes from now (a number), or an ISO time, UTC unless it names its zone."""
    if value is None:
        return None
    text = value.strip()
    try:
        minutes = float(text)
    except ValueError:
        minutes = None
    if minutes is not None:
        if not 0 < minutes <= 60 * 24 * 366:
            raise ClassError(f"--ends in minutes is above 0 and at most a year (527,040); got {value!r:.40}.")
        return datetime.now(UTC) + timedelta(minutes=minutes)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ClassError(f"--ends is an ISO time such as 2026-12-07T15:30 (UTC unless it says) or minutes "
                         f"from now; got {value!r:.40}.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _model_bytes(name: str) -> bytes:
    """A model file's bytes: a path, else a name in the models folder; its size checked before reading."""
    from pathlib import Path

    from mnistlab import model_files

    path = Path(name).expanduser()
    if not path.is_file():
        try:
            path = model_files.path_for(name)
        except model_files.ModelFileError:
            pass
        if not path.is_file():
            raise ClassError(f"No model file {name!r:.80}: give a .safetensors file's path or a model name "
                             f"in the models folder.")
    try:
        if path.stat().st_size > model_files.MAX_FILE_BYTES:
            raise ClassError(f"{path.name} is {path.stat().st_size:,} bytes; model files are at most "
                             f"{model_files.MAX_FILE_BYTES:,}.")
        return path.read_bytes()
    except OSError as e:
        raise ClassError(f"{path} cannot be read: {e.strerror or e}.") from None


def board_text(board) -> str:
    """The board as a table: public ranks, and once closed the final ranks and each move."""
    title = f"{board.name} ({board.code})" + (f": {board.challenge.label()}" if board.challenge else "")
    if not board.standings:
        return f"{title}\nno submissions yet"
    head = f"{'rank':>4}  {'handle':<24}  {'public':>7}  {'tries':>5}  network"
    if board.closed:
        head = f"{'final':>5}  {'moved':>5}  {'private':>7}  " + head
    lines = [title, head, "-" * len(head)]
    for s in (board.final() if board.closed else board.standings):
        row = f"{s.rank:>4}  {s.handle:<24}  {s.public:>7.2%}  {s.submissions:>5}  {s.architecture} " \
              f"({s.parameters:,} parameters)"
        if board.closed:
            moved = "—" if s.moved == 0 else f"{s.moved:+d}"
            row = f"{s.final_rank:>5}  {moved:>5}  {s.private:>7.2%}  " + row
        lines.append(row)
    note = ("final order by the private score of each student's best public submission; moved: ranks gained "
            "(+) or lost (−) from the public order" if board.closed else
            "ranked by the best public score shown; the private scores are shown when the class is closed")
    return "\n".join([*lines, note])
