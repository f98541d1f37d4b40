"""Sending GDeflate reads to the Vulkan decoder (DSD_DECODE=gpu|cpu|auto).

A routed request takes two steps. The io engine first reads its compressed bytes into the
daemon's GPU staging memory (a memfd every session maps under a reserved region id), as a plain
uncompressed read in an epoch of its own, so queue barriers see it like any request. When a job's
staging reads are all in, one decode_batch_into call on a worker thread writes the decoded bytes
straight into the clients' regions, and each request completes with its own result: a corrupt
stream fails alone. Requests the route cannot take (memory sources, bad ranges, jobs larger than
the staging memory) stay on the CPU path, whose checks and codecs are the engine's.
"""

from __future__ import annotations

import logging
import mmap
import os
from functools import partial
from dataclasses import dataclass, field
from typing import Any, Callable

import trio

from dsd.protocol import (
    REQUEST_RECORD,
    CompletionRecord,
    REQUEST_RECORD_SIZE,
    Compression,
    Op,
    Reason,
    RequestRecord,
    SourceType,
    Status,
)
from dsd.protocol._hresult import HRESULT

from . import _failures
from ._queues import completion

log = logging.getLogger("dsd.daemon")

STAGING_REGION_ID = 0xFFFF_FFF0      # never handed to clients (their ids count up from 1)
DEFAULT_STAGING_BYTES = 256 << 20
_COMPRESSION_OFFSET = 53


@dataclass
class GpuJob:
    """GDeflate reads of one queue segment, decoded together."""

    queue: Any
    records: list[RequestRecord]
    staging: list[int]                      # staging offset of each record's compressed bytes
    span: tuple[int, int]                   # [start, end) of the staging memory the job holds
    epoch: Any = None
    remaining: int = 0                      # staging reads not yet completed
    failed: dict[int, tuple[bytes, dict[str, Any]]] = field(default_factory=dict)


class GpuRoute:
    def __init__(self, *, staging_bytes: int = DEFAULT_STAGING_BYTES) -> None:
        from .gpu import decode_mode

        self.mode = decode_mode()            # ValueError for a bad DSD_DECODE, at start-up
        self.staging_bytes = staging_bytes
        self.decoder: Any = None
        self.kind: str | None = None
        self.unavailable: str | None = None  # why there is no GPU decoder
        self.last_choice = "no compressed batch yet"
        self.counters = {"gpu_requests": 0, "gpu_bytes": 0, "gpu_jobs": 0, "gpu_failures": 0, "cpu_routed": 0}
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._host_in: Any = None            # self._map as a Vulkan buffer (VK_EXT_external_memory_host)
        self._jobs: list[GpuJob] = []
        self._opening = False
        self._opened: trio.Event | None = None
        self._limiter = trio.CapacityLimiter(1)  # one device, one batch at a time

    # -- device ---------------------------------------------------------------------------

    def open_now(self) -> None:
        """DSD_DECODE=gpu: open the device at start so a missing GPU is known (and logged) at once."""
        if self.mode == "gpu":
            self._open()

    def _open(self) -> None:
        from .gpu import GpuDecoder, GpuError

        try:
            decoder = GpuDecoder()
        except GpuError as exc:
            self.unavailable = str(exc)
            log.warning("no GPU decoder (%s); GDeflate requests are decoded on the CPU", exc)
            return
        self.decoder, self.kind = decoder, decoder.device.info.kind
        self._fd = os.memfd_create("dsd-gpu-staging", os.MFD_CLOEXEC)
        os.ftruncate(self._fd, self.staging_bytes)
        self._map = mmap.mmap(self._fd, self.staging_bytes)
        self._host_in = None
        device = decoder.device
        align = device.host_import_alignment
        if align and self.staging_bytes % align == 0:
            # The io engine reads compressed bytes into this memfd; imported, the GPU copies them
            # from it directly instead of the CPU copying them into the decoder's staging first.
            try:
                self._host_in = device.import_host(self._map, device.vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT)
            except GpuError as exc:
                log.info("GPU staging memory not imported (%s): the CPU copies it to the GPU's staging", exc)
        log.info("GPU decoder: %s (%s), shader %s, staging %s", device.info.name, self.kind, decoder.shader,
                 "imported (no CPU copy)" if self._host_in is not None else "copied by the CPU")

    async def _open_in_background(self) -> None:
        self._opening = True
        self._opened = trio.Event()
        try:
            await trio.to_thread.run_sync(self._open)
        finally:
            self._opening = False
            self._opened.set()

    async def ensure_open(self) -> None:
        """Open the device now if auto mode has not yet (GPU destinations need it whatever the
        device kind); afterwards either ``decoder`` or ``unavailable`` is set."""
        if self.mode == "cpu" or self.decoder is not None or self.unavailable is not None:
            return
        if self._opening and self._opened is not None:
            await self._opened.wait()
        else:
            await self._open_in_background()

    @property
    def limiter(self) -> trio.CapacityLimiter:
        """Held by every user of the decoder's queue (decodes, the GPU buffer exports)."""
        return self._limiter

    def close(self) -> None:
        if self.decoder is not None:
            if self._host_in is not None:  # before the mapping it imports goes
                self.decoder.device.destroy_buffer(self._host_in)
                self._host_in = None
            self.decoder.close()
            self.decoder = None
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # -- routing --------------------------------------------------------------------------

    def take(self, queue: Any, view: memoryview, count: int, nursery: trio.Nursery) -> tuple[memoryview, GpuJob | None]:
        """Split a segment of request records: the GPU job's records, and the rest for the CPU."""
        if self.mode == "cpu" or count == 0 or b"\x01" not in bytes(view[_COMPRESSION_OFFSET::REQUEST_RECORD_SIZE]):
            return view, None
        session = queue.session
        picked, rest = [], bytearray()
        for i in range(count):
            raw = view[i * REQUEST_RECORD_SIZE:(i + 1) * REQUEST_RECORD_SIZE]
            rec = RequestRecord.unpack_from(raw)
            if self._routable(rec, session):
                picked.append(rec)
            else:
                rest += raw
        if not picked:
            return view, None
        from .gpu import DecodeChoice, choose_decoder

        decoded = sum(r.dst_size for r in picked)
        if self.mode == "auto" and self.decoder is None and self.unavailable is None:
            if not self._opening:
                nursery.start_soon(self._open_in_background)  # this batch runs on the CPU meanwhile
            choice = DecodeChoice("cpu", "auto: the GPU decoder is still opening")
        else:
            choice = choose_decoder(decoded, gpu_kind=self.kind)
        compressed = sum((r.src_size + 3) & ~3 for r in picked)
        span = self._allocate(compressed) if choice.backend == "gpu" and self.decoder is not None else None
        if span is None:
            self.last_choice = choice.reason if choice.backend == "cpu" else (
                self.unavailable or f"GPU staging full ({compressed} bytes needed)")
            self.counters["cpu_routed"] += len(picked)
            return view, None
        self.last_choice = choice.reason
        offsets, pos = [], span[0]
        for rec in picked:
            offsets.append(pos)
            pos += (rec.src_size + 3) & ~3       # streams start 4-byte aligned for the shader
        job = GpuJob(queue, picked, offsets, span, remaining=len(picked))
        self._jobs.append(job)
        return memoryview(bytes(rest)), job

    def _routable(self, rec: RequestRecord, session: Any) -> bool:
        if rec.op != Op.READ or rec.compression != Compression.GDEFLATE or rec.source_type != SourceType.FILE:
            return False
        if rec.flags or rec.reserved or rec.uncompressed_size != rec.dst_size or rec.src_size == 0:
            return False  # the engine words these failures
        region = session.regions.get(rec.dst_id)
        return region is not None and rec.dst_offset + rec.dst_size <= region.size and rec.src_id in session.files

    def _allocate(self, size: int) -> tuple[int, int] | None:
        """First fit after the last live job; the memory is reused once jobs finish."""
        if size > self.staging_bytes:
            return None
        start = max((job.span[1] for job in self._jobs), default=0)
        if start + size > self.staging_bytes:
            start = 0
            if any(job.span[0] < size for job in self._jobs):
                return None
        return (start, start + size)

    def staging_reads(self, job: GpuJob) -> bytes:
        """The job's records rewritten as plain reads into the staging region."""
        out = bytearray()
        for rec, off in zip(job.records, job.staging):
            out += REQUEST_RECORD.pack(rec.request_id, rec.cancel_tag, rec.src_offset, rec.src_size, rec.src_id, off,
                                       rec.src_size, STAGING_REGION_ID, 0, Op.READ, Compression.NONE,
                                       SourceType.FILE, 0, 0, 0, 0, 0)
        return bytes(out)

    def ensure_mapped(self, session: Any) -> None:
        if STAGING_REGION_ID not in session.registry.regions:
            session.registry.add_region(STAGING_REGION_ID, self._fd, self.staging_bytes)

    # -- completion -----------------------------------------------------------------------

    def staged(self, job: GpuJob, completions: bytes, errors: list[dict[str, Any]]) -> bool:
        """Staging reads finished; True once the whole job is staged and can be decoded."""
        by_id = {e["id"]: e for e in errors}
        originals = {r.request_id: r for r in job.records}
        session = job.queue.session
        for off in range(0, len(completions), 32):
            rec = bytes(completions[off:off + 32])
            rid, status = int.from_bytes(rec[:8], "little"), rec[24]
            if status != Status.OK:  # a failed or cancelled staging read is the request's result
                error = by_id.get(rid)
                if error is not None:
                    done = CompletionRecord(rid, 0, error["hresult"], error["errno"], Status(status),
                                                      Reason(error["reason"]))
                    error = _failures.error_record(done, originals[rid], session.files, session.regions)
                job.failed[rid] = (rec, error)
        job.remaining -= len(completions) // 32
        return job.remaining == 0

    async def decode(self, job: GpuJob, deliver: Callable[[GpuJob, bytes, list[dict[str, Any]]], None]) -> None:
        session = job.queue.session
        todo = [(rec, off) for rec, off in zip(job.records, job.staging) if rec.request_id not in job.failed]
        items = [(memoryview(self._map)[off:off + rec.src_size], rec.dst_size) for rec, off in todo]
        try:
            outputs = [session.registry.region_view(rec.dst_id)[rec.dst_offset:rec.dst_offset + rec.dst_size]
                       for rec, _ in todo]
        except (KeyError, ValueError):  # the client unregistered a region meanwhile: it is leaving
            outputs = None
        results: list[Any] = []
        if outputs is not None and todo:
            try:
                source = (self._host_in, [off for _rec, off in todo]) if self._host_in is not None else None
                results = await trio.to_thread.run_sync(partial(self.decoder.decode_batch_into, items, outputs,
                                                                source=source), limiter=self._limiter)
            except Exception as exc:  # a device loss must fail these requests, not the daemon
                log.error("GPU batch failed: %s", exc)
                results = [exc] * len(todo)
        if job in self._jobs:
            self._jobs.remove(job)
        records, errors = [], []
        for rec, error in job.failed.values():
            records.append(rec)
            if error is not None:
                errors.append(error)
        for (rec, _off), result in zip(todo, results):
            if result is None:
                records.append(completion(rec.request_id, Status.OK, nbytes=rec.dst_size))
                self.counters["gpu_bytes"] += rec.dst_size
                continue
            self.counters["gpu_failures"] += 1
            hresult = HRESULT.E_DSTORAGE_DECOMPRESSION_ERROR
            done = CompletionRecord(rec.request_id, 0, hresult, 0, Status.FAILED, Reason.DECOMPRESS)
            errors.append(_failures.error_record(done, rec, session.files, session.regions, f"GPU: {result}"))
            records.append(completion(rec.request_id, Status.FAILED, hresult, 0, Reason.DECOMPRESS))
        self.counters["gpu_requests"] += len(job.records)
        self.counters["gpu_jobs"] += 1
        if outputs is not None:
            deliver(job, b"".join(records), errors)

    def forget(self, gone: Callable[[GpuJob], bool]) -> None:
        """Release the staging of jobs whose client or queue went away (a running decode finishes
        into the regions it holds mapped, then delivers nothing)."""
        self._jobs = [job for job in self._jobs if not gone(job)]

    def in_use(self) -> bool:
        """Whether GDeflate work can go to the GPU at all (what the compression query reports)."""
        return self.decoder is not None and (self.mode == "gpu" or self.kind != "cpu")

    def stats(self) -> dict[str, Any]:
        device = self.decoder.device.info if self.decoder is not None else None
        return {"mode": self.mode, "device": device.name if device else None, "kind": self.kind,
                "unavailable": self.unavailable, "last_choice": self.last_choice,
                "staging_bytes": self.staging_bytes,
                "staging": ("imported: the GPU copies from it" if self._host_in is not None
                            else "copied into the GPU's staging by the CPU" if self.decoder is not None else None),
                "jobs_in_flight": len(self._jobs), **self.counters}
