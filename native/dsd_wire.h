/*
 * The packed records that BATCH and COMPLETIONS messages carry in their body frames
 * (docs/protocol.md, "Request records" and "Completion records"). Fixed size, little-endian,
 * naturally aligned, so native code reads a whole batch in place without a Python object per
 * request. This header is the C side of the contract; dsd/protocol/records.py is the Python side.
 */
#ifndef DSD_WIRE_H
#define DSD_WIRE_H

#include <stdint.h>

#define DSD_RECORD_LAYOUT_VERSION 1

enum dsd_op {
    DSD_OP_READ = 0,
    DSD_OP_WRITE = 1,
    DSD_OP_FSYNC = 2,  /* flush file dst_id (the daemon runs it once every earlier entry completed) */
    /* Queue barriers, completed by the daemon itself; the io engine never sees them. */
    DSD_OP_STATUS = 3,
    DSD_OP_SIGNAL = 4,
    DSD_OP_EVENT = 5,
};
enum dsd_compression { DSD_COMPRESSION_NONE = 0, DSD_COMPRESSION_GDEFLATE = 1, DSD_COMPRESSION_ZSTD = 2 };
enum dsd_source_type { DSD_SOURCE_FILE = 0, DSD_SOURCE_MEMORY = 1 };
enum dsd_status { DSD_STATUS_OK = 0, DSD_STATUS_FAILED = 1, DSD_STATUS_CANCELLED = 2 };

/* One request: 64 bytes. */
struct dsd_request_record {
    uint64_t request_id;        /* client-chosen, unique among the client's requests in flight */
    uint64_t cancel_tag;        /* matched by CANCEL (tag & mask) == value */
    uint64_t src_offset;        /* READ: file offset (FILE) or region offset (MEMORY); WRITE: region offset */
    uint32_t src_size;          /* bytes taken from the source (the compressed size when compressed) */
    uint32_t src_id;            /* READ: file id (FILE) or region id (MEMORY); WRITE: region id */
    uint64_t dst_offset;        /* READ: offset in the destination region; WRITE: file offset */
    uint32_t dst_size;          /* bytes the destination receives */
    uint32_t dst_id;            /* READ: region id; WRITE: file id */
    uint32_t uncompressed_size; /* 0 for NONE; else must equal dst_size (READ) or src_size (WRITE) */
    uint8_t op;                 /* enum dsd_op */
    uint8_t compression;        /* enum dsd_compression */
    uint8_t source_type;        /* enum dsd_source_type */
    uint8_t flags;              /* reserved, 0 */
    uint32_t name_offset;       /* into the names frame (UTF-8, not NUL-terminated) */
    uint16_t name_length;       /* 0: no name */
    int8_t level;               /* WRITE with compression: codec level */
    uint8_t reserved;           /* 0 */
};

/* One completion: 32 bytes. */
struct dsd_completion_record {
    uint64_t request_id;
    uint64_t bytes;    /* bytes delivered to the destination */
    uint32_t hresult;  /* DirectStorage HRESULT; 0 = S_OK */
    int32_t error;     /* errno (positive) or 0 */
    uint8_t status;    /* enum dsd_status */
    uint8_t reason;    /* enum dsd_reason: which check failed, for the daemon's message */
    uint8_t reserved[6];
};

/* Why a request failed, so the daemon can word a message without re-checking anything. */
enum dsd_reason {
    DSD_REASON_NONE = 0,
    DSD_REASON_IO = 1,             /* the read/write syscall failed: see error */
    DSD_REASON_EOF = 2,            /* source range extends past the end of the file */
    DSD_REASON_BAD_FILE = 3,       /* unknown file id */
    DSD_REASON_BAD_REGION = 4,     /* unknown region id */
    DSD_REASON_REGION_BOUNDS = 5,  /* offset + size outside the region */
    DSD_REASON_SIZE_MISMATCH = 6,  /* src/dst/uncompressed sizes disagree */
    DSD_REASON_UNSUPPORTED = 7,    /* op/compression/source type not supported by this daemon */
    DSD_REASON_RESERVED = 8,       /* a reserved field is not zero */
    DSD_REASON_DECOMPRESS = 9,     /* corrupt compressed data */
    DSD_REASON_TOO_LARGE = 10,     /* larger than the staging limit */
    DSD_REASON_CANCELLED = 11,
    DSD_REASON_SHUTDOWN = 12,      /* engine closed before the request ran */
};

/* HRESULTs (FACILITY_GAME = 2340): 0x8924xxxx, docs/directstorage-api.md 1.4. */
#define DSD_E_DSTORAGE(code) ((uint32_t)(0x89240000u | (code)))
#define DSD_E_END_OF_FILE DSD_E_DSTORAGE(0x07)
#define DSD_E_REQUEST_TOO_LARGE DSD_E_DSTORAGE(0x08)
#define DSD_E_ACCESS_VIOLATION DSD_E_DSTORAGE(0x09)
#define DSD_E_FILE_NOT_OPEN DSD_E_DSTORAGE(0x0B)
#define DSD_E_RESERVED_FIELDS DSD_E_DSTORAGE(0x0C)
#define DSD_E_INVALID_DESTINATION_SIZE DSD_E_DSTORAGE(0x0F)
#define DSD_E_INVALID_FILE_OFFSET DSD_E_DSTORAGE(0x1A)
#define DSD_E_INVALID_SOURCE_TYPE DSD_E_DSTORAGE(0x1B)
#define DSD_E_STAGING_BUFFER_TOO_SMALL DSD_E_DSTORAGE(0x21)
#define DSD_E_DECOMPRESSION_ERROR DSD_E_DSTORAGE(0x30)
#define DSD_E_ABORT 0x80004004u       /* cancelled */
#define DSD_E_NOTIMPL 0x80004001u
#define DSD_E_FAIL 0x80004005u

/* An errno as the HRESULT a Windows caller would see: HRESULT_FROM_WIN32 of the matching
 * Win32 error (FACILITY_WIN32 = 7); errnos without a close Win32 twin become E_FAIL. */
static inline uint32_t dsd_hresult_from_errno(int e)
{
    uint32_t win32;
    switch (e) {
    case 0: return 0;
    case 2: win32 = 2; break;      /* ENOENT  -> ERROR_FILE_NOT_FOUND */
    case 13: win32 = 5; break;     /* EACCES  -> ERROR_ACCESS_DENIED */
    case 1: win32 = 5; break;      /* EPERM   -> ERROR_ACCESS_DENIED */
    case 9: win32 = 6; break;      /* EBADF   -> ERROR_INVALID_HANDLE */
    case 12: win32 = 8; break;     /* ENOMEM  -> ERROR_NOT_ENOUGH_MEMORY */
    case 22: win32 = 87; break;    /* EINVAL  -> ERROR_INVALID_PARAMETER */
    case 5: win32 = 30; break;     /* EIO     -> ERROR_READ_FAULT */
    case 28: win32 = 112; break;   /* ENOSPC  -> ERROR_DISK_FULL */
    case 30: win32 = 19; break;    /* EROFS   -> ERROR_WRITE_PROTECT */
    case 21: win32 = 267; break;   /* EISDIR  -> ERROR_DIRECTORY */
    case 24: win32 = 4; break;     /* EMFILE  -> ERROR_TOO_MANY_OPEN_FILES */
    case 27: win32 = 223; break;   /* EFBIG   -> ERROR_FILE_TOO_LARGE */
    case 125: return DSD_E_ABORT;  /* ECANCELED */
    default: return DSD_E_FAIL;
    }
    return 0x80070000u | win32;
}

#ifdef __cplusplus
static_assert(sizeof(struct dsd_request_record) == 64, "request record is 64 bytes");
static_assert(sizeof(struct dsd_completion_record) == 32, "completion record is 32 bytes");
#else
_Static_assert(sizeof(struct dsd_request_record) == 64, "request record is 64 bytes");
_Static_assert(sizeof(struct dsd_completion_record) == 32, "completion record is 32 bytes");
#endif

#endif
