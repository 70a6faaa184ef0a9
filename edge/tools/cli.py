"""``edge diag motion | clip | replay | event | dc09``: the field tools on the command line.

Rows go to stdout (``--format jsonl``, the default, or ``csv``), a short
summary to stderr. A file that cannot be read is a clear message and exit 1;
a wrong argument or config exit 2 (``edge.__main__`` maps the errors).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import TypeAlias

from edge.config import load
from edge.errors import ConfigError, EdgeError
from edge.protocol import parse_iso_ms
from edge.tools import START_WALL_S
from edge.tools.rows import FORMATS, Rows

# The tools themselves (PyAV, OpenCV, cryptography) load only when one runs.

Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(sub: Sub) -> None:
    diag = sub.add_parser("diag", help="field tools on recordings (motion, clip, replay, ...)")
    dsub = diag.add_subparsers(required=True, metavar="TOOL")

    motion = _tool(dsub, "motion", "motion pre-filter and camera tamper over a video file")
    motion.add_argument("video", type=Path)
    motion.add_argument("--camera", help="the config's camera whose settings apply (first)")
    motion.add_argument("--disarmed", action="store_true", help="as if disarmed: no motion events")
    motion.add_argument("--sheet", type=Path, help="write a contact sheet PNG here")
    motion.add_argument("--start", help="UTC time of the first frame (ISO 8601)")
    motion.set_defaults(func=_motion)

    clip = _tool(dsub, "clip", "the clip and stills an alarm at --at would have produced")
    clip.add_argument("video", type=Path)
    clip.add_argument("--at", type=float, required=True, help="seconds into the file")
    clip.add_argument("--out", type=Path, required=True, help="folder for clip.mp4, still-N.jpg")
    clip.add_argument("--camera", help="the config's camera whose settings apply (first)")
    clip.add_argument("--start", help="UTC time of the first frame (ISO 8601)")
    clip.set_defaults(func=_clip)

    rep = _tool(dsub, "replay", "an input trace through the zones, with the reason for each")
    rep.add_argument("trace", type=Path, help="the box's log or journalctl -o json; - for stdin")
    rep.add_argument("--tail-s", type=float, default=60.0, help="timers run this long after")
    rep.set_defaults(func=_replay)

    event = _tool(dsub, "event", "the MQTT payload and DC-09 frames of an event")
    which = event.add_mutually_exclusive_group(required=True)
    which.add_argument("--zone", help="the zone's alarm (or --restore) as the zones make it")
    which.add_argument("--record", type=Path, help="an event as JSON (edge station show)")
    event.add_argument("--restore", action="store_true")
    event.add_argument("--armed", choices=("yes", "no"), help="the partition's armed state")
    event.add_argument("--at", help="when (ISO 8601 UTC); default now")
    event.add_argument("--seq", type=int, default=1, help="sequence number (MQTT and DC-09)")
    event.add_argument("--key-file", type=Path, help="AES key, 32/48/64 hex digits: + encrypted")
    event.add_argument("--line", default="0")
    event.add_argument("--receiver", help="receiver number (hex)")
    event.add_argument("--video-base", help="URL of the operator page, for the video reference")
    event.set_defaults(func=_event)

    dc09 = _tool(dsub, "dc09", "decode a DC-09 frame (CRC and length checked)", config=False)
    dc09.add_argument("frame", help='the frame, e.g. 5AB20035"SIA-DCS"0001L0#1234[...]; - stdin')
    dc09.add_argument("--key-file", type=Path, help="AES key for an encrypted frame")
    dc09.set_defaults(func=_dc09)


def _tool(dsub: Sub, name: str, text: str, config: bool = True) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = dsub.add_parser(name, help=text, description=text)
    if config:
        parser.add_argument(
            "--config",
            type=Path,
            required=True,
            help="the box's config (motion, clip: or just "
            "its [[cameras]], [motion] and [recording])",
        )
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="stdout rows")
    return parser


def _say(lines: list[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def _start(text: str | None) -> float:
    return START_WALL_S if text is None else _iso(text, "--start") / 1000


def _iso(text: str, flag: str) -> int:
    try:
        return parse_iso_ms(text)
    except (EdgeError, ValueError) as exc:
        raise ConfigError(flag, [f"{flag} {text!r}: not an ISO 8601 UTC time ({exc})"]) from exc


def _motion(args: argparse.Namespace) -> int:
    from edge.tools import motion_scan
    from edge.tools.footage import camera_of, read_error, video_config

    cfg = video_config(args.config)
    cam = camera_of(cfg, args.camera, args.video)
    rows = Rows(args.format, motion_scan.COLUMNS)
    result = motion_scan.scan(
        cfg, cam, armed=not args.disarmed, start_wall_s=_start(args.start), keep_lores=True
    )
    for row in result.rows:
        rows.write(row)
    _say(motion_scan.summary(result))
    if args.sheet is not None:
        drawn = motion_scan.contact_sheet(cfg, cam, result, args.sheet)
        _say([f"contact sheet {args.sheet}: {drawn} frame(s)"])
    if result.problem is not None:
        raise read_error(result.problem, rows.count)
    return 0


def _clip(args: argparse.Namespace) -> int:
    from edge.tools import clip_cut
    from edge.tools.footage import camera_of, read_error, video_config

    cfg = video_config(args.config)
    cam = camera_of(cfg, args.camera, args.video)
    result = clip_cut.cut(cfg, cam, args.at, args.out, _start(args.start))
    rows = Rows(args.format, clip_cut.COLUMNS)
    for row in result.rows:
        rows.write(row)
    _say(clip_cut.summary(result, cfg))
    if result.problem is not None:
        raise read_error(result.problem, rows.count)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from edge.inputs import trace
    from edge.tools import replay

    cfg = load(args.config)
    name = "stdin" if str(args.trace) == "-" else str(args.trace)
    try:
        if name == "stdin":
            records = trace.parse(sys.stdin, name)
        else:
            with args.trace.open(encoding="utf-8", errors="replace") as lines:
                records = trace.parse(lines, name)
    except OSError as exc:
        raise EdgeError(f"cannot read the trace: {exc}") from exc
    result = replay.replay(records, cfg, args.tail_s)
    rows = Rows(args.format, replay.COLUMNS)
    for row in result.rows:
        rows.write(row)
    _say(list(replay.summary(result)))
    return 0


def _event(args: argparse.Namespace) -> int:
    from edge.tools import protodump

    cfg = load(args.config)
    key = _key(args.key_file)
    if args.zone is not None:
        at_ms = _iso(args.at, "--at") if args.at else round(datetime.now().timestamp() * 1000)
        armed = None if args.armed is None else args.armed == "yes"
        event = protodump.zone_event(cfg, args.zone, args.restore, at_ms, armed)
    else:
        try:
            text = args.record.read_text(encoding="utf-8")
        except OSError as exc:
            raise EdgeError(f"cannot read the event: {exc}") from exc
        event = protodump.event_from_json(text, str(args.record))
    rows = Rows(args.format, protodump.COLUMNS)
    dumped = list(
        protodump.dump(
            cfg,
            event,
            seq=args.seq,
            key=key,
            line=args.line,
            receiver=args.receiver,
            video_base=args.video_base,
        )
    )
    for row in dumped:
        rows.write(row)
    _say([f"{event.kind.value} {event.codes.cid}/{event.codes.sia}: {len(dumped)} message(s)"])
    return 0


def _dc09(args: argparse.Namespace) -> int:
    from edge.tools import protodump

    frame = sys.stdin.read() if args.frame == "-" else args.frame
    decoded = protodump.decode_frame(frame, _key(args.key_file))
    Rows(args.format, list(decoded)).write(decoded)
    _say([f"{decoded['ident']} seq {decoded['seq']}: CRC {decoded['crc']} OK"])
    return 0


def _key(path: Path | None) -> bytes | None:
    from edge.dc09 import codec

    if path is None:
        return None
    try:
        text = path.read_text().strip()
        return codec.check_key(bytes.fromhex(text))
    except (OSError, ValueError, codec.Dc09Error) as exc:
        raise ConfigError("--key-file", [f"--key-file {path}: {exc} (32, 48 or 64 hex)"]) from exc
