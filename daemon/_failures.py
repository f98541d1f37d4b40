"""Turning a failed completion into the error record a client sees.

Native code says *which* check failed (a reason code, errno, HRESULT); this module words it,
with the request and the file's path, so the message alone tells a user what went wrong.
Runs only for failures, never per successful request.
"""

from __future__ import annotations

import os
from typing import Any

from dsd.protocol import CompletionRecord, Reason, RequestRecord, hresult_name


def error_record(done: CompletionRecord, request: RequestRecord | None, files: dict[int, Any],
                 regions: dict[int, Any]) -> dict[str, Any]:
    path = None
    if request is not None:
        info = files.get(request.src_id if request.op == 0 else request.dst_id)
        path = getattr(info, "path", None)
    record: dict[str, Any] = {
        "id": done.request_id,
        "errno": done.errno,
        "hresult": done.hresult,
        "reason": int(done.reason),
        "message": describe(done, request, path, files, regions),
    }
    if request is not None:
        record["request"] = request.to_dict()
    if path is not None:
        record["path"] = path
    return record


def describe(done: CompletionRecord, req: RequestRecord | None, path: str | None, files: dict[int, Any],
             regions: dict[int, Any]) -> str:
    reason = done.reason
    what = f"request {done.request_id}"
    where = f" of {path}" if path else ""
    err = f": {os.strerror(done.errno)} (errno {done.errno})" if done.errno else ""
    hr = f" [{hresult_name(done.hresult)}]" if done.hresult else ""
    if req is None:
        return f"{what} failed ({_reason_name(reason)}){err}{hr}"
    if reason == Reason.EOF:
        info = files.get(req.src_id)
        size = getattr(info, "size", None)
        known = f"; the file has {size} bytes" if size is not None else ""
        return (f"{what}: bytes {req.src_offset}..{req.src_offset + req.src_size} lie past the end of the file"
                f"{where}{known}{hr}")
    if reason == Reason.BAD_FILE:
        return f"{what}: file id {req.src_id} is not open in this session{hr}"
    if reason == Reason.BAD_REGION:
        return f"{what}: memory region {req.dst_id} is not registered in this session{hr}"
    if reason == Reason.REGION_BOUNDS:
        region = regions.get(req.dst_id)
        size = getattr(region, "size", None)
        known = f" of {size} bytes" if size is not None else ""
        return (f"{what}: destination {req.dst_offset}..{req.dst_offset + req.dst_size} lies outside region "
                f"{req.dst_id}{known}{hr}")
    if reason == Reason.SIZE_MISMATCH:
        return (f"{what}: sizes disagree (source {req.src_size}, destination {req.dst_size}, "
                f"uncompressed {req.uncompressed_size}){hr}")
    if reason == Reason.UNSUPPORTED:
        return f"{what}: this daemon does not support op {int(req.op)} / compression {int(req.compression)} / source type {int(req.source_type)}{hr}"
    if reason == Reason.RESERVED:
        return f"{what}: reserved fields must be zero{hr}"
    if reason == Reason.IO:
        return f"{what}: {'read' if req.op == 0 else 'write'} at offset {req.src_offset}{where} failed{err}{hr}"
    if reason == Reason.DECOMPRESS:
        return f"{what}: the compressed data{where} is corrupt{err}{hr}"
    if reason == Reason.TOO_LARGE:
        return f"{what}: {req.dst_size} bytes exceed the daemon's staging limit{hr}"
    if reason == Reason.SHUTDOWN:
        return f"{what}: the daemon shut down before the request ran{hr}"
    return f"{what} failed ({_reason_name(reason)}){where}{err}{hr}"


def _reason_name(reason: Any) -> str:
    return reason.name.lower() if isinstance(reason, Reason) else f"reason {reason}"
