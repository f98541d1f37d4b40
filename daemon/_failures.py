"""Turning a failed completion into the error record a client sees.

Native code says *which* check failed (a reason code, errno, HRESULT); this module words it,
with the request and the file's path, so the message alone tells a user what went wrong.
Runs only for failures, never per successful request.
"""

from __future__ import annotations

import os
from typing import Any

from dsd.protocol import CompletionRecord, Op, Reason, RequestRecord, SourceType, hresult_name


def error_record(done: CompletionRecord, request: RequestRecord | None, files: dict[int, Any],
                 regions: dict[int, Any], detail: str = "") -> dict[str, Any]:
    info = files.get(_file_id(request)) if request is not None else None
    path = getattr(info, "path", None)
    record: dict[str, Any] = {
        "id": done.request_id,
        "errno": done.errno,
        "hresult": done.hresult,
        "reason": int(done.reason),
        "message": describe(done, request, path, files, regions) + (f": {detail}" if detail else ""),
    }
    if request is not None:
        record["request"] = request.to_dict()
    if path is not None:
        record["path"] = path
    return record


def _file_id(req: RequestRecord) -> int | None:
    """The file a request touches: a FILE-source read's source, a write's or fsync's destination."""
    if req.op == Op.READ:
        return req.src_id if req.source_type == SourceType.FILE else None
    return req.dst_id


def describe(done: CompletionRecord, req: RequestRecord | None, path: str | None, files: dict[int, Any],
             regions: dict[int, Any]) -> str:
    reason = done.reason
    what = f"request {done.request_id}"
    where = f" of {path}" if path else ""
    err = f": {os.strerror(done.errno)} (errno {done.errno})" if done.errno else ""
    hr = f" [{hresult_name(done.hresult)}]" if done.hresult else ""
    if req is None:
        return f"{what} failed ({_reason_name(reason)}){err}{hr}"
    writing = req.op == Op.WRITE
    if reason == Reason.EOF:
        info = files.get(req.src_id)
        size = getattr(info, "size", None)
        known = f"; the file has {size} bytes" if size is not None else ""
        return (f"{what}: bytes {req.src_offset}..{req.src_offset + req.src_size} lie past the end of the file"
                f"{where}{known}{hr}")
    if reason == Reason.BAD_FILE:
        return f"{what}: file id {_file_id(req)} is not open in this session{hr}"
    if reason == Reason.BAD_REGION:
        ids = sorted({req.src_id, req.dst_id} if req.source_type == SourceType.MEMORY or writing else {req.dst_id})
        return f"{what}: memory region {' or '.join(map(str, ids))} is not registered in this session{hr}"
    if reason == Reason.REGION_BOUNDS:
        return f"{what}: {_region_ranges(req, regions)} lies outside its region{hr}"
    if reason == Reason.SIZE_MISMATCH:
        return (f"{what}: sizes disagree (source {req.src_size}, destination {req.dst_size}, "
                f"uncompressed {req.uncompressed_size}){err}{hr}")
    if reason == Reason.UNSUPPORTED:
        return (f"{what}: not supported here (op {int(req.op)}, compression {int(req.compression)}, "
                f"source type {int(req.source_type)}){err}{hr}")
    if reason == Reason.RESERVED:
        return f"{what}: reserved fields must be zero{hr}"
    if reason == Reason.IO:
        verb = {Op.READ: "read", Op.WRITE: "write", Op.FSYNC: "fsync"}.get(req.op, "i/o")
        offset = req.dst_offset if writing else req.src_offset
        return f"{what}: {verb} at offset {offset}{where} failed{err}{hr}"
    if reason == Reason.DECOMPRESS:
        return f"{what}: the compressed data{where} is corrupt{hr}"
    if reason == Reason.TOO_LARGE:
        return (f"{what}: {max(req.src_size, req.dst_size, req.uncompressed_size)} bytes exceed the daemon's "
                f"staging buffer (DSD_STAGING_BYTES){hr}")
    if reason == Reason.SHUTDOWN:
        return f"{what}: the daemon shut down before the request ran{hr}"
    return f"{what} failed ({_reason_name(reason)}){where}{err}{hr}"


def _region_ranges(req: RequestRecord, regions: dict[int, Any]) -> str:
    def one(rid: int, off: int, size: int) -> str:
        known = getattr(regions.get(rid), "size", None)
        return f"region {rid} bytes {off}..{off + size}" + (f" (of {known})" if known is not None else "")

    parts = []
    if req.op == Op.WRITE or req.source_type == SourceType.MEMORY:
        parts.append(one(req.src_id, req.src_offset, req.src_size))
    if req.op == Op.READ:
        parts.append(one(req.dst_id, req.dst_offset, req.dst_size))
    return " or ".join(parts)


def _reason_name(reason: Any) -> str:
    return reason.name.lower() if isinstance(reason, Reason) else f"reason {reason}"
